// The PyTorch archive reader: zip directory, restricted unpickler, tensor storages.
import FuzzSupport
import TLoRAInterop

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    if let tensors = try? TorchStateDict.read(file: fuzzFile(data, size, name: "fuzz.bin")) {
        for (_, t) in tensors { _ = t.floats() }
    }
    return 0
}

@_cdecl("FuzzPickle_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runFuzzer(argc, argv, fuzzOneInput) }
