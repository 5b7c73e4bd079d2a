"""Every kind of .tlora file the CLI writes (conftest.KINDS, generated here by the CLI): read, verify,
and each module's ΔW compared with the CLI's own export to PEFT (`tlora export --format peft`, which
turns every form into LoRA factors exactly), relative Frobenius error ≤ 1e-6."""
import os

import numpy as np
import pytest

import tlora
from conftest import KINDS
from peft_reference import deltas


@pytest.fixture(scope="session")
def exports(cli, files, work):
    out = {}
    for name, path in files.items():
        d = os.path.join(work, name + "-peft")
        cli("export", path, "--format", "peft", "-o", d)
        out[name] = deltas(d)
    return out


def rel(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_delta_agrees_with_cli_export(kind, files, exports):
    f = tlora.open(files[kind])
    assert f.verify() == len(f.tensors)
    ref = exports[kind]
    assert sorted(f.modules) == sorted(ref)
    for m in f.modules:
        d = f.delta(m, dtype=np.float64)
        assert d.shape == f.module(m).shape
        assert rel(d, ref[m]) <= 1e-6, (m, rel(d, ref[m]))


def test_every_update_kind_and_codec_and_dtype_is_covered(files):
    kinds, codecs, dtypes, features = set(), set(), set(), set()
    for path in files.values():
        f = tlora.open(path)
        kinds |= {f.module(m).update.type for m in f.modules}
        codecs |= {t.codec for t in f.header.tensors}
        dtypes |= {t.dtype for t in f.header.tensors}
        features |= set(f.header.required_features)
        if f.header.replaced:
            kinds.add("replaced")
        if any(f.module(m).dora_magnitude for m in f.modules):
            kinds.add("dora")
    assert {"low_rank", "tensor_train", "tucker_slice", "joint_train", "replaced", "dora"} <= kinds
    assert codecs == {"raw", "zstd", "bytegroup-zstd"}
    assert dtypes == {"f32", "f64", "f16", "bf16"}
    assert features == {"tt-index-order", "joint-train"}


def test_lora_factors_rebuild_delta(files):
    for kind in ("peft-llama-rslora-patterns", "tt2lora", "tt-joint", "to-lora"):
        f = tlora.open(files[kind])
        for m in f.modules:
            a, b, s = f.lora(m)
            assert a.shape[1] == f.module(m).inp and b.shape[0] == f.module(m).out
            assert rel(s * b @ a, f.delta(m, dtype=np.float64)) <= 1e-12


def test_factors_by_role(files):
    f = tlora.open(files["ttlora"])
    parts = f.factors(f.modules[0])
    assert parts["type"] == "tensor_train" and parts["column_order"] == "reversed" and all(c.ndim == 4 for c in parts["cores"])
    g = tlora.open(files["tenslora-att-qkv"])
    parts = g.factors(g.modules[0])
    assert parts["type"] == "tucker_slice" and len(parts["factors"]) == parts["core"].ndim
    d = tlora.open(files["peft-llama-dora"])
    assert d.factors(d.modules[0])["dora_magnitude"].shape == (d.module(d.modules[0]).out,)


def test_to_peft_state_dict_matches_cli_export(files, exports):
    for kind in ("peft-llama-rslora-patterns", "peft-llama-embed-save", "peft-gpt2-lora", "tt2lora"):
        f = tlora.open(files[kind])
        sd, cfg = tlora.to_peft(f)
        ref = exports[kind]
        for m in f.modules:
            mod = f.module(m)
            suffix = (".lora_embedding_A", ".lora_embedding_B") if mod.kind == "embedding" else (".lora_A.weight", ".lora_B.weight")
            a, b = sd["base_model.model." + m + suffix[0]], sd["base_model.model." + m + suffix[1]]
            r = cfg["rank_pattern"].get(m, cfg["r"])
            alpha = cfg["alpha_pattern"].get(m, cfg["lora_alpha"])
            assert a.shape[0] == r and alpha / r == mod.scale
            assert rel(mod.scale * b.astype(np.float64) @ a.astype(np.float64), ref[m]) <= 1e-6
    with pytest.raises(ValueError, match="to-lora"):
        tlora.to_peft(tlora.open(files["tt-rows-cols"]))


def test_torch_when_present(files):
    torch = pytest.importorskip("torch")
    f = tlora.open(files["peft-llama-lora"])
    m = f.modules[0]
    t = f.delta(m, framework="torch")
    assert isinstance(t, torch.Tensor) and tuple(t.shape) == f.module(m).shape
    assert isinstance(f.tensor(f.tensors[0], framework="torch"), torch.Tensor)


def test_open_reads_no_tensor_data(files, tmp_path):
    """Lazy: damage every blob; open() and the header still work, each tensor read fails alone."""
    data = bytearray(open(files["peft-llama-lora"], "rb").read())
    f = tlora.open(files["peft-llama-lora"])
    first = f.header.tensors[0]
    pos = f.header.data_start + first.offset
    data[pos] ^= 0xFF
    p = tmp_path / "damaged.tlora"
    p.write_bytes(bytes(data))
    g = tlora.open(p)
    assert g.modules == f.modules
    g.tensor(f.header.tensors[1].name)
    with pytest.raises(tlora.CorruptFile, match="checksum"):
        g.tensor(first.name)
    with pytest.raises(tlora.CorruptFile):
        g.verify()
