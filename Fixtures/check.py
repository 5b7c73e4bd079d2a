#!/usr/bin/env python3
"""Cross-checks tlora's outputs with the real tools (needs torch, transformers, peft).

    python3 Fixtures/check.py TLORA_BINARY

For every PEFT fixture: `tlora merge` it into its base, load the result with transformers and
compare the logits with PEFT's merged model (references/<name>.outputs.safetensors); and
`tlora convert import` + `tlora export --format peft`, load that with PeftModel.from_pretrained and
compare its outputs too. Prints one line per check; exits 1 if any fails.
"""
import importlib.util, os, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    tlora = os.path.abspath(sys.argv[1])
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoModel
    from peft import PeftModel
    spec = importlib.util.spec_from_file_location("gen", os.path.join(HERE, "generate.py"))
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    failures = 0
    tmp = tempfile.mkdtemp(prefix="tlora-check-")
    for name, (base, _, _) in gen.peft_specs().items():
        ref = load_file(os.path.join(HERE, "references", f"{name}.outputs.safetensors"))
        ids = ref["input_ids"]
        loader = AutoModel if "bert" in base else AutoModelForCausalLM
        dtype = torch.bfloat16 if base.endswith("bf16") else torch.float32
        tol = 2e-2 if dtype == torch.bfloat16 else 1e-4
        def run(model):
            with torch.no_grad():
                out = model(input_ids=ids)
            return (out.logits if hasattr(out, "logits") else out.last_hidden_state).float()
        merged_dir = os.path.join(tmp, f"{name}-merged")
        subprocess.run([tlora, "merge", os.path.join(HERE, "peft", name), "--base", os.path.join(HERE, "models", base), "-o", merged_dir],
                       check=True, capture_output=True)
        got = run(loader.from_pretrained(merged_dir, dtype=dtype))
        err = (got - ref["outputs"]).abs().max().item()
        ok = err <= tol * max(1.0, ref["outputs"].abs().max().item())
        failures += not ok
        print(f"{'ok ' if ok else 'FAIL'} merge   {name:24} transformers loads tlora's checkpoint, max |Δlogit| {err:.2e}")
        container = os.path.join(tmp, f"{name}.tlora")
        exported = os.path.join(tmp, f"{name}-peft")
        subprocess.run([tlora, "convert", "import", os.path.join(HERE, "peft", name), "-o", container], check=True, capture_output=True)
        subprocess.run([tlora, "export", container, "--format", "peft", "-o", exported], check=True, capture_output=True)
        model = PeftModel.from_pretrained(loader.from_pretrained(os.path.join(HERE, "models", base), dtype=dtype), exported)
        got = run(model.merge_and_unload())
        err = (got - ref["outputs"]).abs().max().item()
        ok = err <= tol * max(1.0, ref["outputs"].abs().max().item())
        failures += not ok
        print(f"{'ok ' if ok else 'FAIL'} export  {name:24} PeftModel loads tlora's export, max |Δlogit| {err:.2e}")
    # llama.cpp's reader conventions, through gguf-py: what tlora exports must read back with the
    # converter's keys, names and shapes.
    from gguf import GGUFReader
    import numpy as np
    ours = os.path.join(tmp, "exported.gguf")
    subprocess.run([tlora, "export", os.path.join(HERE, "peft", "llama-lora"), "--format", "gguf", "-o", ours,
                    "--base-config", os.path.join(HERE, "models", "tiny-llama")], check=True, capture_output=True)
    a, b = GGUFReader(ours), GGUFReader(os.path.join(HERE, "gguf", "tiny-llama-lora.llamacpp.f32.gguf"))
    ta, tb = {t.name: t for t in a.tensors}, {t.name: t for t in b.tensors}
    ok = set(ta) == set(tb) and all(list(ta[k].shape) == list(tb[k].shape) and np.array_equal(ta[k].data, tb[k].data) for k in ta) \
        and a.fields["general.type"].contents() == "adapter" and a.fields["adapter.lora.alpha"].contents() == b.fields["adapter.lora.alpha"].contents()
    failures += not ok
    print(f"{'ok ' if ok else 'FAIL'} gguf    llama-lora               gguf-py reads tlora's export: same names, shapes, values and keys as llama.cpp's converter")
    # An adapter bank: one member of a lossless bank of three trained MiniLM adapters, written back
    # as PEFT by `tlora bank get`, loads in PeftModel and gives the original member's outputs.
    try:
        base_dir = gen.minilm_dir()
    except ImportError:
        base_dir = None
    if base_dir and os.path.isdir(os.path.join(HERE, "bank", "verb-b")):
        from transformers import AutoTokenizer
        members = [os.path.join(HERE, "bank", n) for n in ("place-a", "verb-b", "negation-a")]
        bank = os.path.join(tmp, "bank.tlora")
        subprocess.run([tlora, "bank", "build", *members, "-o", bank], check=True, capture_output=True)
        member_dir = os.path.join(tmp, "bank-verb-b")
        subprocess.run([tlora, "bank", "get", bank, "--member", "verb-b", "--format", "peft", "-o", member_dir], check=True, capture_output=True)
        batch = AutoTokenizer.from_pretrained(base_dir)(gen.SENTENCES, padding=True, return_tensors="pt")
        def hidden(adapter):
            model = PeftModel.from_pretrained(AutoModel.from_pretrained(base_dir), adapter).eval()
            with torch.no_grad():
                return model(**batch).last_hidden_state
        err = (hidden(member_dir) - hidden(members[1])).abs().max().item()
        ok = err <= 1e-4
        failures += not ok
        print(f"{'ok ' if ok else 'FAIL'} bank    verb-b                   PeftModel loads a bank member (lossless bank), max |Δhidden| {err:.2e}")
    # Diffusion merges and exports against diffusers and LyCORIS (check_diffusion.py).
    if importlib.util.find_spec("diffusers") and importlib.util.find_spec("lycoris"):
        sys.path.insert(0, HERE)
        import check_diffusion
        failures += check_diffusion.main(tlora)
    else:
        print("diffusion crosscheck skipped: diffusers and lycoris-lora are not installed")
    # The serving tools, each when installed (Fixtures/serving.py, Fixtures/llamacpp.py).
    sys.path.insert(0, HERE)
    import serving, llamacpp
    failures += serving.check_vllm(tlora, gen, tmp)
    if importlib.util.find_spec("mlx_lm") is not None:
        failures += serving.check_mlx(tlora, gen, tmp)
    else:
        print("skip mlx     mlx-lm is not installed (pip install mlx mlx-lm)")
    failures += llamacpp.check(tlora, gen, tmp)
    # Several adapters merged at once, and extract's PEFT output: Fixtures/check_extract.py.
    import check_extract
    failures += check_extract.run(tlora, tmp)
    # The structured kinds (LoKr, LoHa, AdaLoRA, VeRA, IA³, conv, LyCORIS): Fixtures/check_kinds.py.
    if importlib.util.find_spec("lycoris"):
        sys.path.insert(0, HERE)
        import check_kinds
        failures += check_kinds.run(tlora, tmp)
    else:
        print("kinds crosscheck skipped: lycoris-lora is not installed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
