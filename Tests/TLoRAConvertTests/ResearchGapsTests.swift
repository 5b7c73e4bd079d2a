import Testing
import TLoRAConvert
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// The research formats in configurations the first fixtures never used (Fixtures/kinds_fixtures.py
/// `make_research_gaps`, written by the repositories' own code): TTLoRAMoE's reconstruction wrapper
/// (non-contiguous cores, the other ΔW layout) and TT2LoRA with boundary TT ranks other than 1.
@Suite struct ResearchGapsTests {
    static func references() throws -> SafetensorsFile { try SafetensorsFile(path: Fixtures.reference("research-gaps.delta.safetensors")) }
    static let base = { BaseShapes(checkpoint: try! Checkpoint(path: Fixtures.model("tiny-llama"))) }()  // safe: committed fixture

    static func check(_ adapter: Adapter, prefix: String) throws {
        let refs = try references()
        var checked = 0
        for m in adapter.modules {
            let ours = try DenseDelta.of(m, in: adapter)
            let error = Tolerance.relativeError(ours.storage, try refs.tensor(prefix + "/" + m.name).doubles())
            #expect(error <= 1e-6, "\(prefix) \(m.name): \(error)")
            checked += 1
        }
        #expect(checked == refs.tensorNames.filter { $0.hasPrefix(prefix + "/") }.count && checked > 0)
    }

    @Test func noncontiguousTorchTensorsAreGatheredByTheirStrides() throws {
        let tensors = try ResearchStateDict.tensors(path: Fixtures.path("research/ttlora-reconstruction-llama/adapter.pt"))
        #expect(tensors.count == 16)
        // tensorly's cores (1, 8, 3) come with strides (8, 1, 8): the gather must give torch's values in row-major order.
        #expect(tensors.allSatisfy { $0.tensor.shape.count == 3 })
    }

    @Test func theTwoTTLoRAMoEWrappersAreToldApartOrAskedFor() throws {
        let path = Fixtures.path("research/ttlora-reconstruction-llama/adapter.pt")
        // q_proj's modes [8, 8, 8, 8] split as 64 | 64 both ways: the reader will not guess.
        #expect { try ResearchStateDict.read(path: path, options: ResearchOptions(alpha: 2, baseShapes: Self.base)) } throws: { e in
            "\(e)".contains("fit both TTLoRAMoE wrappers") && "\(e)".contains("--ttlora-layout")
        }
        let adapter = try ResearchStateDict.read(path: path, options: ResearchOptions(alpha: 2, baseShapes: Self.base, ttLoRALayout: .reconstruction))
        try Self.check(adapter, prefix: "ttlora-reconstruction-llama")
        // v_proj's [4, 8, 8, 8] split only as 32 | 64 (out | in): read as the contraction wrapper it does not fit.
        #expect { try ResearchStateDict.read(path: path, options: ResearchOptions(alpha: 2, baseShapes: Self.base, ttLoRALayout: .contraction)) } throws: { e in
            "\(e)".contains("v_proj") && "\(e)".contains("as --ttlora-layout contraction says")
        }
    }

    /// A Lightning `.ckpt` (epoch, step, loops beside the tensors): its `state_dict` is the adapter.
    @Test func lightningCheckpointsAreReadFromTheirStateDict() throws {
        let path = Fixtures.path("research/ttlora-reconstruction-llama/adapter.ckpt")
        let adapter = try ResearchStateDict.read(path: path, options: ResearchOptions(alpha: 2, stripPrefix: "model.", baseShapes: Self.base, ttLoRALayout: .reconstruction))
        try Self.check(adapter, prefix: "ttlora-reconstruction-llama")
    }

    @Test func boundaryRanksAreFoldedExactly() throws {
        let adapter = try ResearchStateDict.read(path: Fixtures.path("research/tt2lora-boundary-llama/adapter.safetensors"),
                                                 options: ResearchOptions(alpha: 0.5, baseShapes: Self.base))
        for m in adapter.modules {
            guard case .jointTrain(let j) = m.update else { Issue.record("\(m.name) is not a joint train"); continue }
            #expect(j.ranks.first == 1 && j.ranks.last == 1 && m.attributes["tensorguide.boundary_ranks"] == "2,2")
        }
        try Self.check(adapter, prefix: "tt2lora-boundary-llama")
    }
}
