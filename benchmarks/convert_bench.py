#!/usr/bin/env python3
"""Side-by-side conversion benchmark: tensorly vs `tlora convert`, with the flags a user types.

A Llama-2-7B-shaped PEFT adapter: r=16 on q_proj and v_proj of 32 layers, 64 modules of 4096×4096,
Gaussian factors (written directly in PEFT's file layout; no 7B model is needed). Then, in one run,
rounds alternating the tools:

  tensorly: `tensor_train` of ONE module's dense ΔW reshaped to 16⁶ (ranks 1,16,256,16,256,16,1 —
            the exact TT ranks of a Gaussian r16 LoRA), and (unless --skip-tensorly-tucker) `tucker`
            of 8 layers' q_proj stacked (4096×4096×8, ranks 128,128,8 — exact);
  tlora:    `tlora convert dense-to-tt SRC -o OUT --max-rel-error 1e-3` and
            `tlora convert dense-to-tucker SRC -o OUT --group depth --max-rel-error 1e-3` of the
            WHOLE adapter (64 modules; 2 groups of 32 layers), default flags otherwise, on the
            machine's own instruction set and, when it has AVX-512, also with TLORA_SIMD=avx2.

Wall time of the whole command (reading, converting, measuring the stored result's error, writing
with fsync) and its peak RSS; best of --repeat rounds.

Usage: benchmarks/convert_bench.py [--work /tmp/tlora-bench] [--tlora .build/release/tlora] [--repeat 3] [--tensorly-rounds N]
                                   [--skip-tensorly | --skip-tensorly-tucker]
"""
import argparse, json, os, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402

E = "1e-3"


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


def delta_loader(adapter):
    import numpy as np
    from safetensors.numpy import load_file
    st = load_file(os.path.join(adapter, "adapter_model.safetensors"))
    def delta(layer, proj):
        key = f"base_model.model.model.layers.{layer}.self_attn.{proj}"
        return 2.0 * st[f"{key}.lora_B.weight"].astype(np.float64) @ st[f"{key}.lora_A.weight"].astype(np.float64)
    return delta


def tensorly_tt(delta):
    import numpy as np, tensorly as tl
    from tensorly.decomposition import tensor_train
    x = delta(0, "q_proj").reshape([16] * 6)
    t = time.perf_counter()
    tt = tensor_train(x, rank=[1, 16, 256, 16, 256, 16, 1])
    seconds = time.perf_counter() - t
    return seconds, np.linalg.norm(tl.tt_to_tensor(tt) - x) / np.linalg.norm(x)


def tensorly_tucker(delta):
    import numpy as np, tensorly as tl
    from tensorly.decomposition import tucker
    stack = np.stack([delta(layer, "q_proj").T for layer in range(8)], axis=-1)  # (in, out, L) as TensLoRA
    t = time.perf_counter()
    core, factors = tucker(stack, rank=[128, 128, 8])
    seconds = time.perf_counter() - t
    return seconds, np.linalg.norm(tl.tucker_to_tensor((core, factors)) - stack) / np.linalg.norm(stack)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", default="/tmp/tlora-bench")
    p.add_argument("--tlora", default=os.path.join(HERE, "..", ".build", "release", "tlora"))
    p.add_argument("--skip-tensorly", action="store_true")
    p.add_argument("--skip-tensorly-tucker", action="store_true", help="the 8-layer tucker baseline takes minutes")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--tensorly-rounds", type=int, default=None,
                   help="rounds that also time tensorly (default: every round; on a loaded machine one round of ~30 s+ is plenty)")
    args = p.parse_args()
    adapter = os.path.join(args.work, "llama7b-lora-r16")
    make_adapter(adapter)
    tt_out, tk_out = os.path.join(args.work, "7b-tt.tlora"), os.path.join(args.work, "7b-tucker.tlora")
    commands = {
        "tt": [args.tlora, "convert", "dense-to-tt", adapter, "-o", tt_out, "--max-rel-error", E, "--force"],
        "tucker": [args.tlora, "convert", "dense-to-tucker", adapter, "-o", tk_out, "--group", "depth", "--max-rel-error", E, "--force"],
    }
    paths = benchlib.simd_paths()
    print(f"CPU: {benchlib.cpu_description()}")
    print(f"before: {benchlib.load()}")
    delta = None if args.skip_tensorly else delta_loader(adapter)
    runs = {(job, name): [] for job in commands for name, _ in paths}
    tensorly_runs = []
    tensorly_rounds = args.repeat if args.tensorly_rounds is None else args.tensorly_rounds
    for round in range(args.repeat):
        if delta is not None and round < tensorly_rounds:
            tensorly_runs.append(tensorly_tt(delta))
            print(f"tensorly round {round + 1}: {tensorly_runs[-1][0]:.1f} s ({benchlib.load()})", flush=True)
        for name, env in paths:
            for job, cmd in commands.items():
                runs[(job, name)].append(benchlib.timed(cmd, env))
                r = runs[(job, name)][-1]
                print(f"round {round + 1} {job} {name}: {r[0]:.2f} s wall, {r[2] + r[3]:.2f} s CPU, {r[1] / 1e9:.3f} GB ({benchlib.load()})", flush=True)
    tucker = None
    if delta is not None and not args.skip_tensorly_tucker:
        tucker = tensorly_tucker(delta)
    print(f"after: {benchlib.load()}")
    print("commands (flags as a user types them; --force only to replace the previous round's output):")
    for job, cmd in commands.items():
        print("  " + " ".join(os.path.relpath(c) if c == args.tlora else c for c in cmd))
    print()
    print("| job | path | best s | runs s | least CPU s (user+sys) | peak RSS | result |")
    print("|---|---|---:|---|---:|---:|---|")
    for (job, name), rs in runs.items():
        b = benchlib.best(rs)
        cpu = min(r[2] + r[3] for r in rs)
        print(f"| {job} | {name} | {b[0]:.2f} | {benchlib.runs_text(rs)} | {cpu:.2f} | {max(r[1] for r in rs) / 1e9:.3f} GB | {b[4].strip().splitlines()[-1]} |")
    if tensorly_runs:
        tt_time, err = min(tensorly_runs)
        print(f"\ntensorly tensor_train, ONE module (dense 16^6): best {tt_time:.1f} s of {', '.join(f'{t:.1f}' for t, _ in tensorly_runs)} "
              f"(rel. error {err:.1e}); x 64 = {tt_time * 64:.0f} s")
        for name, _ in paths:
            b = benchlib.best(runs[("tt", name)])
            print(f"dense-to-tt ({name}) vs tensorly x 64: {tt_time * 64 / b[0]:.0f}x (goal >= 1000x)")
    if tucker:
        print(f"tensorly tucker, 8 layers' q_proj stack: {tucker[0]:.1f} s (rel. error {tucker[1]:.1e})")
    for name, _ in paths:
        b = benchlib.best(runs[("tucker", name)])
        print(f"dense-to-tucker --group depth ({name}): {b[0]:.2f} s (goal < 5 s), peak RSS {b[1] / 1e9:.3f} GB (goal < 0.5 GB)")


if __name__ == "__main__":
    main()
