"""The worst errors behind python/tests/test_structured.py's bounds, one table row per source:
ΔW against the CLI's exact `convert to-lora --dtype f64`, and the merged weights against the tools'
forward-pass references. Run: `python3 python/tests/structured_errors.py [path/to/tlora]`."""
import os, shutil, subprocess, sys, tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
import tlora  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
import test_structured as ts  # noqa: E402

T = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", ".build", "debug", "tlora")
work = tempfile.mkdtemp()
print("| source | forms | modules | ΔW vs CLI to-lora | tensors vs tool forward | max err / max |W'−W| |")
print("|---|---|---|---|---|---|")
for name in ts.PRESENT:
    adapter, base, refp = ts.SOURCES[name]
    p, l = os.path.join(work, name + ".tlora"), os.path.join(work, name + "-lora.tlora")
    subprocess.run([T, "convert", "import", adapter, *(["--base-config", base] if base != ts.SD else []), "-o", p], check=True, capture_output=True)
    f = tlora.open(p)
    kinds = sorted({f.module(m).update.type for m in f.modules})
    dre = None
    if not any(f.module(m).update.type == "ia3" for m in f.modules):
        subprocess.run([T, "convert", "to-lora", p, "--dtype", "f64", "-o", l], check=True, capture_output=True)
        g = tlora.open(l)
        dre = max(ts.rel(f.delta(m, dtype=np.float64, flat=True), g.delta(m, dtype=np.float64, flat=True)) for m in f.modules)
    ref = load_file(refp); b = ts.load_base(base); worst = 0.0; n = 0
    for m, parts in ts.bind(f, ref, b).items():
        for leaf, (key, w) in parts.items():
            got = f.apply(m, w, dtype=np.float64) if leaf == "weight" else f.apply_bias(m, w, dtype=np.float64)
            r = ref[key].astype(np.float64); ch = np.abs(r - w).max()
            e = np.abs(got.astype(np.float32).astype(np.float64) - r).max()
            worst = max(worst, e / ch if ch else e); n += 1
    print(f"| {name} | {', '.join(kinds)} | {len(f.modules)} | {'-' if dre is None else f'{dre:.1e}'} | {n} | {worst:.1e} |")
shutil.rmtree(work)
