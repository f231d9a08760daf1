// Parameter groups on flat shards: each parameter's weight decay, as runs of equal decay over this rank's partition.
// Invariant: the runs tile `0 ..< partition.count` exactly (padding takes the last parameter's decay), so applying the
// optimizer run by run updates every element once with its own parameter's decay — at any stage, offloaded or not.

import SpeedCore
import SpeedOptim

/// A stretch of this rank's partition whose parameters share one weight decay (`range` is partition-local).
package struct DecayRun: Equatable, Sendable {
    package var range: Range<Int>
    package var weightDecay: Double

    /// The runs of equal decay over the flat buffer, cut to `partition` (a run may start in one rank's
    /// partition and end in the next one's) and shifted to start at 0.
    ///
    /// ```swift
    /// // params [w: 4 elements, decay 0.1][b: 2, decay 0], 2 ranks of 3: rank 0 [0..<3 @0.1], rank 1 [0..<1 @0.1, 1..<3 @0]
    /// ```
    package static func runs(decays: [Double], flat: FlatParameters, partition: Range<Int>) -> [DecayRun] {
        var whole: [DecayRun] = []
        for (i, decay) in decays.enumerated() {
            var r = flat.range(of: i)
            if i == decays.count - 1 { r = r.lowerBound..<flat.paddedCount }
            if let last = whole.last, last.weightDecay == decay, last.range.upperBound == r.lowerBound {
                whole[whole.count - 1].range = last.range.lowerBound..<r.upperBound
            } else if !r.isEmpty {
                whole.append(DecayRun(range: r, weightDecay: decay))
            }
        }
        return whole.compactMap { run in
            let lo = Swift.max(run.range.lowerBound, partition.lowerBound)
            let hi = Swift.min(run.range.upperBound, partition.upperBound)
            guard lo < hi else { return nil }
            return DecayRun(range: (lo - partition.lowerBound)..<(hi - partition.lowerBound), weightDecay: run.weightDecay)
        }
    }
}

extension Engine {
    /// Each flat parameter's decay: its group's, or `defaultDecay` (the optimizer's own) when in no group.
    /// - Throws: ``InitializeError`` for a group parameter that is not trained here or is in two groups.
    static func parameterDecays(_ groups: [ParameterGroup], flat: FlatParameters, default defaultDecay: Double) throws -> [Double] {
        let index = Dictionary(uniqueKeysWithValues: flat.params.enumerated().map { (ObjectIdentifier($1), $0) })
        var decays = [Double?](repeating: nil, count: flat.params.count)
        for (g, group) in groups.enumerated() {
            for (k, p) in group.parameters.enumerated() {
                guard let i = index[ObjectIdentifier(p)] else {
                    throw InitializeError("parameterGroups[\(g)].parameters[\(k)] (shape \(p.shape)) is not a trainable parameter of the model (frozen, or another module's); list only parameters that require grad")
                }
                if let earlier = decays[i] {
                    throw InitializeError("parameter \(flat.names[i]) is in two parameter groups (weight decay \(earlier) and \(group.weightDecay)); each parameter belongs to at most one group")
                }
                decays[i] = group.weightDecay
            }
        }
        return decays.map { $0 ?? defaultDecay }
    }

    /// Runs `update` with the optimizer's weight decay set to `decay` (restored after).
    func withWeightDecay(_ decay: Double, _ update: () -> Void) {
        guard let decaying = optimizer as? any WeightDecaying else { return update() }
        let saved = decaying.weightDecay
        decaying.weightDecay = decay
        defer { decaying.weightDecay = saved }
        update()
    }
}
