#!/usr/bin/env python3
"""Side-by-side benchmark of a LoKr merge and its exact conversion to LoRA (docs/BENCHMARKS.md, "Kinds").

Uses merge_bench.py's TinyLlama-shaped bf16 base (hidden 2048, 22 layers, intermediate 5632, 32/4
heads, vocab 32000, 1 GB shards: 3 shards) and its PEFT LoRA (r=16, all seven projections), and
writes a PEFT LoKr adapter on the same seven projections (r=16, alpha=32, decompose_factor=4,
init_weights=False: W1 4×4 full, W2 low-rank 16, so its exact LoRA rank is 4·16 = 64). Then, in one
run, rounds interleaved, best of N:

  tlora merge LoRA   `tlora merge LORA --base BASE -o OUT`
  tlora merge LoKr   `tlora merge LOKR --base BASE -o OUT`
  PEFT               merge_and_unload + save_pretrained of the LoKr (fresh process)
  tlora to-lora      `tlora convert to-lora LOKR -o OUT.tlora` (exact rank, f32, default codec) and
                     with `--codec raw`

every tlora command twice per round: with default flags and with TLORA_SIMD=avx2 (the AVX2 path),

and checks that tlora's and PEFT's merged LoKr checkpoints agree (bf16: at most 1 ulp apart).

Usage: benchmarks/kinds_bench.py [--work /tmp/tlora-kinds-bench] [--tlora .build/release/tlora] [--repeat 3]
"""
import argparse, os, shutil, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from merge_bench import peak_rss_run, make_base, make_adapter, compare  # noqa: E402

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_lokr(base, path, factor):
    if os.path.exists(os.path.join(path, "adapter_config.json")):
        return
    import torch
    from transformers import AutoModelForCausalLM
    from peft import LoKrConfig, get_peft_model
    torch.manual_seed(2)
    model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.bfloat16)
    cfg = LoKrConfig(r=16, alpha=32, decompose_factor=factor, init_weights=False, target_modules=ALL_LINEAR)
    get_peft_model(model, cfg).save_pretrained(path)


PEFT_SCRIPT = r'''
import sys, torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
base, adapter, out = sys.argv[1:4]
model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.bfloat16)
merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
merged.save_pretrained(out, max_shard_size="1GB")
'''


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", default="/tmp/tlora-kinds-bench")
    p.add_argument("--tlora", default=os.path.join(HERE, "..", ".build", "release", "tlora"))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--factor", type=int, default=4, help="PEFT decompose_factor of the LoKr (-1: PEFT's default)")
    p.add_argument("--skip-peft", action="store_true")
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)
    base = os.path.join(args.work, "tinyllama-bf16")
    lora = os.path.join(args.work, "tinyllama-lora-r16")
    lokr = os.path.join(args.work, f"tinyllama-lokr-r16-f{args.factor}")
    make_base(base)
    make_adapter(base, lora)
    make_lokr(base, lokr, args.factor)
    script = os.path.join(args.work, "peft_merge.py")
    open(script, "w").write(PEFT_SCRIPT)
    outs = {k: os.path.join(args.work, f"out-{k}") for k in ("lora", "lokr", "peft")}
    tl = os.path.join(args.work, "lokr-as-lora.tlora")
    tl_raw = os.path.join(args.work, "lokr-as-lora-raw.tlora")
    tlora_steps = ("tlora merge LoRA", "tlora merge LoKr", "tlora to-lora", "tlora to-lora raw")
    runs = {k + s: [] for k in tlora_steps for s in ("", " avx2")}
    runs["PEFT merge LoKr"] = []
    load_before = open("/proc/loadavg").read().split()[:3]

    def fresh(path):
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
        subprocess.run(["sync"])

    for _ in range(args.repeat):
        for suffix, env in (("", []), (" avx2", ["env", "TLORA_SIMD=avx2"])):
            fresh(outs["lora"])
            runs["tlora merge LoRA" + suffix].append(peak_rss_run(env + [args.tlora, "merge", lora, "--base", base, "-o", outs["lora"]]))
            fresh(outs["lokr"])
            runs["tlora merge LoKr" + suffix].append(peak_rss_run(env + [args.tlora, "merge", lokr, "--base", base, "-o", outs["lokr"]]))
            fresh(tl)
            runs["tlora to-lora" + suffix].append(peak_rss_run(env + [args.tlora, "convert", "to-lora", lokr, "-o", tl]))
            fresh(tl_raw)
            runs["tlora to-lora raw" + suffix].append(peak_rss_run(env + [args.tlora, "convert", "to-lora", lokr, "-o", tl_raw, "--codec", "raw"]))
        if not args.skip_peft:
            fresh(outs["peft"])
            runs["PEFT merge LoKr"].append(peak_rss_run([sys.executable, script, base, lokr, outs["peft"]]))
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"cpu: {cpu}; load average before: {' '.join(load_before)}, after: {' '.join(load)}")
    print(f"base: {base} ({sum(os.path.getsize(os.path.join(base, f)) for f in os.listdir(base)) / 1e9:.2f} GB, "
          f"{len([f for f in os.listdir(base) if f.endswith('.safetensors')])} shards); LoKr r=16 alpha=32 decompose_factor={args.factor}")
    print(f"{'what':24} {'best s':>8} {'runs s':>24} {'peak RSS':>10}")
    best = {}
    for k, v in runs.items():
        if not v:
            continue
        best[k] = min(v, key=lambda t: t[0])
        print(f"{k:24} {best[k][0]:8.2f} {' '.join(f'{t:.2f}' for t, _ in v):>24} {best[k][1] / 1e9:8.2f} GB")
    for suffix in ("", " avx2"):
        print(f"LoKr merge / LoRA merge{suffix}: {best['tlora merge LoKr' + suffix][0] / best['tlora merge LoRA' + suffix][0]:.2f}x")
        if "PEFT merge LoKr" in best:
            print(f"PEFT / tlora (LoKr merge{suffix}): {best['PEFT merge LoKr'][0] / best['tlora merge LoKr' + suffix][0]:.1f}x")
    if "PEFT merge LoKr" in best:
        worst, name, n, missing = compare(outs["peft"], outs["lokr"])
        print(f"tensors compared: {n}, largest difference: {worst} (bf16 ulp) in {name}, names differing: {sorted(missing)[:5]}")
    print(f"to-lora output: {os.path.getsize(tl) / 1e6:.1f} MB, raw {os.path.getsize(tl_raw) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
