// ZeRO-3 prefetch: replays the module order recorded in the first forward and backward, gathering the
// next module's parameters on a communication thread (its own communicator) while this one computes.
// Invariant: every rank issues the same prefetches in the same order — they follow the recorded
// order, which is the same on every rank — and a prefetch is always waited for before another starts.

import Dispatch
import SpeedComm
import SpeedCore

/// One gather running on the communication thread: contiguous flat runs into fresh buffers.
final class PrefetchJob: @unchecked Sendable {
    let ids: [Int]
    let runs: [(range: Range<Int>, ids: [Int], buffer: Tensor)]
    let done = DispatchSemaphore(value: 0)
    /// Set by the communication thread before `done` is signalled; read only after waiting on it.
    var error: Error?

    init(ids: [Int], runs: [(range: Range<Int>, ids: [Int], buffer: Tensor)]) {
        self.ids = ids
        self.runs = runs
    }
}

/// Records which parameter sets forward and backward gather, in order, and runs the next one ahead.
final class ParameterPrefetcher {
    enum Phase: Int { case forward = 0, backward = 1 }

    /// The companion group: collectives on another communicator, safe to run beside the main one.
    let group: any ProcessGroup
    /// Gathers at most this many elements ahead (`stage3_prefetch_bucket_size`).
    let bucketElements: Int
    private let queue = DispatchQueue(label: "swiftspeed.zero3.prefetch")
    private var recorded: [[[Int]]] = [[], []]
    private var complete = [false, false]
    private var cursor = [0, 0]
    private var phase = Phase.forward
    private var inFlight: PrefetchJob?
    /// Gathers served from a prefetch (for tests and reports).
    private(set) var hits = 0

    init(group: any ProcessGroup, bucketElements: Int) {
        self.group = group
        self.bucketElements = bucketElements
    }

    deinit { drain() }

    /// A new forward or backward pass starts; the one before it is now fully recorded.
    func begin(_ next: Phase) {
        if cursor[phase.rawValue] > 0 { complete[phase.rawValue] = true }
        phase = next
        cursor[next.rawValue] = 0
    }

    /// Notes that `ids` are gathered now; returns a finished prefetch of them, if one was running.
    func take(_ ids: [Int]) -> PrefetchJob? {
        let p = phase.rawValue
        if !complete[p] { recorded[p].append(ids) }
        cursor[p] += 1
        guard let job = inFlight else { return nil }
        inFlight = nil
        job.done.wait()
        if job.ids == ids { hits += 1; return job }
        return nil   // the order diverged: its data is simply dropped
    }

    /// The parameter set the recorded order says comes next in this pass, if any.
    var upcoming: [Int]? {
        let p = phase.rawValue
        guard complete[p], cursor[p] < recorded[p].count else { return nil }
        return recorded[p][cursor[p]]
    }

    /// Starts gathering `runs` (flat ranges of `ids` not resident now) on the communication thread.
    func start(ids: [Int], runs: [(range: Range<Int>, ids: [Int])], shard: Tensor, partition: Range<Int>,
               layout: PartitionLayout, dtype: DType, device: Device) {
        precondition(inFlight == nil, "ParameterPrefetcher.start: a prefetch is already running")
        let total = runs.reduce(0) { $0 + $1.range.count }
        guard total > 0, total <= bucketElements else { return }
        let job = PrefetchJob(ids: ids, runs: runs.map { ($0.range, $0.ids, Tensor(empty: [$0.range.count], dtype: dtype, device: device)) })
        inFlight = job
        let group = Unchecked(group), shard = Unchecked(shard)
        queue.async {
            do {
                for run in job.runs {
                    let mine = run.range.clamped(to: partition)
                    let piece = shard.value.slice(axis: 0, (mine.lowerBound - partition.lowerBound)..<(mine.upperBound - partition.lowerBound))
                    let staged = shard.value.device == device ? run.buffer : Tensor(empty: [run.range.count], dtype: dtype, device: shard.value.device)
                    try group.value.allGather(piece, into: staged, counts: layout.counts(in: run.range))
                    if staged !== run.buffer { run.buffer.copyData(from: staged) }
                }
            } catch {
                job.error = error
            }
            job.done.signal()
        }
    }

    /// Waits for a running prefetch (before the shards change, or at teardown).
    func drain() {
        if let job = inFlight { job.done.wait() }
        inFlight = nil
    }
}

/// Moves a non-Sendable reference to the communication thread, which uses it exclusively meanwhile.
struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
