import TLoRAIO

/// Which entries DARE keeps: one Bernoulli(density) draw per entry of each task tensor.
///
/// `tensor` names the task tensor: the module, the adapter's position and the part (`A`, `B` or
/// `delta`), so every tensor gets its own stream and the result does not depend on the order in
/// which modules are processed or on the thread count.
public protocol DropMask: Sendable {
    func keep(tensor: DropMaskKey, count: Int, density: Double) -> [Bool]
}

public struct DropMaskKey: Sendable, Hashable {
    public var module: String
    public var adapter: Int
    /// "A", "B" (the factor-wise methods) or "delta" (the `_svd` methods, on ΔW).
    public var part: String

    public init(module: String, adapter: Int, part: String) {
        self.module = module
        self.adapter = adapter
        self.part = part
    }
}

/// The command line's masks: SplitMix64 streams seeded by XXH64(`seed`, "module|adapter|part");
/// entry i is kept when its 53-bit uniform draw is below `density`. The same seed gives the same
/// masks on every machine.
public struct SeededDropMask: DropMask {
    public var seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    public func keep(tensor: DropMaskKey, count: Int, density: Double) -> [Bool] {
        var state = XXH64.hash(Array("\(tensor.module)|\(tensor.adapter)|\(tensor.part)".utf8), seed: seed)
        return (0..<count).map { _ in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Double(z >> 11) * 0x1p-53 < density
        }
    }
}
