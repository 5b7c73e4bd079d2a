#!/usr/bin/env python3
"""Side-by-side extraction benchmark: mergekit-extract-lora vs `tlora extract`.

The pair: the TinyLlama-shaped random base of merge_bench.py (hidden 2048, 22 layers, intermediate
5632, 32/4 heads, vocab 32000, bf16, 1 GB shards, 2.2 GB) and a "fine-tune" made here: every linear
weight of every layer gets a random rank-32 change (‖ΔW‖ ≈ 2 % of ‖W‖) plus small dense noise
(1 % of the change), rounded to bf16; embeddings, head and norms are left as they are. In one run,
rounds alternating the tools, both at the same rank (--rank, default 64), default flags otherwise:

  mergekit: mergekit-extract-lora --model FT --base-model BASE --out-path OUT --max-rank R (mergekit 0.1.5, CPU)
  tlora:    tlora extract --base BASE --finetuned FT --max-rank R --format peft -o OUT
            (also with TLORA_SIMD=avx2 when the machine has AVX-512)

Wall time and peak RSS of each command (GNU time), best of --repeat; then, per module, the relative
error ‖ΔW − B·A‖_F/‖ΔW‖_F of each tool's output against the exact ΔW (f64, from the two checkpoints).

Usage: benchmarks/extract_bench.py [--work /tmp/tlora-bench] [--tlora .build/release/tlora] [--repeat 3] [--rank 64]
"""
import argparse, json, os, shutil, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402
import merge_bench  # noqa: E402

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def make_finetune(base, out):
    if os.path.exists(os.path.join(out, "config.json")):
        return
    import torch
    from safetensors.torch import load_file, save_file
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(11)
    for f in sorted(os.listdir(base)):
        src = os.path.join(base, f)
        if not f.endswith(".safetensors"):
            if os.path.isfile(src):
                shutil.copy(src, out)
            continue
        tensors = load_file(src)
        for name, w in tensors.items():
            if not (name.endswith(".weight") and any(p in name for p in PROJECTIONS)):
                continue
            w32 = w.float()
            rows, cols = w32.shape
            b = torch.randn(rows, 32, generator=g)
            a = torch.randn(32, cols, generator=g)
            change = b @ a
            change *= 0.02 * w32.norm() / change.norm()
            noise = torch.randn(rows, cols, generator=g)
            noise *= 0.01 * change.norm() / noise.norm()
            tensors[name] = (w32 + change + noise).to(torch.bfloat16)
        save_file(tensors, os.path.join(out, f), metadata={"format": "pt"})


def errors(base, ft, adapter):
    """{module: relative error} of a PEFT adapter against the exact ΔW (f64)."""
    import torch
    from safetensors import safe_open
    lora = {}
    with safe_open(os.path.join(adapter, "adapter_model.safetensors"), "pt") as f:
        for k in f.keys():
            lora[k] = f.get_tensor(k)
    cfg = json.load(open(os.path.join(adapter, "adapter_config.json")))
    index = json.load(open(os.path.join(base, "model.safetensors.index.json")))["weight_map"]
    out = {}
    handles = {}
    def tensor(d, name):
        key = (d, index[name])
        if key not in handles:
            handles[key] = safe_open(os.path.join(d, index[name]), "pt")
        return handles[key].get_tensor(name)
    for key in lora:
        if not key.endswith(".lora_A.weight"):
            continue
        module = key[len("base_model.model."):-len(".lora_A.weight")]
        r = lora[key].shape[0]
        alpha = cfg.get("alpha_pattern", {}).get(module, cfg["lora_alpha"])
        rank = cfg.get("rank_pattern", {}).get(module, cfg["r"])
        delta = tensor(ft, module + ".weight").double() - tensor(base, module + ".weight").double()
        approx = (alpha / rank) * (lora[key.replace("lora_A", "lora_B")].double() @ lora[key].double())
        out[module] = ((delta - approx).norm() / delta.norm()).item()
        assert rank == r
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", default="/tmp/tlora-bench")
    p.add_argument("--tlora", default=os.path.join(HERE, "..", ".build", "release", "tlora"))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rank", type=int, default=64)
    args = p.parse_args()
    base = os.path.join(args.work, "tinyllama-bf16")
    ft = os.path.join(args.work, "tinyllama-bf16-finetuned")
    os.makedirs(args.work, exist_ok=True)
    merge_bench.make_base(base)
    make_finetune(base, ft)
    mk_out, tl_out = os.path.join(args.work, "extract-mergekit"), os.path.join(args.work, "extract-tlora")
    mergekit = ["mergekit-extract-lora", "--model", ft, "--base-model", base, "--out-path", mk_out, "--max-rank", str(args.rank), "--device", "cpu"]
    tlora = [args.tlora, "extract", "--base", base, "--finetuned", ft, "--max-rank", str(args.rank), "--format", "peft", "-o", tl_out]
    paths = benchlib.simd_paths()
    runs = {"mergekit": []}
    runs.update({f"tlora {n}": [] for n, _ in paths})
    print(f"CPU: {benchlib.cpu_description()}")
    print(f"before: {benchlib.load()}")
    for _ in range(args.repeat):
        shutil.rmtree(mk_out, ignore_errors=True)
        runs["mergekit"].append(benchlib.timed(mergekit))
        for name, env in paths:
            shutil.rmtree(tl_out, ignore_errors=True)
            runs[f"tlora {name}"].append(benchlib.timed(tlora, env))
    print(f"after: {benchlib.load()}")
    print("commands:\n  " + " ".join(mergekit) + "\n  " + " ".join(tlora))
    print("| tool | best s | runs s | peak RSS |")
    print("|---|---:|---|---:|")
    for k, v in runs.items():
        b = benchlib.best(v)
        print(f"| {k} | {b[0]:.1f} | {benchlib.runs_text(v)} | {b[1] / 1e9:.2f} GB |")
    mk = benchlib.best(runs["mergekit"])
    for name, _ in paths:
        t = benchlib.best(runs[f"tlora {name}"])
        print(f"tlora ({name}) vs mergekit: {mk[0] / t[0]:.1f}x faster (goal >= 10x), peak RSS {t[1] / mk[1]:.3f}x (goal <= 0.25x)")
    ours, theirs = errors(base, ft, tl_out), errors(base, ft, mk_out)
    common = sorted(set(ours) & set(theirs))
    worse = [m for m in common if ours[m] > theirs[m] * (1 + 1e-6)]
    print(f"modules: tlora {len(ours)}, mergekit {len(theirs)}, compared {len(common)}")
    print(f"relative error, tlora: max {max(ours.values()):.5f} mean {sum(ours.values()) / len(ours):.5f}; "
          f"mergekit: max {max(theirs.values()):.5f} mean {sum(theirs.values()) / len(theirs):.5f}")
    print(f"modules where tlora's error exceeds mergekit's: {len(worse)} {worse[:3]}")


if __name__ == "__main__":
    main()
