import TLoRAIO
import TLoRAModel

/// A Hugging Face checkpoint: a directory with `model.safetensors`, or shards listed in
/// `model.safetensors.index.json`, or a single `.safetensors` file.
public final class Checkpoint: Sendable {
    /// The directory (or the file, for a single-file checkpoint).
    public let path: String
    /// Shard file names, sorted (one entry without an index).
    public let shardNames: [String]
    public let shards: [SafetensorsFile]
    /// The index's `metadata` object, if there is an index.
    public let indexMetadata: JSONObject?
    /// Tensor name → shard number.
    public let shardOfTensor: [String: Int]
    /// The index file's name when the shards are listed in one (`model.safetensors.index.json`).
    public let indexFileName: String?

    public static let indexName = "model.safetensors.index.json"
    public static let singleName = "model.safetensors"

    /// A checkpoint file, or a directory with `singleName` or shards listed in `indexName` (a
    /// diffusers component names them `diffusion_pytorch_model.safetensors[.index.json]`).
    public init(path: String, singleName: String = Checkpoint.singleName, indexName: String = Checkpoint.indexName) throws {
        self.path = path
        switch pathKind(path) {
        case .file:
            let shard = try SafetensorsFile(path: path)
            shardNames = [baseName(path)]
            shards = [shard]
            indexMetadata = nil
            indexFileName = nil
            shardOfTensor = Dictionary(uniqueKeysWithValues: shard.tensorNames.map { ($0, 0) })
        case .directory:
            let indexPath = joinPath(path, indexName)
            if pathKind(indexPath) == .file {
                (shardNames, shards, indexMetadata, shardOfTensor) = try Self.loadIndexed(directory: path, indexPath: indexPath)
                indexFileName = indexName
            } else if pathKind(joinPath(path, singleName)) == .file {
                let shard = try SafetensorsFile(path: joinPath(path, singleName))
                shardNames = [singleName]
                shards = [shard]
                indexMetadata = nil
                indexFileName = nil
                shardOfTensor = Dictionary(uniqueKeysWithValues: shard.tensorNames.map { ($0, 0) })
            } else {
                throw InteropError(.missingFile, path, "no \(singleName) or \(indexName) in this directory")
            }
        case .missing:
            throw IOError.notFound(path: path)
        case .other:
            throw IOError.notAFile(path: path)
        }
    }

    /// One safetensors file already open, as a one-shard checkpoint.
    public init(file: SafetensorsFile) {
        path = file.path
        shardNames = [baseName(file.path)]
        shards = [file]
        indexMetadata = nil
        indexFileName = nil
        shardOfTensor = Dictionary(file.tensorNames.map { ($0, 0) }, uniquingKeysWith: { a, _ in a })
    }

    private static func loadIndexed(directory: String, indexPath: String) throws -> ([String], [SafetensorsFile], JSONObject?, [String: Int]) {
        let json: JSONValue
        do {
            json = try JSONParser.parse(try readWholeFile(path: indexPath))
        } catch let e as JSONError {
            throw InteropError(.malformed, indexPath, "\(e)")
        }
        guard let map = json["weight_map"]?.objectValue else { throw InteropError(.malformed, indexPath, "no weight_map object") }
        var names: [String] = []
        var number: [String: Int] = [:]
        var shardOf: [String: Int] = [:]
        for (tensor, value) in map.pairs {
            guard let file = value.stringValue, !file.isEmpty, !file.contains("/"), file != "..", file != "." else {
                throw InteropError(.malformed, indexPath, "weight_map.\(tensor) must name a shard file in the same directory")
            }
            if number[file] == nil {
                number[file] = names.count
                names.append(file)
            }
            shardOf[tensor] = number[file]
        }
        // Number shards in file-name order (model-00001-of-00003 …), not first-mention order.
        let sorted = names.sorted()
        let renumber = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($0.offset, sorted.firstIndex(of: $0.element)!) })  // safe: same set
        names = sorted
        shardOf = shardOf.mapValues { renumber[$0]! }  // safe: every value came from `number`
        let shards = try names.map { try SafetensorsFile(path: joinPath(directory, $0)) }
        for (tensor, s) in shardOf where shards[s].entry(tensor) == nil {
            throw InteropError(.malformed, joinPath(directory, names[s]), "the index places \(tensor) in this shard but it is not there")
        }
        for (s, shard) in shards.enumerated() {
            for name in shard.tensorNames where shardOf[name] != s {
                throw InteropError(.malformed, joinPath(directory, names[s]), "tensor \(name) is in this shard but the index does not list it here")
            }
        }
        return (names, shards, json["metadata"]?.objectValue, shardOf)
    }

    /// Every tensor name, shard by shard in file order.
    public var tensorNames: [String] { shards.flatMap { $0.entries.map(\.name) } }

    public func entry(_ name: String) -> (shard: SafetensorsFile, entry: SafetensorsEntry)? {
        guard let s = shardOfTensor[name], let e = shards[s].entry(name) else { return nil }
        return (shards[s], e)
    }

    /// The path of shard `i`.
    public func shardPath(_ i: Int) -> String { shards[i].path }

    /// The model's `config.json`, when the checkpoint is a directory that has one.
    public func config() throws -> JSONObject? {
        guard pathKind(path) == .directory else { return nil }
        let p = joinPath(path, "config.json")
        guard pathKind(p) == .file else { return nil }
        do {
            return try JSONParser.parse(try readWholeFile(path: p)).objectValue
        } catch let e as JSONError {
            throw InteropError(.invalidConfig, p, "\(e)")
        }
    }
}
