// PEFT's adapter_config.json (including rank/alpha pattern matching, which compiles regexes from
// the file) and MLX-LM's adapter_config.json. The first byte picks the parser.
import FuzzSupport
import TLoRAInterop
import TLoRAIO

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    if data[0] & 1 == 0 {
        guard let json = try? JSONParser.parse(bytes), let config = try? PEFTConfig(json: json, path: "adapter_config.json") else { return 0 }
        for name in ["model.layers.0.self_attn.q_proj", "model.layers.11.mlp.down_proj", "encoder.layer.3.attention.self.value"] {
            _ = config.scale(for: name)
        }
    } else {
        _ = try? MLXAdapter.parseConfig(bytes, path: "adapter_config.json")
    }
    return 0
}

@_cdecl("FuzzConfigs_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runFuzzer(argc, argv, fuzzOneInput) }
