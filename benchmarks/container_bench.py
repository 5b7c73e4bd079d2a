#!/usr/bin/env python3
"""Side-by-side container benchmark: how many bytes the lossless encodings need for a real adapter,
and how fast one core decodes them.

The adapter is the real trained one (`Fixtures/peft/minilm-trained`, r16 on all-MiniLM-L6-v2's
query/key/value/dense, f32). In one run:

  safetensors   PEFT's `adapter_model.safetensors` as written (the reference size), load_file
  zstd          the whole safetensors file through zstd -3 / -19 (python-zstandard, one thread)
  bytegroup     numpy byte planes of each tensor (sign rotated into the low byte, as tlora does),
                each plane through zstd -19 (payload only: no header, offsets or checksums)
  zipnn         ZipNN (arXiv 2411.05239) per tensor (payload only), when `pip install zipnn` worked
  order-0 floor Σ over tensors and byte planes of n·H₀(plane): what any order-0 entropy coder
                needs per tensor before its tables (a lower bound for independent per-tensor planes)
  tlora         `tlora convert import` with default flags, --level 19 and --level 1: the whole file (header, checksums,
                64-byte alignment); decode = `tlora-bench decode` (checksums + decompression, one thread)

Usage: benchmarks/container_bench.py [--tlora .build/release/tlora] [--bench .build/release/tlora-bench]
"""
import argparse, os, subprocess, tempfile, time

import numpy as np
import zstandard

HERE = os.path.dirname(os.path.abspath(__file__))
ADAPTER = os.path.join(HERE, "..", "Fixtures", "peft", "minilm-trained")


def best_of(fn, runs=20):
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def planes(v):
    u = v.view(np.uint32).ravel()
    r = (u << np.uint32(1)) | (u >> np.uint32(31))
    return [((r >> np.uint32(s)) & np.uint32(0xFF)).astype(np.uint8) for s in (24, 16, 8, 0)]


def entropy_bytes(p):
    c = np.bincount(p, minlength=256).astype(float)
    q = c[c > 0] / c.sum()
    return -(q * np.log2(q)).sum() * p.size / 8


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tlora", default=os.path.join(HERE, "..", ".build", "release", "tlora"))
    ap.add_argument("--bench", default=os.path.join(HERE, "..", ".build", "release", "tlora-bench"))
    args = ap.parse_args()
    from safetensors.numpy import load_file
    st_path = os.path.join(ADAPTER, "adapter_model.safetensors")
    st_bytes = open(st_path, "rb").read()
    size = len(st_bytes)
    tensors = load_file(st_path)
    decoded = sum(v.nbytes for v in tensors.values())
    rows = []  # (name, bytes, decode GB/s or None)

    t = best_of(lambda: load_file(st_path))
    rows.append(("safetensors (PEFT's file)", size, decoded / t / 1e9))
    for level in (3, 19):
        blob = zstandard.ZstdCompressor(level=level).compress(st_bytes)
        d = zstandard.ZstdDecompressor()
        t = best_of(lambda: d.decompress(blob))
        rows.append((f"zstd -{level} of the file", len(blob), size / t / 1e9))
    c19 = zstandard.ZstdCompressor(level=19)
    grouped = [[c19.compress(p.tobytes()) for p in planes(v)] for v in tensors.values()]
    d = zstandard.ZstdDecompressor()
    t = best_of(lambda: [[d.decompress(f) for f in g] for g in grouped])
    rows.append(("bytegroup zstd -19 per tensor (payload)", sum(len(f) for g in grouped for f in g), decoded / t / 1e9))
    try:
        from zipnn import ZipNN
        z = ZipNN(input_format="numpy", bytearray_dtype="float32")
        comp = [z.compress(v) for v in tensors.values()]
        zd = ZipNN(input_format="numpy", bytearray_dtype="float32")
        t = best_of(lambda: [zd.decompress(c) for c in comp], runs=5)
        rows.append(("ZipNN per tensor (payload)", sum(len(c) for c in comp), decoded / t / 1e9))
    except Exception as e:  # zipnn is optional
        print(f"(ZipNN not measured: {e})")
    floor = sum(entropy_bytes(p) for v in tensors.values() for p in planes(v))
    rows.append(("order-0 entropy floor per tensor plane", int(floor), None))

    with tempfile.TemporaryDirectory() as tmp:
        for flags in ([], ["--level", "19"], ["--level", "1"]):
            out = os.path.join(tmp, "a.tlora")
            subprocess.run([args.tlora, "convert", "import", ADAPTER, "-o", out, "--force"] + flags, check=True, capture_output=True)
            r = subprocess.run([args.bench, "decode", out], check=True, capture_output=True, text=True)
            gbs = float(r.stdout.split()[-1])
            rows.append((f"tlora {' '.join(flags) or 'default flags'} (whole file)", os.path.getsize(out), gbs))

    print(f"adapter: {ADAPTER} ({len(tensors)} f32 tensors, {decoded} value bytes, safetensors file {size} bytes)")
    print(f"{'encoding':44} {'bytes':>9} {'× safetensors':>14} {'decode GB/s (1 core)':>21}")
    for name, b, gbs in rows:
        print(f"{name:44} {b:9d} {b / size:14.4f} {('%.2f' % gbs) if gbs else '-':>21}")


if __name__ == "__main__":
    main()
