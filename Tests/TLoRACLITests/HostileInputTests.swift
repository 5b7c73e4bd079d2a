import Testing
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import _TLoRATestSupport

/// Every hostile input ends in exit 1 and exactly one line `error: <file>: <problem>`, quickly.
@Suite struct HostileInputTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        /// Builds the input in the directory and returns the command's arguments.
        let make: @Sendable (TemporaryDirectory) -> [String]
        /// A piece of the expected message (after the path).
        let expected: String
        var testDescription: String { name }
    }

    static func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    /// A safetensors file from a header text and data bytes.
    static func safetensors(_ header: String, data: [UInt8] = []) -> [UInt8] {
        let h = Array(header.utf8)
        return u64(UInt64(h.count)) + h + data
    }

    static func file(_ dir: TemporaryDirectory, _ name: String, _ bytes: [UInt8]) -> String {
        let p = dir.file(name)
        TestFiles.write(p, bytes)
        return p
    }

    /// A copy of a fixture PEFT adapter whose config (as text) and/or tensors are replaced.
    static func peft(_ dir: TemporaryDirectory, config: ((String) -> String)? = nil, tensors: [UInt8]? = nil) -> String {
        let src = Fixtures.peft("llama-layers")
        let dst = dir.file("adapter")
        _ = makeDirectory(dst)
        let cfg = String(decoding: TestFiles.read(src + "/adapter_config.json"), as: UTF8.self)
        TestFiles.write(dst + "/adapter_config.json", Array((config?(cfg) ?? cfg).utf8))
        TestFiles.write(dst + "/adapter_model.safetensors", tensors ?? TestFiles.read(src + "/adapter_model.safetensors"))
        return dst
    }

    /// GGUF header bytes: magic, version, counts, then `rest`.
    static func gguf(version: UInt32 = 3, tensors: UInt64 = 0, kv: UInt64 = 0, _ rest: [UInt8] = []) -> [UInt8] {
        u32(0x4655_4747) + u32(version) + u64(tensors) + u64(kv) + rest
    }

    static func ggufString(_ s: String) -> [UInt8] { u64(UInt64(s.utf8.count)) + Array(s.utf8) }

    static let cases: [Case] = [
        // safetensors
        Case(name: "safetensors header length 2^63", make: { d in ["inspect", file(d, "a.safetensors", u64(1 << 63) + Array("{}".utf8))] }, expected: "exceeds 100 MB"),
        Case(name: "safetensors header past EOF", make: { d in ["inspect", file(d, "a.safetensors", u64(4096) + Array("{}".utf8))] }, expected: "truncated safetensors"),
        Case(name: "safetensors not JSON", make: { d in ["inspect", file(d, "a.safetensors", safetensors("{nope}"))] }, expected: "invalid JSON"),
        Case(name: "safetensors duplicate key", make: { d in ["inspect", file(d, "a.safetensors", safetensors(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))] }, expected: "duplicate key"),
        Case(name: "safetensors unknown dtype", make: { d in ["inspect", file(d, "a.safetensors", safetensors(#"{"a":{"dtype":"F5","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))] }, expected: "unsupported dtype"),
        Case(name: "safetensors reversed offsets", make: { d in ["inspect", file(d, "a.safetensors", safetensors(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, data: [0, 0, 0, 0]))] }, expected: "begin ≤ end"),
        Case(name: "safetensors overlap", make: { d in ["inspect", file(d, "a.safetensors", safetensors(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: Array(repeating: 0, count: 8)))] }, expected: "overlaps"),
        Case(name: "safetensors gap", make: { d in ["inspect", file(d, "a.safetensors", safetensors(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: Array(repeating: 0, count: 8)))] }, expected: "gap before tensor a"),
        Case(name: "safetensors past EOF", make: { d in ["inspect", file(d, "a.safetensors", safetensors(#"{"a":{"dtype":"F32","shape":[1000],"data_offsets":[0,4000]}}"#, data: [0, 0]))] }, expected: "tensors need 4000 data bytes"),
        Case(name: "safetensors shape overflow", make: { d in ["inspect", file(d, "a.safetensors", safetensors(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))] }, expected: "overflows"),
        Case(name: "safetensors trailing bytes", make: { d in ["inspect", file(d, "a.safetensors", safetensors(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0, 9]))] }, expected: "unexpected bytes after the last tensor"),
        Case(name: "safetensors metadata not string", make: { d in ["inspect", file(d, "a.safetensors", safetensors(#"{"__metadata__":{"a":1}}"#))] }, expected: "is not a string"),
        // GGUF
        Case(name: "gguf version 1", make: { d in ["inspect", file(d, "a.gguf", gguf(version: 1))] }, expected: "version 1 is not supported"),
        Case(name: "gguf tensor count 2^63", make: { d in ["inspect", file(d, "a.gguf", gguf(tensors: 1 << 63))] }, expected: "cannot fit"),
        Case(name: "gguf kv count 2^63", make: { d in ["inspect", file(d, "a.gguf", gguf(kv: 1 << 63))] }, expected: "cannot fit"),
        Case(name: "gguf key length past EOF", make: { d in ["inspect", file(d, "a.gguf", gguf(kv: 1, u64(1 << 40)))] }, expected: "runs past the end"),
        Case(name: "gguf duplicate key", make: { d in ["inspect", file(d, "a.gguf", gguf(kv: 2, ggufString("k") + u32(4) + u32(1) + ggufString("k") + u32(4) + u32(1)))] }, expected: "duplicate key k"),
        Case(name: "gguf nested array", make: { d in ["inspect", file(d, "a.gguf", gguf(kv: 1, ggufString("k") + u32(9) + u32(9) + u64(1)))] }, expected: "nested array"),
        Case(name: "gguf array length huge", make: { d in ["inspect", file(d, "a.gguf", gguf(kv: 1, ggufString("k") + u32(9) + u32(10) + u64(1 << 40)))] }, expected: "runs past the end"),
        Case(name: "gguf unknown value type", make: { d in ["inspect", file(d, "a.gguf", gguf(kv: 1, ggufString("k") + u32(77)))] }, expected: "unknown value type"),
        Case(name: "gguf alignment 3", make: { d in ["inspect", file(d, "a.gguf", gguf(kv: 1, ggufString("general.alignment") + u32(4) + u32(3)))] }, expected: "power of two"),
        Case(name: "gguf 5 dimensions", make: { d in ["inspect", file(d, "a.gguf", gguf(tensors: 1, ggufString("t") + u32(5) + Array(repeating: 0, count: 64)))] }, expected: "1 to 4 dimensions"),
        Case(name: "gguf zero dimension", make: { d in ["inspect", file(d, "a.gguf", gguf(tensors: 1, ggufString("t") + u32(2) + u64(0) + u64(4) + u32(0) + u64(0)))] }, expected: "dimension 0"),
        Case(name: "gguf element count overflow", make: { d in ["inspect", file(d, "a.gguf", gguf(tensors: 1, ggufString("t") + u32(4) + u64(1 << 31 - 1) + u64(1 << 31 - 1) + u64(1 << 31 - 1) + u64(1 << 31 - 1) + u32(0) + u64(0)))] }, expected: "too many elements"),
        Case(name: "gguf misaligned offset", make: { d in ["inspect", file(d, "a.gguf", gguf(tensors: 1, ggufString("t") + u32(1) + u64(4) + u32(0) + u64(3)))] }, expected: "not a multiple of the alignment"),
        Case(name: "gguf tensor past EOF", make: { d in ["inspect", file(d, "a.gguf", gguf(tensors: 1, ggufString("t") + u32(1) + u64(1 << 20) + u32(0) + u64(0)))] }, expected: "truncated before the data section"),
        Case(name: "gguf duplicate tensor", make: { d in ["inspect", file(d, "a.gguf", gguf(tensors: 2, ggufString("t") + u32(1) + u64(4) + u32(0) + u64(0) + ggufString("t") + u32(1) + u64(4) + u32(0) + u64(32)))] }, expected: "duplicate tensor t"),
        Case(name: "gguf not an adapter", make: { d in ["inspect", file(d, "a.gguf", gguf(kv: 1, ggufString("general.type") + u32(8) + ggufString("model")))] }, expected: "not a LoRA adapter"),
        // PEFT
        Case(name: "peft r = 0", make: { d in ["inspect", peft(d, config: { $0.replacingFirst("\"r\": 4", with: "\"r\": 0") })] }, expected: "r: must be a positive integer"),
        Case(name: "peft r negative", make: { d in ["inspect", peft(d, config: { $0.replacingFirst("\"r\": 4", with: "\"r\": -3") })] }, expected: "must be a positive integer"),
        Case(name: "peft r not a number", make: { d in ["inspect", peft(d, config: { $0.replacingFirst("\"r\": 4", with: "\"r\": \"4\"") })] }, expected: "must be a positive integer"),
        Case(name: "peft alpha not a number", make: { d in ["inspect", peft(d, config: { $0.replacingFirst("\"lora_alpha\": 8", with: "\"lora_alpha\": \"x\"") })] }, expected: "lora_alpha: must be a finite number"),
        Case(name: "peft config not JSON", make: { d in ["inspect", peft(d, config: { _ in "{r: 8" })] }, expected: "invalid JSON"),
        Case(name: "peft unknown type", make: { _ in ["inspect", Fixtures.peft("llama-oft")] }, expected: "PEFT adapter type OFT"),
        Case(name: "peft rank contradicts tensors", make: { _ in ["inspect", Fixtures.peft("llama-lora-wrong-rank")] }, expected: "gives rank 4 but the tensors have rank 8"),
        Case(name: "peft missing lora_B", make: { d in
            let st = try! SafetensorsFile(path: Fixtures.peft("llama-layers") + "/adapter_model.safetensors")
            let kept = st.entries.filter { !$0.name.contains("q_proj.lora_B") }.map { ($0.name, try! st.tensor($0.name)) }
            let out = d.file("st")
            try! SafetensorsWriter.write(kept, to: out, overwrite: true)
            return ["inspect", peft(d, tensors: TestFiles.read(out))]
        }, expected: "but not both LoRA factors"),
        Case(name: "peft NaN weights refused by merge", make: { d in
            let st = try! SafetensorsFile(path: Fixtures.peft("llama-layers") + "/adapter_model.safetensors")
            let tensors = st.entries.map { e -> (String, StoredTensor) in
                var t = try! st.tensor(e.name)
                if e.name.contains("v_proj.lora_A") { var f = t.floats(); f[3] = .infinity; t = StoredTensor(f, shape: t.shape) }
                return (e.name, t)
            }
            let out = d.file("st")
            try! SafetensorsWriter.write(tensors, to: out, overwrite: true)
            return ["merge", peft(d, tensors: TestFiles.read(out)), "--base", Fixtures.model("tiny-llama"), "-o", d.file("merged")]
        }, expected: "holds NaN or infinite values"),
        Case(name: "adapter shapes do not match the base", make: { d in ["merge", Fixtures.peft("gpt2-lora"), "--base", Fixtures.model("tiny-llama"), "-o", d.file("merged")] }, expected: "the base has no tensor"),
        Case(name: "adapter layer widths do not match the base", make: { d in ["merge", Fixtures.peft("llama-lora"), "--base", Fixtures.model("tiny-bert"), "-o", d.file("merged")] }, expected: "the base has no tensor"),
        // PyTorch archives
        Case(name: "pickle with a forbidden global", make: { d in ["inspect", peftBin(d, pickle: [0x80, 0x02] + Array("cos\nsystem\n".utf8) + [0x71, 0x00, 0x58, 4, 0, 0, 0] + Array("echo".utf8) + [0x85, 0x52, 0x2E])] }, expected: "forbidden global os.system"),
        Case(name: "pickle with eval", make: { d in ["inspect", peftBin(d, pickle: [0x80, 0x02] + Array("cbuiltins\neval\n.".utf8))] }, expected: "forbidden global builtins.eval"),
        Case(name: "pickle with an unknown opcode", make: { d in ["inspect", peftBin(d, pickle: [0x80, 0x02, 0x7D, 0xFE])] }, expected: "opcode 0xfe is not allowed"),
        Case(name: "bin that is not a zip", make: { d in ["inspect", peftBin(d, raw: Array("hello, this is not a zip file at all".utf8))] }, expected: "no end-of-central-directory"),
        // .tlora
        Case(name: "tlora truncated", make: { d in ["inspect", file(d, "t.tlora", [0x89, 0x54, 0x4C, 0x4F, 0x52, 0x41, 0x0D, 0x0A, 1, 0])] }, expected: "truncated"),
    ]

    /// A PEFT directory whose adapter_model.bin is a stored zip holding `pickle` as data.pkl (or `raw`).
    static func peftBin(_ dir: TemporaryDirectory, pickle: [UInt8]? = nil, raw: [UInt8]? = nil) -> String {
        let d = dir.file("binadapter")
        _ = makeDirectory(d)
        TestFiles.write(d + "/adapter_config.json", TestFiles.read(Fixtures.peft("llama-bin") + "/adapter_config.json"))
        TestFiles.write(d + "/adapter_model.bin", raw ?? ZipBuilder.stored([("archive/data.pkl", pickle ?? [])]))
        return d
    }

    @Test(arguments: cases)
    func refusedWithOneLine(c: Case) throws {
        let dir = TemporaryDirectory()
        let args = c.make(dir)
        let r = try CommandRunner.tlora(args)
        #expect(r.status == 1, "\(c.name): exit \(r.status), stderr \(r.stderr)")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(c.name): \(r.stderr)")
        #expect(r.stderr.hasPrefix("error: /"), "\(c.name): must name the file: \(r.stderr)")
        #expect(r.stderr.contains(c.expected), "\(c.name): \(r.stderr)")
        // Nothing half-written.
        #expect(pathKind(dir.file("merged")) == .missing)
    }
}

/// Writes zip archives with stored entries, as torch.save does.
enum ZipBuilder {
    static func stored(_ entries: [(String, [UInt8])]) -> [UInt8] {
        var out = ByteWriter()
        var central = ByteWriter()
        for (name, data) in entries {
            let offset = out.bytes.count
            let n = Array(name.utf8)
            out.write(UInt32(0x0403_4B50)); out.write(UInt16(20)); out.write(UInt16(0)); out.write(UInt16(0))
            out.write(UInt32(0)); out.write(UInt32(0)); out.write(UInt32(data.count)); out.write(UInt32(data.count))
            out.write(UInt16(n.count)); out.write(UInt16(0)); out.write(n); out.write(data)
            central.write(UInt32(0x0201_4B50)); central.write(UInt16(20)); central.write(UInt16(20)); central.write(UInt16(0)); central.write(UInt16(0))
            central.write(UInt32(0)); central.write(UInt32(0)); central.write(UInt32(data.count)); central.write(UInt32(data.count))
            central.write(UInt16(n.count)); central.write(UInt16(0)); central.write(UInt16(0)); central.write(UInt16(0)); central.write(UInt16(0))
            central.write(UInt32(0)); central.write(UInt32(offset)); central.write(n)
        }
        let cdOffset = out.bytes.count
        out.write(central.bytes)
        out.write(UInt32(0x0605_4B50)); out.write(UInt16(0)); out.write(UInt16(0))
        out.write(UInt16(entries.count)); out.write(UInt16(entries.count))
        out.write(UInt32(central.bytes.count)); out.write(UInt32(cdOffset)); out.write(UInt16(0))
        return out.bytes
    }
}
