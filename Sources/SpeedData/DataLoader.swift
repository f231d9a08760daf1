// Batching with a seeded shuffle and a distributed sampler: rank r of W sees every W-th index.
// Invariant: the index order depends only on (seed, epoch, count, W) — never on time or threads —
// so every rank agrees on the global order and a resumed run replays the same batches.

import SpeedCore

/// Which dataset indices one rank reads in an epoch, like `torch.utils.data.DistributedSampler`.
///
/// The (optionally shuffled) index list is padded by repeating its head to a multiple of
/// `worldSize` (or truncated when `dropLast`), then rank `r` takes positions `r, r+W, r+2W, …`.
public struct DistributedSampler: Sendable, Hashable, Codable {
    public var count: Int
    public var rank: Int
    public var worldSize: Int
    public var shuffle: Bool
    public var seed: UInt64
    public var dropLast: Bool

    public init(count: Int, rank: Int = 0, worldSize: Int = 1, shuffle: Bool = true, seed: UInt64 = 0,
                dropLast: Bool = false) {
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize, "DistributedSampler: rank \(rank) is not in 0..<\(worldSize)")
        self.count = count; self.rank = rank; self.worldSize = worldSize
        self.shuffle = shuffle; self.seed = seed; self.dropLast = dropLast
    }

    /// Samples per rank per epoch.
    public var samplesPerRank: Int {
        dropLast ? count / worldSize : (count + worldSize - 1) / worldSize
    }

    /// This rank's indices for `epoch`.
    public func indices(epoch: Int) -> [Int] {
        var order = Array(0..<count)
        if shuffle { Self.shuffle(&order, seed: seed, epoch: epoch) }
        let total = samplesPerRank * worldSize
        if total > order.count, !order.isEmpty {
            let pad = total - order.count
            order += (0..<pad).map { order[$0 % order.count] }
        } else {
            order = Array(order.prefix(total))
        }
        return Swift.stride(from: rank, to: total, by: worldSize).map { order[$0] }
    }

    /// Fisher–Yates with the counter-based stream keyed by (seed, epoch).
    static func shuffle(_ a: inout [Int], seed: UInt64, epoch: Int) {
        guard a.count > 1 else { return }
        let key = RandomStream.bits(seed: seed, counter: UInt64(epoch))
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            let j = Int(RandomStream.bits(seed: key, counter: UInt64(i)) % UInt64(i + 1))
            a.swapAt(i, j)
        }
    }
}

/// Yields batches (each sample's tensors stacked along a new first axis).
///
/// ```swift
/// let loader = DataLoader(TensorDataset(x, y), batchSize: 16, shuffle: true, seed: 0)
/// for epoch in 0..<3 {
///     loader.epoch = epoch
///     for batch in loader { let (input, target) = (batch[0], batch[1]) }
/// }
/// ```
public final class DataLoader: Sequence {
    public let dataset: any Dataset
    public let batchSize: Int
    public let dropLast: Bool
    public var sampler: DistributedSampler
    /// The epoch whose order the next iteration uses (set it before each epoch).
    public var epoch = 0
    /// Device the batches are created on.
    public let device: Device

    public init(_ dataset: any Dataset, batchSize: Int, shuffle: Bool = false, seed: UInt64 = 0,
                dropLast: Bool = false, rank: Int = 0, worldSize: Int = 1, device: Device = .cpu) {
        precondition(batchSize > 0, "DataLoader: batchSize must be > 0, got \(batchSize)")
        self.dataset = dataset
        self.batchSize = batchSize
        self.dropLast = dropLast
        self.device = device
        self.sampler = DistributedSampler(count: dataset.count, rank: rank, worldSize: worldSize, shuffle: shuffle,
                                          seed: seed, dropLast: false)
    }

    /// Batches per epoch on this rank.
    public var batchesPerEpoch: Int {
        let n = sampler.samplesPerRank
        return dropLast ? n / batchSize : (n + batchSize - 1) / batchSize
    }

    /// Batch `index` of `epoch` (random access, so a resumed run can start mid-epoch).
    public func batch(_ index: Int, epoch: Int) -> [Tensor] {
        precondition(index >= 0 && index < batchesPerEpoch, "DataLoader: batch \(index) is out of range (\(batchesPerEpoch) per epoch)")
        let order = sampler.indices(epoch: epoch)
        let picked = order[(index * batchSize)..<Swift.min(order.count, (index + 1) * batchSize)]
        let samples = picked.map { dataset.sample($0) }
        return (0..<samples[0].count).map { k in
            noGrad { Tensor.stack(samples.map { $0[k] }) }.to(device)
        }
    }

    public func makeIterator() -> AnyIterator<[Tensor]> {
        let epoch = self.epoch, n = batchesPerEpoch
        var i = 0
        return AnyIterator { [self] in
            guard i < n else { return nil }
            defer { i += 1 }
            return batch(i, epoch: epoch)
        }
    }
}
