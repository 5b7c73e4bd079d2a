// SwiftPM links each executable against `<module>_main`; every harness defines that symbol and
// hands control to libFuzzer's driver through `runFuzzer`.
import TLoRAIO

public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>, Int) -> CInt

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: FuzzCallback) -> CInt

public func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ callback: FuzzCallback) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, callback)
}

/// The input as an in-memory file named `name` (parsers read it without disk I/O).
public func fuzzFile(_ data: UnsafePointer<UInt8>, _ size: Int, name: String) -> MappedFile {
    MappedFile(copying: UnsafeRawBufferPointer(start: data, count: size), path: name)
}
