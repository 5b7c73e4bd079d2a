#!/usr/bin/env python3
"""Side-by-side GEMM benchmark: numpy (OpenBLAS) `a @ b` vs `tlora-bench gemm M N K`.

Both compute C = A·B into a fresh matrix (row-major, A and B uniform in [-1, 1]) and report the
best of at least 3 runs and about 1 s; both run with the same number of threads
(OPENBLAS_NUM_THREADS / TLORA_THREADS), each in its own process. The whole list is measured
`--rounds` times, alternating which of the two goes first, and the best of the rounds is kept, so
a burst of load from other processes hits both alike and rarely survives into the table.

Shapes: square 1024, 2048, 4096 and two merge-like products with a small inner dimension
(W + B·A of a LoRA r=16: 2048×2048×16, 5632×2048×16), f32 and f64.

Load conditions are reported: the load average before and after, and how many cores' worth of CPU
time other processes used while the benchmark ran (from /proc/stat minus our children's time).

Usage: benchmarks/gemm_bench.py [--bench .build/release/tlora-bench] [--threads 2,1]
                                [--dtypes f32,f64] [--shapes 1024,2048,4096,2048x2048x16,5632x2048x16]
                                [--rounds 3] [--markdown]
"""
import argparse, os, resource, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

NUMPY_TIMER = r"""
import sys, time
import numpy as np
m, n, k, dtype = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(1)
a = rng.uniform(-1, 1, (m, k)).astype(dtype)
b = rng.uniform(-1, 1, (k, n)).astype(dtype)
best, total, runs = float("inf"), 0.0, 0
while runs < 3 or (total < 1.0 and runs < 50):
    t0 = time.perf_counter()
    c = a @ b
    t = time.perf_counter() - t0
    best, total, runs = min(best, t), total + t, runs + 1
print(2.0 * m * n * k / best / 1e9)
"""


def parse_shape(s):
    parts = [int(x) for x in s.lower().split("x")]
    if len(parts) == 1:
        return (parts[0],) * 3
    if len(parts) != 3 or min(parts) < 1:
        raise SystemExit(f"bad shape {s!r}: use N or MxNxK")
    return tuple(parts)


def busy_jiffies():
    """(busy, total) CPU jiffies of the whole machine so far."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    total = sum(v[:8])
    return total - idle, total


def numpy_rate(m, n, k, dtype, threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", NUMPY_TIMER, str(m), str(n), str(k),
                          "float32" if dtype == "f32" else "float64"],
                         env=env, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def tlora_rate(bench, m, n, k, dtype, threads):
    env = dict(os.environ, TLORA_THREADS=str(threads))
    env.pop("TLORA_SIMD", None)
    env.pop("TLORA_DISABLE_SIMD", None)
    out = subprocess.run([bench, "gemm", str(m), str(n), str(k), dtype],
                         env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()
    return float(out[-1]), out[0]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", default=os.path.join(ROOT, ".build/release/tlora-bench"))
    p.add_argument("--threads", default="2,1")
    p.add_argument("--dtypes", default="f32,f64")
    p.add_argument("--shapes", default="1024,2048,4096,2048x2048x16,5632x2048x16")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = p.parse_args()
    if not os.access(args.bench, os.X_OK):
        raise SystemExit(f"{args.bench}: not found; build it with `swift build -c release --product tlora-bench`")
    import numpy
    threads = [int(t) for t in args.threads.split(",")]
    dtypes = args.dtypes.split(",")
    shapes = [parse_shape(s) for s in args.shapes.split(",")]
    configs = [(s, d, t) for t in threads for d in dtypes for s in shapes]

    load_before = os.getloadavg()
    busy0, total0 = busy_jiffies()
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = time.time()
    best = {c: [0.0, 0.0] for c in configs}
    level = "?"
    for r in range(args.rounds):
        for i, (shape, dtype, t) in enumerate(configs):
            order = [0, 1] if (r + i) % 2 == 0 else [1, 0]
            for who in order:
                if who == 0:
                    v = numpy_rate(*shape, dtype, t)
                else:
                    v, level = tlora_rate(args.bench, *shape, dtype, t)
                best[(shape, dtype, t)][who] = max(best[(shape, dtype, t)][who], v)
            print(f"round {r + 1}/{args.rounds} {shape[0]}x{shape[1]}x{shape[2]} {dtype} {t}t: "
                  f"numpy {best[(shape, dtype, t)][0]:.1f}, tlora {best[(shape, dtype, t)][1]:.1f}",
                  file=sys.stderr, flush=True)
    wall = time.time() - wall0
    busy1, total1 = busy_jiffies()
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    hz = os.sysconf("SC_CLK_TCK")
    ncpu = os.cpu_count() or 1
    ours = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    others = max(0.0, (busy1 - busy0) / hz - ours)
    load_after = os.getloadavg()

    header = ["M×N×K", "dtype", "threads", "numpy GFLOP/s", "tlora GFLOP/s", "tlora / numpy"]
    rows = []
    for (shape, dtype, t) in configs:
        npv, tv = best[(shape, dtype, t)]
        rows.append([f"{shape[0]}×{shape[1]}×{shape[2]}", dtype, str(t), f"{npv:.1f}", f"{tv:.1f}", f"{tv / npv:.2f}"])
    print(f"numpy {numpy.__version__} ({numpy_blas()}), tlora-bench: {level}")
    print(f"best of {args.rounds} rounds, {wall:.0f} s; load average before {load_before[0]:.2f}, after "
          f"{load_after[0]:.2f}; other processes used {others / wall:.2f} of {ncpu} cores during the run")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" if i < 3 else "---:" for i in range(len(header))) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
        for row in rows:
            print("  ".join(c.rjust(w) for c, w in zip(row, widths)))


def numpy_blas():
    try:
        import numpy
        cfg = numpy.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:
        return "BLAS unknown"


if __name__ == "__main__":
    main()
