import TLoRAModel

/// Fixed numbers of the `.tlora` format, version 1 (docs/FORMAT.md).
public enum ContainerLayout {
    /// `\x89TLORA\r\n`: the high byte catches 7-bit transfers, CR LF catches newline translation.
    public static let magic: [UInt8] = [0x89, 0x54, 0x4C, 0x4F, 0x52, 0x41, 0x0D, 0x0A]
    public static let majorVersion = 1
    public static let minorVersion = 0
    /// Magic (8), major (2), minor (2), flags (4), header length (8), file length (8).
    public static let preambleLength = 32
    /// XXH64 of preamble + header JSON, right after the JSON.
    public static let headerChecksumLength = 8
    /// Blob alignment, relative to the file start.
    public static let alignment = 64
    /// Largest accepted header JSON (64 MiB): enough for 10⁵ tensors, small enough to read eagerly.
    public static let maxHeaderLength = 64 << 20
    /// Dimensions per tensor.
    public static let maxRank = 8
    /// Bytes in a tensor, module or group name.
    public static let maxNameLength = 1024
    /// Required features this reader implements (docs/FORMAT.md §2.1): `tt-index-order` (a tensor
    /// train whose row or column digits are not most-significant-first), `joint-train` (TensorGuide's
    /// joint train of both LoRA factors). Files that use neither list none.
    public static let ttIndexOrderFeature = "tt-index-order"
    public static let jointTrainFeature = "joint-train"
    /// The structured kinds of issue 12 (docs/FORMAT.md §2.1): a module of a convolution
    /// (`kernel`), DoRA on the input channels, a bias change, and one feature per update form.
    public static let convKernelFeature = "conv-kernel"
    public static let doraInAxisFeature = "dora-in-axis"
    public static let biasDeltaFeature = "bias-delta"
    /// The feature an update form needs, nil for the forms of version 1.0.
    public static func feature(of kind: UpdateKind) -> String? {
        switch kind {
        case .lowRank, .tensorTrain, .tuckerSlice, .dense: return nil
        case .jointTrain: return jointTrainFeature
        case .convTucker: return "conv-tucker"
        case .kronecker: return "kronecker"
        case .hadamard: return "hadamard"
        case .diagonalLowRank: return "low-rank-diagonal"
        case .vera: return "vera"
        case .featureScale: return "ia3"
        case .bankCore: return bankFeature
        }
    }
    /// `adapter-bank`: the file is a bank of many adapters (a `bank` object, §2.8), not one adapter.
    public static let bankFeature = "adapter-bank"
    public static let knownFeatures: Set<String> = Set([ttIndexOrderFeature, convKernelFeature, doraInAxisFeature, biasDeltaFeature]
        + UpdateKind.allCases.compactMap(feature(of:)))

    /// Offset of the first blob for a header of `headerLength` bytes, or nil on overflow.
    public static func dataStart(headerLength: Int) -> Int? {
        guard let end = CheckedAdd.sum(preambleLength, headerLength, headerChecksumLength) else { return nil }
        return CheckedAdd.alignUp(end, to: alignment)
    }
}

import TLoRAIO

enum CheckedAdd {
    static func sum(_ values: Int...) -> Int? {
        var s = 0
        for v in values {
            guard let r = CheckedSize.add(s, v) else { return nil }
            s = r
        }
        return s
    }

    static func alignUp(_ v: Int, to a: Int) -> Int? { CheckedSize.alignUp(v, to: a) }
}
