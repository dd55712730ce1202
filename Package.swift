// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "vaeas-dist",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "vaeas-dist", targets: ["vaeas-dist"]),
        .library(name: "VAEAS", targets: ["VAEAS"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // System C libraries, found by pkg-config; the shims expose C macros as functions.
        // The BLAS is not linked: VAEASCore opens it at run time (BLASLibrary, VAEAS_BLAS).
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),

        // C kernels, built for AVX-512F / AVX2 / baseline x86-64 by target_clones and picked at load
        // time: the machine's vector width without unsafeFlags or a native-only build. The VAE path's
        // elementwise kernels (bias + activation, activation backward, BCE, Adam, Σg²: elementwise.c)
        // and the full softmax's fused tile passes and shard Adam (classifier.c).
        .target(name: "CKernels"),

        // File formats and configuration: no numerics, no MPI. FileContents: whole-file reads
        // with errno reasons (a directory, /dev/null, a pipe), shared by the three readers.
        .target(name: "FileContents"),
        .target(name: "SafeTensors", dependencies: ["FileContents"]),
        .target(name: "VAEASData", dependencies: ["CZlib", "FileContents"]),
        .target(name: "VAEASConfig", dependencies: ["Yams", "FileContents"]),

        // The layers of the trainer, each a module, so that the build enforces who may use what:
        // only VAEASMPI imports MPI; numerics and model code cannot reach a communicator.
        // Kernels, layers, the VAE, the estimators' maths, Adam, data feeds: no MPI, no collectives.
        .target(name: "VAEASCore", dependencies: ["CKernels", "VAEASConfig", "VAEASData"]),
        // The Communicator protocol and the partitioned classifier layers built on it (Megatron's
        // tensor_parallel: model code names collectives, never MPI).
        .target(name: "VAEASDistributed", dependencies: ["VAEASCore", "CKernels", "SafeTensors"]),
        // Communicator over MPI_COMM_WORLD: the only Swift code that imports MPI.
        .target(name: "VAEASMPI", dependencies: ["CMPI", "VAEASDistributed"]),
        // Likelihood, active units, Monte Carlo MI; PNG output.
        .target(name: "VAEASEvaluation", dependencies: ["VAEASDistributed", "CZlib"]),
        // Model assembly, the data-parallel step, the loop, checkpoints, run outputs, bench shapes.
        .target(name: "VAEASTraining", dependencies: [
            "VAEASDistributed", "VAEASEvaluation", "SafeTensors", "VAEASData", "VAEASConfig", "CZlib",
        ]),
        // One import for the CLI and the tests: re-exports the layers above.
        .target(name: "VAEAS", dependencies: [
            "VAEASConfig", "VAEASCore", "VAEASDistributed", "VAEASMPI", "VAEASEvaluation", "VAEASTraining",
        ]),

        // Helpers shared by the test targets (deterministic numbers, finite differences, data paths).
        .target(name: "_TestSupport", path: "Tests/_TestSupport"),

        .executableTarget(name: "vaeas-dist", dependencies: [
            "VAEAS", "VAEASConfig", "VAEASData", "SafeTensors",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Worker the distributed tests launch under mpirun (not a product); also `step-dump`
        // for the PyTorch cross-check (scripts/torch_crosscheck.py).
        .executableTarget(name: "vaeas-mpi-check", dependencies: ["VAEAS", "VAEASConfig", "VAEASData", "SafeTensors", "_TestSupport"]),

        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors"]),
        .testTarget(name: "DataTests", dependencies: ["VAEASData", "_TestSupport"]),
        .testTarget(name: "ConfigTests", dependencies: ["VAEASConfig"]),
        .testTarget(name: "VAEASTests", dependencies: ["VAEAS", "CKernels", "_TestSupport"]),
        // Runs the built `vaeas-dist` binary, under mpirun where the test needs ranks.
        .testTarget(name: "IntegrationTests", dependencies: ["vaeas-dist", "vaeas-mpi-check", "SafeTensors", "VAEAS", "_TestSupport"],
                    exclude: ["References"]),   // recorded trajectories, read by path (ReferenceTrajectoryTests)
    ],
    swiftLanguageModes: [.v5]
)
