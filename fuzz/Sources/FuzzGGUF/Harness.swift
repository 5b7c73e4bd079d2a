// The GGUF reader and the LoRA-adapter mapping (including q8_0 decoding and the rotary permutation).
import FuzzSupport
import TLoRAInterop

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let file = try? GGUFFile(file: fuzzFile(data, size, name: "fuzz.gguf")) else { return 0 }
    if let adapter = try? GGUFAdapter.read(file: file, heads: GGUFAdapter.Heads(attention: 4, keyValue: 2)) {
        for m in adapter.modules { if case .lowRank(let a, let b) = m.update { _ = a.floats(); _ = b.floats() } }
    }
    _ = try? GGUFAdapter.read(file: file, heads: nil, headsRequired: false)
    return 0
}

@_cdecl("FuzzGGUF_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runFuzzer(argc, argv, fuzzOneInput) }
