#!/usr/bin/env bash
# Runs the release tlora and tlora-bench under qemu-user emulating a CPU without AVX2/FMA/F16C
# (Nehalem): the portable kernels must be chosen and give the same answers as PEFT.
#   scripts/check-no-avx2.sh        (installs qemu-user when missing; needs a release build)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v qemu-x86_64 >/dev/null || { apt-get install -y -qq qemu-user >/dev/null; }
cd "$root"
swift build -c release --product tlora --product tlora-bench >/dev/null 2>&1 || swift build -c release >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
q() { qemu-x86_64 -cpu Nehalem "$@"; }
q .build/release/tlora-bench gemm 64 64 64 | head -1
q .build/release/tlora merge Fixtures/peft/llama-dora --base Fixtures/models/tiny-llama -o "$out/merged" >/dev/null
q .build/release/tlora convert dense-to-tt Fixtures/peft/llama-lora -o "$out/tt.tlora" --max-rel-error 0.01 --level 3 >/dev/null
q .build/release/tlora verify "$out/tt.tlora"
python3 - "$out/merged/model.safetensors" <<'PY'
import sys
from safetensors.numpy import load_file
import numpy as np
ref = load_file("Fixtures/references/llama-dora.merged.safetensors"); ours = load_file(sys.argv[1])
worst = max(np.linalg.norm(ours[k].astype(np.float64) - v) / np.linalg.norm(v) for k, v in ref.items())
print(f"merge under Nehalem vs PEFT: worst relative difference {worst:.1e}")
sys.exit(0 if worst <= 2e-6 else 1)
PY
