import TLoRAFormat

/// `tlora-bench decode FILE.tlora`: decoded bytes per second of reading every tensor on one thread
/// (checksum, decompression, byte-plane regrouping), best of several runs.
func decodeBenchmark(path: String) throws {
    let file = try TLoRAFile(path: path)
    let decodedBytes = file.header.tensors.reduce(0) { $0 + $1.decodedLength }
    let storedBytes = file.header.tensors.reduce(0) { $0 + $1.length }
    var failure: Error?
    let t = best {
        do { _ = try file.readAllTensorsSerially() } catch { failure = error }
    }
    if let failure { throw failure }
    print("decode \(path): \(file.header.tensors.count) tensors, \(storedBytes) stored bytes -> \(decodedBytes) decoded bytes in \(t * 1e3) ms (one thread)")
    print(Double(decodedBytes) / t / 1e9)
}
