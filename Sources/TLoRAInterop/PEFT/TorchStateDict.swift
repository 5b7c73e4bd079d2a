import TLoRAModel

/// PyTorch `torch.save` archives (PEFT's legacy `adapter_model.bin`), read without executing anything.
enum TorchStateDict {
    static func read(path: String) throws -> [(name: String, tensor: StoredTensor)] {
        throw InteropError(path, "legacy PyTorch .bin adapters are not supported yet")
    }
}
