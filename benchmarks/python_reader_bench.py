#!/usr/bin/env python3
"""Side-by-side decode speed of the two .tlora readers on the Llama-2-7B-shaped adapter (r16 on q_proj
and v_proj of 32 layers: 64 modules of 4096×4096, Gaussian f32 factors, made by convert_bench.py's
generator), one thread each, in one run with the rounds interleaved:

  swift   `tlora-bench decode FILE` (TLoRAFile.readAllTensorsSerially: checksum, decompression,
          byte-plane regrouping, finiteness; best of its own runs)
  python  `tlora.open(FILE)` then `.tensor(name)` for every tensor (the same work in numpy, zstandard
          and xxhash), best of the rounds

for the file as `tlora convert import` writes it (auto codec: byte-grouped zstd where it pays) and with
`--codec raw`. Prints decoded GB/s for each and the ratio python / swift.

Usage: benchmarks/python_reader_bench.py [--work DIR] [--tlora .build/release/tlora] [--bench .build/release/tlora-bench] [--rounds 5]
"""
import argparse, os, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, HERE)


def python_decode(path):
    import tlora
    t = time.perf_counter()
    f = tlora.open(path)
    n = 0
    for name in f.tensors:
        n += f.tensor(name).nbytes
    return time.perf_counter() - t, n


def swift_decode(bench, path):
    r = subprocess.run([bench, "decode", path], capture_output=True, text=True, env={**os.environ, "TLORA_THREADS": "1"})
    if r.returncode != 0:
        raise SystemExit(r.stdout + r.stderr)
    return float(r.stdout.strip().splitlines()[-1])  # GB/s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/tlora-bench")
    ap.add_argument("--tlora", default=os.path.join(HERE, "..", ".build", "release", "tlora"))
    ap.add_argument("--bench", default=os.path.join(HERE, "..", ".build", "release", "tlora-bench"))
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from convert_bench import make_adapter
    adapter = os.path.join(args.work, "llama7b-lora-r16")
    make_adapter(adapter)
    files = {}
    for codec in ("auto", "raw"):
        out = os.path.join(args.work, f"7b-{codec}.tlora")
        if not os.path.exists(out):
            subprocess.run([args.tlora, "convert", "import", adapter, "-o", out, "--codec", codec], check=True, capture_output=True)
        files[codec] = out
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average) at start")
    for codec, path in files.items():
        swift, py = 0.0, 0.0
        for _ in range(args.rounds):  # interleaved rounds, best of each
            swift = max(swift, swift_decode(args.bench, path))
            dt, n = python_decode(path)
            py = max(py, n / dt / 1e9)
        size = os.path.getsize(path)
        print(f"{codec:5} {size / 1e6:7.1f} MB file, {n / 1e6:.1f} MB decoded: swift {swift:.2f} GB/s, python {py:.2f} GB/s, python/swift {py / swift:.2f}")
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average) at end")


if __name__ == "__main__":
    main()
