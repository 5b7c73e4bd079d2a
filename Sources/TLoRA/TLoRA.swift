// The one module a user of the library imports: `import TLoRA` brings every public module, as
// swift-numerics' `Numerics` does. The modules stay importable one by one for a smaller build.
@_exported import TLoRAConvert
@_exported import TLoRAFormat
@_exported import TLoRAInputs
@_exported import TLoRAInterop
@_exported import TLoRAMerge
@_exported import TLoRAIO
@_exported import TLoRAModel
@_exported import TLoRANumerics
