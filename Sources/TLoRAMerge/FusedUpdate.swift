import Dispatch
import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// Merges a low-rank update into a base tensor block by block, so each block of rows is decoded,
/// updated (`W += s · B · A` through GEMM), renormalized for DoRA and rounded to the output dtype
/// while it sits in cache: memory traffic is one read of the base and one write of the result.
enum FusedUpdate {
    /// Whole canonical rows must be in one block for DoRA, which holds only for `out_in` layouts.
    static func applies(to m: AdapterModule) -> Bool {
        guard case .lowRank = m.update else { return false }
        return m.doraMagnitude == nil || m.layout == .outIn
    }

    /// - Parameters:
    ///   - source: the base tensor's bytes (or its replacement's) in `sourceType`, shape `rows × cols`
    ///     in the base's orientation.
    ///   - output: receives `rows × cols` elements of `outputType`.
    static func apply(_ m: AdapterModule, scale extra: Double, source: UnsafeRawBufferPointer, sourceType: DType,
                      output: UnsafeMutableRawBufferPointer, outputType: DType) {
        guard case .lowRank(let aT, let bT) = m.update else { preconditionFailure("fused merge needs a low-rank update") }
        let a = aT.floats(), b = bT.floats()  // r × in, out × r
        let magnitude = m.doraMagnitude?.doubles()
        let r = aT.shape[0]
        let (rows, cols) = m.layout == .outIn ? (m.outFeatures, m.inFeatures) : (m.inFeatures, m.outFeatures)
        let alpha = Float(m.scale * extra)
        // Rows per block: ~128 KiB of f32 scratch, a multiple of the 6-row GEMM tile.
        let blockRows = max(6, (32 << 10) / max(cols, 1) / 6 * 6)
        let blocks = (rows + blockRows - 1) / blockRows
        let workers = min(Parallel.workerCount, blocks)
        let box = UnsafeSendableBox((source, output))
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                let factors = UnsafeSendableBox((ap, bp))
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    let (src, dst) = box.value
                    let (ap, bp) = factors.value
                    let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: blockRows * cols)
                    defer { scratch.deallocate() }
                    var block = w
                    while block < blocks {
                        let r0 = block * blockRows, r1 = min(rows, r0 + blockRows), n = r1 - r0
                        let s = UnsafeMutableBufferPointer(rebasing: scratch[0..<(n * cols)])
                        ElementConversion.decode(UnsafeRawBufferPointer(rebasing: src[(r0 * cols * sourceType.byteWidth)..<(r1 * cols * sourceType.byteWidth)]),
                                                 dtype: sourceType, into: s)
                        // Safe: shapes were validated, so every pointer is non-nil and in bounds.
                        if m.layout == .outIn {
                            GEMM.multiply(m: n, n: cols, k: r, alpha: alpha, a: bp.baseAddress! + r0 * r, lda: r,
                                          b: ap.baseAddress!, ldb: cols, beta: 1, c: s.baseAddress!, ldc: cols)
                        } else {
                            GEMM.multiply(transposeA: true, transposeB: true, m: n, n: cols, k: r, alpha: alpha,
                                          a: ap.baseAddress! + r0, lda: rows, b: bp.baseAddress!, ldb: r, beta: 1, c: s.baseAddress!, ldc: cols)
                        }
                        if let magnitude {
                            for i in 0..<n {
                                var norm = 0.0
                                for j in 0..<cols { let v = Double(s[i * cols + j]); norm += v * v }
                                let f = Float(magnitude[r0 + i] / norm.squareRoot())
                                for j in 0..<cols { s[i * cols + j] *= f }
                            }
                        }
                        ElementConversion.encode(UnsafeBufferPointer(s), as: outputType,
                                                 into: UnsafeMutableRawBufferPointer(rebasing: dst[(r0 * cols * outputType.byteWidth)..<(r1 * cols * outputType.byteWidth)]))
                        block += workers
                    }
                }
            }
        }
    }
}

/// Reusable byte buffers for tensors in flight between the merge's arithmetic and its writer, so
/// each tensor does not fault in (and zero) fresh pages.
final class BufferPool: @unchecked Sendable {
    private let lock = DispatchSemaphore(value: 1)
    private var free: [UnsafeMutableRawBufferPointer] = []

    /// A buffer of at least `bytes` bytes.
    func acquire(_ bytes: Int) -> UnsafeMutableRawBufferPointer {
        lock.wait()
        if let i = free.indices.filter({ free[$0].count >= bytes }).min(by: { free[$0].count < free[$1].count }) {
            let b = free.remove(at: i)
            lock.signal()
            return b
        }
        lock.signal()
        return UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
    }

    func release(_ b: UnsafeMutableRawBufferPointer) {
        lock.wait()
        free.append(b)
        lock.signal()
    }

    deinit { for b in free { b.deallocate() } }
}
