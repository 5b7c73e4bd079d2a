#!/usr/bin/env python3
"""The write path's size/time trade-off: `tlora` with its default zstd effort against fixed levels.

For each input, `tlora` runs with the default (no --level), with --level 1, 3, 9 and 19, and with
--codec raw (no compression: the floor of the time, the ceiling of the size); rounds alternate the
settings, best of --repeat. Reported: file bytes (and the ratio to level 1), best wall time, and the
user CPU of that run.

Inputs:
  real     `tlora convert import Fixtures/peft/minilm-trained` (r16 trained on all-MiniLM-L6-v2, f32)
  random   `tlora convert import` of the Llama-2-7B-shaped r16 q/v adapter (Gaussian f32, 32 MiB;
           made by convert_bench.py's generator in --work)
  tt       `tlora convert dense-to-tt` of that adapter at --max-rel-error 1e-3 (53 MiB of TT cores):
           the conversion whose write cost issue 16 is about

--planes adds python-zstandard on the byte planes of real trained weights at scale (the
all-MiniLM-L6-v2 base checkpoint, 90 MB f32, laid out as tlora's bytegroup codec lays them out),
level by level, with the same level-1 probe rule tlora applies.

Usage: benchmarks/write_bench.py [--work /tmp/tlora-bench] [--tlora .build/release/tlora] [--repeat 3] [--planes]
"""
import argparse, os, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402
import convert_bench  # noqa: E402

SETTINGS = [("default", []), ("--level 1", ["--level", "1"]), ("--level 3", ["--level", "3"]),
            ("--level 9", ["--level", "9"]), ("--level 19", ["--level", "19"]), ("--codec raw", ["--codec", "raw"])]


def plane_levels(path):
    import numpy as np, zstandard
    from safetensors.numpy import load_file
    tensors = [v for v in load_file(path).values() if v.dtype == np.float32]
    raw = sum(t.nbytes for t in tensors)
    def planes(a):
        u = a.view(np.uint32).ravel()
        r = (u << np.uint32(1)) | (u >> np.uint32(31))
        return [np.ascontiguousarray((r >> np.uint32(8 * (3 - p))).astype(np.uint8)).tobytes() for p in range(4)]
    split = [planes(t) for t in tensors]
    probe = zstandard.ZstdCompressor(level=1)
    print(f"\nbyte planes of {os.path.relpath(path)} ({len(tensors)} f32 tensors, {raw / 1e6:.1f} MB), python-zstandard, one thread:")
    print("| level | bytes / raw | MB/s |")
    print("|---|---:|---:|")
    for level in (1, 3, 9, 19):
        c = zstandard.ZstdCompressor(level=level)
        total, t0 = 0, time.perf_counter()
        for ps in split:
            for p in ps:
                frame = probe.compress(p)
                # tlora's rule: a plane > 64 KiB that the probe cannot shrink by 3 % keeps the probe.
                if level > 1 and not (len(p) > 65536 and len(frame) >= 0.97 * len(p)):
                    frame = min(frame, c.compress(p), key=len)
                total += len(frame)
        dt = time.perf_counter() - t0
        print(f"| {level} | {total / raw:.4f} | {raw / dt / 1e6:.0f} |")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", default="/tmp/tlora-bench")
    p.add_argument("--tlora", default=os.path.join(HERE, "..", ".build", "release", "tlora"))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--planes", action="store_true")
    args = p.parse_args()
    big = os.path.join(args.work, "llama7b-lora-r16")
    convert_bench.make_adapter(big)
    out = os.path.join(args.work, "write-bench.tlora")
    inputs = {
        "real (MiniLM r16, import)": [args.tlora, "convert", "import", os.path.join(HERE, "..", "Fixtures", "peft", "minilm-trained")],
        "random (7B q/v r16, import)": [args.tlora, "convert", "import", big],
        "tt (7B q/v r16, dense-to-tt 1e-3)": [args.tlora, "convert", "dense-to-tt", big, "--max-rel-error", "1e-3"],
    }
    print(f"CPU: {benchlib.cpu_description()}")
    print(f"before: {benchlib.load()}")
    results = {(i, s): [] for i in inputs for s, _ in SETTINGS}
    for _ in range(args.repeat):
        for name, cmd in inputs.items():
            for setting, flags in SETTINGS:
                r = benchlib.timed(cmd + ["-o", out, "--force"] + flags)
                results[(name, setting)].append(r + (os.path.getsize(out),))
    print(f"after: {benchlib.load()}")
    print("| input | setting | bytes | × level 1 | best s | user CPU s |")
    print("|---|---|---:|---:|---:|---:|")
    for name in inputs:
        level1 = benchlib.best(results[(name, "--level 1")])[5]
        for setting, _ in SETTINGS:
            b = benchlib.best(results[(name, setting)])
            print(f"| {name} | {setting} | {b[5]:,} | {b[5] / level1:.4f} | {b[0]:.2f} | {b[2]:.2f} |")
    os.remove(out)
    if args.planes:
        base = subprocess.run([os.path.join(HERE, "..", "scripts", "minilm-base.sh")], capture_output=True, text=True).stdout.strip()
        plane_levels(os.path.join(base, "model.safetensors"))


if __name__ == "__main__":
    main()
