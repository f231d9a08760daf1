// The kernels' CUDA C files as the bytes SwiftPM embedded; a target of its own so the large generated array
// literals compile once, not with every SpeedCUDA change. Invariant: each value is its file's exact bytes.

/// The embedded `.cu` files by kernel family, and the shared `common.cuh` (SpeedCUDA's `CUDAKernelSource`
/// assembles NVRTC programs from them).
package enum CUDAKernelFiles {
    package static var common: [UInt8] { PackageResources.common_cuh }
    package static var families: [(name: String, bytes: [UInt8])] {
        [("memory", PackageResources.memory_cu), ("elementwise", PackageResources.elementwise_cu),
         ("reduce", PackageResources.reduce_cu), ("nn", PackageResources.nn_cu),
         ("attention", PackageResources.attention_cu), ("flash", PackageResources.flash_cu),
         ("optim", PackageResources.optim_cu)]
    }
}
