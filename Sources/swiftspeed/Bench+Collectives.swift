// `swiftspeed bench collectives`: B5, all-reduce / reduce-scatter / all-gather bus bandwidth under mpirun, vs MPI_Allreduce.
// Invariant: every rank runs the same cases in the same order (sizes and iteration counts depend only on the
// options and the world size), so the collectives line up; buffers are zero while timed, so sums never overflow.

import ArgumentParser
import SwiftSpeed
#if canImport(Glibc)
import Glibc
#endif

extension Bench {
    /// B5: collectives through the `ProcessGroup` API, with OpenMPI's blocking `MPI_Allreduce` as the anchor.
    ///
    /// ```
    /// $ mpirun -n 2 swiftspeed bench collectives --max-bytes 1048576 --json
    /// {"case":"B5-collectives","op":"all_reduce","ranks":2,"bytes":1024,…,"busbw_gbs":0.41,"mpi_busbw_gbs":0.45,"ratio":0.91}
    /// ```
    struct Collectives: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "collectives",
            abstract: "B5: all-reduce, reduce-scatter, all-gather bus bandwidth vs MPI_Allreduce (run under mpirun -n W).",
            discussion: """
                Sizes are fp32 buffers of --min-bytes × 4^k up to --max-bytes (default 1 KiB … 256 MiB). Each case runs \
                warm-up iterations, then timed iterations (1000 for small buffers, down to 5 for the largest); the time \
                of a round is the maximum over ranks of the mean per iteration, and the reported time is the best of \
                --rounds rounds (ours and MPI_Allreduce alternate). algbw = bytes / time; busbw as nccl-tests: \
                all-reduce × 2(W−1)/W, reduce-scatter and all-gather × (W−1)/W, where bytes is the full buffer \
                (W blocks). ratio = MPI_Allreduce time / our all-reduce time (our busbw as a share of MPI's). \
                Rank 0 prints.
                """)

        @Option(help: "Smallest buffer in bytes.") var minBytes: Int = 1 << 10
        @Option(help: "Largest buffer in bytes.") var maxBytes: Int = 256 << 20
        @Option(help: "Timed iterations per case (default: by size, 1000 down to 5).") var iters: Int?
        @Option(help: "Warm-up iterations per case (default: a tenth of the timed ones, at least 2).") var warmup: Int?
        @Option(help: "Rounds per case; the best round is reported.") var rounds: Int = 3
        @Option(help: "Collectives to time, comma-separated: all_reduce (with MPI_Allreduce), reduce_scatter, all_gather.")
        var ops: String = "all_reduce,reduce_scatter,all_gather"
        @Option(help: "Seconds a collective may wait for the other ranks.") var timeout: Double = 600
        @Flag(help: "Print one JSON line per case.") var json = false

        func validate() throws {
            guard minBytes >= 4, maxBytes >= minBytes else {
                throw ValidationError("--min-bytes must be >= 4 and <= --max-bytes (got \(minBytes), \(maxBytes))")
            }
            if let iters, iters < 1 { throw ValidationError("--iters must be >= 1") }
            if let warmup, warmup < 0 { throw ValidationError("--warmup must be >= 0") }
            guard rounds >= 1 else { throw ValidationError("--rounds must be >= 1") }
            let unknown = selected.subtracting(Self.allOps)
            guard unknown.isEmpty, !selected.isEmpty else {
                throw ValidationError("--ops: unknown \(unknown.sorted()); use some of \(Self.allOps.sorted().joined(separator: ","))")
            }
        }

        static let allOps: Set<String> = ["all_reduce", "reduce_scatter", "all_gather"]
        var selected: Set<String> { Set(ops.split(separator: ",").map { String($0) }) }

        /// Timed iterations for a buffer: about 1 GiB moved per case, between 5 and 1000.
        func iterations(bytes: Int) -> Int { iters ?? max(5, min(1000, (1 << 30) / max(bytes, 1))) }

        func run() throws {
            let group = try ProcessGroups.fromEnvironment(timeout: timeout)
            let (rank, w) = (group.rank, group.size)
            if rank == 0 && w == 1 {
                printError("warning: one process — run under mpirun -n W (W >= 2) to measure the collectives")
            }
            if rank == 0 && !json {
                print("B5 collectives, \(w) ranks: busbw in GB/s (time per call in µs); ratio = ours / MPI_Allreduce")
                print(pad("bytes", 11) + pad("all_reduce", 22) + pad("MPI_Allreduce", 22) + pad("ratio", 7)
                      + pad("reduce_scatter", 22) + pad("all_gather", 22))
            }
            var bytes = minBytes
            while bytes <= maxBytes {
                let count = max(w, bytes / 4 / w * w)
                try runSize(group, count: count)
                if bytes > Int.max / 4 { break }
                bytes *= 4
            }
            try group.barrier()
            group.finalize()
        }

        /// Times the three collectives (and the anchor) on `count` fp32 elements and prints the figures.
        func runSize(_ group: any ProcessGroup, count: Int) throws {
            let (rank, w) = (group.rank, group.size)
            let bytes = count * 4, block = count / w
            let n = iterations(bytes: bytes), warm = warmup ?? max(2, n / 10)
            let full = Tensor.zeros([count]), part = Tensor.zeros([block])
            let hasAnchor = try check(group, full: full, part: part)

            /// Best over rounds of (max over ranks of the mean seconds per call).
            func time(_ body: () throws -> Void) throws -> Double {
                for _ in 0..<warm { try body() }
                try group.barrier()
                let t0 = now()
                for _ in 0..<n { try body() }
                let seconds = Tensor([(now() - t0) / Double(n)], shape: [1], dtype: .float64)
                try group.allReduce(seconds, op: .max)
                return seconds.item()
            }
            var ours = Double.infinity, anchor = Double.infinity, scatter = Double.infinity, gather = Double.infinity
            let chosen = selected
            for _ in 0..<rounds {
                if chosen.contains("all_reduce") {
                    ours = min(ours, try time { try group.allReduce(full, op: .sum) })
                    if hasAnchor { anchor = min(anchor, try time { _ = try ProcessGroups.transportAllReduce(full, in: group) }) }
                }
                if chosen.contains("reduce_scatter") {
                    scatter = min(scatter, try time { try group.reduceScatter(full, into: part, op: .sum) })
                }
                if chosen.contains("all_gather") { gather = min(gather, try time { try group.allGather(part, into: full) }) }
            }
            try group.barrier()
            guard rank == 0 else { return }

            let busAllReduce = w > 1 ? 2 * Double(w - 1) / Double(w) : 0, busOther = Double(w - 1) / Double(w)
            func algbw(_ t: Double) -> Double { Double(bytes) / t / 1e9 }
            let ratio = !hasAnchor ? nil : anchor / ours
            if json {
                func line(_ op: String, _ t: Double, _ factor: Double, _ extra: String = "") -> String {
                    "{\"case\":\"B5-collectives\",\"op\":\"\(op)\",\"ranks\":\(w),\"bytes\":\(bytes),\"count\":\(count),"
                        + "\"iters\":\(n),\"time_us\":\(fmt(t * 1e6)),\"algbw_gbs\":\(fmt3(algbw(t))),"
                        + "\"busbw_gbs\":\(fmt3(algbw(t) * factor))\(extra)}"
                }
                let anchorFields = !hasAnchor ? ",\"mpi_time_us\":null,\"mpi_busbw_gbs\":null,\"ratio\":null"
                    : ",\"mpi_time_us\":\(fmt(anchor * 1e6)),\"mpi_busbw_gbs\":\(fmt3(algbw(anchor) * busAllReduce)),\"ratio\":\(fmt3(ratio!))"
                if chosen.contains("all_reduce") { print(line("all_reduce", ours, busAllReduce, anchorFields)) }
                if chosen.contains("reduce_scatter") { print(line("reduce_scatter", scatter, busOther)) }
                if chosen.contains("all_gather") { print(line("all_gather", gather, busOther)) }
            } else {
                func cell(_ t: Double, _ factor: Double) -> String {
                    t.isFinite ? pad("\(fmt3(algbw(t) * factor)) (\(fmt(t * 1e6)))", 22) : pad("-", 22)
                }
                print(pad(human(bytes), 11) + cell(ours, busAllReduce) + (!hasAnchor ? pad("-", 22) : cell(anchor, busAllReduce))
                      + pad(ours.isFinite ? ratio.map(fmt3) ?? "-" : "-", 7) + cell(scatter, busOther) + cell(gather, busOther))
            }
            fflush(nil)   // all streams: lines reach mpirun as they are measured
        }

        /// One call of each collective on rank-dependent values, checked against the known result;
        /// leaves both buffers zero.
        func check(_ group: any ProcessGroup, full: Tensor, part: Tensor) throws -> Bool {
            let (rank, w) = (group.rank, group.size)
            let sum = Double(w * (w + 1) / 2)
            func expect(_ what: String, _ t: Tensor, _ index: Int, _ want: Double) throws {
                let got = t.slice(axis: 0, index..<(index + 1)).item()
                guard got == want else {
                    throw CommError(rank: rank, operation: what, message: "element \(index) is \(got), expected \(want)")
                }
            }
            full.fill(Double(rank + 1))
            try group.allReduce(full, op: .sum)
            try expect("allReduce", full, full.count - 1, sum)
            full.fill(Double(rank + 1))
            let hasAnchor = try ProcessGroups.transportAllReduce(full, in: group)
            if hasAnchor { try expect("MPI_Allreduce", full, 0, sum) }
            full.fill(Double(rank + 1))
            try group.reduceScatter(full, into: part, op: .sum)
            try expect("reduceScatter", part, part.count - 1, sum)
            part.fill(Double(rank))
            try group.allGather(part, into: full)
            try expect("allGather", full, (w - 1) * part.count, Double(w - 1))
            full.fill(0)
            part.fill(0)
            return hasAnchor
        }
    }
}

/// `x` with 3 decimals (bandwidths below 1 GB/s need them).
func fmt3(_ x: Double) -> String { "\((x * 1000).rounded() / 1000)" }

/// `n` bytes as "1 KiB", "4 MiB", … (or plain bytes).
private func human(_ n: Int) -> String {
    for (unit, size) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] where n >= size && n % size == 0 {
        return "\(n / size) \(unit)"
    }
    return "\(n) B"
}

/// `s` padded with spaces to `width` characters.
private func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count) }
