/// How the row and column indices of `ΔW` are split into tensor-train modes.
public struct TTModes: Sendable, Equatable, CustomStringConvertible {
    public var rows: [Int]
    public var columns: [Int]

    public init(rows: [Int], columns: [Int]) {
        self.rows = rows
        self.columns = columns
    }

    /// "16,16,16x16,16,16".
    public var description: String {
        rows.map(String.init).joined(separator: ",") + "x" + columns.map(String.init).joined(separator: ",")
    }

    /// Parses "m1,m2,…xn1,n2,…" (row modes, then column modes).
    public static func parse(_ text: String) -> TTModes? {
        let sides = text.split(separator: "x", omittingEmptySubsequences: false)
        guard sides.count == 2 else { return nil }
        func list(_ s: Substring) -> [Int]? {
            let items = s.split(separator: ",").map { Int($0.filter { $0 != " " }) }
            guard !items.isEmpty, items.allSatisfy({ ($0 ?? 0) >= 1 }) else { return nil }
            return items.compactMap { $0 }
        }
        guard let r = list(sides[0]), let c = list(sides[1]) else { return nil }
        return TTModes(rows: r, columns: c)
    }

    /// Balanced modes of at most `maxMode` each: prime factors packed largest first into the
    /// fewest bins (e.g. 4096 → 16,16,16; 384 → 16,8,3 → sorted 16,8,3; 5632 → 16,16,22).
    public static func automatic(out: Int, in inn: Int, maxMode: Int = 16) -> TTModes {
        TTModes(rows: factorize(out, maxMode: maxMode), columns: factorize(inn, maxMode: maxMode))
    }

    static func factorize(_ n: Int, maxMode: Int) -> [Int] {
        guard n > 1 else { return [max(n, 1)] }
        var primes: [Int] = []
        var rest = n, p = 2
        while p * p <= rest {
            while rest % p == 0 {
                primes.append(p)
                rest /= p
            }
            p += 1
        }
        if rest > 1 { primes.append(rest) }
        // Primes above maxMode become modes of their own; the rest fill bins up to maxMode.
        var bins: [Int] = []
        for prime in primes.sorted(by: >) {
            if let i = bins.indices.filter({ bins[$0] * prime <= maxMode }).min(by: { bins[$0] < bins[$1] }) {
                bins[i] *= prime
            } else {
                bins.append(prime)
            }
        }
        return bins.sorted(by: >)
    }

    /// For the interleaved TT-matrix layout both sides need the same number of modes: pad with 1s.
    public func padded() -> TTModes {
        let d = max(rows.count, columns.count)
        return TTModes(rows: rows + Array(repeating: 1, count: d - rows.count), columns: columns + Array(repeating: 1, count: d - columns.count))
    }
}

