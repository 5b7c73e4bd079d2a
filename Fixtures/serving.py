"""Cross-checks with the serving tools (called by check.py; each part runs when its packages are there).

- mlx-lm: `tlora export --format mlx` of every PEFT fixture on the tiny Llama, loaded with mlx-lm's own
  `load_model` + `load_adapters` on the tiny base; its logits against PEFT's (references/).
- vLLM: `tlora export --format peft --target vllm` of every PEFT fixture (without and with the base)
  either satisfies vLLM's rules — re-implemented below from vllm 0.34.0's `vllm/lora/peft_helper.py`
  (`PEFTHelper.from_dict`, `__post_init__`, `_validate_features`, `validate_legal`),
  `vllm/config/lora.py` (`MaxLoRARanks`) and `vllm/lora/lora_model.py` (`from_lora_tensors`,
  `check_unexpected_modules`) — and PEFT loads it with PEFT's logits, or is refused with the reason.
- llama.cpp: see llamacpp.py.
"""
import json, math, os, subprocess, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REL_TOL = 1e-4


def run(tlora, *args):
    return subprocess.run([tlora, *map(str, args)], capture_output=True, text=True)


def rel_err(got, ref):
    import numpy as np
    return float(np.abs(np.asarray(got, dtype=np.float64) - ref).max() / max(1.0, np.abs(ref).max()))


# ---------------------------------------------------------------- vLLM's rules (vllm 0.34.0)

VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)      # vllm/config/lora.py MaxLoRARanks
VLLM_SAFE_INITS = ("gaussian", "eva", "orthogonal", "mica", "lora_ga")   # PEFTHelper._init_is_supported
VLLM_CLS_HEADS = ("classifier", "score")


def vllm_problems(config, tensors, max_lora_rank):
    """What vLLM 0.34 says about a PEFT directory's config and tensors ({name: shape}) at a server
    `max_lora_rank`; [] when it loads. Mirrors PEFTHelper and LoRAModel.from_local_checkpoint."""
    problems = []
    missing = {"r", "lora_alpha", "target_modules"} - set(config)          # from_dict: required fields
    if missing:
        return [f"Missing required configuration fields: {missing}"]
    if max_lora_rank not in VLLM_MAX_LORA_RANKS:
        problems.append(f"max_lora_rank {max_lora_rank} is not one of {VLLM_MAX_LORA_RANKS}")
    r = config["r"]
    if not isinstance(r, int) or r <= 0:                                    # __post_init__
        problems.append(f"LoRA rank `r` must be a positive integer, got {r}.")
    rank_pattern = config.get("rank_pattern") or {}
    for key, rank in rank_pattern.items():
        if not isinstance(rank, int) or rank <= 0:
            problems.append(f"LoRA rank for `{key}` in `rank_pattern` must be a positive integer, got {rank}.")
    modules_to_save = list(config.get("modules_to_save") or [])
    if config.get("task_type") in ("SEQ_CLS", "TOKEN_CLS"):
        modules_to_save = list(dict.fromkeys([*modules_to_save, "classifier", "score"]))
    unsupported = [m for m in modules_to_save if m not in VLLM_CLS_HEADS]     # _validate_features
    if unsupported:
        problems.append(f"Unsupported modules_to_save: {unsupported}")
    if config.get("use_dora"):
        problems.append("vLLM does not yet support DoRA.")
    if config.get("lora_bias"):
        problems.append("vLLM does not support LoRA bias (lora_bias).")
    init = config.get("init_lora_weights", True)
    if isinstance(init, str) and init.lower() not in VLLM_SAFE_INITS:
        problems.append(f"vLLM does not support init_lora_weights={init!r}.")
    for key, what in (("alora_invocation_tokens", "Activated LoRA (aLoRA)"), ("layer_replication", "layer_replication"),
                      ("use_bdlora", "block-diagonal LoRA (BD-LoRA)"), ("use_qalora", "QALoRA")):
        if config.get(key):
            problems.append(f"vLLM does not support {what}.")
    max_rank = max([r, *rank_pattern.values()]) if isinstance(r, int) else 0   # validate_legal
    if max_rank > max_lora_rank:
        problems.append(f"LoRA rank {max_rank} is greater than max_lora_rank {max_lora_rank}.")
    if config.get("bias", "none") != "none":
        problems.append("Adapter bias is not supported.")
    full = set()
    for name, shape in tensors.items():                                       # lora_model.py
        if name.endswith((".embed_tokens.base_layer.weight", ".lm_head.base_layer.weight")):
            continue
        stem = name.removeprefix("base_model.model.")
        parts = stem.split(".")
        if parts[-1] in ("weight", "bias") and parts[-2] in ("lora_A", "lora_B"):
            module, ab = ".".join(parts[:-2]), parts[-2]
        elif parts[-1] in ("lora_embedding_A", "lora_embedding_B"):
            module, ab = ".".join(parts[:-1]), parts[-1]
        elif parts[-1] in ("weight", "bias") and parts[-2] in modules_to_save:
            full.add(parts[-2])
            continue
        else:
            problems.append(f"{name}: not a LoRA weight vLLM parses")
            continue
        rank = shape[0] if ab in ("lora_A", "lora_embedding_A") else shape[1]
        if rank > max_lora_rank:
            problems.append(f"{name}: rank {rank} above max_lora_rank {max_lora_rank}")
    if len(full) > 1:
        problems.append(f"Only one full classification module is supported per adapter, received {sorted(full)}.")
    return problems


def check_vllm(tlora, gen, tmp):
    """Returns the number of failures; prints one line per fixture and mode."""
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoModel
    from peft import PeftModel
    failures = 0
    specs = {name: base for name, (base, _, _) in gen.peft_specs().items()}
    specs.update({f"{a}-lora": f"tiny-{a}" for a in gen.arch_specs()})
    for name in ("minilm-trained", "llama-loha", "llama-lora-wrong-rank"):
        specs[name] = None  # no committed base (MiniLM's is a PyPI data package) or not readable: adapter only
    for name, base in specs.items():
        for with_base in ((False, True) if base else (False,)):
            out = os.path.join(tmp, f"vllm-{name}-{'base' if with_base else 'plain'}")
            args = ["export", os.path.join(HERE, "peft", name), "--format", "peft", "--target", "vllm", "-o", out]
            if with_base:
                args += ["--base", os.path.join(HERE, "models", base)]
            r = run(tlora, *args)
            mode = "with --base" if with_base else "adapter only"
            if r.returncode != 0:
                ok = r.returncode == 1 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
                failures += not ok
                print(f"{'ok ' if ok else 'FAIL'} vllm    {name:24} {mode:12} refused: {r.stderr.strip().split(': ', 3)[-1][:150]}")
                continue
            config = json.load(open(os.path.join(out, "adapter_config.json")))
            with safe_open(os.path.join(out, "adapter_model.safetensors"), "np") as f:
                shapes = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
            rank = config["r"]
            problems = vllm_problems(config, shapes, rank)
            if rank not in VLLM_MAX_LORA_RANKS:
                problems.append(f"rank {rank} is not an allowed max_lora_rank")
            if config.get("rank_pattern") or config.get("alpha_pattern") or config.get("use_rslora"):
                problems.append("patterns or rsLoRA in a vLLM-targeted config")
            if base is None or not os.path.exists(os.path.join(HERE, "references", f"{name}.outputs.safetensors")):
                failures += bool(problems)
                print(f"{'ok ' if not problems else 'FAIL'} vllm    {name:24} {mode:12} passes vLLM's rules at max_lora_rank {rank}" + (f" PROBLEMS {problems}" if problems else ""))
                continue
            # PEFT loads it, with PEFT's outputs (folded DoRA/modules_to_save: the stated error shows).
            ref = __import__("safetensors.torch", fromlist=["load_file"]).load_file(os.path.join(HERE, "references", f"{name}.outputs.safetensors"))
            loader = AutoModel if "bert" in base else AutoModelForCausalLM
            dtype = torch.bfloat16 if base.endswith("bf16") else torch.float32
            model = PeftModel.from_pretrained(loader.from_pretrained(os.path.join(HERE, "models", base), dtype=dtype), out).merge_and_unload()
            with torch.no_grad():
                o = model(input_ids=ref["input_ids"])
            got = (o.logits if hasattr(o, "logits") else o.last_hidden_state).float()
            err = rel_err(got.numpy(), ref["outputs"].numpy())
            folded = "LoRA update, relative error" in r.stderr
            tol = 2e-2 if dtype == torch.bfloat16 else REL_TOL
            ok = not problems and (folded or err <= tol)
            failures += not ok
            what = "folded (lossy, stated)" if folded else "exact"
            print(f"{'ok ' if ok else 'FAIL'} vllm    {name:24} {mode:12} passes vLLM's rules at max_lora_rank {rank}, {what}; PEFT logits rel. diff {err:.1e}"
                  + (f" PROBLEMS {problems}" if problems else ""))
    return failures


# ---------------------------------------------------------------- mlx-lm

def check_mlx(tlora, gen, tmp):
    import numpy as np
    import mlx.core as mx
    from pathlib import Path
    from mlx_lm.utils import load_model, load_adapters
    from safetensors.numpy import load_file
    failures = 0
    for name, (base, _, _) in gen.peft_specs().items():
        if not base.startswith("tiny-llama"):
            continue
        out = os.path.join(tmp, f"mlx-{name}")
        r = run(tlora, "export", os.path.join(HERE, "peft", name), "--format", "mlx", "-o", out)
        if r.returncode != 0:
            ok = r.returncode == 1 and r.stderr.startswith("error:") and r.stderr.count("\n") == 1
            failures += not ok
            print(f"{'ok ' if ok else 'FAIL'} mlx     {name:24} refused: {r.stderr.strip()[-150:]}")
            continue
        ref = load_file(os.path.join(HERE, "references", f"{name}.outputs.safetensors"))
        model, _ = load_model(Path(os.path.join(HERE, "models", base)))
        model = load_adapters(model, out)
        got = np.array(model(mx.array(ref["input_ids"])).astype(mx.float32))
        err = rel_err(got, ref["outputs"])
        tol = 2e-2 if base.endswith("bf16") else REL_TOL
        ok = err <= tol
        failures += not ok
        print(f"{'ok ' if ok else 'FAIL'} mlx     {name:24} mlx-lm loads tlora's MLX export, logits rel. diff from PEFT {err:.1e}")
    # An MLX adapter through the container and back reads as the original in mlx-lm.
    for kind in ("lora", "dora"):
        src = os.path.join(HERE, "mlx", f"tiny-llama-{kind}")
        container, out = os.path.join(tmp, f"mlx-{kind}.tlora"), os.path.join(tmp, f"mlx-{kind}-again")
        run(tlora, "convert", "import", src, "-o", container)
        r = run(tlora, "export", container, "--format", "mlx", "-o", out)
        ids = mx.array(np.arange(24).reshape(2, 12) * 7 % 256)
        logits = []
        for d in (src, out):
            model, _ = load_model(Path(os.path.join(HERE, "models", "tiny-llama")))
            logits.append(np.array(load_adapters(model, d)(ids).astype(mx.float32)))
        err = rel_err(logits[1], logits[0]) if r.returncode == 0 else float("inf")
        ok = err <= 1e-6
        failures += not ok
        print(f"{'ok ' if ok else 'FAIL'} mlx     mlx/tiny-llama-{kind:9} import + export --format mlx gives mlx-lm the same logits (rel. diff {err:.1e})")
    return failures
