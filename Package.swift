// swift-tools-version: 6.0
// SwiftSpeed: DeepSpeed's training runtime in Swift. One target per layer; arrows point down only.
import PackageDescription

let package = Package(
    name: "SwiftSpeed",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SwiftSpeed", targets: ["SwiftSpeed"]),
        .executable(name: "swiftspeed", targets: ["swiftspeed"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
    ],
    targets: [
        // C declarations for the libraries we link (OpenBLAS today; MPI, CUDA via dlopen later).
        .target(name: "CSpeedShims", linkerSettings: [.linkedLibrary("openblas")]),
        // C wrappers over OpenMPI (mpi.h is needed only to compile this target; Debian's libopenmpi-dev).
        .target(
            name: "CSpeedMPI",
            cSettings: [.unsafeFlags(["-I/usr/lib/x86_64-linux-gnu/openmpi/include",
                                      "-I/usr/lib/x86_64-linux-gnu/openmpi/include/openmpi"])],
            linkerSettings: [.unsafeFlags(["-L/usr/lib/x86_64-linux-gnu/openmpi/lib"]), .linkedLibrary("mpi")]),
        // Our own declarations of the CUDA driver API, NVRTC, cuBLASLt and NCCL, and their dlopen loader (no CUDA
        // headers or libraries at build time: the same binary runs with and without a GPU).
        .target(name: "CSpeedCUDA", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
        // Tensor, DType, Device, autograd, the op set, the Backend protocol and the CPU backend.
        .target(
            name: "SpeedCore",
            dependencies: ["CSpeedShims", .product(name: "Numerics", package: "swift-numerics")]),
        // Module, layers, losses, reference models (SimpleModel, GPT).
        .target(name: "SpeedNN", dependencies: ["SpeedCore"]),
        // Optimizers (pure math over flat buffers) and LR schedules.
        .target(name: "SpeedOptim", dependencies: ["SpeedCore"]),
        // The CUDA layer: library loading, device enumeration, NVRTC + on-disk kernel cache, caching allocator.
        .target(
            name: "SpeedCUDA", dependencies: ["SpeedCore", "CSpeedCUDA"],
            // The kernels' CUDA C, compiled into the binary as byte arrays (PackageResources.<file>_cu).
            resources: [.embedInCode("Kernels/common.cuh"), .embedInCode("Kernels/memory.cu"),
                        .embedInCode("Kernels/elementwise.cu"), .embedInCode("Kernels/reduce.cu"),
                        .embedInCode("Kernels/nn.cu"), .embedInCode("Kernels/attention.cu"),
                        .embedInCode("Kernels/flash.cu"), .embedInCode("Kernels/optim.cu")]),
        // Process groups: the collectives protocol, a single-process group, MPI (CPU) and NCCL (GPU).
        .target(name: "SpeedComm", dependencies: ["SpeedCore", "CSpeedMPI", "SpeedCUDA", "CSpeedCUDA"]),
        // DeepSpeed's runtime: ds_config.json, the engine, precision, checkpoints, monitors, data.
        .target(
            name: "SpeedRuntime",
            dependencies: ["SpeedCore", "SpeedNN", "SpeedOptim", "SpeedComm", .product(name: "Logging", package: "swift-log")]),
        // Umbrella: re-exports only.
        .target(name: "SwiftSpeed", dependencies: ["SpeedCore", "SpeedNN", "SpeedOptim", "SpeedComm", "SpeedRuntime", "SpeedCUDA"]),
        .executableTarget(
            name: "swiftspeed",
            dependencies: [
                "SwiftSpeed",
                "CSpeedShims",   // openblas_get_config, for `swiftspeed report`
                "CSpeedMPI",     // ss_mpi_library_version, for `swiftspeed report`
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The seed programs, in Swift (see Examples/*/ds_config.json).
        .executableTarget(name: "SimpleModelExample", dependencies: ["SwiftSpeed"], path: "Examples/SimpleModel",
                          exclude: ["ds_config.json"]),
        .executableTarget(name: "LinearClientOptimizerExample", dependencies: ["SwiftSpeed"],
                          path: "Examples/LinearClientOptimizer", exclude: ["ds_config.json"]),
        .testTarget(name: "SpeedCoreTests", dependencies: ["SpeedCore"]),
        .testTarget(name: "SpeedNNTests", dependencies: ["SpeedNN"]),
        // Runs `swiftspeed comm-check` under mpirun (the dependency makes sure the binary is built).
        .testTarget(name: "SpeedCommTests", dependencies: ["SpeedComm", "swiftspeed"]),
        // Runs without a GPU: loader errors, NVRTC (when a libnvrtc is found), the kernel cache, the allocator.
        .testTarget(name: "SpeedCUDATests", dependencies: ["SpeedCUDA"]),
        .testTarget(name: "SpeedOptimTests", dependencies: ["SpeedOptim"], exclude: ["Fixtures"]),
        .testTarget(name: "SpeedRuntimeTests", dependencies: ["SpeedRuntime"], exclude: ["Fixtures"]),
        // Runs the built `swiftspeed` binary end to end (the dependency makes sure it is built); reads
        // its outputs with SpeedRuntime (safetensors).
        .testTarget(name: "SwiftSpeedCLITests", dependencies: ["swiftspeed", "SpeedRuntime"]),
    ],
    swiftLanguageModes: [.v6]
)
