import Testing
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import _TLoRATestSupport

/// Every PEFT type tlora reads comes back out bit for bit: the same `adapter_config.json` and every
/// tensor of `adapter_model.safetensors` with its name, dtype, shape and bytes.
@Suite struct PEFTStructuredRoundTripTests {
    static let names = ["llama-lokr", "llama-lokr-factored", "llama-loha", "llama-adalora", "llama-vera", "llama-ia3",
                        "convnet-lora", "convnet-loha", "convnet-lokr"]

    static func base(_ name: String) -> BaseShapes {
        BaseShapes(checkpoint: try! Checkpoint(path: Fixtures.model(name.hasPrefix("convnet") ? "tiny-convnet" : "tiny-llama")))  // safe: fixtures
    }

    @Test(arguments: names)
    func exportReproducesTheFiles(name: String) throws {
        let dir = Fixtures.peft(name)
        let adapter = try PEFTReader.read(directory: dir, base: Self.base(name))
        let (config, tensors) = try PEFTWriter.layout(adapter, path: "out")
        let original = try JSONParser.parse(try readWholeFile(path: joinPath(dir, PEFTReader.configName)))
        #expect(JSONValue.object(config) == original, "\(name): the config changed")
        let file = try SafetensorsFile(path: joinPath(dir, PEFTReader.safetensorsName))
        #expect(Set(tensors.map(\.name)) == Set(file.tensorNames), "\(name): \(Set(tensors.map(\.name)).symmetricDifference(file.tensorNames).sorted())")
        for (key, t) in tensors {
            let e = try #require(file.entry(key))
            #expect(e.shape == t.shape && SafetensorsDType(t.dtype) == e.dtype, "\(name): \(key) \(t.shape) vs \(e.shape)")
            t.bytes.withUnsafeBytes { #expect($0.elementsEqual(file.bytes(of: e)), "\(name): \(key) bytes differ") }
        }
    }

    /// A LyCORIS LoKr (factor 4, W1 full) has a PEFT config that rebuilds its shapes; the one built
    /// reads back as the same modules with the same scales.
    @Test func aConfigIsBuiltWhenTheOriginalIsGone() throws {
        var adapter = try PEFTReader.read(directory: Fixtures.peft("llama-lokr-factored"))
        adapter.metadata["peft.adapter_config"] = nil
        let (config, tensors) = try PEFTWriter.layout(adapter, path: "out")
        let parsed = try PEFTConfig(json: .object(config), path: "built")
        let again = try PEFTReader.adapter(config: parsed, tensors: tensors, weightsPath: "built")
        #expect(again.modules.map(\.scale) == adapter.modules.map(\.scale))
        #expect(again.modules.map(\.update) == adapter.modules.map(\.update))
        #expect(config["decompose_factor"]?.intValue == 4 && config["decompose_both"]?.boolValue == true)
    }
}
