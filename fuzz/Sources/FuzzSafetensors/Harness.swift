// The safetensors reader: header validation, then every floating tensor decoded.
import FuzzSupport
import TLoRAInterop

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let file = try? SafetensorsFile(file: fuzzFile(data, size, name: "fuzz.safetensors")) else { return 0 }
    for e in file.entries {
        if let t = try? file.tensor(e.name) { _ = t.floats() }
    }
    return 0
}

@_cdecl("FuzzSafetensors_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runFuzzer(argc, argv, fuzzOneInput) }
