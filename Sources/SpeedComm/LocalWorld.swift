// The shared state of LocalProcessGroup's ranks: one rendezvous per collective, under one lock per job.
// Invariant: the last rank to arrive runs the collective's action while every other rank of that world
// waits, so the action sees all ranks' buffers alive and unchanged; any failure poisons the whole job,
// which every waiting rank then reports instead of waiting out its timeout.

import Foundation
import SpeedCore

/// Every world derived from one `LocalProcessGroup.run` (the world itself, its splits and companions):
/// one lock and condition for all of them, the first failure, and which ranks have left.
final class LocalJob: @unchecked Sendable {
    let condition = NSCondition()
    /// The first failure; once set, every collective of every world of this job throws.
    var failure: CommError?
    /// The first error any rank's body threw or any collective raised, for `run` to rethrow.
    var firstError: (any Error)?
    /// Global ranks whose body has returned or thrown.
    var exited: Set<Int> = []

    /// Poisons the job (lock held).
    func fail(_ error: CommError) {
        if failure == nil { failure = error }
        if firstError == nil { firstError = error }
        condition.broadcast()
    }
}

/// The ranks of one group: `members[r]` is the global rank of local rank `r`.
final class LocalWorld: @unchecked Sendable {
    let job: LocalJob
    let members: [Int]
    let timeout: Double
    var size: Int { members.count }

    // The rendezvous in progress, guarded by `job.condition`.
    private var generation = 0
    private var arrivedCount = 0
    private var operation: String?
    private var operationRank = 0
    private var contributions: [Any?]
    /// Per-rank results of the last completed rendezvous (read by each rank before it can arrive again).
    private var results: [Any?]

    // Point-to-point messages, keyed by (source, destination, tag), guarded by `job.condition`.
    private var mailbox: [MessageKey: [Message]] = [:]
    private var nextMessageID = 0
    private var delivered: Set<Int> = []

    init(job: LocalJob, members: [Int], timeout: Double) {
        self.job = job
        self.members = members
        self.timeout = timeout
        contributions = Array(repeating: nil, count: members.count)
        results = Array(repeating: nil, count: members.count)
    }

    /// Every rank calls this with the same `operation` text; the last to arrive runs `action` on all
    /// contributions (rank order) and its per-rank results come back to each caller.
    func rendezvous(rank: Int, operation op: String, contribution: Any,
                    action: ([Any]) throws -> [Any]) throws -> Any {
        job.condition.lock()
        defer { job.condition.unlock() }
        if let failure = job.failure { throw reported(failure, rank: rank, op: op) }
        let gen = generation
        if arrivedCount == 0 {
            operation = op
            operationRank = rank
        } else if operation != op {
            job.fail(CommError(rank: rank, operation: op, message:
                "rank \(rank) called \(op) while rank \(operationRank) called \(operation ?? "?") (every rank must call the same collectives in the same order)"))
            throw job.failure!
        }
        contributions[rank] = contribution
        arrivedCount += 1
        if arrivedCount == size {
            let inputs = contributions.map { $0! }
            do {
                let out = try action(inputs)
                precondition(out.count == size, "rendezvous: the action returned \(out.count) results for \(size) ranks")
                results = out
            } catch {
                let comm = error as? CommError ?? CommError(rank: rank, operation: op, message: "\(error)")
                job.fail(comm)
                throw comm
            }
            contributions = Array(repeating: nil, count: size)
            arrivedCount = 0
            operation = nil
            generation += 1
            job.condition.broadcast()
            return results[rank]!
        }
        try wait(rank: rank, op: op, until: { self.generation != gen }, missing: {
            (0..<self.size).filter { self.contributions[$0] == nil }
        })
        return results[rank]!
    }

    /// Hands `payload` to `destination` and waits until it has been received (a synchronous send).
    func send(rank: Int, to destination: Int, tag: Int, payload: Tensor, operation op: String) throws {
        precondition(destination >= 0 && destination < size && destination != rank,
                     "send: destination \(destination) is not another rank of a group of size \(size) (this is rank \(rank))")
        job.condition.lock()
        defer { job.condition.unlock() }
        if let failure = job.failure { throw reported(failure, rank: rank, op: op) }
        let id = nextMessageID
        nextMessageID += 1
        mailbox[MessageKey(source: rank, destination: destination, tag: tag), default: []].append(Message(id: id, payload: payload))
        job.condition.broadcast()
        try wait(rank: rank, op: op, until: { self.delivered.contains(id) }, missing: { [destination] })
        delivered.remove(id)
    }

    /// Waits for the oldest message from `source` with `tag` and takes it.
    func receive(rank: Int, from source: Int, tag: Int, operation op: String) throws -> Tensor {
        precondition(source >= 0 && source < size && source != rank,
                     "receive: source \(source) is not another rank of a group of size \(size) (this is rank \(rank))")
        job.condition.lock()
        defer { job.condition.unlock() }
        if let failure = job.failure { throw reported(failure, rank: rank, op: op) }
        let key = MessageKey(source: source, destination: rank, tag: tag)
        try wait(rank: rank, op: op, until: { !(self.mailbox[key] ?? []).isEmpty }, missing: { [source] })
        let message = mailbox[key]!.removeFirst()
        if mailbox[key]!.isEmpty { mailbox[key] = nil }
        delivered.insert(message.id)
        job.condition.broadcast()
        return message.payload
    }

    /// Sleeps on the job's condition (lock held) until `done`, the job fails, a rank we wait for has
    /// left, or the timeout passes; the last three throw.
    private func wait(rank: Int, op: String, until done: () -> Bool, missing: () -> [Int]) throws {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while !done() {
            if let failure = job.failure { throw reported(failure, rank: rank, op: op) }
            let gone = missing().filter { job.exited.contains(members[$0]) }
            if !gone.isEmpty {
                job.fail(CommError(rank: rank, operation: op, message:
                    "rank(s) \(gone) returned without joining it (every rank must call the same collectives)"))
                throw job.failure!
            }
            if !job.condition.wait(until: deadline) && !done() {
                job.fail(CommError(rank: rank, operation: op, message:
                    "timed out after \(timeout) s waiting for rank(s) \(missing()) (a rank is stuck or called a different collective)"))
                throw job.failure!
            }
        }
    }

    /// The job's failure as seen by a rank that did not cause it.
    private func reported(_ failure: CommError, rank: Int, op: String) -> CommError {
        failure.rank == rank && failure.operation == op
            ? failure : CommError(rank: rank, operation: op, message: "the job failed: \(failure)")
    }

    private struct MessageKey: Hashable { let source: Int, destination: Int, tag: Int }
    private struct Message { let id: Int; let payload: Tensor }
}
