// Datasets, the distributed sampler (PyTorch's padding and striding), the loader, and text corpora.
import Foundation
import SpeedCore
@testable import SpeedData
import Testing

@Suite struct DataTests {
    @Test func distributedSamplerPadsAndStridesLikePyTorch() {
        // 10 samples on 4 ranks: padded to 12 by repeating the head, rank r takes r, r+4, r+8.
        let ranks = (0..<4).map { DistributedSampler(count: 10, rank: $0, worldSize: 4, shuffle: false).indices(epoch: 0) }
        #expect(ranks == [[0, 4, 8], [1, 5, 9], [2, 6, 0], [3, 7, 1]])
        let dropped = (0..<4).map { DistributedSampler(count: 10, rank: $0, worldSize: 4, shuffle: false, dropLast: true).indices(epoch: 0) }
        #expect(dropped == [[0, 4], [1, 5], [2, 6], [3, 7]])
    }

    @Test func shuffledRanksCoverEveryIndexOnceAndDependOnlyOnSeedAndEpoch() {
        let a = (0..<3).map { DistributedSampler(count: 30, rank: $0, worldSize: 3, seed: 5).indices(epoch: 2) }
        #expect(Set(a.flatMap { $0 }) == Set(0..<30))
        #expect(a.flatMap { $0 }.count == 30)
        let again = DistributedSampler(count: 30, rank: 1, worldSize: 3, seed: 5).indices(epoch: 2)
        #expect(again == a[1])
        #expect(DistributedSampler(count: 30, rank: 1, worldSize: 3, seed: 5).indices(epoch: 3) != a[1])
        #expect(DistributedSampler(count: 30, rank: 1, worldSize: 3, seed: 6).indices(epoch: 2) != a[1])
        #expect(DistributedSampler(count: 30, seed: 5).indices(epoch: 2) != Array(0..<30))
    }

    @Test func loaderStacksSamplesAndHonoursDropLast() {
        let x = Tensor((0..<20).map { Float($0) }, shape: [10, 2])
        let y = Tensor((0..<10).map { Float($0) }, shape: [10])
        let loader = DataLoader(TensorDataset(x, y), batchSize: 4)
        let batches = Array(loader)
        #expect(batches.count == 3)
        #expect(batches[0][0].shape == [4, 2] && batches[0][1].shape == [4])
        #expect(batches[2][0].shape == [2, 2])
        #expect(batches[1][1].scalars == [4, 5, 6, 7])
        #expect(batches[1][0].scalars == [8, 9, 10, 11, 12, 13, 14, 15])
        let dropping = DataLoader(TensorDataset(x, y), batchSize: 4, dropLast: true)
        #expect(Array(dropping).count == 2)
        #expect(dropping.batchesPerEpoch == 2)
    }

    @Test func tokenWindowsAreNextTokenPairs() {
        let ds = TokenWindowDataset(tokens: (0..<10).map { Int32($0) }, contextLength: 4)
        #expect(ds.count == 2)
        let s = ds.sample(1)
        #expect(s[0].scalars(as: Int32.self) == [4, 5, 6, 7])
        #expect(s[1].scalars(as: Int32.self) == [5, 6, 7, 8])
    }

    @Test func byteTokenizerRoundTripsUTF8() {
        let tok = ByteTokenizer()
        let text = "Où est la bibliothèque? 💡"
        #expect(tok.decode(tok.encode(text)) == text)
        #expect(tok.encode("A") == [65])
    }

    @Test func fortuneFilesAreSplitOnPercentLines() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fortunes-\(UInt32.random(in: 0...UInt32.max))").path
        try "First.\n%\nSecond\nline.\n%\nThird.\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try TextCorpus.load(path) == "First.\n\nSecond\nline.\n\nThird.\n")
        #expect(throws: CorpusError.self) { try TextCorpus.load(path + ".missing") }
    }
}
