// swift-tools-version:6.2
// libFuzzer harnesses for tlora's parsers. Built only by fuzz/run.sh (with -sanitize=fuzzer,address);
// the main package's build and tests never touch this package.
import PackageDescription

let harnesses = ["FuzzContainer", "FuzzSafetensors", "FuzzGGUF", "FuzzPickle", "FuzzConfigs", "FuzzCommand", "FuzzResearch", "FuzzPEFT", "FuzzDiffusion", "FuzzDiffusionBase"]

let package = Package(
    name: "tlora-fuzz",
    dependencies: [.package(name: "tlora", path: "..")],
    targets: [
        .target(name: "FuzzSupport", dependencies: [.product(name: "TLoRA", package: "tlora")]),
    ] + harnesses.map { name in
        .executableTarget(name: name, dependencies: ["FuzzSupport", .product(name: "TLoRA", package: "tlora")])
    }
)
