#!/usr/bin/env python3
"""Side-by-side merge benchmark: PEFT merge_and_unload vs `tlora merge`.

Builds (once, outside the repository) a TinyLlama-shaped model with random weights — hidden 2048,
22 layers, intermediate 5632, 32 heads / 4 KV heads, vocab 32000, bf16, 1 GB shards — and a PEFT
LoRA adapter, r=16 on all seven linear projections. Then times, in one run on this machine:

  PEFT:  AutoModelForCausalLM.from_pretrained + PeftModel.from_pretrained(...).merge_and_unload()
         + save_pretrained (same shard size), in a fresh process, with its peak RSS;
  tlora: `tlora merge ADAPTER --base BASE -o OUT`, with its peak RSS;

and checks that both outputs hold the same tensors (bf16: at most 1 unit in the last place apart).

Usage: benchmarks/merge_bench.py [--work /tmp/tlora-bench] [--tlora .build/release/tlora] [--repeat 3]
"""
import argparse, os, shutil, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))


def peak_rss_run(cmd):
    """Runs cmd; returns (seconds, peak RSS in bytes of that command alone).

    Measured by GNU time (Debian's `time` package): a child forked from this Python process would
    report this process's own RSS at fork time (ru_maxrss counts the time before exec), which once
    inflated tlora's figure with the memory of the model this script had just generated."""
    r = subprocess.run(["/usr/bin/time", "-f", "%e %M"] + cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    seconds, kib = r.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kib) * 1024


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
    args = p.parse_args()
    base = os.path.join(args.work, "tinyllama-bf16")
    adapter = os.path.join(args.work, "tinyllama-lora-r16")
    os.makedirs(args.work, exist_ok=True)
    make_base(base)
    make_adapter(base, adapter)
    peft_out = os.path.join(args.work, "merged-peft")
    tlora_out = os.path.join(args.work, "merged-tlora")
    script = os.path.join(args.work, "peft_merge.py")
    open(script, "w").write(PEFT_SCRIPT)
    results = {"peft": [], "tlora": []}
    for _ in range(args.repeat):
        shutil.rmtree(peft_out, ignore_errors=True)
        subprocess.run(["sync"])
        results["peft"].append(peak_rss_run([sys.executable, script, base, adapter, peft_out]))
        shutil.rmtree(tlora_out, ignore_errors=True)
        subprocess.run(["sync"])
        results["tlora"].append(peak_rss_run([args.tlora, "merge", adapter, "--base", base, "-o", tlora_out]))
    worst, name, n, missing = compare(peft_out, tlora_out)
    best = {k: min(v, key=lambda t: t[0]) for k, v in results.items()}
    print(f"base: {base} ({sum(os.path.getsize(os.path.join(base, f)) for f in os.listdir(base)) / 1e9:.2f} GB), adapter r16 x 7 projections x 22 layers")
    print(f"{'tool':8} {'best s':>8} {'runs s':>24} {'peak RSS':>10}")
    for k in ("peft", "tlora"):
        runs = " ".join(f"{t:.2f}" for t, _ in results[k])
        print(f"{k:8} {best[k][0]:8.2f} {runs:>24} {best[k][1] / 1e9:8.2f} GB")
    print(f"speedup {best['peft'][0] / best['tlora'][0]:.1f}x, memory {best['tlora'][1] / best['peft'][1]:.3f}x")
    print(f"tensors compared: {n}, largest difference: {worst} (bf16 ulp) in {name}, names differing: {sorted(missing)[:5]}")


if __name__ == "__main__":
    main()
