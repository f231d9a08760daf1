// ZeRO-3 parameter partitioning: each rank keeps its slice of the flat weights; a module's parameters
// are all-gathered just before its forward (and again before its backward) and released after.
// Invariant: a partitioned parameter's data is resident only while a module using it is inside its
// forward, or from its module's backward gather until autograd hands over its gradient; anything
// else reading it fails loudly (Tensor.rawPointer checks residency). Parameters at or under the
// persistence threshold stay resident and are refreshed from the shards after every update.

import SpeedComm
import SpeedCore
import SpeedNN

final class ParameterPartitioner {
    let flat: FlatParameters
    let layout: PartitionLayout
    /// This rank's weights (`[partition.count]`, model dtype; on the CPU with `offload_param`).
    let shard: Tensor
    let partition: Range<Int>
    let group: any ProcessGroup
    /// Where parameters live while gathered (the model's device).
    let device: Device
    let persistent: [Bool]
    /// Whether parameter i's full data is resident.
    private(set) var live: [Bool]
    /// Modules currently inside their forward that use parameter i.
    private var holders: [Int]
    private let index: [ObjectIdentifier: Int]
    /// What a released parameter points at: no elements.
    private let empty: Storage
    /// Persistent parameters, coalesced into contiguous runs that own their buffers.
    private var persistentRuns: [(range: Range<Int>, buffer: Tensor)] = []
    /// Ends the job when a gather fails inside a hook (where nothing can throw).
    var onFailure: (Error) -> Never = { error in fatalError("ZeRO-3 gather failed: \(error)") }
    /// Elements gathered so far (communication volume, for tests and reports).
    private(set) var gatheredElements = 0
    /// Gathers the next module's parameters ahead on a communication thread (nil: no companion
    /// communicator, or `stage3_prefetch_bucket_size` 0).
    var prefetcher: ParameterPrefetcher?

    init(flat: FlatParameters, layout: PartitionLayout, shard: Tensor, group: any ProcessGroup,
         persistenceThreshold: Int, module: Module) throws {
        self.flat = flat
        self.layout = layout
        self.shard = shard
        self.group = group
        partition = layout.partition(layout.ranks == 1 ? 0 : group.rank)
        device = flat.values!.device
        persistent = flat.params.map { $0.count <= persistenceThreshold }
        live = Array(repeating: true, count: flat.params.count)
        holders = Array(repeating: 0, count: flat.params.count)
        index = Dictionary(uniqueKeysWithValues: flat.params.enumerated().map { (ObjectIdentifier($0.element), $0.offset) })
        empty = Storage(byteCount: 0, device: device)
        // Persistent parameters move out of the full buffer into their own runs; the rest are released.
        let values = flat.values!
        for run in Self.runs(flat.params.indices.filter { persistent[$0] }, flat) {
            let range = flat.offsets[run.first!]..<flat.range(of: run.last!).upperBound
            let buffer = noGrad { values.slice(axis: 0, range).copy() }
            persistentRuns.append((range, buffer))
            for i in run { bind(i, to: buffer, at: range) }
        }
        for i in flat.params.indices where !persistent[i] { release(i) }
    }

    /// Bytes of the whole persistent parameters every rank keeps.
    var persistentBytes: Int { persistentRuns.reduce(0) { $0 + $1.buffer.byteCount } }

    /// Gathers around every module that owns (or reads, see `Module.externalParameters`) a
    /// partitioned parameter.
    func install(on module: Module) {
        for (_, m) in module.namedModules() {
            let tensors = m.namedOwnParameters().map(\.1) + m.externalParameters
            let ids = Array(Set(tensors.compactMap { index[ObjectIdentifier($0)] }.filter { !persistent[$0] })).sorted()
            guard !ids.isEmpty else { continue }
            m.forwardPreHooks.append { [weak self] _ in self?.enter(ids) }
            m.forwardPostHooks.append { [weak self] _, outputs in self?.leave(ids, outputs) ?? outputs }
        }
    }

    // MARK: Forward and backward

    func enter(_ ids: [Int]) {
        for i in ids { holders[i] += 1 }
        gatherOrFail(ids)
    }

    /// A forward or backward pass begins (the prefetcher's position in the recorded order).
    func begin(_ phase: ParameterPrefetcher.Phase) { prefetcher?.begin(phase) }

    /// Releases the module's parameters and wraps every output that is part of a graph in an
    /// identity op whose backward gathers them again before any of the module's own backward runs.
    ///
    /// The wraps of one call share a flag: the first to run in backward gathers (exactly what one
    /// output's wrap always did, prefetch bookkeeping included); a later one gathers only if some
    /// parameter was released in between (a checkpoint's inner backward hands over a partial
    /// gradient), so several outputs cost one gather. An output stored under several keys is
    /// wrapped once.
    func leave(_ ids: [Int], _ outputs: ModuleOutputs) -> ModuleOutputs {
        for i in ids {
            holders[i] -= 1
            release(i)
        }
        guard outputs.contains(where: \.value.requiresGrad) else { return outputs }
        final class Gathered { var once = false }
        let gathered = Gathered()
        var wrapped: [ObjectIdentifier: Tensor] = [:]
        return outputs.mapTensors { out in
            guard out.requiresGrad else { return out }
            if let w = wrapped[ObjectIdentifier(out)] { return w }
            let w = Tensor.record("zero3_gather", out.view(out.shape), inputs: [out]) { [weak self] g, _ in
                guard let self else { return [g] }
                if !gathered.once || ids.contains(where: { !self.live[$0] }) { self.gatherOrFail(ids) }
                gathered.once = true
                return [g]
            }
            wrapped[ObjectIdentifier(out)] = w
            return w
        }
    }

    /// Autograd handed over parameter i's gradient: nothing in this backward reads it any more.
    func backwardDone(with i: Int) { release(i) }

    /// Releases every partitioned parameter no module is using (end of backward).
    func releaseAll() {
        for i in flat.params.indices { release(i) }
    }

    /// Waits for a prefetch still running (before the shards change).
    func drain() { prefetcher?.drain() }

    /// Runs `body` with every parameter resident (collective), e.g. to read or save full weights.
    func withAllGathered<R>(_ body: () throws -> R) throws -> R {
        let ids = flat.params.indices.filter { !persistent[$0] }
        for i in ids { holders[i] += 1 }
        defer {
            for i in ids { holders[i] -= 1 }
            releaseAll()
        }
        prefetcher?.drain()
        try gather(ids, prefetch: false)
        return try body()
    }

    /// After an update: refresh the persistent parameters from every rank's new shard.
    func refreshPersistent() throws {
        prefetcher?.drain()
        for run in persistentRuns { try fetch(run.range, into: run.buffer) }
    }

    /// Sets the persistent parameters from a full flat buffer (checkpoint load; no communication).
    func loadPersistent(from full: Tensor) {
        for run in persistentRuns { run.buffer.copyData(from: full.slice(axis: 0, run.range)) }
    }

    // MARK: Gather and release

    private func gatherOrFail(_ ids: [Int]) {
        do { try gather(ids) } catch { onFailure(error) }
    }

    /// All-gathers the non-resident parameters among `ids`, one collective per contiguous run;
    /// with `prefetch`, takes what the communication thread already fetched and starts on the set
    /// the recorded order says comes next.
    func gather(_ ids: [Int], prefetch: Bool = true) throws {
        let prefetcher = prefetch ? self.prefetcher : nil
        if let job = prefetcher?.take(ids) {
            if let error = job.error { throw error }
            for run in job.runs {
                for i in run.ids where !live[i] { bind(i, to: run.buffer, at: run.range) }
                gatheredElements += run.range.count
            }
        }
        for run in Self.runs(ids.filter { !live[$0] }, flat) {
            let range = flat.offsets[run.first!]..<flat.range(of: run.last!).upperBound
            let buffer = Tensor(empty: [range.count], dtype: flat.dtype, device: device)   // [run]
            try fetch(range, into: buffer)
            for i in run { bind(i, to: buffer, at: range) }
        }
        if let prefetcher, let next = prefetcher.upcoming {
            let runs = Self.runs(next.filter { !live[$0] }, flat).map { run in
                (range: flat.offsets[run.first!]..<flat.range(of: run.last!).upperBound, ids: run)
            }
            prefetcher.start(ids: next, runs: runs, shard: shard, partition: partition, layout: layout,
                             dtype: flat.dtype, device: device)
        }
    }

    /// Fills `buffer` with flat elements `range`, each rank contributing the part it owns.
    private func fetch(_ range: Range<Int>, into buffer: Tensor) throws {
        let mine = range.clamped(to: partition)
        let piece = shard.slice(axis: 0, (mine.lowerBound - partition.lowerBound)..<(mine.upperBound - partition.lowerBound))
        if shard.device == device {
            try group.allGather(piece, into: buffer, counts: layout.counts(in: range))
        } else {
            // offload_param: the shard lives in CPU memory; gather there, then move to the device.
            let staged = Tensor(empty: [range.count], dtype: flat.dtype, device: shard.device)
            try group.allGather(piece, into: staged, counts: layout.counts(in: range))
            buffer.copyData(from: staged)
        }
        gatheredElements += range.count
    }

    private func bind(_ i: Int, to buffer: Tensor, at range: Range<Int>) {
        flat.params[i].rebind(storage: buffer.storage, offset: buffer.offset + flat.offsets[i] - range.lowerBound, dtype: flat.dtype)
        live[i] = true
    }

    private func release(_ i: Int) {
        guard live[i], !persistent[i], holders[i] == 0 else { return }
        flat.params[i].release(to: empty)
        live[i] = false
    }

    /// `ids` (ascending) split into runs of parameters adjacent in the flat buffer.
    static func runs(_ ids: [Int], _ flat: FlatParameters) -> [[Int]] {
        var out: [[Int]] = []
        for i in ids.sorted() {
            if let last = out.last?.last, flat.range(of: last).upperBound == flat.offsets[i] { out[out.count - 1].append(i) }
            else { out.append([i]) }
        }
        return out
    }
}
