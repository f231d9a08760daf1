// The n-dimensional array with reverse-mode autograd: storage + offset + shape + dtype, always contiguous.
// Invariant: elements are the `count` consecutive elements of `storage` starting at `offset`; views
// (reshape, outer-axis slices) share storage, every other op writes a new contiguous tensor.

/// An n-dimensional array on a device, with reference semantics (as in PyTorch).
///
/// ```swift
/// let x = Tensor([[1, 2], [3, 4]] as [[Float]], requiresGrad: true)
/// let y = (x * x).sum()
/// y.backward()
/// x.grad!.scalars   // [2, 4, 6, 8]
/// ```
public final class Tensor {
    /// The allocation this tensor views. `package` settable so the runtime can rebind parameters
    /// into flat buffers without changing their identity.
    public package(set) var storage: Storage
    /// Element offset into `storage`.
    public package(set) var offset: Int
    /// `package` settable so tensor parallelism can shard a parameter in place (``adopt(_:)``), keeping its identity.
    public package(set) var shape: [Int]
    /// `package` settable so the runtime can convert parameters to bf16/fp16 in place.
    public package(set) var dtype: DType

    /// Whether operations on this tensor are recorded for `backward()`.
    public var requiresGrad: Bool
    /// The accumulated gradient of a leaf after `backward()`.
    public var grad: Tensor?
    /// The node that produced this tensor (nil for leaves and for tensors made under `noGrad`).
    package var gradFn: GradNode?
    /// Called once per `backward()` when this leaf's gradient is final (ZeRO starts reducing it).
    public var onGradReady: ((Tensor) -> Void)?

    /// Wraps existing storage (no copy).
    public init(storage: Storage, offset: Int = 0, shape: [Int], dtype: DType, requiresGrad: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        precondition((offset + Shape.count(shape)) * dtype.byteSize <= storage.byteCount,
                     "Tensor: shape \(shape) at offset \(offset) exceeds its storage of \(storage.byteCount) bytes")
        self.storage = storage
        self.offset = offset
        self.shape = shape
        self.dtype = dtype
        self.requiresGrad = requiresGrad
    }

    /// Allocates an uninitialised tensor.
    public convenience init(empty shape: [Int], dtype: DType = .float32, device: Device = .cpu) {
        let storage = Storage(byteCount: Shape.count(shape) * dtype.byteSize, device: device)
        self.init(storage: storage, shape: shape, dtype: dtype)
    }

    public var device: Device { storage.device }
    package var backend: any Backend { storage.device.backend }
    public var rank: Int { shape.count }
    public var count: Int { Shape.count(shape) }
    public var byteCount: Int { count * dtype.byteSize }
    public var isLeaf: Bool { gradFn == nil }

    /// Size of `axis` (negative counts from the end).
    public func size(_ axis: Int) -> Int { shape[Shape.axis(axis, rank: rank, op: "size")] }

    /// Pointer to the first element (CPU only).
    public var rawPointer: UnsafeMutableRawPointer {
        precondition(device.isCPU, "rawPointer: tensor lives on \(device); copy it to the CPU first")
        precondition((offset + count) * dtype.byteSize <= storage.byteCount,
                     "rawPointer: this \(shape) tensor's data is not resident (a ZeRO-3 partitioned parameter used outside its module's forward/backward); gather it with Engine.withGatheredParameters")
        return storage.pointer + offset * dtype.byteSize
    }

    /// Typed pointer to the first element (CPU only).
    public func pointer<T>(as type: T.Type) -> UnsafeMutablePointer<T> {
        precondition(MemoryLayout<T>.size == dtype.byteSize,
                     "pointer(as: \(T.self)): tensor dtype is \(dtype)")
        return rawPointer.assumingMemoryBound(to: T.self)
    }

    /// A view of the same elements with another shape (no copy, no gradient tracking of its own
    /// beyond what `reshape` records).
    package func view(_ newShape: [Int], offset extra: Int = 0) -> Tensor {
        Tensor(storage: storage, offset: offset + extra, shape: newShape, dtype: dtype)
    }

    /// A new tensor of `shape` on the same device.
    package func new(_ shape: [Int], dtype: DType? = nil) -> Tensor {
        Tensor(empty: shape, dtype: dtype ?? self.dtype, device: device)
    }

    /// Points this tensor at another storage (contents are not copied). Used by the runtime to
    /// move parameters into flat buffers while keeping their identity.
    package func rebind(storage: Storage, offset: Int, dtype: DType? = nil) {
        let dtype = dtype ?? self.dtype
        precondition((offset + count) * dtype.byteSize <= storage.byteCount,
                     "rebind: \(shape) at offset \(offset) exceeds storage of \(storage.byteCount) bytes")
        self.storage = storage
        self.offset = offset
        self.dtype = dtype
    }

    /// Makes this tensor view `other`'s data — storage, offset, shape and dtype — keeping its own identity,
    /// `requiresGrad` and hooks (tensor parallelism replaces a parameter by its shard this way, before training).
    package func adopt(_ other: Tensor) {
        precondition(grad == nil && gradFn == nil, "adopt: \(shape) tensor has a gradient or history; shard parameters before training")
        storage = other.storage
        offset = other.offset
        shape = other.shape
        dtype = other.dtype
    }

    /// Drops this tensor's data, keeping shape and identity (ZeRO-3's released parameter): it points
    /// at `placeholder`, an allocation too small for it, so any read fails in ``rawPointer``.
    package func release(to placeholder: Storage) {
        precondition(placeholder.byteCount < byteCount || count == 0, "release: the placeholder must be smaller than the tensor")
        storage = placeholder
        offset = 0
    }
}
