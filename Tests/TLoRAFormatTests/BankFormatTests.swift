import Testing
import TLoRAFormat
import TLoRAIO
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// The adapter bank's layout (docs/FORMAT.md §2.8): round trip, reading one member, the feature,
/// and every structural rule refused from the header.
@Suite struct BankFormatTests {
    @Test(arguments: [DType.f32, .bf16])
    func roundTripsBitForBit(dtype: DType) throws {
        let dir = TemporaryDirectory()
        let path = dir.file("bank.tlora")
        let bank = SampleAdapters.bank(seed: 3, dtype: dtype)
        try ContainerWriter.write(bank, to: path)
        let file = try TLoRAFile(path: path)
        #expect(file.isBank)
        #expect(file.header.requiredFeatures == ["adapter-bank"])
        #expect(file.header.modules.isEmpty)
        #expect(try file.loadBank() == bank)
        #expect(TLoRAFile.verify(path: path).isIntact)
        // Bases first, then each member's tensors together.
        #expect(file.header.tensors.map(\.name).prefix(2) == ["k0.u", "k0.v"])
    }

    @Test func oneMemberReadsOnlyItsTensors() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("bank.tlora")
        let bank = SampleAdapters.bank(seed: 4)
        try ContainerWriter.write(bank, to: path, options: WriteOptions(codec: .forced(.raw)))
        // Corrupt task-a's and the cluster-0 bases' blobs: task-b (cluster 1) still reads.
        let file = try TLoRAFile(path: path)
        var bytes = TestFiles.read(path)
        for t in file.header.tensors where !(t.name.hasPrefix("b1.") || t.name.hasPrefix("k1.")) {
            bytes[file.header.dataStart + t.offset] ^= 0xFF
        }
        let corrupted = dir.file("corrupted.tlora")
        TestFiles.write(corrupted, bytes)
        let partial = try TLoRAFile(path: corrupted).loadBank(members: ["task-b"])
        #expect(partial.members == [bank.members[1]])
        #expect(partial.bases == [bank.bases[1]])
        #expect(throws: FormatError.self) { try TLoRAFile(path: corrupted).loadBank(members: ["task-a"]) }
        #expect(throws: FormatError.self) { try TLoRAFile(path: path).loadBank(members: ["nobody"]) }
        // An adapter is one member, named.
        let adapter = try TLoRAFile(path: path).loadBankMember("task-b")
        #expect(adapter.modules.map(\.name) == ["layers.0.q"])
        #expect(adapter.replacedTensors.map(\.target) == ["head.weight"])
        #expect(adapter.metadata["bank_member"] == "task-b")
    }

    @Test func loadingABankAsOneAdapterNamesTheMembers() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("bank.tlora")
        try ContainerWriter.write(SampleAdapters.bank(seed: 5), to: path)
        let message = "\((#expect(throws: FormatError.self) { try TLoRAFile(path: path).loadAdapter() })!)"
        #expect(message.contains("an adapter bank of 3 members (task-a, task-b, task-c); choose one with --member NAME"), "\(message)")
        let single = dir.file("one.tlora")
        try ContainerWriter.write(SampleAdapters.lora(seed: 1, modules: 1, out: 4, in: 4, rank: 1), to: single)
        #expect(throws: FormatError.self) { try TLoRAFile(path: single).loadBank() }
    }

    /// A raw-codec bank file with its header edited, then opened: the refusal, or "" when accepted.
    static func edited(_ edit: (String) -> String) throws -> String {
        let dir = TemporaryDirectory("tlora-bank")
        let path = dir.file("b.tlora")
        try ContainerWriter.write(SampleAdapters.bank(seed: 6), to: path, options: WriteOptions(codec: .forced(.raw)))
        let file = try TLoRAFile(path: path)
        let bytes = TestFiles.read(path)
        let json = String(decoding: bytes[32..<(32 + file.header.headerLength)], as: UTF8.self)
        let blobs = file.header.tensors.map { Array(bytes[(file.header.dataStart + $0.offset)..<(file.header.dataStart + $0.offset + $0.length)]) }
        let out = dir.file("edited.tlora")
        TestFiles.write(out, SpecBuilder.file(json: edit(json), blobs: blobs))
        do {
            _ = try TLoRAFile(path: out).loadBank()
            return ""
        } catch {
            return "\(error)"
        }
    }

    @Test func everyRuleIsCheckedFromTheHeader() throws {
        #expect(try Self.edited { $0 }.isEmpty)
        let cases: [(String, (String) -> String)] = [
            ("does not list the required feature adapter-bank", { $0.replacingFirst("\"required_features\":[\"adapter-bank\"]", with: "\"required_features\":[]") }),
            ("core has shape [2, 3] but bank basis q@0 needs [3, 2]", { $0.replacingFirst("\"name\":\"b0.m0.c\",\"dtype\":\"f32\",\"shape\":[3,2]", with: "\"name\":\"b0.m0.c\",\"dtype\":\"f32\",\"shape\":[2,3]") }),
            ("refers to bank basis nope, which does not exist", { $0.replacingFirst("\"basis\":\"v@0\"", with: "\"basis\":\"nope\"") }),
            ("name used twice", { $0.replacingFirst("\"name\":\"task-b\"", with: "\"name\":\"task-a\"") }),
            ("refers to bank basis v@0, which holds module layers.0.v", { $0.replacingFirst("\"basis\":\"q@0\"", with: "\"basis\":\"v@0\"") }),
            ("refers to bank basis q@1 of cluster 1 but the member is in cluster 0", { $0.replacingFirst("\"name\":\"task-b\",\"cluster\":1", with: "\"name\":\"task-b\",\"cluster\":0") }),
            ("a bank member's updates must be bank_core", { $0.replacingFirst("\"type\":\"bank_core\",\"basis\":\"q@0\",\"core\":\"b0.m0.c\"", with: "\"type\":\"dense\",\"delta\":\"b0.m0.c\"") }),
            ("already has bases for module layers.0.q", { $0.replacingFirst("\"name\":\"q@1\",\"module\":\"layers.0.q\",\"cluster\":1", with: "\"name\":\"q@1\",\"module\":\"layers.0.q\",\"cluster\":0") }),
            ("a bank member's module has no kernel, bias_delta, dora_axis or dora_epsilon", { $0.replacingFirst("\"shape\":[6,8],", with: "\"shape\":[6,8],\"kernel\":[2],") }),
            ("must be 1 to 1024 bytes", { $0.replacingFirst("\"name\":\"task-c\"", with: "\"name\":\"\"") }),
            ("modules, tucker_groups and replaced_tensors must be empty", { $0.replacingFirst("\"tucker_groups\":[]", with: "\"tucker_groups\":[{\"name\":\"g\",\"core\":\"k2.u\",\"factors\":[],\"modes\":[]}]") }),
        ]
        for (expected, edit) in cases {
            let message = try Self.edited(edit)
            #expect(message.contains(expected), "expected \(expected): \(message)")
        }
    }

    @Test func theWriterRefusesAnInconsistentBank() throws {
        let dir = TemporaryDirectory()
        var bank = SampleAdapters.bank(seed: 7)
        bank.bases.append(BankBasis(name: "spare", module: "layers.0.k", cluster: 0, outBasis: StoredTensor([1, 0], shape: [2, 1]),
                                    inBasis: StoredTensor([0, 1], shape: [2, 1])))
        let message = "\((#expect(throws: ModelError.self) { try ContainerWriter.write(bank, to: dir.file("x.tlora")) })!)"
        #expect(message.contains("bank basis spare: no member module uses it"), "\(message)")
        #expect(pathKind(dir.file("x.tlora")) == .missing)
    }

    @Test func aBankCoreOutsideABankIsRefused() throws {
        let json = HostileHeaderTests.specExample().replacingFirst("{\"type\":\"low_rank\",\"a\":\"m0.a\",\"b\":\"m0.b\"}", with: "{\"type\":\"bank_core\",\"basis\":\"x\",\"core\":\"m0.a\"}")
            .replacingFirst("\"shape\":[2,1],\"codec\"", with: "\"shape\":[2,1],\"codec\"")
        let problem = HostileHeaderTests.problem(SpecBuilder.file(json: json, blobs: [HostileHeaderTests.aBytes, HostileHeaderTests.bBytes]))
        #expect(problem.contains("a bank_core update belongs in a bank member"), "\(problem)")
    }
}
