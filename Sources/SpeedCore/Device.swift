// Where a tensor's memory lives: a Device is a backend instance; Storage is one allocation on it.
// Invariant: a Storage is freed by the backend that allocated it, exactly once, when ARC drops the last view.

/// A compute device. It carries its backend, so tensors created on it find their kernels
/// without any global registry.
///
/// ```swift
/// let x = Tensor.ones([4], device: .cpu)
/// let fast = Device.cpu(threads: 2)
/// ```
public struct Device: Sendable, Hashable, CustomStringConvertible {
    public let backend: any Backend
    /// "cpu" or "cuda".
    public let kind: String
    public let ordinal: Int

    public init(backend: any Backend, kind: String, ordinal: Int = 0) {
        self.backend = backend
        self.kind = kind
        self.ordinal = ordinal
    }

    /// The process-wide CPU device using every core.
    public static let cpu = Device(backend: CPUBackend(), kind: "cpu")

    /// A CPU device with its own thread count (benchmarks, one thread per MPI rank).
    public static func cpu(threads: Int) -> Device {
        Device(backend: CPUBackend(threads: threads), kind: "cpu")
    }

    public var isCPU: Bool { kind == "cpu" }

    public var description: String { kind == "cpu" ? "cpu" : "\(kind):\(ordinal)" }

    /// Devices compare by kind and ordinal: two CPU devices with different thread counts hold
    /// interchangeable memory, and an op runs on its first operand's backend.
    public static func == (lhs: Device, rhs: Device) -> Bool { lhs.kind == rhs.kind && lhs.ordinal == rhs.ordinal }
    public func hash(into h: inout Hasher) { h.combine(kind); h.combine(ordinal) }
}

/// One allocation on a device, shared by every view of it.
public final class Storage: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    public let byteCount: Int
    public let device: Device

    public init(byteCount: Int, device: Device) {
        self.byteCount = byteCount
        self.device = device
        self.pointer = device.backend.allocate(byteCount: max(byteCount, 1))
    }

    deinit { device.backend.deallocate(pointer, byteCount: max(byteCount, 1)) }
}
