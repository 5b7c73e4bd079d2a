// swift-tools-version:6.2
import PackageDescription

// Numeric kernels and codecs are compiled with optimization even in debug builds: the test suite
// decomposes real matrices and a -Onone SVD is 30-100x slower. AVX2/FMA code lives in the C kernel
// target behind `__attribute__((target(...)))` and runtime dispatch, so no flag here raises the
// baseline CPU the binary needs.
let optimizedSwift: [SwiftSetting] = [.unsafeFlags(["-O"])]
let optimizedC: [CSetting] = [.unsafeFlags(["-O3"])]

let package = Package(
    name: "tlora",
    products: [
        .executable(name: "tlora", targets: ["tlora"]),
        .executable(name: "tlora-bench", targets: ["tlora-bench"]),
        .library(name: "TLoRA", targets: ["TLoRA"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        .target(name: "CTLoRAKernels", dependencies: ["CTLoRASystem"], cSettings: optimizedC),
        .target(name: "CTLoRASystem"),
        .target(name: "TLoRANumerics", dependencies: ["CTLoRAKernels", "CTLoRASystem"], swiftSettings: optimizedSwift),
        .target(name: "TLoRAIO", dependencies: ["CTLoRASystem"], swiftSettings: optimizedSwift),
        .target(name: "TLoRAModel", dependencies: ["TLoRANumerics", "TLoRAIO"]),
        .target(name: "TLoRAFormat", dependencies: ["TLoRAModel", "TLoRANumerics", "TLoRAIO", "CZstd", "CTLoRAKernels"], swiftSettings: optimizedSwift),
        .target(name: "TLoRAInterop", dependencies: ["TLoRAModel", "TLoRAIO", "TLoRANumerics", "CTLoRAKernels"], swiftSettings: optimizedSwift),
        .target(name: "TLoRAConvert", dependencies: ["TLoRAModel", "TLoRANumerics", "TLoRAIO"], swiftSettings: optimizedSwift),
        .target(name: "TLoRAMerge", dependencies: ["TLoRAConvert", "TLoRAInterop", "TLoRAModel", "TLoRANumerics", "TLoRAIO"], swiftSettings: optimizedSwift),
        .target(name: "TLoRAInputs", dependencies: ["TLoRAModel", "TLoRAFormat", "TLoRAInterop", "TLoRAIO"]),
        .target(
            name: "TLoRA",
            dependencies: ["TLoRANumerics", "TLoRAIO", "TLoRAModel", "TLoRAFormat", "TLoRAInterop", "TLoRAConvert", "TLoRAMerge", "TLoRAInputs"]
        ),
        .target(
            name: "TLoRACLI",
            dependencies: [
                "TLoRAModel", "TLoRANumerics", "TLoRAFormat", "TLoRAInterop", "TLoRAConvert", "TLoRAMerge", "TLoRAInputs", "TLoRAIO",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "tlora", dependencies: ["TLoRACLI"]),
        .executableTarget(name: "tlora-bench", dependencies: ["TLoRANumerics", "TLoRAFormat", "TLoRAIO", "CTLoRAKernels", "TLoRAConvert", "TLoRAModel"], swiftSettings: optimizedSwift),
        .target(name: "_TLoRATestSupport", dependencies: ["TLoRANumerics", "TLoRAModel", "TLoRAIO"], path: "Sources/_TLoRATestSupport"),

        .testTarget(name: "TLoRANumericsTests", dependencies: ["TLoRANumerics", "CTLoRASystem", "_TLoRATestSupport"]),
        .testTarget(name: "TLoRAIOTests", dependencies: ["TLoRAIO", "_TLoRATestSupport"]),
        .testTarget(name: "TLoRAModelTests", dependencies: ["TLoRAModel", "TLoRANumerics", "_TLoRATestSupport"]),
        .testTarget(name: "TLoRAFormatTests", dependencies: ["TLoRAFormat", "TLoRAModel", "TLoRANumerics", "TLoRAIO", "_TLoRATestSupport"]),
        .testTarget(name: "TLoRAInteropTests", dependencies: ["TLoRAInterop", "TLoRAModel", "TLoRANumerics", "TLoRAIO", "_TLoRATestSupport"]),
        .testTarget(name: "TLoRAInputsTests", dependencies: ["TLoRAInputs", "TLoRAInterop", "TLoRAIO", "TLoRAModel", "_TLoRATestSupport"]),
        .testTarget(name: "TLoRAConvertTests", dependencies: ["TLoRAConvert", "TLoRAMerge", "TLoRAInterop", "TLoRAModel", "TLoRANumerics", "TLoRAIO", "_TLoRATestSupport"]),
        .testTarget(name: "TLoRAMergeTests", dependencies: ["TLoRAMerge", "TLoRAConvert", "TLoRAInterop", "TLoRAInputs", "TLoRAModel", "TLoRANumerics", "TLoRAIO", "_TLoRATestSupport"]),
        .testTarget(name: "TLoRACLITests", dependencies: ["TLoRACLI", "TLoRAFormat", "TLoRAInterop", "TLoRAModel", "TLoRANumerics", "TLoRAIO", "_TLoRATestSupport"]),
    ]
)
