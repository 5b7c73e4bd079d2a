"""The structured kinds (docs/FORMAT.md §2.3 forms 6–11, kernels, DoRA on either axis, bias changes)
in files the CLI writes from the real tools' adapters (LyCORIS, sd-scripts, PEFT):

- every module's ΔW equals the CLI's own exact LoRA conversion of the same file
  (`tlora convert to-lora --dtype f64`), relative Frobenius error ≤ 1e-6;
- the merged weight and bias (`apply`, `apply_bias`) on the real base equal the tools' own forward
  passes (Fixtures/references/diffusion, and Fixtures/references/kinds when that step's fixtures are
  there): max |f32(W') − ref| ≤ 1e-5 · max |ref − W| (the references are f32 roundings of f64 forwards).
"""
import os

import numpy as np
import pytest

import tlora
from conftest import FIX, fx

SD = fx("diffusion", "sd-tiny")
LLAMA, CONVNET = fx("models", "tiny-llama"), fx("models", "tiny-convnet")

# name -> (adapter, base, reference). The diffusion files are LyCORIS 4.1.3 and sd-scripts adapters
# of the tiny SD pipeline; the others come from the structured-kinds step (kinds_fixtures.py).
SOURCES = {
    **{n: (fx("diffusion", "loras", f"{n}.safetensors"), SD, fx("references", "diffusion", f"{n}.safetensors"))
       for n in ["sd-lycoris-lokr", "sd-lycoris-loha-tucker", "sd-lycoris-locon-tucker", "sd-lycoris-locon-dora",
                 "sd-lycoris-full", "sd-sdscripts-locon"]},
    **{n: (fx("peft", n), LLAMA, fx("references", "kinds", f"{n}.merged.safetensors"))
       for n in ["llama-lokr", "llama-lokr-factored", "llama-loha", "llama-adalora", "llama-vera", "llama-ia3"]},
    **{n: (fx("peft", n), CONVNET, fx("references", "kinds", f"{n}.merged.safetensors"))
       for n in ["convnet-lora", "convnet-loha", "convnet-lokr"]},
    **{f"lycoris-{n}": (fx("lycoris", f"{n}.safetensors"), LLAMA if n.startswith("llama") else CONVNET,
                        fx("references", "kinds", f"lycoris-{n}.merged.safetensors"))
       for n in ["llama-lokr", "llama-lokr-full", "llama-lokr-w1-dora", "llama-loha-dora-in", "llama-locon-bf16", "llama-full",
                 "convnet-locon-tucker", "convnet-loha-tucker", "convnet-lokr-tucker", "convnet-full"]},
}
PRESENT = sorted(n for n, (a, _, r) in SOURCES.items() if os.path.exists(a) and os.path.exists(r))
# kohya prefix -> the pipeline component it names.
COMPONENTS = {"lora_unet_": "unet", "lora_te_": "text_encoder"}


@pytest.fixture(scope="session")
def structured(cli, work):
    """``{name: (file.tlora, its exact LoRA conversion .tlora)}``, both written by the CLI."""
    out = {}
    for name in PRESENT:
        path, lora = (os.path.join(work, f"{name}{s}.tlora") for s in ("", "-lora"))
        adapter, base, _ = SOURCES[name]
        # IA³ and VeRA files do not record every layer's size: the base's config.json does.
        cli("convert", "import", adapter, *(["--base-config", base] if base != SD else []), "-o", path)
        f = tlora.open(path)
        if any(f.module(m).update.type == "ia3" for m in f.modules):
            lora = None  # IA³ has no ΔW of its own: to-lora refuses it (its merge is checked below)
        else:
            cli("convert", "to-lora", path, "--dtype", "f64", "-o", lora)
        out[name] = (path, lora)
    return out


def load_base(base):
    from safetensors.numpy import load_file
    if base == SD:
        return {"unet": load_file(os.path.join(SD, "unet", "diffusion_pytorch_model.safetensors")),
                "text_encoder": load_file(os.path.join(SD, "text_encoder", "model.safetensors"))}
    return {"": load_file(os.path.join(base, "model.safetensors"))}


def bind(f, reference, base):
    """``{module: {"weight"|"bias": (reference key, base tensor)}}``: a module's target is looked up
    among the reference's keys, else its kohya/LyCORIS name among their flattened forms (how those
    tools name layers; the reference keys are the base's own names)."""
    index = {}
    for key in reference:
        comp, _, path = key.rpartition("/")
        if comp not in base:
            continue  # inputs and outputs of the diffusion references
        stem, _, leaf = path.rpartition(".")
        for alias in (stem, stem.replace(".", "_"), stem.removeprefix("text_model.").replace(".", "_")):
            index[(comp, alias, leaf)] = key
    out = {}
    for name in f.modules:
        m = f.module(name)
        prefix = next((p for p in COMPONENTS if name.startswith(p)), None)
        comp = COMPONENTS.get(prefix, "")
        stem = name[len(prefix):] if prefix else name.removeprefix("lycoris_")
        parts = {}
        for leaf, target in (("weight", m.target), ("bias", m.bias_target)):
            key = target if target in reference else index.get((comp, stem, leaf))
            if key is None:
                continue
            path = key.rpartition("/")[2]
            tensors = base[comp]
            parts[leaf] = (key, tensors[path] if path in tensors else tensors["text_model." + path])
        out[name] = parts
    return out


def rel(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def test_sources_cover_every_structured_kind(structured):
    """The files on hand exercise forms 6–8, kernels, DoRA and bias changes at least (forms 9–11 and
    DoRA on the input axis come with the structured-kinds fixtures)."""
    types, extras = set(), set()
    for path, _ in structured.values():
        f = tlora.open(path)
        for name in f.modules:
            m = f.module(name)
            types.add(m.update.type)
            extras |= {e for e, on in (("kernel", bool(m.kernel)), ("dora-" + m.dora_axis, m.dora_magnitude is not None),
                                       ("bias", m.bias_delta is not None)) if on}
    assert {"conv_tucker", "kronecker", "hadamard", "dense", "low_rank"} <= types
    assert {"kernel", "dora-out", "bias"} <= extras
    if os.path.exists(fx("peft", "llama-vera")):
        assert {"low_rank_diagonal", "vera", "ia3"} <= types and "dora-in" in extras


@pytest.mark.parametrize("name", PRESENT)
def test_delta_equals_cli_exact_lora(name, structured):
    path, lora = structured[name]
    f = tlora.open(path)
    assert f.verify() == len(f.tensors)
    if lora is None:
        for m in f.modules:
            with pytest.raises(ValueError, match="IA³"):
                f.delta(m)
        return
    g = tlora.open(lora)
    assert sorted(f.modules) == sorted(g.modules)
    for m in g.modules:
        mod = f.module(m)
        d = f.delta(m, dtype=np.float64, flat=True)
        assert rel(d, g.delta(m, dtype=np.float64, flat=True)) <= 1e-6, m
        if mod.kernel:
            assert f.delta(m).shape == mod.weight_shape
        lr = f.lora(m)
        if lr is not None:
            a, b, s = lr
            assert rel(s * b @ a, d) <= 1e-12, m


@pytest.mark.parametrize("name", PRESENT)
def test_merged_equals_tool_forward(name, structured):
    from safetensors.numpy import load_file
    _, base_dir, ref_path = SOURCES[name]
    reference = load_file(ref_path)
    base = load_base(base_dir)
    f = tlora.open(structured[name][0])
    bound = bind(f, reference, base)
    compared = set()
    for m, parts in bound.items():
        assert "weight" in parts, f"{m}: no reference weight"
        for leaf, (key, w) in parts.items():
            got = f.apply(m, w, dtype=np.float64) if leaf == "weight" else f.apply_bias(m, w, dtype=np.float64)
            ref = reference[key].astype(np.float64)
            change = np.abs(ref - w).max()  # 0 for AdaLoRA's rank-0 modules: then equal exactly
            # The reference is the f32 rounding of an f64 forward: compare like with like.
            err = np.abs(got.astype(np.float32).astype(np.float64) - ref).max()
            assert err <= 1e-5 * change, (m, leaf, err / change)
            compared.add(key)
    changed = {k for k in reference if k.rpartition("/")[0] in base}
    assert compared == changed  # every tensor the tool changed, and nothing else


def test_to_peft_of_convolutions_and_refusals(structured):
    """PEFT's conv shapes for LoCon with DoRA (LoRA factors as stored, magnitude [1, out, 1, 1]) and
    for LoKr (exact LoRA factors); a bias change has no place in PEFT's LoRA and is refused."""
    for name in ("sd-lycoris-locon-dora", "sd-lycoris-lokr"):
        f = tlora.open(structured[name][0])
        sd, cfg = tlora.to_peft(f)
        convs = [m for m in f.modules if f.module(m).kernel]
        assert convs
        for m in convs:
            mod = f.module(m)
            key = "base_model.model." + m
            a, b = sd[key + ".lora_A.weight"], sd[key + ".lora_B.weight"]
            assert a.shape[1:] == mod.weight_shape[1:] and b.shape[0] == mod.out and b.shape[2:] == (1,) * len(mod.kernel)
            r = cfg["rank_pattern"].get(m, cfg["r"])
            s = cfg["alpha_pattern"].get(m, cfg["lora_alpha"]) / r
            got = s * b.reshape(mod.out, r).astype(np.float64) @ a.reshape(r, -1).astype(np.float64)
            assert rel(got, f.delta(m, dtype=np.float64, flat=True)) <= 1e-6, m
            if mod.dora_magnitude is not None:
                assert sd[key + ".lora_magnitude_vector"].shape == (1, mod.out, 1, 1)
    with pytest.raises(ValueError, match="cannot hold a bias change"):
        tlora.to_peft(tlora.open(structured["sd-lycoris-full"][0]))


@pytest.mark.skipif(not os.path.exists(fx("peft", "convnet-lora")), reason="needs the structured-kinds fixtures")
def test_to_peft_gives_back_a_peft_conv_lora(structured):
    from safetensors.numpy import load_file
    sd, _ = tlora.to_peft(tlora.open(structured["convnet-lora"][0]))
    original = load_file(os.path.join(fx("peft", "convnet-lora"), "adapter_model.safetensors"))
    assert sorted(sd) == sorted(original)
    for k, v in original.items():
        np.testing.assert_array_equal(sd[k], v)
