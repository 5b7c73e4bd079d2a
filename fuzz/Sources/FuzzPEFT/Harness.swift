// PEFT adapter directories of every type tlora reads (LORA, LOKR, LOHA, ADALORA, VERA, IA3): the
// config parser, the state-dict readers, the structural rules, the factored and dense ΔW, and the
// writer that exports them back. Input: u32 little-endian config length, the config JSON, then the
// adapter_model.safetensors bytes. The tiny Llama's and tiny convnet's shapes stand in for the base.
import FuzzSupport
import TLoRAConvert
import TLoRAInterop
import TLoRAIO
import TLoRAModel

let fixtures: String = {
    var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    parts.removeLast(4)  // fuzz/Sources/FuzzPEFT/Harness.swift
    return parts.joined(separator: "/") + "/Fixtures/models/"
}()

let bases = [BaseShapes(checkpoint: try! Checkpoint(path: fixtures + "tiny-llama")),  // safe: committed fixtures
             BaseShapes(checkpoint: try! Checkpoint(path: fixtures + "tiny-convnet"))]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 4 else { return 0 }
    let length = Int(UInt32(data[0]) | UInt32(data[1]) << 8 | UInt32(data[2]) << 16 | UInt32(data[3] & 0x7F) << 24)
    guard length <= size - 4 else { return 0 }
    let configBytes = Array(UnsafeBufferPointer(start: data + 4, count: length))
    guard let json = try? JSONParser.parse(configBytes), let config = try? PEFTConfig(json: json, path: "adapter_config.json"),
          let file = try? SafetensorsFile(file: fuzzFile(data + 4 + length, size - 4 - length, name: "adapter_model.safetensors")),
          let tensors = try? file.entries.map({ ($0.name, try file.tensor($0.name)) })
    else { return 0 }
    guard let adapter = try? PEFTReader.adapter(config: config, tensors: tensors, weightsPath: file.path, base: bases[Int(data[3] >> 7)])
    else { return 0 }
    for m in adapter.modules where m.outFeatures * m.inFeatures <= 1 << 16 {
        _ = try? DenseDelta.of(m, in: adapter)
        _ = try? LowRankForm.of(m, in: adapter)
    }
    _ = try? PEFTWriter.layout(adapter, path: "out")
    return 0
}

@_cdecl("FuzzPEFT_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runFuzzer(argc, argv, fuzzOneInput) }
