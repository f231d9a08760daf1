// A conformance check every process-group engine passes: each collective on rank-dependent inputs.
// Invariant: each rank's inputs are a function of its rank, so every expected result is computable locally.

import SpeedCore

extension ProcessGroup {
    /// Runs every collective on rank-dependent values and checks each result on every rank — an engine's
    /// conformance check (the in-process, MPI and NCCL groups pass it; `swiftspeed comm-check` runs it under a
    /// launcher). Collective: every rank calls it. Throws a ``CommError`` naming the first wrong collective.
    ///
    /// ```swift
    /// try LocalProcessGroup.run(size: 4) { try $0.verifyCollectives() }
    /// ```
    public func verifyCollectives(on dev: Device = .cpu) throws {
        let (g, r, w) = (self, rank, size)
        func T(_ values: [Float], dtype: DType = .float32) -> Tensor { Tensor(values, dtype: dtype).to(dev) }
        func Z(_ shape: [Int]) -> Tensor { Tensor.zeros(shape, device: dev) }
        func expect(_ what: String, _ got: [Float], _ want: [Float]) throws {
            guard got == want else {
                throw CommError(rank: r, operation: what, message: "got \(got.prefix(8)), expected \(want.prefix(8))")
            }
        }
        let n = 5
        let mine: [Float] = (0..<n).map { Float(r * 10 + $0) }
        let rankSum = w * (w - 1) / 2
        let sums: [Float] = (0..<n).map { i in Float(rankSum * 10 + w * i) }
        let maxima: [Float] = (0..<n).map { Float((w - 1) * 10 + $0) }
        // allReduce sum / avg / max, fp32 and bf16.
        let s = T(mine)
        try g.allReduce(s, op: .sum)
        try expect("allReduce sum", s.scalars, sums)
        let m = T(mine)
        try g.allReduce(m, op: .max)
        try expect("allReduce max", m.scalars, maxima)
        let avg = T(mine)
        try g.allReduce(avg, op: .avg)
        try expect("allReduce avg", avg.scalars, sums.map { $0 / Float(w) })
        let half = T(mine, dtype: .bfloat16)
        try g.allReduce(half, op: .sum)
        try expect("allReduce bf16", half.scalars, sums)
        // reduceScatter: every rank sends [0, 1, …, w·n) + rank; rank r gets block r summed.
        let input = T((0..<(w * n)).map { Float($0 + r) })
        let block = Z([n])
        try g.reduceScatter(input, into: block, op: .sum)
        let scattered: [Float] = (0..<n).map { i in Float(w * (r * n + i) + rankSum) }
        try expect("reduceScatter", block.scalars, scattered)
        // allGather: rank order.
        let gathered = Z([w * n])
        try g.allGather(T(mine), into: gathered)
        let all: [Float] = (0..<(w * n)).map { Float(($0 / n) * 10 + $0 % n) }
        try expect("allGather", gathered.scalars, all)
        // Uneven blocks (rank r owns r + 1 elements), as ZeRO's gradient buckets and stage-3 gathers use.
        let counts = (0..<w).map { $0 + 1 }
        let total = counts.reduce(0, +)
        let unevenIn = T((0..<total).map { Float($0 * (r + 1)) })
        let unevenOut = Z([r + 1])
        try g.reduceScatter(unevenIn, into: unevenOut, counts: counts, op: .sum)
        let before = counts[..<r].reduce(0, +)
        try expect("reduceScatter uneven", unevenOut.scalars, (0..<(r + 1)).map { Float((before + $0) * (w * (w + 1) / 2)) })
        let unevenAll = Z([total])
        unevenAll.slice(axis: 0, before..<(before + r + 1)).copyData(from: T((0..<(r + 1)).map { _ in Float(r) }))
        try g.allGather(unevenAll.slice(axis: 0, before..<(before + r + 1)), into: unevenAll, counts: counts)
        try expect("allGather uneven in place", unevenAll.scalars, (0..<w).flatMap { q in (0...q).map { _ in Float(q) } })
        // A companion group (ZeRO-3's prefetch thread) runs its own collectives.
        if let companion = try g.makeCompanion() {
            let c = T(mine)
            try companion.allReduce(c, op: .sum)
            try expect("companion allReduce", c.scalars, sums)
        }
        // broadcast from the last rank.
        let b = T(mine)
        try g.broadcast(b, root: w - 1)
        try expect("broadcast", b.scalars, maxima)
        // A ring of send/receive.
        if w > 1 {
            let incoming = Z([n])
            if r % 2 == 0 {
                try g.send(T(mine), to: (r + 1) % w, tag: 7)
                try g.receive(incoming, from: (r + w - 1) % w, tag: 7)
            } else {
                try g.receive(incoming, from: (r + w - 1) % w, tag: 7)
                try g.send(T(mine), to: (r + 1) % w, tag: 7)
            }
            let previous: [Float] = (0..<n).map { Float(((r + w - 1) % w) * 10 + $0) }
            try expect("send/receive", incoming.scalars, previous)
        }
        // Subgroups: even and odd ranks, ordered by descending rank (key), each reducing on its own.
        let parity = try g.split(color: r % 2, key: -r)
        let members = (0..<w).filter { $0 % 2 == r % 2 }
        guard parity.size == members.count, parity.rank == members.count - 1 - members.firstIndex(of: r)! else {
            throw CommError(rank: r, operation: "split", message: "got rank \(parity.rank) of \(parity.size); expected rank \(members.count - 1 - members.firstIndex(of: r)!) of \(members.count)")
        }
        let p = T([Float(r)])
        try parity.allReduce(p, op: .sum)
        try expect("allReduce in a split group", p.scalars, [Float(members.reduce(0, +))])
        try g.barrier()
    }
}
