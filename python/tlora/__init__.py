"""Read ``.tlora`` tensorized-LoRA adapter containers (docs/FORMAT.md) from Python.

    import tlora
    f = tlora.open("adapter.tlora")        # header checked; no tensor data read yet
    f.modules                               # module names
    dw = f.delta(f.modules[0])              # ΔW, out × in, scale applied (numpy)
    f.verify()                              # every byte; raises tlora.CorruptFile
"""
from ._errors import CorruptFile, TLoRAError, UnsupportedFile
from ._file import TLoRAFile, open
from ._peft import to_peft

__all__ = ["open", "TLoRAFile", "CorruptFile", "UnsupportedFile", "TLoRAError", "to_peft"]
__version__ = "1.0.0"
