// The whole job on a mutated PEFT adapter directory: the input is
// [u32 little-endian config length][adapter_config.json][adapter_model.safetensors]; it is written to
// a directory under /dev/shm, read as `tlora inspect` and `tlora merge` read it, and merged into the
// tiny Llama fixture. Nothing may trap, and a failed merge must leave no output behind.
import FuzzSupport
import TLoRAConvert
import TLoRAMerge
import TLoRAInterop
import TLoRAIO
import TLoRAModel

#if canImport(Glibc)
import Glibc
#endif

let base: Checkpoint = {
    var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    parts.removeLast(4)  // fuzz/Sources/FuzzCommand/Harness.swift
    let path = parts.joined(separator: "/") + "/Fixtures/models/tiny-llama"
    // Safe: the fixture is committed; without it the harness cannot run at all.
    return try! Checkpoint(path: path)
}()

let work = "/dev/shm/tlora-fuzz-command-\(getpid())"

func write(_ path: String, _ bytes: UnsafeRawBufferPointer) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { return }
    if let b = bytes.baseAddress { _ = Glibc.write(fd, b, bytes.count) }
    close(fd)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 4 else { return 0 }
    let raw = UnsafeRawBufferPointer(start: data, count: size)
    let n = Int(raw.loadUnaligned(as: UInt32.self).littleEndian)
    guard n <= size - 4 else { return 0 }
    removeScratch(work)
    mkdir(work, 0o755)
    let adapterDir = work + "/adapter"
    mkdir(adapterDir, 0o755)
    write(adapterDir + "/adapter_config.json", UnsafeRawBufferPointer(rebasing: raw[4..<(4 + n)]))
    write(adapterDir + "/adapter_model.safetensors", UnsafeRawBufferPointer(rebasing: raw[(4 + n)...]))
    if let adapter = try? PEFTReader.read(directory: adapterDir) {
        let output = work + "/merged"
        do {
            _ = try Merger.merge(adapter: adapter, adapterPath: adapterDir, base: base, output: output)
        } catch {
            // A refused merge leaves nothing at the output path.
            if exists(output) { abort() }
        }
    }
    removeScratch(work)
    return 0
}

@_cdecl("FuzzCommand_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runFuzzer(argc, argv, fuzzOneInput) }
