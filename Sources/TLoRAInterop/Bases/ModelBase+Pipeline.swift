import TLoRAIO

extension ModelBase {
    /// A diffusers pipeline directory (what `DiffusionPipeline.save_pretrained` writes).
    ///
    /// `model_index.json` maps component names to `[library, class]` (or `[null, null]` for an absent
    /// one); each present component is a folder. A model component's weights are
    /// `diffusion_pytorch_model.safetensors` (diffusers models) or `model.safetensors` (transformers
    /// models), or shards listed in `<that name>.index.json`, each optionally with a variant
    /// (`diffusion_pytorch_model.fp16.safetensors`). Folders without weights (scheduler, tokenizer)
    /// are not components: a merge copies them.
    public enum Pipeline {
        public static let indexName = "model_index.json"
        static let stems = ["diffusion_pytorch_model", "model"]

        /// The components `model_index.json` names: `(folder, library, class)` for each `[library, class]`
        /// pair that is not `[null, null]`; settings (`_class_name`, `requires_safety_checker`, …) skipped.
        ///
        /// - Throws: `InteropError` for invalid JSON, a root that is not an object, or a component name
        ///   that is not a plain folder name.
        public static func entries(_ bytes: [UInt8], path indexPath: String) throws -> [(name: String, library: String, className: String)] {
            let json: JSONValue
            do {
                json = try JSONParser.parse(bytes)
            } catch let e as JSONError {
                throw InteropError(.invalidConfig, indexPath, "\(e)")
            }
            guard let root = json.objectValue else { throw InteropError(.invalidConfig, indexPath, "not a JSON object") }
            var out: [(String, String, String)] = []
            for (name, value) in root.pairs where !name.hasPrefix("_") {
                guard let pair = value.arrayValue, pair.count == 2 else { continue }  // settings like requires_safety_checker
                guard let library = pair[0].stringValue, let className = pair[1].stringValue else { continue }
                guard Self.isComponentName(name) else {
                    throw InteropError(.malformed, indexPath, "component name \"\(name)\" is not a plain folder name")
                }
                out.append((name, library, className))
            }
            return out
        }

        static func components(of directory: String) throws -> ([Component], [String]) {
            let indexPath = joinPath(directory, indexName)
            var components: [Component] = []
            var unreadable: [String] = []
            for (name, library, className) in try entries(try readWholeFile(path: indexPath, limit: 1 << 20), path: indexPath) {
                let folder = joinPath(directory, name)
                guard pathKind(folder) == .directory else { continue }
                let sets = try weightSets(in: folder)
                if sets.isEmpty {
                    let files = (try? directoryEntries(folder)) ?? []
                    if files.contains(where: { $0.hasSuffix(".bin") || $0.hasSuffix(".ckpt") || $0.hasSuffix(".pt") }) { unreadable.append(name) }
                    continue
                }
                try checkVariantsAgree(sets, folder: folder)
                components.append(Component(name: name, library: library, className: className,
                                            weightSets: sets.map(\.checkpoint), variants: sets.map(\.variant)))
            }
            guard !components.isEmpty else {
                throw InteropError(.missingFile, directory, "a diffusers pipeline without safetensors weights in any component folder")
            }
            return (components, unreadable)
        }

        /// Folder names only: no separators, no dots (qualified names split at the first dot), not empty.
        static func isComponentName(_ name: String) -> Bool {
            !name.isEmpty && !name.contains("/") && !name.contains(".") && !name.contains("\0")
        }

        /// Each weight set in a component folder, plain names first, then variants in name order.
        static func weightSets(in folder: String) throws -> [(checkpoint: Checkpoint, variant: String?)] {
            let files = try directoryEntries(folder).sorted()
            var found: [(stem: String, variant: String?, indexed: Bool)] = []
            for stem in stems {
                for f in files where f.hasPrefix(stem + ".") {
                    let rest = f.dropFirst(stem.count + 1)
                    if rest == "safetensors" || rest == "safetensors.index.json" {
                        found.append((stem, nil, rest.hasSuffix("json")))
                    } else if let dot = rest.firstIndex(of: "."), rest[rest.index(after: dot)...] == "safetensors"
                                || rest[rest.index(after: dot)...] == "safetensors.index.json" {
                        found.append((stem, String(rest[..<dot]), rest.hasSuffix("json")))
                    }
                }
                if !found.isEmpty { break }  // one stem per folder
            }
            var sets: [(Checkpoint, String?)] = []
            var seen = Set<String>()
            // An index wins over a lone file of the same variant (save_pretrained writes one or the other).
            for f in found.sorted(by: { ($0.variant ?? "", $0.indexed ? 0 : 1) < ($1.variant ?? "", $1.indexed ? 0 : 1) }) {
                let key = f.variant ?? ""
                guard seen.insert(key).inserted else { continue }
                let suffix = f.variant.map { ".\($0)" } ?? ""
                let single = f.stem + suffix + ".safetensors"
                sets.append((try Checkpoint(path: folder, singleName: single, indexName: single + ".index.json"), f.variant))
            }
            return sets
        }

        static func checkVariantsAgree(_ sets: [(checkpoint: Checkpoint, variant: String?)], folder: String) throws {
            guard let first = sets.first else { return }
            for s in sets.dropFirst() {
                let a = first.checkpoint, b = s.checkpoint
                guard a.shardOfTensor.count == b.shardOfTensor.count else {
                    throw InteropError(.malformed, folder, "variant \(s.variant ?? "(plain)") holds \(b.shardOfTensor.count) tensors but the first weight set holds \(a.shardOfTensor.count)")
                }
                for name in a.tensorNames {
                    guard let x = a.entry(name)?.entry, let y = b.entry(name)?.entry, x.shape == y.shape else {
                        throw InteropError(.malformed, folder, "variant \(s.variant ?? "(plain)") differs from the first weight set at tensor \(name)")
                    }
                }
            }
        }
    }
}
