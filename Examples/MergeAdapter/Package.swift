// swift-tools-version:6.2
// A package that uses tlora as a library, the way any user would: by version, through the `TLoRA`
// product. scripts/check-example.sh builds it (in release) against a tagged copy of this repository.
import PackageDescription

// Where tlora comes from: `TLORA_PACKAGE_URL`, else the repository this example sits in (which then
// needs a version tag ≥ 0.1.0). A published copy's URL works the same way.
let tlora = Context.environment["TLORA_PACKAGE_URL"] ?? "file://" + Context.packageDirectory + "/../.."

let package = Package(
    name: "merge-adapter",
    dependencies: [.package(url: tlora, from: "0.1.0")],
    targets: [
        .executableTarget(name: "merge-adapter", dependencies: [.product(name: "TLoRA", package: "tlora")]),
    ]
)
