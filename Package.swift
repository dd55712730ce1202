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
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
    ],
    targets: [
        // System C libraries, found by pkg-config; the shims expose C macros as functions.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),

        // File formats and configuration: no numerics, no MPI.
        .target(name: "SafeTensors"),
        .target(name: "VAEASData", dependencies: ["CZlib"]),
        .target(name: "VAEASConfig", dependencies: ["Yams"]),

        // Kernels, model, communicator, trainer, evaluation.
        .target(name: "VAEAS", dependencies: [
            "CMPI", "COpenBLAS", "CZlib", "SafeTensors", "VAEASData", "VAEASConfig",
            .product(name: "Logging", package: "swift-log"),
        ]),

        .executableTarget(name: "vaeas-dist", dependencies: [
            "VAEAS", "VAEASConfig", "VAEASData", "SafeTensors",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Worker the distributed tests launch under mpirun (not a product); also `step-dump`
        // for the PyTorch cross-check (scripts/torch_crosscheck.py).
        .executableTarget(name: "vaeas-mpi-check", dependencies: ["VAEAS", "VAEASConfig", "VAEASData", "SafeTensors"]),

        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors"]),
        .testTarget(name: "DataTests", dependencies: ["VAEASData"]),
        .testTarget(name: "ConfigTests", dependencies: ["VAEASConfig"]),
        .testTarget(name: "VAEASTests", dependencies: ["VAEAS"]),
        // Runs the built `vaeas-dist` binary, under mpirun where the test needs ranks.
        .testTarget(name: "IntegrationTests", dependencies: ["vaeas-dist", "vaeas-mpi-check", "SafeTensors", "VAEAS"]),
    ],
    swiftLanguageModes: [.v5]
)
