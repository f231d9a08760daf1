// Datasets: indexable collections of samples, each sample a list of tensors (inputs, targets, …).
// Invariant: a sample's tensors have the same shape for every index, so batches stack without padding.

import SpeedCore

/// A map-style dataset, like `torch.utils.data.Dataset`.
public protocol Dataset {
    var count: Int { get }
    /// Sample `index`: e.g. `[input, target]`.
    func sample(_ index: Int) -> [Tensor]
}

/// Rows of existing tensors, like `TensorDataset` (every tensor's first axis is the sample axis).
///
/// ```swift
/// let ds = TensorDataset(data, labels)    // data [100, 768], labels [100, 768]
/// ds.sample(3)                            // [data[3], labels[3]]
/// ```
public struct TensorDataset: Dataset {
    public let tensors: [Tensor]

    public init(_ tensors: Tensor...) { self.init(tensors) }

    public init(_ tensors: [Tensor]) {
        precondition(!tensors.isEmpty, "TensorDataset: needs at least one tensor")
        let n = tensors[0].shape.first ?? 0
        for t in tensors {
            precondition(t.shape.first == n, "TensorDataset: first dimensions differ (\(tensors.map { $0.shape }))")
        }
        self.tensors = tensors
    }

    public var count: Int { tensors[0].shape.first ?? 0 }
    public func sample(_ index: Int) -> [Tensor] { noGrad { tensors.map { $0[index] } } }
}

/// Next-token language-modelling windows over a token stream: sample `i` is
/// `(tokens[i·stride ..< i·stride + T], tokens[i·stride + 1 ..< i·stride + T + 1])`.
public struct TokenWindowDataset: Dataset {
    public let tokens: [Int32]
    public let contextLength: Int
    public let stride: Int

    /// - Parameter stride: distance between window starts (default: `contextLength`, no overlap).
    public init(tokens: [Int32], contextLength: Int, stride: Int? = nil) {
        precondition(tokens.count > contextLength, "TokenWindowDataset: \(tokens.count) tokens cannot fill one window of \(contextLength) + 1")
        self.tokens = tokens
        self.contextLength = contextLength
        self.stride = stride ?? contextLength
    }

    public var count: Int { (tokens.count - contextLength - 1) / stride + 1 }

    public func sample(_ index: Int) -> [Tensor] {
        let start = index * stride
        let ids = Array(tokens[start..<(start + contextLength)])
        let next = Array(tokens[(start + 1)...(start + contextLength)])
        return [Tensor(ids, shape: [contextLength]), Tensor(next, shape: [contextLength])]
    }
}
