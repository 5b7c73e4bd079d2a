#!/usr/bin/env python3
"""Side-by-side merge benchmark: PEFT merge_and_unload vs `tlora merge`.

Builds (once, outside the repository) a TinyLlama-shaped model with random weights — hidden 2048,
22 layers, intermediate 5632, 32 heads / 4 KV heads, vocab 32000, bf16, 1 GB shards — and a PEFT
LoRA adapter, r=16 on all seven linear projections. Then times, in one run on this machine:

  PEFT:  AutoModelForCausalLM.from_pretrained + PeftModel.from_pretrained(...).merge_and_unload()
         + save_pretrained (same shard size), in a fresh process, with its peak RSS;
  tlora: `tlora merge ADAPTER --base BASE -o OUT` (default flags; also with TLORA_SIMD=avx2 when
         the machine has AVX-512), with its peak RSS;
  copy:  `cp -r BASE OUT && sync` — the disk's floor for reading and writing the same bytes;

and checks that the PEFT and tlora outputs hold the same tensors (bf16: at most 1 unit in the last
place apart). Rounds alternate the tools; `sync` and removal of the previous output before each run.

Usage: benchmarks/merge_bench.py [--work /tmp/tlora-bench] [--tlora .build/release/tlora] [--repeat 3] [--skip-peft | --peft-rounds N]
"""
import argparse, os, shutil, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402


def peak_rss_run(cmd, env=None):
    """Runs cmd; returns (seconds, peak RSS in bytes of that command alone), by GNU time."""
    wall, rss, _, _, _ = benchlib.timed(cmd, env)
    return wall, rss


def make_base(path):
    if os.path.exists(os.path.join(path, "config.json")):
        return
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                      num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048, torch_dtype="bfloat16")
    with torch.device("cpu"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(path, max_shard_size="1GB")


def make_adapter(base, path):
    if os.path.exists(os.path.join(path, "adapter_config.json")):
        return
    import torch
    from transformers import AutoModelForCausalLM
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.bfloat16)
    cfg = LoraConfig(r=16, lora_alpha=32, init_lora_weights=False,
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    peft_model = get_peft_model(model, cfg)
    peft_model.save_pretrained(path)


PEFT_SCRIPT = r'''
import sys, torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
base, adapter, out = sys.argv[1:4]
model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.bfloat16)
merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
merged.save_pretrained(out, max_shard_size="1GB")
'''


def compare(a, b):
    """Largest difference in bf16 units in the last place between two checkpoints' tensors."""
    import torch
    from safetensors.torch import load_file
    def tensors(d):
        out = {}
        for f in sorted(os.listdir(d)):
            if f.endswith(".safetensors"):
                out.update(load_file(os.path.join(d, f)))
        return out
    ta, tb = tensors(a), tensors(b)
    worst, worst_name, n = 0, None, 0
    for k, x in ta.items():
        if k not in tb:
            continue
        y = tb[k]
        if x.dtype == torch.bfloat16:
            xi = x.view(torch.int16).to(torch.int32)
            yi = y.view(torch.int16).to(torch.int32)
            # ordered integer view of bf16 so adjacent values differ by 1
            xi = torch.where(xi < 0, -32768 - xi, xi)
            yi = torch.where(yi < 0, -32768 - yi, yi)
            d = (xi - yi).abs().max().item()
        else:
            d = (x.double() - y.double()).abs().max().item()
        if d > worst:
            worst, worst_name = d, k
        n += 1
    return worst, worst_name, n, set(ta) ^ set(tb)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", default="/tmp/tlora-bench")
    p.add_argument("--tlora", default=os.path.join(HERE, "..", ".build", "release", "tlora"))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--skip-peft", action="store_true", help="only tlora and the copy (PEFT needs ~3 GB and ~30 s a run)")
    p.add_argument("--peft-rounds", type=int, default=None, help="rounds that also run PEFT (default: every round)")
    args = p.parse_args()
    base = os.path.join(args.work, "tinyllama-bf16")
    adapter = os.path.join(args.work, "tinyllama-lora-r16")
    os.makedirs(args.work, exist_ok=True)
    make_base(base)
    make_adapter(base, adapter)
    peft_out = os.path.join(args.work, "merged-peft")
    tlora_out = os.path.join(args.work, "merged-tlora")
    copy_out = os.path.join(args.work, "copied-base")
    script = os.path.join(args.work, "peft_merge.py")
    open(script, "w").write(PEFT_SCRIPT)
    paths = benchlib.simd_paths()
    tools = ([] if args.skip_peft else ["peft"]) + [f"tlora {name}" for name, _ in paths] + ["cp -r + sync"]
    results = {k: [] for k in tools}
    print(f"CPU: {benchlib.cpu_description()}")
    print(f"before: {benchlib.load()}")
    peft_rounds = args.repeat if args.peft_rounds is None else args.peft_rounds

    def clear():
        # Every timed run starts from the same page cache: the base and no output of any tool (an
        # output left from the run before changes how much memory the kernel must find for the next).
        for d in (tlora_out, copy_out):
            shutil.rmtree(d, ignore_errors=True)
        subprocess.run(["sync"])

    for round in range(args.repeat):
        if not args.skip_peft and round < peft_rounds:
            shutil.rmtree(peft_out, ignore_errors=True)
            subprocess.run(["sync"])
            results["peft"].append(peak_rss_run([sys.executable, script, base, adapter, peft_out]))
        for name, env in paths:
            clear()
            results[f"tlora {name}"].append(peak_rss_run([args.tlora, "merge", adapter, "--base", base, "-o", tlora_out], env))
        clear()
        results["cp -r + sync"].append(peak_rss_run(["sh", "-c", f"cp -r '{base}' '{copy_out}' && sync"]))
    print(f"after: {benchlib.load()}")
    shutil.rmtree(copy_out, ignore_errors=True)
    best = {k: min(v, key=lambda t: t[0]) for k, v in results.items()}
    print(f"base: {base} ({sum(os.path.getsize(os.path.join(base, f)) for f in os.listdir(base)) / 1e9:.2f} GB), adapter r16 x 7 projections x 22 layers")
    print(f"command: tlora merge {adapter} --base {base} -o {tlora_out}")
    print("| tool | best s | runs s | peak RSS |")
    print("|---|---:|---|---:|")
    for k in tools:
        runs = ", ".join(f"{t:.2f}" for t, _ in results[k])
        print(f"| {k} | {best[k][0]:.2f} | {runs} | {best[k][1] / 1e9:.2f} GB |")
    for name, _ in paths:
        t = best[f"tlora {name}"]
        print(f"tlora ({name}) / (cp -r + sync): {t[0] / best['cp -r + sync'][0]:.2f}x (goal <= 1.15x)")
        if not args.skip_peft:
            print(f"tlora ({name}) vs PEFT: {best['peft'][0] / t[0]:.1f}x faster, memory {t[1] / best['peft'][1]:.3f}x")
    if not args.skip_peft:
        # The rounds leave no tlora output behind (clear()); make one, untimed, to compare with PEFT's.
        subprocess.run([args.tlora, "merge", adapter, "--base", base, "-o", tlora_out], check=True, capture_output=True)
        worst, name, n, missing = compare(peft_out, tlora_out)
        print(f"tensors compared: {n}, largest difference: {worst} (bf16 ulp) in {name}, names differing: {sorted(missing)[:5]}")


if __name__ == "__main__":
    main()
