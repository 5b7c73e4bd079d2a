#!/usr/bin/env bash
# Runs the release tlora and tlora-bench on CPUs without the newer instruction sets, emulated by
# qemu-user, which raises SIGILL on any instruction the CPU model lacks:
#   Nehalem  (no AVX, AVX2, FMA or F16C): the portable kernels must be chosen and give the same
#            answers as PEFT, and GEMM must stay within its error bound;
#   Haswell  (AVX2+FMA+F16C, no AVX-512): the AVX2 kernels must be chosen, with the same checks.
# Natively it also checks that TLORA_SIMD selects each level this CPU has.
#   scripts/check-no-avx2.sh        (installs qemu-user when missing; builds the release binaries)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v qemu-x86_64 >/dev/null || { apt-get install -y -qq qemu-user >/dev/null; }
cd "$root"
swift build -c release --product tlora --product tlora-bench >/dev/null 2>&1 || swift build -c release >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# expect_level LEVEL CMD...: CMD's first line must name LEVEL, and CMD must succeed.
expect_level() {
    local want=$1; shift
    local log="$out/log"
    if ! "$@" >"$log" 2>"$out/err"; then cat "$log" "$out/err"; echo "FAILED: $*"; exit 1; fi
    local first; first=$(head -1 "$log")
    [[ $first == "simd level: $want,"* ]] || { echo "FAILED: $* runs '$first', expected $want"; exit 1; }
    local checks; checks=$(grep -c '^gemmcheck' "$log" || true)
    if [[ $checks != 0 ]]; then echo "$* -> $first; $checks gemm checks within the bound"; else echo "$* -> $first"; fi
}

for cpu in Nehalem Haswell; do
    level=$([[ $cpu == Nehalem ]] && echo portable || echo avx2)
    q() { qemu-x86_64 -cpu "$cpu" "$@" 2>/dev/null; }
    expect_level "$level" q .build/release/tlora-bench gemmcheck 77 130 301
    # Even a request for more than the CPU has must not leave it.
    expect_level "$level" env TLORA_SIMD=avx512 qemu-x86_64 -cpu "$cpu" .build/release/tlora-bench gemm 64 64 64
    q .build/release/tlora merge Fixtures/peft/llama-dora --base Fixtures/models/tiny-llama -o "$out/merged-$cpu" >/dev/null
    q .build/release/tlora convert dense-to-tt Fixtures/peft/llama-lora -o "$out/tt-$cpu.tlora" --max-rel-error 0.01 --level 3 >/dev/null
    q .build/release/tlora verify "$out/tt-$cpu.tlora"
    python3 - "$out/merged-$cpu/model.safetensors" "$cpu" <<'PY'
import sys
from safetensors.numpy import load_file
import numpy as np
ref = load_file("Fixtures/references/llama-dora.merged.safetensors"); ours = load_file(sys.argv[1])
worst = max(np.linalg.norm(ours[k].astype(np.float64) - v) / np.linalg.norm(v) for k, v in ref.items())
print(f"merge under {sys.argv[2]} vs PEFT: worst relative difference {worst:.1e}")
sys.exit(0 if worst <= 2e-6 else 1)
PY
done

# Natively: every level this CPU supports, chosen through the environment.
native=$(.build/release/tlora-bench gemm 8 8 8 | head -1)
expect_level portable env TLORA_SIMD=portable .build/release/tlora-bench gemmcheck 77 130 301
expect_level portable env TLORA_DISABLE_SIMD=1 .build/release/tlora-bench gemmcheck 77 130 301
if grep -q -w avx2 /proc/cpuinfo; then expect_level avx2 env TLORA_SIMD=avx2 .build/release/tlora-bench gemmcheck 77 130 301; fi
if [[ $native == "simd level: avx512,"* ]]; then expect_level avx512 .build/release/tlora-bench gemmcheck 77 130 301; fi
echo "all dispatch checks passed (native: ${native#simd level: })"
