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

#if canImport(Glibc)
import Glibc
#endif

/// Deletes a scratch directory tree the harness made (the library's own tree helpers are `package`,
/// not public API): children first, symbolic links not followed.
public func removeScratch(_ path: String) {
    if unlink(path) == 0 || errno != EISDIR && errno != EPERM { return }
    if let dir = opendir(path) {
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(dir)
        for name in names { removeScratch(path + "/" + name) }
    }
    rmdir(path)
}

/// Whether anything exists at `path`.
public func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
