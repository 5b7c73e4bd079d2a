import TLoRANumerics

extension AdapterBank {
    /// Member `name` as an ordinary adapter: every module a LoRA of the shared rank
    /// `min(k_out, k_in)` with `ΔW = scale · U Σ Vᵀ` exactly (to rounding in `dtype`), balanced from
    /// the core's SVD `Σ = P S Qᵀ`: `B = U P √S`, `A = √S Qᵀ Vᵀ`. The member's metadata, scales,
    /// DoRA magnitudes, replaced tensors and per-module error records come along.
    ///
    /// - Parameter dtype: the factors' dtype; nil = the core's.
    /// - Throws: `ModelError` when there is no such member or a basis is missing.
    public func adapter(member name: String, dtype: DType? = nil) throws -> Adapter {
        guard let member = member(named: name) else {
            let names = members.prefix(8).map(\.name).joined(separator: ", ")
            throw ModelError(.unknownReference, "bank", "no member \(name) (members: \(names)\(members.count > 8 ? ", …" : ""))")
        }
        let modules = try member.modules.map { m -> AdapterModule in
            guard let basis = basis(named: m.basis) else { throw ModelError(.unknownReference, "bank member \(name): \(m.name)", "bank basis \(m.basis) is missing") }
            guard m.core.allFinite, basis.outBasis.allFinite, basis.inBasis.allFinite else {
                throw ModelError(.invalidValue, "bank member \(name): \(m.name)", "the core or its bases hold NaN or infinite values")
            }
            let (b, a) = Self.loraFactors(outBasis: basis.outBasis.matrix(), core: m.core.matrix(), inBasis: basis.inBasis.matrix())
            let t = dtype ?? m.core.dtype
            return m.module(update: .lowRank(a: StoredTensor(a, dtype: t), b: StoredTensor(b, dtype: t)))
        }
        var metadata = member.metadata
        metadata["bank_member"] = name
        return Adapter(metadata: metadata, modules: modules, replacedTensors: member.replacedTensors)
    }

    /// `(B, A)` with `B·A = U·core·Vᵀ`, balanced through the core's SVD.
    public static func loraFactors(outBasis u: Matrix<Double>, core: Matrix<Double>, inBasis v: Matrix<Double>) -> (Matrix<Double>, Matrix<Double>) {
        let f = svd(core)
        let s = f.s
        var left = f.u, right = f.vt
        for (k, sigma) in s.enumerated() {
            let root = sigma.squareRoot()
            for i in 0..<left.rows { left[i, k] *= root }
            for j in 0..<right.cols { right[k, j] *= root }
        }
        return (matmul(u, left), matmul(right, v, transposeB: true))
    }
}
