// The .tlora reader (adapters and banks) and verifier on arbitrary bytes: every input must end in a value or a thrown
// error, never a trap, a hang or an unbounded allocation.
import FuzzSupport
import TLoRAFormat

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    if let parsed = try? TLoRAFile(file: fuzzFile(data, size, name: "fuzz.tlora")) {
        _ = try? parsed.loadAdapter()
        if let first = parsed.header.bank?.members.first {
            // A bank: every member, and one member as an adapter (the SVD of its core).
            _ = try? parsed.loadBank()
            _ = try? parsed.loadBankMember(first.name)
        }
        _ = parsed.checkIntegrity()
    }
    return 0
}

@_cdecl("FuzzContainer_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runFuzzer(argc, argv, fuzzOneInput) }
