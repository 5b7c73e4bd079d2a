import TLoRANumerics

/// How `tlora merge` writes its output.
public struct MergeOptions: Sendable {
    /// Output element type for floating tensors: the base's own (`nil`) or one for all.
    public var dtype: DType?
    /// Multiplies every module's update (PEFT `merge_and_unload` is 1).
    public var scale: Double
    public var overwrite: Bool
    /// Called with (bytes done, bytes total) as tensors are written.
    public var progress: (@Sendable (Int, Int) -> Void)?

    public init(dtype: DType? = nil, scale: Double = 1, overwrite: Bool = false, progress: (@Sendable (Int, Int) -> Void)? = nil) {
        self.dtype = dtype
        self.scale = scale
        self.overwrite = overwrite
        self.progress = progress
    }
}

/// What a merge did.
public struct MergeReport: Sendable {
    public var updatedTensors: Int
    public var replacedTensors: Int
    public var copiedTensors: Int
    public var shards: Int
    public var bytesWritten: Int
    /// Files and folders copied from the base (a pipeline's component folders the adapter does not change).
    public var copiedFiles: [String]
    /// Every base tensor the merge changes: its name, `updated` or `replaced`, and the adapter
    /// module whose update it gets (nil for a replacement).
    public var changes: [(tensor: String, action: String, module: String?)] = []
    /// A pipeline's component folders written anew.
    public var rewrittenComponents: [String] = []
    /// Modules dropped because their names matched nothing in the base (`--skip-unmatched`).
    public var skippedModules: [String] = []
}
