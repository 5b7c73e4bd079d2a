#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 10): the short run `make test` does.
#   fuzz/run-all.sh [SECONDS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
seconds="${1:-10}"
status=0
for target in FuzzContainer FuzzSafetensors FuzzGGUF FuzzPickle FuzzConfigs FuzzCommand FuzzResearch FuzzPEFT FuzzDiffusion FuzzDiffusionBase; do
  if out=$("$here/run.sh" "$target" "$seconds" 2>&1); then
    echo "$target: $(echo "$out" | grep -E '^Done' | tail -1)"
  else
    status=1
    echo "$target: FAILED"
    echo "$out" | grep -E 'ERROR|SUMMARY|==[0-9]+==|Fatal|crash' | head -20
  fi
done
exit $status
