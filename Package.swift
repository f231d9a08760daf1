// swift-tools-version: 6.0
// SwiftSpeed: DeepSpeed's training runtime in Swift. One target per layer; arrows point down only.
// Invariant: no unsafeFlags and no machine paths (SwiftPM refuses unsafeFlags in a versioned dependency): OpenBLAS and
// OpenMPI are system libraries found through pkg-config. scripts/check-dependency.sh builds a package that depends on
// this one by URL and version.
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
        // OpenBLAS's own cblas.h (CBLAS_ORDER / CBLAS_TRANSPOSE enums, openblas_set_num_threads, openblas_get_config)
        // as a Clang module; include and library paths come from pkg-config's openblas.pc.
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"]), .brew(["openblas"])]),
        // OpenMPI's mpi.h as a Clang module; include and library paths come from pkg-config's ompi-c.pc (they
        // reach CSpeedMPI's C compile too).
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"]), .brew(["open-mpi"])]),
        // The C kernels that need an instruction set chosen at run time (F16C, AVX2: fp32 -> fp16/bf16 copies).
        .target(name: "CSpeedShims"),
        // Plain-C wrappers over MPI (its handles are macros Swift cannot import); compiled against CMPI's mpi.h.
        .target(name: "CSpeedMPI", dependencies: ["CMPI"]),
        // Our own declarations of the CUDA driver API, NVRTC, cuBLASLt and NCCL, and their dlopen loader (no CUDA
        // headers or libraries at build time: the same binary runs with and without a GPU).
        .target(name: "CSpeedCUDA", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
        // Tensor, DType, Device, autograd, the op set, the Backend protocol and the CPU backend.
        .target(
            name: "SpeedCore",
            dependencies: ["COpenBLAS", "CSpeedShims", .product(name: "Numerics", package: "swift-numerics")]),
        // Module, layers, losses, reference models (SimpleModel, GPT).
        .target(name: "SpeedNN", dependencies: ["SpeedCore"]),
        // Optimizers (pure math over flat buffers) and LR schedules.
        .target(name: "SpeedOptim", dependencies: ["SpeedCore"]),
        // The CUDA layer: library loading, device enumeration, NVRTC + on-disk kernel cache, caching allocator.
        .target(name: "SpeedCUDA", dependencies: ["SpeedCore", "CSpeedCUDA", "SpeedCUDAKernels"]),
        // The kernels' CUDA C (Kernels/*.cu, common.cuh), compiled into the binary as byte arrays; its own target so
        // the 380 KB of generated array literals are not re-type-checked with every SpeedCUDA change.
        .target(
            name: "SpeedCUDAKernels",
            resources: [.embedInCode("common.cuh"), .embedInCode("memory.cu"), .embedInCode("elementwise.cu"),
                        .embedInCode("reduce.cu"), .embedInCode("nn.cu"), .embedInCode("attention.cu"),
                        .embedInCode("flash.cu"), .embedInCode("optim.cu")]),
        // Process groups: the collectives protocol, the one-process group and the in-process W-rank test double.
        .target(name: "SpeedComm", dependencies: ["SpeedCore"]),
        // The MPI engine (CPU tensors; GPU tensors staged through host memory) and the launcher's factory.
        .target(name: "SpeedCommMPI", dependencies: ["SpeedComm", "SpeedCore", "CSpeedMPI"]),
        // The NCCL engine for GPU tensors, bootstrapped over MPI.
        .target(name: "SpeedCommNCCL", dependencies: ["SpeedComm", "SpeedCommMPI", "SpeedCore", "SpeedCUDA", "CSpeedCUDA"]),
        // Files: safetensors, atomic writes, DeepSpeed's checkpoint layout (read side for zero_to_fp32).
        .target(name: "SpeedIO", dependencies: ["SpeedCore"]),
        // Data: datasets, the distributed loader, text corpora and the byte tokenizer.
        .target(name: "SpeedData", dependencies: ["SpeedCore"]),
        // Hugging Face tokenizer.json (BPE, WordPiece, Unigram...) with HF's ids; Foundation only, no tensors.
        .target(name: "SpeedTokenizers"),
        // DeepSpeed's runtime: ds_config.json, the engine, precision, checkpoints, monitors, the training loop.
        .target(
            name: "SpeedRuntime",
            dependencies: ["SpeedCore", "SpeedNN", "SpeedOptim", "SpeedComm", "SpeedIO", "SpeedData",
                           .product(name: "Logging", package: "swift-log")]),
        // Pipeline parallelism: DeepSpeed's PipelineModule / LayerSpec / TiedLayerSpec, the 1F1B schedule as data,
        // the pipe × data topology and the PipelineEngine over ProcessGroup send/receive.
        .target(name: "SpeedPipeline", dependencies: ["SpeedCore", "SpeedNN", "SpeedComm", "SpeedRuntime", "SpeedIO", "SpeedTransformers"]),
        // Hugging Face models: config.json + safetensors folders, the model registry, GPT-2 and BERT with HF names.
        .target(name: "SpeedTransformers", dependencies: ["SpeedCore", "SpeedNN", "SpeedIO"]),
        // Hugging Face's Trainer: TrainingArguments, the DeepSpeed "auto" integration, HF schedules and decay groups,
        // the train/evaluate/predict loop, checkpoints in HF's layout, tokenizing datasets.
        .target(
            name: "SpeedTrainer",
            dependencies: ["SpeedCore", "SpeedNN", "SpeedOptim", "SpeedComm", "SpeedRuntime", "SpeedIO", "SpeedTransformers",
                           "SpeedData", "SpeedTokenizers", .product(name: "Logging", package: "swift-log")]),
        // Umbrella: re-exports only.
        .target(name: "SwiftSpeed", dependencies: ["SpeedCore", "SpeedNN", "SpeedOptim", "SpeedComm", "SpeedCommMPI",
                                                  "SpeedCommNCCL", "SpeedIO", "SpeedData", "SpeedRuntime", "SpeedCUDA",
                                                  "SpeedTransformers", "SpeedTokenizers", "SpeedTrainer", "SpeedPipeline"]),
        .executableTarget(
            name: "swiftspeed",
            dependencies: [
                "SwiftSpeed",
                "SpeedTokenizers", // `swiftspeed tokenize`
                "COpenBLAS",     // openblas_get_config, for `swiftspeed report`
                "CSpeedMPI",     // ss_mpi_library_version, for `swiftspeed report`
                "CSpeedShims",   // the launcher trampoline's parent-death signal
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The seed programs, in Swift (see Examples/*/ds_config.json).
        .executableTarget(name: "SimpleModelExample", dependencies: ["SwiftSpeed"], path: "Examples/SimpleModel",
                          exclude: ["ds_config.json"]),
        // The seed's Trainer program: all-MiniLM-L6-v2 fine-tuned on real sentiment data with ZeRO-2.
        .executableTarget(name: "HFTrainerExample", dependencies: ["SwiftSpeed"], path: "Examples/HFTrainer",
                          exclude: ["ds_config.json"]),
        .executableTarget(name: "LinearClientOptimizerExample", dependencies: ["SwiftSpeed"],
                          path: "Examples/LinearClientOptimizer", exclude: ["ds_config.json"]),
        // Test helpers: finding mpirun and the `.needsMPI` trait (SWIFTSPEED_REQUIRE_ALL=1 makes a missing tool a failure).
        .target(name: "SpeedTestSupport", path: "Tests/SpeedTestSupport"),
        .testTarget(name: "SpeedCoreTests", dependencies: ["SpeedCore"]),
        .testTarget(name: "SpeedNNTests", dependencies: ["SpeedNN"]),
        // Runs `swiftspeed comm-check` under mpirun (the dependency makes sure the binary is built).
        .testTarget(name: "SpeedCommTests", dependencies: ["SpeedComm", "SpeedCommMPI", "SpeedTestSupport", "swiftspeed"]),
        // Runs without a GPU: loader errors, NVRTC (when a libnvrtc is found), the kernel cache, the allocator.
        .testTarget(name: "SpeedCUDATests", dependencies: ["SpeedCUDA", "SpeedTestSupport"]),
        .testTarget(name: "SpeedOptimTests", dependencies: ["SpeedOptim"], exclude: ["Fixtures"]),
        .testTarget(name: "SpeedIOTests", dependencies: ["SpeedIO", "SpeedTestSupport"], exclude: ["Fixtures"]),
        // Tables, collators and metrics against Python datasets / transformers / scikit-learn (Fixtures/, made by
        // scripts/make_data_fixtures.py).
        .testTarget(name: "SpeedDataTests", dependencies: ["SpeedData", "SpeedTestSupport"], exclude: ["Fixtures"]),
        // ids against Hugging Face tokenizers' (Fixtures/, made by scripts/make_tokenizer_fixtures.py).
        .testTarget(name: "SpeedTokenizersTests", dependencies: ["SpeedTokenizers"], exclude: ["Fixtures"]),
        // GPT-2 and BERT against logits from Python transformers (tiny random fixtures, all-MiniLM-L6-v2).
        // … and their AutoTP rules and tensor-parallel checkpoints against one process (in-process ranks).
        .testTarget(name: "SpeedTransformersTests", dependencies: ["SpeedTransformers", "SpeedComm", "SpeedRuntime",
                                                                  "SpeedTestSupport"],
                    exclude: ["Fixtures"]),
        // Schedules against a send/receive simulator; 2, 4 and 2 × 2 (ZeRO-1) in-process pipelines against one process.
        .testTarget(name: "SpeedPipelineTests", dependencies: ["SpeedPipeline", "SpeedRuntime", "SpeedComm", "SpeedNN", "SpeedTransformers", "SpeedIO",
                                                              "SpeedTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "SpeedRuntimeTests", dependencies: ["SpeedRuntime", "SpeedIO", "SpeedData", "SpeedTestSupport"]),
        // TrainingArguments, the DeepSpeed "auto" fill and decay groups against Python transformers/torch (Fixtures/,
        // made by scripts/make_trainer_fixtures.py).
        .testTarget(name: "SpeedTrainerTests", dependencies: ["SpeedTrainer", "SpeedRuntime", "SpeedComm", "SpeedData",
                                                            "SpeedTransformers"],
                    exclude: ["Fixtures"]),
        // Runs the built `swiftspeed` binary end to end (the dependency makes sure it is built); reads
        // its outputs with SpeedRuntime (safetensors).
        .testTarget(name: "SwiftSpeedCLITests", dependencies: ["swiftspeed", "SwiftSpeed", "SpeedTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
