// Diffusion bases: a pipeline's model_index.json (selector byte 0), and a single-file checkpoint's
// names and shapes (selector 1: a safetensors file) — its SGM UNet structure, CLIP and OpenCLIP
// aliases (fused q/k/v rows from in_proj_weight's shape) and the name index built from them, looked
// up with every name of the file.
import FuzzSupport
import TLoRAInterop
import TLoRAIO

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    if data[0] & 1 == 0 {
        _ = try? ModelBase.Pipeline.entries(Array(UnsafeBufferPointer(start: data + 1, count: size - 1)), path: "model_index.json")
        return 0
    }
    guard let file = try? SafetensorsFile(file: fuzzFile(data + 1, size - 1, name: "fuzz.safetensors")) else { return 0 }
    let base = ModelBase(checkpoint: Checkpoint(file: file))
    let index = base.nameIndex()
    for name in file.tensorNames {
        let path = name.hasSuffix(".weight") ? String(name.dropLast(7)) : name
        for role in ["unet", "text_encoder", "text_encoder_2", ""] {
            _ = index.lookup(role: role, path: path)
            _ = index.lookup(role: role, flattened: ModuleNameIndex.flatten(path))
        }
        if let (prefix, _, _) = SingleFileNames.split(name) { _ = index.lookup(role: "unet", path: String(path.dropFirst(min(prefix.count, path.count)))) }
    }
    return 0
}

@_cdecl("FuzzDiffusionBase_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runFuzzer(argc, argv, fuzzOneInput) }
