#!/usr/bin/env python3
"""Two builds of tlora side by side, in one run: GEMM and decompositions (`tlora-bench`), conversions
and merge (`tlora`), each under the default SIMD dispatch and under `TLORA_SIMD=avx2`.

For a change that must not cost speed: build the old commit into its own scratch path, e.g.

  git archive OLD | tar -x -C /tmp/old && swift build -c release --package-path /tmp/old --scratch-path .build-before
  swift build -c release
  benchmarks/before_after.py --before .build-before/release --after .build/release

Every case runs `--rounds` times, the two builds alternating which goes first, and keeps the best
time of each (the machine is shared: a burst of load rarely hits both builds' best runs). The
inputs are those of gemm_bench.py, decomp_bench.py, convert_bench.py and merge_bench.py (the
adapter and TinyLlama-shaped model are made once under --work). Ratios are after / before in
throughput: above 1 is faster.

Usage: benchmarks/before_after.py --before DIR --after DIR [--rounds 3] [--only gemm,svd,convert,merge]
                                  [--simd default,avx2] [--work /tmp/tlora-bench] [--markdown]
"""
import argparse, os, shutil, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

GEMM = [(1024, 1024, 1024, "f32"), (2048, 2048, 2048, "f32"), (4096, 4096, 4096, "f32"),
        (2048, 2048, 16, "f32"), (5632, 2048, 16, "f32"), (1024, 1024, 1024, "f64"), (2048, 2048, 2048, "f64"),
        (256, 256, 256, "f32"), (128, 128, 128, "f64")]
DECOMP = [("svd", (4096, 64)), ("svd", (4096, 512)), ("svd", (256, 256)), ("svd", (1024, 1024)),
          ("qr", (4096, 512)), ("eig", (1024,)), ("rsvd", (4096, 1024, 32))]


def env_for(simd, threads=None):
    env = dict(os.environ)
    env.pop("TLORA_SIMD", None)
    env.pop("TLORA_DISABLE_SIMD", None)
    if simd != "default":
        env["TLORA_SIMD"] = simd
    if threads:
        env["TLORA_THREADS"] = str(threads)
    return env


def last_float(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def timed(cmd, env):
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return time.perf_counter() - t


def cases(args):
    """(group, label, higher_is_better, run(build_dir, simd) -> value)."""
    out = []
    if "gemm" in args.only:
        for m, n, k, dt in GEMM:
            for threads in (2, 1):
                out.append(("GEMM GFLOP/s", f"{m}×{n}×{k} {dt} {threads}t", True,
                            lambda d, simd, m=m, n=n, k=k, dt=dt, t=threads:
                            last_float([os.path.join(d, "tlora-bench"), "gemm", str(m), str(n), str(k), dt], env_for(simd, t))))
    if "svd" in args.only:
        for kind, shape in DECOMP:
            out.append(("decompositions ms (2 threads)", f"{kind} {'×'.join(map(str, shape))}", False,
                        lambda d, simd, kind=kind, shape=shape:
                        last_float([os.path.join(d, "tlora-bench"), kind, *map(str, shape)],
                                   dict(env_for(simd, 2), TLORA_BENCH_SECONDS="1"))))
    if "convert" in args.only:
        import convert_bench
        adapter = os.path.join(args.work, "llama7b-lora-r16")
        convert_bench.make_adapter(adapter)
        out_tt, out_tk = os.path.join(args.work, "ba-tt.tlora"), os.path.join(args.work, "ba-tucker.tlora")
        out.append(("conversions s (64 modules 4096×4096 r16)", "dense-to-tt E=1e-3", False,
                    lambda d, simd: timed([os.path.join(d, "tlora"), "convert", "dense-to-tt", adapter, "-o", out_tt,
                                           "--max-rel-error", "1e-3", "--force", "--level", "3"], env_for(simd))))
        out.append(("conversions s (64 modules 4096×4096 r16)", "dense-to-tucker depth E=1e-3", False,
                    lambda d, simd: timed([os.path.join(d, "tlora"), "convert", "dense-to-tucker", adapter, "-o", out_tk,
                                           "--group", "depth", "--max-rel-error", "1e-3", "--force", "--level", "3"], env_for(simd))))
        # The TT file the case above just wrote (the same adapter, either build).
        out.append(("conversions s (64 modules 4096×4096 r16)", "to-lora of the TT file", False,
                    lambda d, simd: timed([os.path.join(d, "tlora"), "convert", "to-lora", out_tt, "-o",
                                           os.path.join(args.work, "ba-lora"), "--force"], env_for(simd))))
    if "merge" in args.only:
        import merge_bench
        base = os.path.join(args.work, "tinyllama-bf16")
        adapter = os.path.join(args.work, "tinyllama-lora-r16")
        merge_bench.make_base(base)
        merge_bench.make_adapter(base, adapter)
        merged = os.path.join(args.work, "ba-merged")

        def merge(d, simd):
            shutil.rmtree(merged, ignore_errors=True)
            subprocess.run(["sync"])
            return timed([os.path.join(d, "tlora"), "merge", adapter, "--base", base, "-o", merged], env_for(simd))
        out.append(("merge s (TinyLlama-shaped bf16, 2.2 GB, r16 × 7 × 22)", "tlora merge", False, merge))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True)
    p.add_argument("--after", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", default="gemm,svd,convert,merge")
    p.add_argument("--simd", default="default,avx2")
    p.add_argument("--work", default="/tmp/tlora-bench")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args()
    args.only = args.only.split(",")
    os.makedirs(args.work, exist_ok=True)
    builds = [args.before, args.after]
    todo = [(simd, c) for simd in args.simd.split(",") for c in cases(args)]
    best = {}
    load0, wall0 = os.getloadavg(), time.time()
    for r in range(args.rounds):
        for i, (simd, (group, label, higher, run)) in enumerate(todo):
            for b in ([0, 1] if (r + i) % 2 == 0 else [1, 0]):
                v = run(builds[b], simd)
                key = (simd, group, label, b)
                best[key] = v if key not in best else (max if higher else min)(best[key], v)
            print(f"round {r + 1}/{args.rounds} {simd} {label}: before {best[(simd, group, label, 0)]:.3g}, "
                  f"after {best[(simd, group, label, 1)]:.3g}", file=sys.stderr, flush=True)
    load1 = os.getloadavg()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"{cpu}, {os.cpu_count()} cores; best of {args.rounds} rounds (builds alternating), {time.time() - wall0:.0f} s; "
          f"load average before {load0[0]:.2f}, after {load1[0]:.2f}")
    header = ["SIMD", "case", "before", "after", "after vs before"]
    rows, last_group = [], None
    for simd, (group, label, higher, _) in todo:
        bv, av = best[(simd, group, label, 0)], best[(simd, group, label, 1)]
        ratio = av / bv if higher else bv / av
        rows.append((group, [simd, label, f"{bv:.3g}", f"{av:.3g}", f"{ratio:.2f}×"]))
    for group in dict.fromkeys(g for g, _ in rows):
        print(f"\n{group}")
        if args.markdown:
            print("| " + " | ".join(header) + " |")
            print("|---|---|---:|---:|---:|")
            for g, row in rows:
                if g == group:
                    print("| " + " | ".join(row) + " |")
        else:
            for g, row in rows:
                if g == group:
                    print("  ".join(c.rjust(w) for c, w in zip(row, (7, 34, 10, 10, 8))))


if __name__ == "__main__":
    main()
