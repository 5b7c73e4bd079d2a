"""Shared fixtures: the tlora binary, the repository's fixtures, and every kind of .tlora file the CLI
writes, generated once per session by the CLI itself."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "Fixtures")


def tlora_binary():
    path = os.environ.get("TLORA_BIN") or os.path.join(ROOT, ".build", "debug", "tlora")
    return path if os.path.exists(path) else None


@pytest.fixture(scope="session")
def cli():
    path = tlora_binary()
    if path is None:
        pytest.skip("no tlora binary (swift build, or set TLORA_BIN)")

    def run(*args, check=True):
        r = subprocess.run([path, *map(str, args)], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise AssertionError(f"tlora {' '.join(map(str, args))} exited {r.returncode}: {r.stderr.strip()}")
        return r
    return run


def fx(*parts):
    return os.path.join(FIX, *parts)


LLAMA = fx("models", "tiny-llama")

# name -> the CLI command (after `tlora`) that writes OUT. Every kind of file the CLI writes: every
# importer, every conversion and layout, every dtype and codec.
KINDS = {
    **{f"peft-{n}": ["convert", "import", fx("peft", n), "-o", "OUT"]
       for n in ["llama-lora", "llama-rslora-patterns", "llama-dora", "llama-embed-save", "llama-layers", "llama-bf16",
                 "llama-bin", "gpt2-lora", "bert-lora", "minilm-trained"]},
    **{f"peft-{a}-lora": ["convert", "import", fx("peft", f"{a}-lora"), "-o", "OUT"] for a in ["qwen3", "gemma", "phi3"]},
    "mlx-lora": ["convert", "import", fx("mlx", "tiny-llama-lora"), "-o", "OUT"],
    "mlx-dora": ["convert", "import", fx("mlx", "tiny-llama-dora"), "-o", "OUT"],
    **{f"gguf-{t}": ["convert", "import", fx("gguf", f"tiny-llama-lora.llamacpp.{t}.gguf"), "--base-config", LLAMA, "-o", "OUT"]
       for t in ["f32", "f16", "q8_0"]},
    "gguf-ggufpy": ["convert", "import", fx("gguf", "tiny-llama-lora.ggufpy.f16.gguf"), "-o", "OUT"],
    "ttlora": ["convert", "import", fx("research", "ttlora-llama", "adapter.pt"), "--alpha", "4", "--base-config", LLAMA,
               "--ttlora-layout", "contraction", "-o", "OUT"],  # the wrapper that wrote it (Fixtures/README.md)
    "tt2lora": ["convert", "import", fx("research", "tt2lora-llama", "adapter.safetensors"), "--alpha", "0.5", "--base-config", LLAMA, "-o", "OUT"],
    **{f"tenslora-{c}": ["convert", "import", fx("research", f"tenslora-roberta-{c}.pt"), "--alpha", "2", "--construction", c, "-o", "OUT"]
       for c in ["att", "qkv", "depth", "att-qkv", "att-depth", "qkv-depth", "att-qkv-depth"]},
    "codec-raw": ["convert", "import", fx("peft", "llama-lora"), "--codec", "raw", "-o", "OUT"],
    "codec-zstd": ["convert", "import", fx("peft", "llama-lora"), "--codec", "zstd", "--level", "3", "-o", "OUT"],
    "codec-bytegroup": ["convert", "import", fx("peft", "llama-lora"), "--codec", "bytegroup-zstd", "--level", "3", "-o", "OUT"],
    "tt-rows-cols": ["convert", "dense-to-tt", fx("peft", "llama-lora"), "-o", "OUT"],
    "tt-rows-cols-e": ["convert", "dense-to-tt", fx("peft", "llama-rslora-patterns"), "--max-rel-error", "0.3", "-o", "OUT"],
    "tt-matrix": ["convert", "dense-to-tt", fx("peft", "llama-layers"), "--layout", "matrix", "--max-rel-error", "0.1", "-o", "OUT"],
    "tt-f16": ["convert", "dense-to-tt", fx("peft", "llama-layers"), "--dtype", "f16", "--max-rel-error", "0.1", "-o", "OUT"],
    "tt-bf16": ["convert", "dense-to-tt", fx("peft", "llama-layers"), "--dtype", "bf16", "--max-rel-error", "0.1", "-o", "OUT"],
    "tt-f64": ["convert", "dense-to-tt", fx("peft", "gpt2-lora"), "--dtype", "f64", "-o", "OUT"],
    "tt-joint": ["convert", "dense-to-tt", fx("peft", "llama-layers"), "--joint", "--max-rel-error", "0.05", "-o", "OUT"],
    "tucker-module": ["convert", "dense-to-tucker", fx("peft", "llama-lora"), "--group", "module", "-o", "OUT"],
    "tucker-qkv": ["convert", "dense-to-tucker", fx("peft", "llama-lora"), "--group", "qkv", "--projections", "q_proj,o_proj",
                   "--max-rel-error", "0.2", "-o", "OUT"],
    "tucker-depth": ["convert", "dense-to-tucker", fx("peft", "llama-lora"), "--group", "depth", "--refine", "2", "-o", "OUT"],
    "tucker-att": ["convert", "dense-to-tucker", fx("peft", "llama-lora"), "--group", "att", "--heads", "4", "--dtype", "f64", "-o", "OUT"],
    "tucker-qkv-depth": ["convert", "dense-to-tucker", fx("peft", "llama-lora"), "--group", "qkv-depth", "--projections", "q_proj,o_proj",
                         "--ranks", "4,4,2,2", "-o", "OUT"],
    "to-lora": ["convert", "to-lora", fx("peft", "llama-lora"), "--max-rank", "3", "-o", "OUT"],
}


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("tlora-py")


@pytest.fixture(scope="session")
def files(cli, work):
    """``{kind: path}`` of every file in KINDS, written by the CLI."""
    out = {}
    for name, cmd in KINDS.items():
        path = os.path.join(work, name + ".tlora")
        cli(*[path if a == "OUT" else a for a in cmd])
        out[name] = path
    return out
