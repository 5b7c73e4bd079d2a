"""Cross-checks of the structured kinds (issue 12) with the real tools; run by check.py.

For every fixture of kinds_fixtures.py:
- `tlora merge` into its base; the merged checkpoint, loaded by transformers (the convnet: by its
  torch module), gives the adapted model's outputs (references/kinds/<name>.outputs.safetensors);
- PEFT fixtures: `tlora convert import` then `tlora export --format peft`; PeftModel.from_pretrained
  loads the export and gives the same outputs; the exported weights file equals the original byte for
  byte and its config is the same JSON;
- LyCORIS fixtures: `tlora export --format lycoris`; every tensor equals the original's byte for byte
  (dtype, shape, bytes) and every metadata entry is kept (the file adds tlora's own `tlora_output`
  entry, the mark `--force` needs to know the file as tlora's, so the files differ there), and
  LyCORIS's own loader (`create_lycoris_from_weights`) loads it and gives the same outputs (where
  LyCORIS 4.1.3 can load the original at all: not with weight_decompose on the input axis).
"""
import filecmp, os, subprocess

import kinds_fixtures as kf

HERE = os.path.dirname(os.path.abspath(__file__))

PEFT = ["llama-lokr", "llama-lokr-factored", "llama-loha", "llama-adalora", "llama-vera", "llama-ia3",
        "convnet-lora", "convnet-loha", "convnet-lokr"]
LYCORIS = list(kf.lycoris_specs())


def outputs(model, base):
    import torch
    x = kf.fixed_input(base)
    with torch.no_grad():
        y = model(input_ids=x).logits if base == "tiny-llama" else model(x.float())
    return y.float()


def close(got, ref, what, name):
    err = (got - ref).abs().max().item()
    ok = err <= 1e-4 * max(1.0, ref.abs().max().item())
    print(f"{'ok ' if ok else 'FAIL'} {what:8} {name:28} max |Δ| {err:.2e}")
    return not ok


def same_tensors_and_metadata(original, exported):
    """Every tensor of `original` in `exported` with the same dtype, shape and bytes, no other tensor,
    and every metadata entry of `original` kept."""
    import json, struct

    def read(path):
        data = open(path, "rb").read()
        n = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + n])
        meta = header.pop("__metadata__", {})
        body = data[8 + n:]
        return {k: (v["dtype"], v["shape"], body[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}, meta

    (ta, ma), (tb, mb) = read(original), read(exported)
    return ta == tb and all(mb.get(k) == v for k, v in ma.items())


def load_merged(directory, base):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM
    if base == "tiny-llama":
        return AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    net = kf.convnet_class()()
    net.load_state_dict(load_file(os.path.join(directory, "model.safetensors")))
    return net.eval()


def run(tlora, tmp):
    import torch
    from safetensors.torch import load_file
    failures = 0
    cases = [(n, os.path.join(HERE, "peft", n), kf.peft_kind_specs()[n][0], "peft") for n in PEFT]
    cases += [(f"lycoris-{n}", os.path.join(HERE, "lycoris", f"{n}.safetensors"), kf.lycoris_specs()[n][0], "lycoris") for n in LYCORIS]
    for name, adapter, base, kind in cases:
        base_dir = os.path.join(HERE, "models", base)
        ref = load_file(os.path.join(HERE, "references", "kinds", f"{name}.outputs.safetensors"))["outputs"]
        merged = os.path.join(tmp, f"{name}-merged")
        r = subprocess.run([tlora, "merge", adapter, "--base", base_dir, "-o", merged], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"FAIL merge    {name:28} {r.stderr.strip()}")
            failures += 1
            continue
        failures += close(outputs(load_merged(merged, base), base), ref, "merge", name)
        if kind == "peft":
            container = os.path.join(tmp, f"{name}.tlora")
            exported = os.path.join(tmp, f"{name}-peft")
            for cmd in ([tlora, "convert", "import", adapter, "-o", container, "--base-config", base_dir],
                        [tlora, "export", container, "--format", "peft", "-o", exported]):
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    print(f"FAIL export   {name:28} {' '.join(cmd[1:3])}: {r.stderr.strip()}")
                    failures += 1
                    break
            else:
                import json
                from peft import PeftModel
                same = filecmp.cmp(os.path.join(adapter, "adapter_model.safetensors"), os.path.join(exported, "adapter_model.safetensors"),
                                   shallow=False) and json.load(open(os.path.join(adapter, "adapter_config.json"))) == \
                    json.load(open(os.path.join(exported, "adapter_config.json")))
                print(f"{'ok ' if same else 'FAIL'} bytes    {name:28} the export's weights equal PEFT's byte for byte, its config the same JSON")
                failures += not same
                model = PeftModel.from_pretrained(kf.load_base(base), exported).eval()
                failures += close(outputs(model, base), ref, "export", name)
        else:
            exported = os.path.join(tmp, f"{name}.safetensors")
            r = subprocess.run([tlora, "export", adapter, "--format", "lycoris", "-o", exported], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"FAIL export   {name:28} {r.stderr.strip()}")
                failures += 1
                continue
            same = same_tensors_and_metadata(adapter, exported)
            print(f"{'ok ' if same else 'FAIL'} bytes    {name:28} the export's tensors equal LyCORIS's byte for byte, its metadata kept")
            failures += not same
            spec = kf.lycoris_specs()[name[len("lycoris-"):]]
            if spec[2].get("dora_wd") and spec[2].get("wd_on_output") is False:
                print(f"ok  loader   {name:28} skipped: LyCORIS 4.1.3's create_lycoris_from_weights cannot load DoRA on the input axis (not even its own file)")
                continue
            from lycoris import create_lycoris_from_weights, LycorisNetwork
            model = kf.load_base(base)
            LycorisNetwork.apply_preset(spec[1])
            net, _ = create_lycoris_from_weights(1.0, exported, model)
            net.apply_to()
            failures += close(outputs(model.eval(), base), ref, "lycoris", name)
    return failures
