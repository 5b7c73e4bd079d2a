#!/usr/bin/env python3
"""Side-by-side decomposition benchmark: numpy (OpenBLAS/LAPACK) vs `tlora-bench`, same 2 threads.

For each case both sides run in alternation for several rounds and the best time of each is kept,
so both see the same load. numpy gets OPENBLAS_NUM_THREADS=2 (set before import); tlora-bench uses
both cores by default. Inputs are uniform(-1, 1) f64 matrices on both sides (eigh: A + Aᵀ).

  SVD  numpy.linalg.svd(a, full_matrices=False) (LAPACK gesdd) vs tlora-bench svd M N
  QR   numpy.linalg.qr(a) (geqrf + orgqr: thin Q and R)       vs tlora-bench qr M N
  eigh numpy.linalg.eigh(a) (syevd)                            vs tlora-bench eig N
  rSVD the same Halko-Martinsson-Tropp algorithm in numpy      vs tlora-bench rsvd M N K

Usage: benchmarks/decomp_bench.py [--bench .build/release/tlora-bench] [--rounds 3] [--seconds 2]
                                  [--only svd,qr,eigh,rsvd] [--threads 2]
`--threads N` sets OPENBLAS_NUM_THREADS and TLORA_THREADS alike (the targets are for 2).
Build first: swift build -c release --product tlora-bench
"""
import argparse, os, subprocess, sys, time

# The thread count must be fixed before numpy (OpenBLAS) is imported: `--threads N` (default 2).
THREADS = "2"
for i, arg in enumerate(sys.argv):
    if arg == "--threads" and i + 1 < len(sys.argv):
        THREADS = sys.argv[i + 1]
    elif arg.startswith("--threads="):
        THREADS = arg.split("=", 1)[1]
os.environ["OPENBLAS_NUM_THREADS"] = THREADS
os.environ["OMP_NUM_THREADS"] = THREADS
import numpy as np  # noqa: E402  (after the thread settings)

CASES = [
    ("svd", (4096, 64)), ("svd", (4096, 512)), ("svd", (256, 256)), ("svd", (1024, 1024)),
    ("qr", (4096, 64)), ("qr", (4096, 512)), ("qr", (1024, 1024)),
    ("eigh", (256,)), ("eigh", (1024,)),
    ("rsvd", (4096, 4096, 64)), ("rsvd", (4096, 1024, 32)),
]
TARGETS = {("svd", (4096, 64)): 1.5, ("svd", (4096, 512)): 1.5, ("svd", (256, 256)): 3.0, ("svd", (1024, 1024)): 3.0}


def rsvd_numpy(a, k, p=10, q=2, rng=np.random.default_rng(1)):
    omega = rng.standard_normal((a.shape[1], k + p))
    qm, _ = np.linalg.qr(a @ omega)
    for _ in range(q):
        w, _ = np.linalg.qr(a.T @ qm)
        qm, _ = np.linalg.qr(a @ w)
    u, s, vt = np.linalg.svd(qm.T @ a, full_matrices=False)
    return (qm @ u)[:, :k], s[:k], vt[:k]


def numpy_time(kind, shape, seconds):
    rng = np.random.default_rng(0)
    if kind == "eigh":
        x = rng.uniform(-1, 1, (shape[0], shape[0]))
        a = x + x.T
        f = lambda: np.linalg.eigh(a)
    elif kind == "rsvd":
        a = rng.uniform(-1, 1, shape[:2])
        f = lambda: rsvd_numpy(a, shape[2])
    else:
        a = rng.uniform(-1, 1, shape)
        f = (lambda: np.linalg.svd(a, full_matrices=False)) if kind == "svd" else (lambda: np.linalg.qr(a))
    best, total, runs = float("inf"), 0.0, 0
    while runs < 3 or (total < seconds and runs < 200):
        t = time.perf_counter(); f(); dt = time.perf_counter() - t
        best, total, runs = min(best, dt), total + dt, runs + 1
    return best * 1e3


def tlora_time(bench, kind, shape, seconds):
    sub = {"svd": "svd", "qr": "qr", "eigh": "eig", "rsvd": "rsvd"}[kind]
    env = dict(os.environ, TLORA_BENCH_SECONDS=str(seconds), TLORA_THREADS=THREADS)
    out = subprocess.run([bench, sub, *map(str, shape)], capture_output=True, text=True, env=env, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "tlora-bench"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--only", default="svd,qr,eigh,rsvd")
    ap.add_argument("--threads", default="2", help="threads for both sides (read before numpy is imported)")
    args = ap.parse_args()
    kinds = set(args.only.split(","))
    cfg = np.show_config(mode="dicts")["Build Dependencies"]["lapack"]
    load = os.getloadavg()
    print(f"numpy {np.__version__} ({cfg.get('name')} {cfg.get('version')}), OPENBLAS_NUM_THREADS={THREADS}, TLORA_THREADS={THREADS}; "
          f"{os.cpu_count()} CPUs; load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"best of {args.rounds} alternating rounds x {args.seconds:.1f} s per side\n")
    print(f"| {'operation':<28} | {'numpy ms':>9} | {'tlora ms':>9} | {'tlora/numpy':>11} | {'target':>7} |")
    print(f"|{'-' * 30}|{'-' * 11}|{'-' * 11}|{'-' * 13}|{'-' * 9}|")
    for kind, shape in CASES:
        if kind not in kinds:
            continue
        n_best = t_best = float("inf")
        for _ in range(args.rounds):
            n_best = min(n_best, numpy_time(kind, shape, args.seconds))
            t_best = min(t_best, tlora_time(args.bench, kind, shape, args.seconds))
        target = TARGETS.get((kind, shape))
        name = f"{kind} {'x'.join(map(str, shape[:2]))}" + (f" rank {shape[2]}" if kind == "rsvd" else "")
        mark = "" if target is None else (f"≤ {target:g}× " + ("✓" if t_best <= target * n_best else "✗"))
        print(f"| {name:<28} | {n_best:9.1f} | {t_best:9.1f} | {t_best / n_best:10.2f}× | {mark:>7} |", flush=True)
    load = os.getloadavg()
    print(f"\nload average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
