import TLoRAIO
import TLoRAModel

/// Reads a research adapter's state dict and maps it to an `Adapter` with native updates
/// (tensor trains, joint trains, Tucker groups): no tensor is densified or re-encoded.
public enum ResearchStateDict {
    /// The state dict's tensors in file order, from safetensors or a PyTorch zip archive.
    public static func tensors(path: String) throws -> [(name: String, tensor: StoredTensor)] {
        try tensors(file: try MappedFile(path: path))
    }

    /// The state dict's tensors from a file already in memory (`file.path` names it in messages).
    public static func tensors(file: MappedFile) throws -> [(name: String, tensor: StoredTensor)] {
        let head = Array(file.bytes.prefix(4))
        if head == [0x50, 0x4B, 0x03, 0x04] { return try TorchStateDict.read(file: file) }
        let st = try SafetensorsFile(file: file)
        return try st.entries.sorted { $0.dataRange.lowerBound < $1.dataRange.lowerBound }.map { ($0.name, try st.tensor($0.name)) }
    }

    /// The research format of a state dict file, or nil when it is none of them.
    public static func detect(path: String) throws -> ResearchFormat? {
        let file = try MappedFile(path: path)
        if Array(file.bytes.prefix(4)) == [0x50, 0x4B, 0x03, 0x04] {
            return ResearchFormat.detect(names: try TorchStateDict.read(file: file).map(\.name))
        }
        return ResearchFormat.detect(names: try SafetensorsFile(file: file).tensorNames)
    }

    /// Reads `path` as whichever research format its names say.
    public static func read(path: String, options: ResearchOptions) throws -> Adapter {
        try read(file: try MappedFile(path: path), options: options)
    }

    /// Reads a state dict already in memory (`file.path` names it in messages).
    public static func read(file: MappedFile, options: ResearchOptions) throws -> Adapter {
        let path = file.path
        let tensors = try tensors(file: file)
        guard let format = ResearchFormat.detect(names: tensors.map(\.name)) else {
            throw InteropError(.unrecognized, path, "not a TT-LoRA, TensorGuide or TensLoRA state dict (no tt_cores, tt_layer/z_latent or tucker_core tensors)")
        }
        var adapter: Adapter
        switch format {
        case .ttLoRA: adapter = try TTLoRAReader.adapter(tensors, path: path, options: options)
        case .tensorGuide: adapter = try TensorGuideReader.adapter(tensors, path: path, options: options)
        case .tensLoRA: adapter = try TensLoRAReader.adapter(tensors, path: path, options: options)
        }
        adapter.metadata.sourceFormat = format.rawValue
        adapter.metadata["research.source"] = format.sourceName
        do {
            try adapter.validate()
        } catch let e as ModelError {
            throw InteropError(.invalidAdapter, path, e.description)
        }
        return adapter
    }

    // MARK: shared helpers

    static func alpha(_ options: ResearchOptions, _ format: ResearchFormat, path: String, hint: String) throws -> Double {
        guard let a = options.alpha else {
            throw InteropError(.needsOption, path, "\(format.sourceName) state dicts do not record the update's scale; give --alpha (\(hint))")
        }
        guard a.isFinite else { throw InteropError(.nonFiniteValues, path, "--alpha \(a) is not finite") }
        return a
    }

    static func moduleName(_ raw: String, options: ResearchOptions, path: String) throws -> String {
        guard let p = options.stripPrefix, !p.isEmpty else { return raw }
        guard raw.hasPrefix(p), raw.count > p.count else { throw InteropError(.unmatchedNames, path, "module \(raw) does not start with --strip-prefix \(p)") }
        return String(raw.dropFirst(p.count))
    }

    static func baseShape(_ module: String, _ format: ResearchFormat, options: ResearchOptions, path: String) throws -> [Int] {
        guard let base = options.baseShapes else {
            throw InteropError(.needsOption, path, "\(format.sourceName) state dicts do not record the layers' in/out sizes; give the base model with --base-config DIR")
        }
        guard let s = base.weightShape(of: module) else {
            throw InteropError(.unmatchedNames, path, "module \(module): the base \(base.path) has no 2-D weight \(module).weight")
        }
        return s
    }

    static func checkFinite(_ t: StoredTensor, _ what: String, path: String) throws {
        guard t.allFinite else { throw InteropError(.nonFiniteValues, path, "\(what) holds NaN or infinite values") }
    }

    /// `prefix.<k>` indices 0…d−1 with none missing, in order.
    static func ordered<T>(_ items: [Int: T], module: String, what: String, path: String) throws -> [T] {
        let keys = items.keys.sorted()
        guard let last = keys.last else { throw InteropError(.missingTensor, path, "module \(module) has no \(what)") }
        if keys != Array(0...last) {
            let missing = (0...last).filter { items[$0] == nil }
            throw InteropError(.missingTensor, path, "module \(module): \(what) \(missing.map(String.init).joined(separator: ", ")) missing (found \(keys.map(String.init).joined(separator: ", ")))")
        }
        return keys.compactMap { items[$0] }
    }

    /// Splits `<stem>.<k>` into stem and k.
    static func indexed(_ key: String, marker: String) -> (String, Int)? {
        guard let r = key.ranges(of: marker).last else { return nil }
        guard let k = Int(key[r.upperBound...]), k >= 0, String(k) == key[r.upperBound...] else { return nil }
        return (String(key[..<r.lowerBound]), k)
    }
}
