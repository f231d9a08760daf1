// Kernel arguments as cuLaunchKernel reads them, the strided-iteration indexer, and the launch shapes of
// docs/SpeedCUDA-kernels.md.
// Invariant: every argument starts on its own 8-byte word, so the pointer handed to the driver for it is aligned
// for any C scalar type and for SSIndexer (33 × int64).

import SpeedCore

/// One kernel parameter, by the C type the kernel declares.
enum KernelArgument {
    /// A device pointer (`T*`, `const T*`, `void*`); 0 is `nullptr`.
    case pointer(UInt64)
    case i64(Int64)
    case u64(UInt64)
    case u32(UInt32)
    case u16(UInt16)
    case i32(Int32)
    case f32(Float)
    case f64(Double)
    /// `SSIndexer` by value.
    case indexer(Indexer)

    static func int(_ v: Int) -> KernelArgument { .i64(Int64(v)) }
    static func flag(_ v: Bool) -> KernelArgument { .i32(v ? 1 : 0) }

    func append(to words: inout [UInt64]) {
        switch self {
        case .pointer(let v), .u64(let v): words.append(v)
        case .i64(let v): words.append(UInt64(bitPattern: v))
        case .u32(let v): words.append(UInt64(v))
        case .u16(let v): words.append(UInt64(v))
        case .i32(let v): words.append(UInt64(UInt32(bitPattern: v)))
        case .f32(let v): words.append(UInt64(v.bitPattern))
        case .f64(let v): words.append(v.bitPattern)
        case .indexer(let ix): ix.append(to: &words)
        }
    }
}

/// The kernels' `SSIndexer`: a strided (or broadcast) iteration space of rank ≤ 8, collapsed the way the CPU
/// backend collapses its loops over every layout given; the kernel receives the first three layouts' strides.
struct Indexer {
    static let maxRank = 8
    var shape: [Int]
    var strides: [[Int]]

    /// The rank after collapsing (may exceed ``maxRank``).
    static func collapsedRank(_ full: [Int], _ layouts: [[Int]]) -> Int {
        Self.collapse(full, layouts).0.count
    }

    /// The CPU backend's own collapse, so both backends walk the same iteration space.
    static func collapse(_ full: [Int], _ layouts: [[Int]]) -> ([Int], [[Int]]) {
        StridedRows.collapse(full, layouts)
    }

    /// Drops size-1 axes and merges axes contiguous in every layout; stops with a message above rank 8.
    init(shape full: [Int], strides layouts: [[Int]], op: String) {
        let (s, st) = Self.collapse(full, layouts)
        precondition(s.count <= Self.maxRank,
                     "\(op) on the GPU: the layout \(full) has \(s.count) non-mergeable axes; at most \(Self.maxRank) are supported (make the tensor contiguous first)")
        shape = s
        strides = st
    }

    func append(to words: inout [UInt64]) {
        words.append(UInt64(shape.count))
        for d in 0..<Self.maxRank { words.append(UInt64(bitPattern: Int64(d < shape.count ? shape[d] : 1))) }
        for j in 0..<3 {
            for d in 0..<Self.maxRank {
                let v = j < strides.count && d < shape.count ? strides[j][d] : 0
                words.append(UInt64(bitPattern: Int64(v)))
            }
        }
    }
}

extension CUDABackend {
    /// Flat launch: 256 threads, about 4 elements per thread per pass, at most 16 blocks per SM (grid-stride).
    func flatGrid(_ n: Int) -> (Int, Int) {
        (max(1, min((n + 1023) / 1024, 16 * info.multiprocessorCount)), 1)
    }

    /// Row-block launch: one block per row (grid-stride over rows), threads a multiple of 32 up to 1024.
    func rowBlock(rows: Int, n: Int) -> (grid: (Int, Int), block: (Int, Int)) {
        let threads = min(1024, max(32, ((n + 3) / 4 + 31) / 32 * 32))
        return ((max(1, min(rows, 65535)), 1), (threads, 1))
    }

    /// Warp-row launch: one warp per row, 8 rows per 256-thread block.
    func warpRows(_ rows: Int) -> (Int, Int) {
        (max(1, min((rows + 7) / 8, 65535)), 1)
    }

    /// The kernels' dtype suffix.
    static func suffix(_ d: DType) -> String {
        switch d {
        case .float32: "f32"
        case .float64: "f64"
        case .bfloat16: "bf16"
        case .float16: "f16"
        case .int32: "i32"
        case .int64: "i64"
        }
    }

    /// Stops with a message unless `dtype` is a float type these kernels implement.
    static func requireFloat(_ d: DType, _ op: String) {
        precondition(d.isFloatingPoint, "\(op) on the GPU: integer tensors are not supported (dtype \(d))")
    }
}
