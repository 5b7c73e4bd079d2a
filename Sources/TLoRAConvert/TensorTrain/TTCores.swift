import TLoRANumerics

/// A tensor train in f64 while it is being built: cores `[r_{k−1}, m_k, n_k, r_k]` (docs/FORMAT.md §2.3).
struct TTCores {
    var cores: [Tensor<Double>]

    var ranks: [Int] { [cores.first?.shape[0] ?? 1] + cores.map { $0.shape[3] } }
    var parameterCount: Int { cores.reduce(0) { $0 + $1.count } }

    /// The exact train of `B · A` in the row-then-column layout, built from the factors: successive
    /// QRs peel the row modes off `B` (left to right) and the column modes off `A` (right to left),
    /// and the two small remainders meet in the last row core. The bond between row and column
    /// cores is at most `rank(B · A) ≤ k`; the others are the exact unfolding ranks of `B` and `A`.
    static func exact(_ f: LowRankForm, modes: TTModes) -> TTCores {
        var cores: [Tensor<Double>] = []
        // Row side: current matrix is (r · m_t) × (remaining modes · k).
        var rank = 1
        var rest = f.b  // out × k, viewed as [m_1, …, m_p, k]
        var remainingCols = f.b.rows * f.b.cols
        for m in modes.rows {
            let rows = rank * m
            remainingCols /= m
            let mat = Matrix(rows: rows, cols: remainingCols, storage: rest.storage)
            // A wide unfolding's thin QR has a square orthogonal q: the identity does as well.
            let (q, r) = rows <= remainingCols ? (Matrix<Double>.identity(rows), mat) : LA.qr(mat)
            cores.append(Tensor(shape: [rank, m, 1, q.cols], storage: q.storage))
            rank = q.cols
            rest = r
            remainingCols = r.cols
        }
        let leftRemainder = Matrix(rows: rank, cols: f.b.cols, storage: rest.storage)  // r_p × k
        // Column side, right to left: current matrix is (k · remaining modes) × (n_t · r).
        var right: [Tensor<Double>] = []
        var rightRank = 1
        var restA = f.a  // k × in, viewed as [k, n_1, …, n_q]
        var remainingRows = f.a.rows * f.a.cols
        for n in modes.columns.reversed() {
            let cols = n * rightRank
            remainingRows /= n
            let mat = Matrix(rows: remainingRows, cols: cols, storage: restA.storage)
            // matᵀ = q r  →  mat = rᵀ qᵀ (q = I when matᵀ is wide, as on the row side).
            let (q, r) = cols <= remainingRows ? (Matrix<Double>.identity(cols), mat.transposed()) : LA.qr(mat.transposed())
            let qt = q.transposed()  // r' × (n · rightRank)
            right.insert(Tensor(shape: [qt.rows, 1, n, rightRank], storage: qt.storage), at: 0)
            rightRank = qt.rows
            restA = r.transposed()  // remainingRows × r'
        }
        let rightRemainder = Matrix(rows: f.a.rows, cols: rightRank, storage: restA.storage)  // k × s
        let middle = LA.mul(leftRemainder, rightRemainder)  // r_p × s
        if var last = cores.popLast() {
            let (r0, m) = (last.shape[0], last.shape[1])
            let merged = LA.mul(Matrix(rows: r0 * m, cols: last.shape[3], storage: last.storage), middle)
            last = Tensor(shape: [r0, m, 1, middle.cols], storage: merged.storage)
            cores.append(last)
        } else if var first = right.first {
            // No row modes (out = 1): fold the middle into the first column core.
            let merged = LA.mul(middle, Matrix(rows: first.shape[0], cols: first.count / first.shape[0], storage: first.storage))
            first = Tensor(shape: [middle.rows] + Array(first.shape.dropFirst()), storage: merged.storage)
            right[0] = first
        }
        return TTCores(cores: cores + right)
    }

    /// The train of a dense matrix in any layout, by TT-SVD (used where no factors exist).
    /// `modes` must have equal counts (pad with 1s); the tensor's index order is (m_1, n_1, m_2, n_2, …).
    static func fromDense(_ x: Matrix<Double>, modes: TTModes, tolerance: (Double) -> Double, maxRank: Int) -> (TTCores, [Double]) {
        let d = modes.rows.count
        // Permute ΔW[(i_1..i_d), (j_1..j_d)] into [i_1, j_1, i_2, j_2, …].
        let shape = modes.rows + modes.columns
        var axes: [Int] = []
        for k in 0..<d { axes += [k, d + k] }
        let t = DenseDelta.permute(Tensor(shape: shape, storage: x.storage), axes: axes)
        let norm = ErrorMeasure.frobenius(t.storage)
        let delta = tolerance(norm)
        var cores: [Tensor<Double>] = []
        var tails: [Double] = []
        var rank = 1
        var rest = Matrix(rows: 1, cols: t.count, storage: t.storage)
        for k in 0..<d {
            let (m, n) = (modes.rows[k], modes.columns[k])
            if k == d - 1 {
                cores.append(Tensor(shape: [rank, m, n, 1], storage: rest.storage))
                break
            }
            let mat = Matrix(rows: rank * m * n, cols: rest.storage.count / (rank * m * n), storage: rest.storage)
            let (u, s, svt) = LA.leftSVD(mat)
            let (keep, tail) = Truncation.rank(singularValues: s, tolerance: delta, maxRank: maxRank)
            tails.append(tail)
            cores.append(Tensor(shape: [rank, m, n, keep], storage: u.columns(0..<keep).storage))
            rest = svt.rows(0..<keep)
            rank = keep
        }
        return (TTCores(cores: cores), tails)
    }

    /// Oseledets' TT-rounding: right-to-left orthogonalization, then left-to-right truncated SVDs
    /// with the absolute tolerance `tolerance(‖X‖)` per bond (and at most `maxRank`). Returns the
    /// discarded tail norm at each bond; the error is at most sqrt(Σ tail²).
    mutating func round(tolerance: (Double) -> Double, maxRank: Int) -> [Double] {
        let d = cores.count
        guard d > 1 else { return [] }
        // Right-to-left: make cores 2…d right-orthogonal.
        for k in stride(from: d - 1, through: 1, by: -1) {
            let c = cores[k]
            let r0 = c.shape[0]
            let mat = Matrix(rows: r0, cols: c.count / r0, storage: c.storage)
            let (q, r) = LA.qr(mat.transposed())  // matᵀ = q r → mat = rᵀ qᵀ
            let qt = q.transposed()
            cores[k] = Tensor(shape: [qt.rows, c.shape[1], c.shape[2], c.shape[3]], storage: qt.storage)
            let prev = cores[k - 1]
            let merged = LA.mul(Matrix(rows: prev.count / prev.shape[3], cols: prev.shape[3], storage: prev.storage), r, tb: true)
            cores[k - 1] = Tensor(shape: [prev.shape[0], prev.shape[1], prev.shape[2], qt.rows], storage: merged.storage)
        }
        let norm = ErrorMeasure.frobenius(cores[0].storage)
        let delta = tolerance(norm)
        var tails: [Double] = []
        // Left-to-right truncation.
        for k in 0..<(d - 1) {
            let c = cores[k]
            let rows = c.count / c.shape[3]
            let (u, s, svt) = LA.leftSVD(Matrix(rows: rows, cols: c.shape[3], storage: c.storage))
            let (keep, tail) = Truncation.rank(singularValues: s, tolerance: delta, maxRank: maxRank)
            tails.append(tail)
            cores[k] = Tensor(shape: [c.shape[0], c.shape[1], c.shape[2], keep], storage: u.columns(0..<keep).storage)
            let sv = svt.rows(0..<keep)
            let next = cores[k + 1]
            let merged = LA.mul(sv, Matrix(rows: next.shape[0], cols: next.count / next.shape[0], storage: next.storage))
            cores[k + 1] = Tensor(shape: [keep, next.shape[1], next.shape[2], next.shape[3]], storage: merged.storage)
        }
        return tails
    }

    /// TT-rounding of a train in mixed canonical form: cores before `center` left-orthogonal, cores
    /// after it right-orthogonal (what `exact` builds). Each bond is truncated exactly once, in the
    /// gauge where its singular values are the train's: first the bonds left of the center
    /// (right-to-left, SVDs of the cores' row-unfoldings), then a QR sweep back to the center, then
    /// the bonds right of it (left-to-right). Same bound as `round`, without its orthogonalization
    /// sweep. Returns the discarded tail at each bond.
    mutating func roundFromCenter(_ center: Int, tolerance: (Double) -> Double, maxRank: Int) -> [Double] {
        let d = cores.count
        guard d > 1 else { return [] }
        let delta = tolerance(ErrorMeasure.frobenius(cores[center].storage))
        var tails: [Double] = []
        // Bonds center−1 … 0: truncate through the right side of core k, push the rest left.
        var k = center
        while k > 0 {
            let c = cores[k]
            let r0 = c.shape[0]
            let m = Matrix(rows: r0, cols: c.count / r0, storage: c.storage)  // r0 × (m n r1)
            let (u, push, tail) = BondTruncation.truncate(m.transposed(), tolerance: delta, maxRank: maxRank)  // mᵀ ≈ u · push
            let keep = u.cols
            tails.append(tail)
            let ut = u.transposed()
            cores[k] = Tensor(shape: [keep, c.shape[1], c.shape[2], c.shape[3]], storage: ut.storage)
            let prev = cores[k - 1]
            // push is keep × r0: m ≈ pushᵀ · ut
            let merged = LA.mul(Matrix(rows: prev.count / prev.shape[3], cols: prev.shape[3], storage: prev.storage), push, tb: true)
            cores[k - 1] = Tensor(shape: [prev.shape[0], prev.shape[1], prev.shape[2], keep], storage: merged.storage)
            k -= 1
        }
        // Back to the center with QRs (those bonds are already truncated). A square or wide
        // unfolding takes the identity as its orthogonal q, as in `exact`.
        for k in 0..<center {
            let c = cores[k]
            let mat = Matrix(rows: c.count / c.shape[3], cols: c.shape[3], storage: c.storage)
            let (q, r) = mat.rows <= mat.cols ? (Matrix<Double>.identity(mat.rows), mat) : LA.qr(mat)
            cores[k] = Tensor(shape: [c.shape[0], c.shape[1], c.shape[2], q.cols], storage: q.storage)
            let next = cores[k + 1]
            let merged = LA.mul(r, Matrix(rows: next.shape[0], cols: next.count / next.shape[0], storage: next.storage))
            cores[k + 1] = Tensor(shape: [r.rows, next.shape[1], next.shape[2], next.shape[3]], storage: merged.storage)
        }
        // Bonds center … d−2: truncate left to right.
        for k in center..<(d - 1) {
            let c = cores[k]
            let (u, rest, tail) = BondTruncation.truncate(Matrix(rows: c.count / c.shape[3], cols: c.shape[3], storage: c.storage),
                                                          tolerance: delta, maxRank: maxRank)
            let keep = u.cols
            tails.append(tail)
            cores[k] = Tensor(shape: [c.shape[0], c.shape[1], c.shape[2], keep], storage: u.storage)
            let next = cores[k + 1]
            let merged = LA.mul(rest, Matrix(rows: next.shape[0], cols: next.count / next.shape[0], storage: next.storage))
            cores[k + 1] = Tensor(shape: [keep, next.shape[1], next.shape[2], next.shape[3]], storage: merged.storage)
        }
        return tails
    }
}
