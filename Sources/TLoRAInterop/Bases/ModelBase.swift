import TLoRAIO

/// What `merge --base` and `inspect` read as a base model: a Hugging Face checkpoint (a directory or
/// one `.safetensors` file), a diffusers pipeline directory (`model_index.json` and one folder per
/// component), or a single-file diffusion checkpoint (`model.diffusion_model.*`, `conditioner.*`,
/// `cond_stage_model.*`, `first_stage_model.*` names in one `.safetensors` file).
///
/// Every tensor has one *qualified* name: the component's name, a dot and the tensor's own name in a
/// pipeline (`unet.down_blocks.0.resnets.0.conv1.weight`); the tensor's own name otherwise. Component
/// names are folder names without dots, so the split is never ambiguous.
public final class ModelBase: Sendable {
    public enum Layout: String, Sendable {
        case checkpoint
        case pipeline = "diffusers-pipeline"
        case singleFile = "single-file"
    }

    /// One model of the base: a pipeline's `unet`, `text_encoder`, …, or the whole checkpoint.
    public struct Component: Sendable {
        /// The folder name in a pipeline (`unet`); empty for a checkpoint or a single file.
        public var name: String
        /// `model_index.json`'s library and class (`diffusers`, `UNet2DConditionModel`).
        public var library: String?
        public var className: String?
        /// The weight files: one set, or one per variant (`diffusion_pytorch_model.fp16.safetensors`
        /// beside the f32 one). Every set holds the same tensor names and shapes.
        public var weightSets: [Checkpoint]
        /// The variant of each set (`nil` for the plain file names).
        public var variants: [String?]

        /// The first set, whose names and shapes stand for all.
        public var checkpoint: Checkpoint { weightSets[0] }
    }

    public let path: String
    public let layout: Layout
    public let components: [Component]
    /// Pipeline folders that have weights tlora cannot read (only `.bin`), by name.
    public let unreadableComponents: [String]
    private let componentIndex: [String: Int]

    public init(path: String) throws {
        self.path = path
        switch pathKind(path) {
        case .missing: throw IOError.notFound(path: path)
        case .other: throw IOError.notAFile(path: path)
        case .file:
            let checkpoint = try Checkpoint(path: path)
            layout = SingleFileNames.isSingleFile(checkpoint.tensorNames) ? .singleFile : .checkpoint
            components = [Component(name: "", weightSets: [checkpoint], variants: [nil])]
            unreadableComponents = []
        case .directory:
            if pathKind(joinPath(path, Pipeline.indexName)) == .file {
                layout = .pipeline
                (components, unreadableComponents) = try Pipeline.components(of: path)
            } else {
                layout = .checkpoint
                components = [Component(name: "", weightSets: [try Checkpoint(path: path)], variants: [nil])]
                unreadableComponents = []
            }
        }
        var index: [String: Int] = [:]
        for (i, c) in components.enumerated() { index[c.name] = i }
        componentIndex = index
    }

    /// A base that is one checkpoint already read (a directory, or a file: a single-file diffusion
    /// checkpoint when its names say so).
    public init(checkpoint: Checkpoint) {
        path = checkpoint.path
        layout = pathKind(checkpoint.path) == .file && SingleFileNames.isSingleFile(checkpoint.tensorNames) ? .singleFile : .checkpoint
        components = [Component(name: "", weightSets: [checkpoint], variants: [nil])]
        unreadableComponents = []
        componentIndex = ["": 0]
    }

    /// The qualified name of `tensor` in component `component`.
    public static func qualified(component: String, tensor: String) -> String {
        component.isEmpty ? tensor : component + "." + tensor
    }

    /// The component and the component's own tensor name of a qualified name.
    public func locate(_ qualified: String) -> (component: Int, tensor: String)? {
        if layout == .pipeline {
            guard let dot = qualified.firstIndex(of: "."), let c = componentIndex[String(qualified[..<dot])] else { return nil }
            let tensor = String(qualified[qualified.index(after: dot)...])
            return components[c].checkpoint.shardOfTensor[tensor] != nil ? (c, tensor) : nil
        }
        return components[0].checkpoint.shardOfTensor[qualified] != nil ? (0, qualified) : nil
    }

    /// The header entry of a qualified name (from the component's first weight set).
    public func entry(_ qualified: String) -> SafetensorsEntry? {
        guard let (c, tensor) = locate(qualified) else { return nil }
        return components[c].checkpoint.entry(tensor)?.entry
    }

    /// Every tensor's qualified name and entry, component by component, shard by shard in file order.
    public var tensors: [(name: String, entry: SafetensorsEntry)] {
        components.flatMap { c in
            c.checkpoint.shards.flatMap { shard in shard.entries.map { (Self.qualified(component: c.name, tensor: $0.name), $0) } }
        }
    }

    /// The component named `name` (`""` for a checkpoint or a single file).
    public func component(named name: String) -> Component? { componentIndex[name].map { components[$0] } }

    /// Bytes of every weight file (all sets, all shards).
    public var weightBytes: Int {
        components.reduce(0) { total, c in total + c.weightSets.reduce(0) { $0 + $1.shards.reduce(0) { $0 + $1.fileBytes.count } } }
    }
}
