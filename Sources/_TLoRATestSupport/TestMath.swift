#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// libm entry points for test helpers.
public enum TLoRATestMath {
    public static func log(_ x: Double) -> Double { Glibc.log(x) }
    public static func cos(_ x: Double) -> Double { Glibc.cos(x) }
    public static func exp(_ x: Double) -> Double { Glibc.exp(x) }
}

/// Relative comparison helpers with explicit tolerances.
public enum Tolerance {
    /// ‖a − b‖_F / ‖b‖_F (0 when both are zero).
    public static func relativeError<T: BinaryFloatingPoint>(_ a: [T], _ b: [T]) -> Double {
        precondition(a.count == b.count)
        var num = 0.0, den = 0.0
        for i in 0..<a.count {
            let d = Double(a[i]) - Double(b[i])
            num += d * d
            den += Double(b[i]) * Double(b[i])
        }
        if den == 0 { return num == 0 ? 0 : .infinity }
        return (num / den).squareRoot()
    }

    /// Largest |a_i − b_i|.
    public static func maxAbsDifference<T: BinaryFloatingPoint>(_ a: [T], _ b: [T]) -> Double {
        precondition(a.count == b.count)
        var m = 0.0
        for i in 0..<a.count { m = max(m, abs(Double(a[i]) - Double(b[i]))) }
        return m
    }
}
