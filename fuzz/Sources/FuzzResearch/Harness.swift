// The research state-dict readers (TT-LoRA, TensorGuide, TensLoRA) and the math on what they accept.
// Input: [selector byte][safetensors or PyTorch zip bytes]. The selector picks the base whose shapes
// the readers check against (bit 0: tiny Llama or tiny RoBERTa) and TensLoRA's construction
// (bits 1-3). Every accepted adapter's ΔW is materialized: nothing may trap or allocate unboundedly.
import FuzzSupport
import TLoRAConvert
import TLoRAInterop
import TLoRAIO
import TLoRAModel

let fixtures: String = {
    var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    parts.removeLast(4)  // fuzz/Sources/FuzzResearch/Harness.swift
    return parts.joined(separator: "/") + "/Fixtures/models/"
}()

// Safe: the fixtures are committed; without them the harness cannot run at all.
let bases = [BaseShapes(checkpoint: try! Checkpoint(path: fixtures + "tiny-llama")),
             BaseShapes(checkpoint: try! Checkpoint(path: fixtures + "tiny-roberta"))]
let constructions = ["att", "qkv", "depth", "att_qkv", "att_depth", "qkv_depth", "att_qkv_depth", "att"]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let selector = Int(data[0])
    let file = fuzzFile(data + 1, size - 1, name: "fuzz.state-dict")
    let options = ResearchOptions(alpha: 2, construction: constructions[(selector >> 1) & 7], baseShapes: bases[selector & 1])
    guard let adapter = try? ResearchStateDict.read(file: file, options: options) else { return 0 }
    for m in adapter.modules {
        _ = try? DenseDelta.of(m, in: adapter)
        _ = try? LowRankForm.of(m, in: adapter)
    }
    return 0
}

@_cdecl("FuzzResearch_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runFuzzer(argc, argv, fuzzOneInput) }
