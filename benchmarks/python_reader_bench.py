#!/usr/bin/env python3
"""Side-by-side decode speed of the two .tlora readers on the Llama-2-7B-shaped adapter (r16 on q_proj
and v_proj of 32 layers: 64 modules of 4096×4096, Gaussian f32 factors, made by convert_bench.py's
generator), one thread each, in one run with the rounds interleaved:

  swift   `tlora-bench decode FILE` (TLoRAFile.readAllTensorsSerially: checksum, decompression,
          byte-plane regrouping, finiteness; best of its own runs)
  python  `tlora.open(FILE)` once, then `.tensor(name)` for every tensor (the same work in numpy,
          zstandard and xxhash), best of its runs within a budget like tlora-bench's

for the file as `tlora convert import` writes it (auto codec: byte-grouped zstd where it pays) and with
`--codec raw`. Prints decoded GB/s for each and the ratio python / swift.

Usage: benchmarks/python_reader_bench.py [--work DIR] [--tlora .build/release/tlora] [--bench .build/release/tlora-bench] [--rounds 5]
"""
import argparse, os, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, HERE)


def python_decode(path, budget=3.0):
    """Best wall time of reading every tensor, the file opened once — as `tlora-bench decode` times
    `readAllTensorsSerially` (at least 3 runs, then until the budget is spent, at most 200)."""
    import tlora
    f = tlora.open(path)
    best, total, runs, n = float("inf"), 0.0, 0, 0
    while runs < 3 or (total < budget and runs < 200):
        t = time.perf_counter()
        n = sum(f.tensor(name).nbytes for name in f.tensors)
        dt = time.perf_counter() - t
        best, total, runs = min(best, dt), total + dt, runs + 1
    return best, n


def swift_decode(bench, path):
    r = subprocess.run([bench, "decode", path], capture_output=True, text=True, env={**os.environ, "TLORA_THREADS": "1"})
    if r.returncode != 0:
        raise SystemExit(r.stdout + r.stderr)
    return float(r.stdout.strip().splitlines()[-1])  # GB/s


def cpu_of_child(cmd):
    """CPU seconds (user + system) a child process used."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "TLORA_THREADS": "1"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cpu_python_verify(path):
    import tlora
    t = time.process_time()
    tlora.open(path).verify()
    return time.process_time() - t


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
    empty = os.path.join(HERE, "..", "fuzz", "corpus", "container", "empty.tlora")
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average) at start")
    for codec, path in files.items():
        # Wall time, best of many runs on one thread (tlora-bench decode vs the same loop in Python).
        swift, py = 0.0, 0.0
        for _ in range(args.rounds):  # interleaved rounds, best of each
            swift = max(swift, swift_decode(args.bench, path))
            dt, n = python_decode(path)
            py = max(py, n / dt / 1e9)
        # CPU time (robust to other processes' load): `tlora verify` on one thread, less its start-up
        # (verify of an empty file), against tlora.open(path).verify(); both read, checksum, decode
        # and check every tensor. Best of the rounds, interleaved.
        swift_cpu, py_cpu = float("inf"), float("inf")
        for _ in range(args.rounds):
            base = cpu_of_child([args.tlora, "verify", empty])
            swift_cpu = min(swift_cpu, cpu_of_child([args.tlora, "verify", path]) - base)
            py_cpu = min(py_cpu, cpu_python_verify(path))
        size = os.path.getsize(path)
        print(f"{codec:5} {size / 1e6:5.1f} MB file, {n / 1e6:.1f} MB decoded | wall, best: swift {swift:.2f} GB/s, python {py:.2f} GB/s,"
              f" python/swift {py / swift:.2f} | verify CPU: swift {swift_cpu * 1e3:.0f} ms, python {py_cpu * 1e3:.0f} ms,"
              f" python/swift speed {swift_cpu / py_cpu:.2f}")
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average) at end")


if __name__ == "__main__":
    main()
