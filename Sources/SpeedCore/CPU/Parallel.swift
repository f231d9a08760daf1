// Work splitting for CPU kernels: contiguous chunks of an index range over a fixed number of threads.
// Invariant: chunk boundaries depend only on (n, threads, grain); elementwise kernels and reductions never let
// results depend on them (GEMM, split across threads by rows or columns, may differ in the last bit).

import Dispatch

/// A value that crosses into worker threads; the kernel guarantees disjoint writes.
@usableFromInline
struct Unchecked<T>: @unchecked Sendable {
    @usableFromInline let value: T
    @usableFromInline init(_ value: T) { self.value = value }
}

/// Splits `0..<n` into at most `threads` chunks of at least `grain` items and runs them concurrently.
@usableFromInline
struct Parallel: Sendable {
    @usableFromInline let threads: Int

    @inlinable
    func forEach(_ n: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        if n <= 0 { return }
        let chunks = Swift.min(threads, Swift.max(1, n / Swift.max(grain, 1)))
        if chunks <= 1 { body(0..<n); return }
        withoutActuallyEscaping(body) { body in
            let work = Unchecked(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let lo = n * c / chunks, hi = n * (c + 1) / chunks
                work.value(lo..<hi)
            }
        }
    }

    /// Runs `body(chunk, range)` per chunk and returns the per-chunk results in chunk order
    /// (deterministic partial sums for reductions).
    @inlinable
    func map<R>(_ n: Int, grain: Int = 1, _ body: (Range<Int>) -> R) -> [R] {
        let chunks = Swift.min(threads, Swift.max(1, n / Swift.max(grain, 1)))
        if chunks <= 1 { return [body(0..<n)] }
        var results = [R?](repeating: nil, count: chunks)
        results.withUnsafeMutableBufferPointer { buffer in
            let out = Unchecked(buffer.baseAddress!)
            withoutActuallyEscaping(body) { body in
                let work = Unchecked(body)
                DispatchQueue.concurrentPerform(iterations: chunks) { c in
                    let lo = n * c / chunks, hi = n * (c + 1) / chunks
                    (out.value + c).pointee = work.value(lo..<hi)
                }
            }
        }
        return results.map { $0! }
    }
}
