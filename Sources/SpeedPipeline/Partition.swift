// DeepSpeed's layer partitioning (`deepspeed/runtime/utils.py` partition_uniform / partition_balanced and
// PipelineModule._partition_layers). Invariant: a partition is `stages + 1` non-decreasing boundaries from 0 to
// the layer count; stage s owns layers parts[s] ..< parts[s + 1], identically on every rank.

import Foundation

/// How layers are assigned to stages.
public enum Partition {
    /// DeepSpeed's `partition_uniform`: `items / parts` each, the first `items mod parts` parts one more;
    /// with no more items than parts, one item per part and the rest empty.
    ///
    /// ```swift
    /// Partition.uniform(items: 10, parts: 4)   // [0, 3, 6, 8, 10]
    /// ```
    public static func uniform(items: Int, parts: Int) -> [Int] {
        precondition(items >= 0 && parts >= 1, "Partition.uniform: items \(items) must be >= 0 and parts \(parts) >= 1")
        if items <= parts { return (0...parts).map { Swift.min($0, items) } }
        let chunk = items / parts, residual = items - chunk * parts
        var bounds = (0...parts).map { $0 * chunk }
        for i in 0..<residual { for j in (i + 1)...parts { bounds[j] += 1 } }
        return bounds
    }

    /// DeepSpeed's `partition_balanced`: the linear-partition dynamic programme that minimises the spread
    /// (max − min) of the parts' weight sums, with DeepSpeed's tie-breaking (the last split point of equal cost).
    ///
    /// ```swift
    /// Partition.balanced(weights: [1, 1, 1, 1, 4], parts: 2)   // [0, 4, 5]
    /// ```
    public static func balanced(weights: [Int], parts: Int) -> [Int] {
        let n = weights.count, m = parts
        precondition(m >= 1, "Partition.balanced: parts \(m) must be >= 1")
        if n <= m { return uniform(items: n, parts: m) }
        let inf = Double.infinity
        var dpMax = Array(repeating: Array(repeating: inf, count: m + 1), count: n + 1)
        var dpMin = dpMax, dpCost = dpMax
        var position = Array(repeating: Array(repeating: 0, count: m + 1), count: n + 1)
        var prefix = [Double](repeating: 0, count: n + 1)
        for i in 0..<n { prefix[i + 1] = prefix[i] + Double(weights[i]) }
        dpMax[0][0] = 0
        dpCost[0][0] = 0
        for i in 1...n {
            for j in 1...Swift.min(i, m) {
                for k in 0..<i {
                    let segment = prefix[i] - prefix[k]
                    let maxSum = Swift.max(dpMax[k][j - 1], segment)
                    let minSum = Swift.min(dpMin[k][j - 1], segment)
                    let cost = maxSum - minSum
                    if dpCost[i][j] >= cost {
                        dpCost[i][j] = cost
                        dpMax[i][j] = maxSum
                        dpMin[i][j] = minSum
                        position[i][j] = k
                    }
                }
            }
        }
        var bounds = [n]
        for i in stride(from: m, through: 1, by: -1) { bounds.append(position[bounds.last!][i]) }
        return bounds.reversed()
    }

    /// The boundaries `method` gives `layers` over `stages`: "uniform", "parameters" (balanced by
    /// trainable parameter counts), "type:REGEX" (balanced by how many layers' type names match REGEX,
    /// case-insensitively) or SwiftSpeed's "flops" (balanced by forward FLOPs per token: an embedding lookup
    /// weighs nothing, a tied LM head its matmul — what the stages' step times follow, where "parameters" puts the
    /// embedding's weights against the head's compute). The method is lower-cased first, as in DeepSpeed.
    public static func boundaries(_ method: String, layers: [PipelineLayer], stages: Int) throws -> [Int] {
        let lowered = method.lowercased()
        if lowered == "uniform" { return uniform(items: layers.count, parts: stages) }
        if lowered == "parameters" { return balanced(weights: layers.map { $0.countParameters() }, parts: stages) }
        if lowered == "flops" { return balanced(weights: layers.map { $0.countFlops() }, parts: stages) }
        if lowered.hasPrefix("type:") {
            let pattern = String(lowered.dropFirst(5))
            let regex: NSRegularExpression
            do { regex = try NSRegularExpression(pattern: pattern, options: .caseInsensitive) } catch {
                throw PipelineError.configuration("partition method '\(method)': '\(pattern)' is not a valid regular expression (\(error))")
            }
            let weights = layers.map { layer -> Int in
                let name = layer.typeName
                return regex.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) == nil ? 0 : 1
            }
            guard weights.contains(1) else {
                throw PipelineError.configuration("Partitioning '\(pattern)' found no valid layers to partition (layer types: \(Set(layers.map(\.typeName)).sorted().joined(separator: ", ")))")
            }
            return balanced(weights: weights, parts: stages)
        }
        throw PipelineError.configuration("Partitioning method \(method) not implemented; use \"parameters\", \"uniform\", \"type:REGEX\" or \"flops\"")
    }
}
