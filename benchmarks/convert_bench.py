#!/usr/bin/env python3
"""Side-by-side conversion benchmark: tensorly vs `tlora convert`.

A Llama-2-7B-shaped PEFT adapter: r=16 on q_proj and v_proj of 32 layers, 64 modules of 4096×4096,
Gaussian factors (written directly in PEFT's file layout; no 7B model is needed). Then, in one run:

  tensorly: `tensor_train` of ONE module's dense ΔW reshaped to 16⁶ (ranks 1,16,256,16,256,16,1 —
            the exact TT ranks of a Gaussian r16 LoRA), and `tucker` of 8 layers' q_proj stacked
            (4096×4096×8, ranks 128,128,8 — exact);
  tlora:    `convert dense-to-tt --max-rel-error 1e-3` and `convert dense-to-tucker --group depth
            --max-rel-error 1e-3` of the WHOLE adapter (64 modules; 2 groups of 32 layers).

Usage: benchmarks/convert_bench.py [--work /tmp/tlora-bench] [--tlora .build/release/tlora] [--skip-tensorly]
"""
import argparse, json, os, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))


def make_adapter(path):
    if os.path.exists(os.path.join(path, "adapter_config.json")):
        return
    import torch
    from safetensors.torch import save_file
    os.makedirs(path, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    tensors = {}
    for layer in range(32):
        for proj in ("q_proj", "v_proj"):
            key = f"base_model.model.model.layers.{layer}.self_attn.{proj}"
            tensors[f"{key}.lora_A.weight"] = torch.randn(16, 4096, generator=g) / 64
            tensors[f"{key}.lora_B.weight"] = torch.randn(4096, 16, generator=g) / 64
    save_file(tensors, os.path.join(path, "adapter_model.safetensors"), metadata={"format": "pt"})
    json.dump({"peft_type": "LORA", "r": 16, "lora_alpha": 32, "target_modules": ["q_proj", "v_proj"],
               "base_model_name_or_path": "meta-llama/Llama-2-7b-hf", "task_type": "CAUSAL_LM"},
              open(os.path.join(path, "adapter_config.json"), "w"), indent=2)


def timed(cmd):
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    return dt, r.stdout


def tensorly_baselines(adapter):
    import numpy as np, tensorly as tl
    from tensorly.decomposition import tensor_train, tucker
    from safetensors.numpy import load_file
    st = load_file(os.path.join(adapter, "adapter_model.safetensors"))
    def delta(layer, proj):
        key = f"base_model.model.model.layers.{layer}.self_attn.{proj}"
        return 2.0 * st[f"{key}.lora_B.weight"].astype(np.float64) @ st[f"{key}.lora_A.weight"].astype(np.float64)
    x = delta(0, "q_proj").reshape([16] * 6)
    t = time.perf_counter()
    tt = tensor_train(x, rank=[1, 16, 256, 16, 256, 16, 1])
    tt_time = time.perf_counter() - t
    err = np.linalg.norm(tl.tt_to_tensor(tt) - x) / np.linalg.norm(x)
    stack = np.stack([delta(layer, "q_proj").T for layer in range(8)], axis=-1)  # (in, out, L) as TensLoRA
    t = time.perf_counter()
    core, factors = tucker(stack, rank=[128, 128, 8])
    tucker_time = time.perf_counter() - t
    terr = np.linalg.norm(tl.tucker_to_tensor((core, factors)) - stack) / np.linalg.norm(stack)
    return tt_time, err, tucker_time, terr


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", default="/tmp/tlora-bench")
    p.add_argument("--tlora", default=os.path.join(HERE, "..", ".build", "release", "tlora"))
    p.add_argument("--skip-tensorly", action="store_true")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    adapter = os.path.join(args.work, "llama7b-lora-r16")
    make_adapter(adapter)
    tt_out, tk_out = os.path.join(args.work, "7b-tt.tlora"), os.path.join(args.work, "7b-tucker.tlora")
    tt_times, tk_times = [], []
    for _ in range(args.repeat):
        tt_times.append(timed([args.tlora, "convert", "dense-to-tt", adapter, "-o", tt_out, "--max-rel-error", "1e-3", "--force", "--level", "3"]))
        tk_times.append(timed([args.tlora, "convert", "dense-to-tucker", adapter, "-o", tk_out, "--group", "depth", "--max-rel-error", "1e-3", "--force", "--level", "3"]))
    tt_best = min(t for t, _ in tt_times)
    tk_best = min(t for t, _ in tk_times)
    tt_worst_err = tt_times[-1][1].strip().splitlines()[-1]
    tk_worst_err = tk_times[-1][1].strip().splitlines()[-1]
    print(f"tlora dense-to-tt   (64 modules):  best {tt_best:.2f} s  runs {' '.join(f'{t:.2f}' for t, _ in tt_times)}")
    print(f"  {tt_worst_err}")
    print(f"tlora dense-to-tucker --group depth (2 groups × 32 layers): best {tk_best:.2f} s  runs {' '.join(f'{t:.2f}' for t, _ in tk_times)}")
    print(f"  {tk_worst_err}")
    if not args.skip_tensorly:
        tt_time, err, tucker_time, terr = tensorly_baselines(adapter)
        print(f"tensorly tensor_train, ONE module (dense 16^6): {tt_time:.1f} s (rel. error {err:.1e}); × 64 = {tt_time * 64:.0f} s")
        print(f"tensorly tucker, 8 layers' q_proj stack: {tucker_time:.1f} s (rel. error {terr:.1e})")
        print(f"dense-to-tt speedup vs tensorly × 64: {tt_time * 64 / tt_best:.0f}x")
        print(f"dense-to-tucker (64 modules) vs tensorly tucker (8 modules): {tucker_time / tk_best:.0f}x faster while doing 8x the modules")


if __name__ == "__main__":
    main()
