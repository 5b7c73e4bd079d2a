extension Tensor {
    /// The tensor with its axes reordered: result axis k is input axis `axes[k]`, so
    /// `result[i_0, …, i_{N−1}] = self[j]` with `j[axes[k]] = i_k`. `axes` must be a permutation of
    /// 0..<rank.
    ///
    /// Axes of extent 1 are dropped and runs of axes that stay adjacent are merged first, so most
    /// permutations reduce to a copy, a batch of transposes, or a short odometer. The innermost loop
    /// runs over the result's last axis; when that is not the input's fastest one, the two are
    /// tiled (32×32) so both sides stay in cache.
    /// - Complexity: O(count), no temporaries besides the result.
    public func permuted(_ axes: [Int]) -> Tensor {
        precondition(axes.count == rank && Set(axes) == Set(0..<rank), "permuted: \(axes) is not a permutation of 0..<\(rank)")
        let newShape = axes.map { shape[$0] }
        if count == 0 { return Tensor(shape: newShape, storage: []) }
        let plan = PermutationPlan(shape: shape, axes: axes)
        let n = count
        let out = [Scalar](unsafeUninitializedCapacity: n) { dst, initialized in
            storage.withUnsafeBufferPointer { src in
                // Safe: count > 0, so neither buffer is empty. Elements are moved as raw bits of
                // their size, so the loops are concrete even when this method runs unspecialized.
                let s = UnsafeRawPointer(src.baseAddress!), d = UnsafeMutableRawPointer(dst.baseAddress!)
                switch MemoryLayout<Scalar>.size {
                case 8: plan.run(s.assumingMemoryBound(to: UInt64.self), d.assumingMemoryBound(to: UInt64.self))
                case 4: plan.run(s.assumingMemoryBound(to: UInt32.self), d.assumingMemoryBound(to: UInt32.self))
                case 2: plan.run(s.assumingMemoryBound(to: UInt16.self), d.assumingMemoryBound(to: UInt16.self))
                default: preconditionFailure("permuted: unsupported element size")
                }
            }
            initialized = n
        }
        return Tensor(shape: newShape, storage: out)
    }
}

/// A permutation reduced to its essential axes: `extents[k]` and `strides[k]` (input strides) for
/// each result axis after dropping unit axes and merging adjacent runs; result strides are the
/// row-major ones of `extents`.
struct PermutationPlan {
    var extents: [Int] = []
    var strides: [Int] = []

    init(shape: [Int], axes: [Int]) {
        var inStride = [Int](repeating: 1, count: shape.count)
        if shape.count > 1 { for k in stride(from: shape.count - 2, through: 0, by: -1) { inStride[k] = inStride[k + 1] * shape[k + 1] } }
        var prevAxis = -2
        for a in axes where shape[a] != 1 {
            if a == prevAxis + 1, let last = extents.indices.last {
                // Input axes a−1, a are consecutive in the result too: one axis of extent product,
                // with the inner (a's) stride.
                extents[last] *= shape[a]
                strides[last] = inStride[a]
            } else {
                extents.append(shape[a])
                strides.append(inStride[a])
            }
            prevAxis = a
        }
        if extents.isEmpty { extents = [1]; strides = [1] }
    }

    @_specialize(where T == UInt64)
    @_specialize(where T == UInt32)
    func run<T: FixedWidthInteger>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>) {
        let d = extents.count
        let n = extents[d - 1], s = strides[d - 1]
        // The result axis that reads the input contiguously, if it is not the innermost one.
        let unitAxis = strides.lastIndex(of: 1).flatMap { $0 < d - 1 ? $0 : nil }
        if let p = unitAxis, s != 1 {
            tiled(src, dst, inner: p)
            return
        }
        var outer = 1
        for k in 0..<(d - 1) { outer *= extents[k] }
        var index = [Int](repeating: 0, count: max(d - 1, 1))
        var base = 0, o = 0
        for _ in 0..<outer {
            if s == 1 {
                (dst + o).update(from: src + base, count: n)
            } else {
                for i in 0..<n { dst[o + i] = src[base + i * s] }
            }
            o += n
            // Odometer over the outer result axes.
            var k = d - 2
            while k >= 0 {
                index[k] += 1
                base += strides[k]
                if index[k] < extents[k] { break }
                base -= strides[k] * extents[k]
                index[k] = 0
                k -= 1
            }
        }
    }

    /// Result axes p (input-contiguous) and d−1 (the result's innermost) form 2-D transposes that
    /// are done in 32×32 tiles; every other axis is an outer loop.
    @_specialize(where T == UInt64)
    @_specialize(where T == UInt32)
    private func tiled<T: FixedWidthInteger>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>, inner p: Int) {
        let d = extents.count
        let np = extents[p], nq = extents[d - 1], sq = strides[d - 1]
        var outStride = [Int](repeating: 1, count: d)
        for k in stride(from: d - 2, through: 0, by: -1) { outStride[k] = outStride[k + 1] * extents[k + 1] }
        let op = outStride[p]
        let others = (0..<(d - 1)).filter { $0 != p }
        var outer = 1
        for k in others { outer *= extents[k] }
        var index = [Int](repeating: 0, count: d)
        var inBase = 0, outBase = 0
        let tile = 32
        for _ in 0..<outer {
            var i0 = 0
            while i0 < np {
                let i1 = min(i0 + tile, np)
                var j0 = 0
                while j0 < nq {
                    let j1 = min(j0 + tile, nq)
                    for i in i0..<i1 {
                        let srow = src + inBase + i, drow = dst + outBase + i * op
                        for j in j0..<j1 { drow[j] = srow[j * sq] }
                    }
                    j0 = j1
                }
                i0 = i1
            }
            var t = others.count - 1
            while t >= 0 {
                let k = others[t]
                index[k] += 1
                inBase += strides[k]
                outBase += outStride[k]
                if index[k] < extents[k] { break }
                inBase -= strides[k] * extents[k]
                outBase -= outStride[k] * extents[k]
                index[k] = 0
                t -= 1
            }
        }
    }
}
