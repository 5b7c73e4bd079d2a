// swift-tools-version:6.2
// libFuzzer harnesses for tlora's parsers. Built only by fuzz/run.sh (with -sanitize=fuzzer,address);
// the main package's build and tests never touch this package.
import PackageDescription

let package = Package(
    name: "tlora-fuzz",
    dependencies: [.package(name: "tlora", path: "..")],
    targets: [
        .executableTarget(name: "FuzzContainer", dependencies: [.product(name: "TLoRA", package: "tlora")]),
    ]
)
