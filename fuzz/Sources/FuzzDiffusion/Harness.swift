// Diffusion adapters (kohya, LyCORIS and diffusers layouts): the file reader and LyCORIS's per-module
// rules, binding to a pipeline and to a single file (the name index, fused OpenCLIP rows, kernels the
// file did not show), and both writers' per-module tensors and names. Input: a safetensors file.
import FuzzSupport
import TLoRAInterop
import TLoRAIO
import TLoRAModel

let fixtures: String = {
    var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    parts.removeLast(4)  // fuzz/Sources/FuzzDiffusion/Harness.swift
    return parts.joined(separator: "/") + "/Fixtures/diffusion/"
}()

// Safe: the fixtures are committed; without them the harness cannot run at all. Each base's name
// index and UNet spellings are built once (building them per input would be most of the work).
let bases = [try! ModelBase(path: fixtures + "sd-tiny"), try! ModelBase(path: fixtures + "sdxl-tiny.safetensors")]
    .map { (base: $0, index: $0.nameIndex(), unet: DiffusionExport.UNetSpellings(of: $0)) }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let file = try? SafetensorsFile(file: fuzzFile(data, size, name: "fuzz.safetensors")),
          let adapter = try? DiffusionAdapter.read(file: file) else { return 0 }
    for m in adapter.modules { _ = try? LyCORISModule.tensors(for: m, path: "out") }
    let names = DiffusionExport.names(adapter, base: nil)
    _ = try? DiffusionExport.kohyaKeys(adapter, names: names, renamed: false, path: "out")
    for (base, index, unet) in bases {
        var bound = adapter
        guard let binding = try? DiffusionBinding.bind(&bound, to: base, index: index, adapterPath: "fuzz", skipUnmatched: true) else { continue }
        let rows = binding.targets.compactMapValues(\.rows)
        let named = DiffusionExport.names(bound, base: base, rows: rows, unet: unet)
        _ = try? DiffusionExport.kohyaKeys(bound, names: named, renamed: true, path: "out")
        for m in bound.modules { _ = m.targetShape == base.entry(m.target)?.shape }
    }
    return 0
}

@_cdecl("FuzzDiffusion_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runFuzzer(argc, argv, fuzzOneInput) }
