import Testing
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

@Suite struct StoredTensorTests {
    /// Bit patterns of one non-finite value per dtype: +∞, −∞ and a NaN.
    static let nonFinite: [DType: [[UInt8]]] = [
        .f32: [[0x00, 0x00, 0x80, 0x7F], [0x00, 0x00, 0x80, 0xFF], [0x01, 0x00, 0xC0, 0x7F]],
        .f64: [[0, 0, 0, 0, 0, 0, 0xF0, 0x7F], [0, 0, 0, 0, 0, 0, 0xF0, 0xFF], [1, 0, 0, 0, 0, 0, 0xF8, 0x7F]],
        .f16: [[0x00, 0x7C], [0x00, 0xFC], [0x01, 0x7E]],
        .bf16: [[0x80, 0x7F], [0x80, 0xFF], [0xC1, 0x7F]],
    ]

    @Test(arguments: DType.allCases)
    func nonFiniteValuesAreFoundAnywhere(dtype: DType) throws {
        let values: [Double] = [0, -0.0, 1, -2.5, 65504, 1e-3]
        let finite = StoredTensor(values, shape: [2, 3], dtype: dtype)
        #expect(finite.allFinite)
        for pattern in try #require(Self.nonFinite[dtype]) {
            for position in 0..<values.count {
                var bytes = finite.bytes.withUnsafeBytes { Array($0) }
                bytes.replaceSubrange(position * dtype.byteWidth..<(position + 1) * dtype.byteWidth, with: pattern)
                #expect(!StoredTensor(dtype: dtype, shape: [2, 3], bytes: bytes).allFinite, "\(dtype) \(pattern) at \(position)")
            }
        }
        // The largest finite values are finite.
        let largest: [UInt8] = switch dtype {
        case .f32: [0xFF, 0xFF, 0x7F, 0x7F]
        case .f64: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xEF, 0x7F]
        case .f16: [0xFF, 0x7B]
        case .bf16: [0x7F, 0x7F]
        }
        #expect(StoredTensor(dtype: dtype, shape: [1], bytes: largest).allFinite)
    }

    @Test(arguments: DType.allCases)
    func transposeMovesBytesExactly(dtype: DType) {
        var g = SeededGenerator(seed: 9)
        let (rows, cols) = (5, 7)
        let t = StoredTensor((0..<rows * cols).map { _ in g.gaussian() }, shape: [rows, cols], dtype: dtype)
        let tt = t.transposed()
        #expect(tt.shape == [cols, rows])
        let a = t.doubles(), b = tt.doubles()
        for i in 0..<rows { for j in 0..<cols { #expect(a[i * cols + j].bitPattern == b[j * rows + i].bitPattern) } }
        #expect(tt.transposed() == t)
    }

    @Test(arguments: DType.allCases)
    func valuesRoundOnceToNearestEven(dtype: DType) {
        // 1 + 2⁻²⁴·3 in f32 terms etc.: halfway cases must round to even, and f64 must be exact.
        let halfway: [Double] = [1 + 0x1p-24, 1 + 3 * 0x1p-24, 1 + 0x1p-11, 1 + 3 * 0x1p-11, 1 + 0x1p-8, 1 + 3 * 0x1p-8]
        let stored = StoredTensor(halfway, shape: [halfway.count], dtype: dtype).doubles()
        let expected: [Double] = switch dtype {
        case .f64: halfway
        case .f32: [1, 1 + 0x1p-22, 1 + 0x1p-11, 1 + 3 * 0x1p-11, 1 + 0x1p-8, 1 + 3 * 0x1p-8]
        // f16 and bf16 go through f32 (exact for these values), then round once.
        case .f16: [1, 1, 1, 1 + 0x1p-9, 1 + 0x1p-8, 1 + 3 * 0x1p-8]
        case .bf16: [1, 1, 1, 1, 1, 1 + 0x1p-6]
        }
        #expect(stored == expected, "\(dtype): \(stored)")
    }

    @Test func reshapeKeepsTheBytes() {
        let t = StoredTensor([Float](stride(from: 0, to: 24, by: 1)), shape: [2, 3, 4])
        let r = t.reshaped([6, 4])
        #expect(r.shape == [6, 4] && r.bytes == t.bytes && r.elementCount == 24)
        #expect(r.matrix().rows == 6 && r.matrix()[5, 3] == 23)
        #expect(t.tensor().shape == [2, 3, 4])
    }
}
