#!/usr/bin/env bash
# The main job on the bundled fixtures: import a real PEFT adapter (trained on all-MiniLM-L6-v2
# when the base is available, else PEFT's tiny Llama adapter), convert it to TT and Tucker form,
# inspect, verify, back to LoRA, and merge into the base checkpoint; extract an adapter from a full
# fine-tune, combine adapters, merge several at once; then import a research-format adapter
# (TensLoRA); export for mlx-lm and vLLM; read a container from Python; structured adapters (PEFT
# LoKr, AdaLoRA, conv LoHa, a LyCORIS file, IA³); merge and export kohya/LyCORIS/diffusers adapters
# of tiny Stable Diffusion pipelines. Outputs go to .demo/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tlora="$root/.build/release/tlora"
out="$root/.demo"
rm -rf "$out"
mkdir -p "$out"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
# A command that must be refused (exit 1, one error line), and nothing written.
refused() { printf '\n\033[1m$ %s\033[0m   (refused, as it should be)\n' "$*"; if "$@"; then echo "unexpected success"; exit 1; fi; }

base="$("$root/scripts/minilm-base.sh" || true)"
if [ -n "$base" ]; then
  adapter="$root/Fixtures/peft/minilm-trained"
  tucker_group="qkv-depth"
else
  echo "(all-MiniLM-L6-v2 base not available: using the tiny Llama fixtures)"
  adapter="$root/Fixtures/peft/llama-lora"
  base="$root/Fixtures/models/tiny-llama"
  tucker_group="depth"
fi

step "$tlora" inspect "$adapter"
step "$tlora" convert import "$adapter" -o "$out/adapter.tlora"
step "$tlora" verify "$out/adapter.tlora"
step "$tlora" convert dense-to-tt "$out/adapter.tlora" -o "$out/adapter-tt.tlora" --max-rel-error 0.05
step "$tlora" convert dense-to-tucker "$out/adapter.tlora" -o "$out/adapter-tucker.tlora" --group "$tucker_group" --max-rel-error 0.05
step "$tlora" inspect "$out/adapter-tucker.tlora"
step "$tlora" verify "$out/adapter-tt.tlora" --against "$adapter" --max-rel-error 0.05
step "$tlora" convert to-lora "$out/adapter-tt.tlora" -o "$out/adapter-resized.tlora" --max-rank 8 --json
step "$tlora" export "$out/adapter.tlora" --format peft -o "$out/peft-roundtrip"
step "$tlora" merge "$out/adapter.tlora" --base "$base" -o "$out/merged" --dry-run
step "$tlora" merge "$out/adapter.tlora" --base "$base" -o "$out/merged"
# Outputs never replace or hold an input, and --force replaces only what tlora wrote.
refused "$tlora" merge "$out/adapter.tlora" --base "$base" -o "$base" --force
refused "$tlora" export "$out/adapter.tlora" --format peft -o "$out" --force
# Interrupted while writing (SIGTERM here: a script's background job ignores Ctrl-C's SIGINT; both
# are handled alike): the temporaries go, nothing is left at the output.
printf '\n\033[1m$ %s\033[0m\n' "tlora merge … -o $out/interrupted   (then SIGTERM while it writes)"
"$tlora" merge "$out/adapter.tlora" --base "$base" -o "$out/interrupted" & pid=$!
for _ in $(seq 500); do ls -A "$out" | grep -q 'tlora-tmp' && break; sleep 0.01; done
kill -TERM "$pid" 2>/dev/null || true
if wait "$pid"; then echo "(the merge finished before the signal)"; else echo "merge ended with status $? (143 = SIGTERM)"; fi
ls -A "$out" | grep -E '^interrupted$|tlora-tmp' || echo "nothing left by the interrupted merge"
step "$tlora" merge "$out/adapter-tucker.tlora" --base "$base" -o "$out/merged-from-tucker"
step "$tlora" inspect "$out/merged" --json > "$out/merged-inspect.json"
# Adapters out of a full fine-tune (layer 0 of all-MiniLM-L6-v2 fine-tuned for 300 steps), and
# several adapters into one: PEFT's add_weighted_adapter methods.
pair="$root/Fixtures/extract/minilm-layer0"
step "$tlora" extract --base "$pair/base" --finetuned "$pair/finetuned" --max-rel-error 0.2 -o "$out/extracted.tlora"
step "$tlora" extract --base "$pair/base" --finetuned "$pair/finetuned" --max-rank 16 --format peft -o "$out/extracted-peft"
step "$tlora" combine "$root/Fixtures/peft/llama-lora" "$root/Fixtures/peft/llama-bin" --method ties --density 0.5 --weights 0.7,0.3 -o "$out/combined-ties.tlora"
step "$tlora" combine "$root/Fixtures/peft/llama-lora" "$root/Fixtures/peft/llama-layers" --method svd --max-rel-error 0.05 -o "$out/combined-svd.tlora"
# Several adapters into a base in one pass, each with its weight (each tensor read once, rounded once).
step "$tlora" merge "$root/Fixtures/peft/llama-lora" "$root/Fixtures/peft/llama-dora" "$out/combined-svd.tlora" --weights 0.5,1,-0.25 \
  --base "$root/Fixtures/models/tiny-llama" -o "$out/merged-three" --dry-run
step "$tlora" merge "$root/Fixtures/peft/llama-lora" "$root/Fixtures/peft/llama-dora" "$out/combined-svd.tlora" --weights 0.5,1,-0.25 \
  --base "$root/Fixtures/models/tiny-llama" -o "$out/merged-three"
# A research format: TensLoRA's att-qkv-depth Tucker tensor (written by ax-le/TensLoRA's own code)
# imported as a native Tucker group, losslessly.
step "$tlora" convert import "$root/Fixtures/research/tenslora-roberta-att-qkv-depth.pt" -o "$out/tenslora.tlora" --alpha 2 --construction att-qkv-depth
step "$tlora" inspect "$out/tenslora.tlora"
# Files the serving tools load: mlx-lm's adapter directory, and a PEFT directory vLLM accepts (the DoRA
# fixture is folded into plain LoRA against its base, the error stated).
step "$tlora" export "$root/Fixtures/peft/llama-rslora-patterns" --format mlx -o "$out/mlx-adapter"
step "$tlora" export "$root/Fixtures/peft/llama-dora" --format peft --target vllm --base "$root/Fixtures/models/tiny-llama" -o "$out/vllm-adapter"
# The same container from Python (python/: pure Python over numpy, zstandard and xxhash).
if python3 -c "import numpy, zstandard, xxhash" 2>/dev/null; then
  step env PYTHONPATH="$root/python" python3 -c "import tlora, numpy; f = tlora.open('$out/adapter-tt.tlora'); m = f.modules[0]; print(len(f.modules), 'modules;', m, f.module(m).update.type, 'ΔW', f.delta(m).shape, 'norm %.4g' % numpy.linalg.norm(f.delta(m))); print('verified', f.verify(), 'tensors')"
fi
# Tensor-structured adapters beyond LoRA, held natively: a PEFT LoKr (W1 ⊗ W2 per module), merged row
# by row from its factors, converted to LoRA at its exact rank r(W1)·r(W2) from the halves' SVDs, and
# exported back to PEFT bit for bit; an AdaLoRA with pruned (even rank-0) modules; a LoHa on conv layers.
lokr="$root/Fixtures/peft/llama-lokr"
step "$tlora" inspect "$lokr"
step "$tlora" convert import "$lokr" -o "$out/lokr.tlora"
step "$tlora" merge "$out/lokr.tlora" --base "$root/Fixtures/models/tiny-llama" -o "$out/lokr-merged"
step "$tlora" convert to-lora "$out/lokr.tlora" -o "$out/lokr-as-lora.tlora"
step "$tlora" export "$out/lokr.tlora" --format peft -o "$out/lokr-peft"
step cmp "$lokr/adapter_model.safetensors" "$out/lokr-peft/adapter_model.safetensors"
step "$tlora" inspect "$root/Fixtures/peft/llama-adalora"
step "$tlora" merge "$root/Fixtures/peft/convnet-loha" --base "$root/Fixtures/models/tiny-convnet" -o "$out/convnet-merged"
# A LyCORIS file of one model: keys named by the base's tensors, exported back with every tensor kept;
# the PEFT LoKr as a LyCORIS file; an IA³ adapter has no ΔW without its base, so to-lora refuses it.
lycoris="$root/Fixtures/lycoris/llama-lokr-w1-dora.safetensors"
step "$tlora" inspect "$lycoris" --base-config "$root/Fixtures/models/tiny-llama"
step "$tlora" export "$lycoris" --format lycoris -o "$out/lycoris-again.safetensors"
step "$tlora" export "$lokr" --format lycoris -o "$out/lokr-lycoris.safetensors"
refused "$tlora" convert to-lora "$root/Fixtures/peft/llama-ia3" --base-config "$root/Fixtures/models/tiny-llama" -o "$out/ia3-lora.tlora"
# An adapter bank: the 16 LoRAs trained on all-MiniLM-L6-v2 (8 tasks × 2 data slices) in one file,
# every member within 5 % on every module; one member back as a PEFT adapter, one merged, and a
# new member added by projection (refused above the bound, so with --rebuild).
bank_members=("$root"/Fixtures/bank/*-a "$root"/Fixtures/bank/*-b)
step "$tlora" bank build "${bank_members[@]:0:15}" -o "$out/bank.tlora" --max-rel-error 0.05
step "$tlora" inspect "$out/bank.tlora"
step "$tlora" bank get "$out/bank.tlora" --member place-a -o "$out/bank-place-a" --format peft
step "$tlora" verify "$out/bank-place-a" --against "$root/Fixtures/bank/place-a" --max-rel-error 0.05
step "$tlora" bank add "$out/bank.tlora" "${bank_members[15]}" -o "$out/bank-16.tlora" --rebuild
if [ -f "$base/model.safetensors" ] && [ "$adapter" = "$root/Fixtures/peft/minilm-trained" ]; then
  step "$tlora" merge "$out/bank-16.tlora" --member place-b --base "$base" -o "$out/merged-bank-place-b"
fi
# The diffusion world: a kohya LoCon written by sd-scripts (conv layers, fp16, ss_* metadata) merged
# into a diffusers pipeline (only the changed components rewritten) and into the single-file form of
# an SDXL-shaped base (OpenCLIP's fused q/k/v), a LyCORIS LoKr with Tucker cores held natively,
# exports diffusers' load_lora_weights reads, and an SD 1.x file refused by an SDXL base.
d="$root/Fixtures/diffusion"
step "$tlora" inspect "$d/sd-tiny"
step "$tlora" inspect "$d/loras/sd-sdscripts-locon.safetensors"
step "$tlora" merge "$d/loras/sd-sdscripts-locon.safetensors" --base "$d/sd-tiny" -o "$out/sd-merged"
step "$tlora" merge "$d/loras/sdxl-kohya-sgm.safetensors" --base "$d/sdxl-tiny.safetensors" -o "$out/sdxl-merged.safetensors"
step "$tlora" convert import "$d/loras/sd-lycoris-lokr.safetensors" -o "$out/sd-lokr.tlora"
step "$tlora" export "$out/sd-lokr.tlora" --format peft --base "$d/sd-tiny" -o "$out/sd-lokr-diffusers"
step "$tlora" export "$d/loras/sdxl-kohya.safetensors" --format kohya --base "$d/sdxl-tiny.safetensors" -o "$out/sdxl-sgm-names.safetensors"
refused "$tlora" merge "$d/loras/sd-kohya.safetensors" --base "$d/sdxl-tiny" -o "$out/wrong-base"
test ! -e "$out/wrong-base"
echo
echo "demo outputs in $out"
