"""Cross-checks tlora's diffusion merges and exports with the real tools (diffusers, LyCORIS); run by
check.py when diffusers and lycoris are installed.

For every diffusion fixture: `tlora merge` it into its pipeline, load the result with diffusers and compare
the UNet's output (fixed latent, timestep, prompt embedding) and each text encoder's with the reference
(references/diffusion/<name>.safetensors: diffusers' fused pipeline or LyCORIS's forward); the same for the
single files, loaded by `from_single_file`; and `tlora export --format kohya` / `--format peft`, loaded by
diffusers' `load_lora_weights` (LyCORIS's own loader for LoHa, LoKr and full files), fused, compared the same
way. Returns the number of failures.
"""
import os, subprocess, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
D = os.path.join(HERE, "diffusion")

FIXTURES = [("sd-peft", "sd-tiny"), ("sd-kohya", "sd-tiny"), ("sd-attnproc", "sd-tiny"), ("sd-lora-compat", "sd-tiny"),
            ("sd-sdscripts-locon", "sd-tiny"), ("sd-sdscripts-locon-resized", "sd-tiny"), ("sdxl-kohya", "sdxl-tiny"),
            ("sdxl-kohya-sgm", "sdxl-tiny"), ("sd-lycoris-locon-tucker", "sd-tiny"), ("sd-lycoris-loha-tucker", "sd-tiny"),
            ("sd-lycoris-lokr", "sd-tiny"), ("sd-lycoris-locon-dora", "sd-tiny"), ("sd-lycoris-full", "sd-tiny")]
# diffusers' kohya loader reads no lora_mid, LoHa, LoKr or full tensors and reads dora_scale differently:
# tlora's kohya exports of these are loaded by LyCORIS's own loader.
LYCORIS_ONLY = {"sd-lycoris-locon-tucker", "sd-lycoris-loha-tucker", "sd-lycoris-lokr", "sd-lycoris-locon-dora", "sd-lycoris-full"}
# LyCORIS 4.1.3's create_network_from_weights cannot load its own LoKr file with Tucker factors
# (AttributeError: 'LokrModule' object has no attribute 'lokr_w2_a'): the export is compared with that file.
LYCORIS_BROKEN = {"sd-lycoris-lokr"}
# The diffusers layout holds no bias change: tlora refuses to export a full update's diff_b to it.
NO_PEFT = {"sd-lycoris-full"}


def adapter(name):
    d = os.path.join(D, "loras", name)
    return d if os.path.isdir(d) else d + ".safetensors"


def outputs(pipe, ref):
    """The UNet's and text encoders' outputs for the reference's fixed inputs, in f32."""
    import torch
    kw = {}
    if "input.text_embeds" in ref:
        kw["added_cond_kwargs"] = {"text_embeds": ref["input.text_embeds"], "time_ids": ref["input.time_ids"]}
    with torch.no_grad():
        out = {"output.unet": pipe.unet(ref["input.latent"], ref["input.timestep"], encoder_hidden_states=ref["input.encoder_hidden_states"], **kw).sample}
        for te in ("text_encoder", "text_encoder_2"):
            if getattr(pipe, te, None) is not None and f"output.{te}" in ref:
                out[f"output.{te}"] = getattr(pipe, te)(ref["input.input_ids"]).last_hidden_state
    return out


def compare(got, ref):
    """Largest |Δ| over each output relative to the reference's largest value."""
    worst = 0.0
    for k, v in got.items():
        worst = max(worst, ((v.float() - ref[k]).abs().max() / ref[k].abs().max()).item())
    return worst, worst <= 1e-5


def reference_pipeline_outputs(base, ref):
    """The reference pipeline of an f16 base: the reference's merged tensors rounded once to f16 in the base
    pipeline (what a merge must equal within 1 ulp), evaluated in f32 like ours."""
    import torch
    from diffusers import DiffusionPipeline
    pipe = DiffusionPipeline.from_pretrained(os.path.join(D, base), torch_dtype=torch.float32)
    for comp in ("unet", "text_encoder", "text_encoder_2"):
        model = getattr(pipe, comp, None)
        if model is None:
            continue
        sd = model.state_dict()
        sd.update({k[len(comp) + 1:]: v.to(torch.float16).float() for k, v in ref.items() if k.startswith(comp + "/")})
        model.load_state_dict(sd)
    out = outputs(pipe, ref)
    return {**ref, **{k: v.float() for k, v in out.items()}}


def main(tlora):
    import torch
    from diffusers import DiffusionPipeline
    from safetensors.torch import load_file
    tmp = tempfile.mkdtemp(prefix="tlora-check-diffusion-")
    failures = 0

    def run(*args):
        r = subprocess.run([tlora, *args], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(r.stderr.strip())

    def report(ok, what, name, detail):
        nonlocal failures
        failures += not ok
        print(f"{'ok ' if ok else 'FAIL'} {what:14} {name:28} {detail}")

    def load(path, base):
        # The f16 base is loaded in f32 (exact), so its outputs differ from the f32 reference only by the
        # weights' rounding to f16.
        return DiffusionPipeline.from_pretrained(path, torch_dtype=torch.float32)

    for name, base in FIXTURES:
        # `raw`: the tool's f32 result; `ref`: for the f16 base, the reference pipeline in f16 (what the
        # merge must equal); an export is loaded and fused by the tool in f32, so it must equal `raw`.
        raw = ref = load_file(os.path.join(HERE, "references", "diffusion", name + ".safetensors"))
        if base.startswith("sdxl"):
            ref = reference_pipeline_outputs(base, raw)
        # merge into the pipeline, loaded by diffusers
        out = os.path.join(tmp, name + "-merged")
        try:
            run("merge", adapter(name), "--base", os.path.join(D, base), "-o", out)
            worst, ok = compare(outputs(load(out, base), ref), ref)
            report(ok, "merge", name, f"diffusers loads tlora's pipeline: UNet/text-encoder outputs within {worst:.1e}")
        except Exception as e:
            report(False, "merge", name, str(e)[:300])
        # export and load with the tool
        for fmt in ("kohya", "peft"):
            exported = os.path.join(tmp, f"{name}.{fmt}" + (".safetensors" if fmt == "kohya" else ""))
            if fmt == "peft" and name in NO_PEFT:
                r = subprocess.run([tlora, "export", adapter(name), "--format", fmt, "--base", os.path.join(D, base), "-o", exported],
                                   capture_output=True, text=True)
                ok = r.returncode == 1 and "bias" in r.stderr and not os.path.exists(exported)
                report(ok, f"export {fmt}", name, "refused: the diffusers layout has no bias change (exit 1, nothing written)")
                continue
            try:
                run("export", adapter(name), "--format", fmt, "--base", os.path.join(D, base), "-o", exported)
                if fmt == "kohya" and name in LYCORIS_BROKEN:
                    ok, detail = same_tensors(exported, adapter(name))
                    report(ok, f"export {fmt}", name, detail)
                    continue
                if fmt == "kohya" and name in LYCORIS_ONLY:
                    got = lycoris_outputs(exported, base, raw)
                    loader = "LyCORIS's create_network_from_weights"
                else:
                    pipe = load(os.path.join(D, base), base)
                    pipe.load_lora_weights(exported)
                    pipe.fuse_lora(lora_scale=1.0)
                    got = outputs(pipe, raw)
                    loader = "diffusers' load_lora_weights + fuse_lora"
                worst, ok = compare(got, raw)
                report(ok, f"export {fmt}", name, f"{loader} on tlora's export: outputs within {worst:.1e}")
            except Exception as e:
                report(False, f"export {fmt}", name, str(e)[:300])
    # single files: merged by tlora, the UNet loaded by diffusers' from_single_file with the pipeline as config
    # (its CLIP loaders do not take these tiny text encoders; their tensors are checked by the Swift tests
    # against diffusers' own conversion of the fused pipeline)
    from diffusers import UNet2DConditionModel
    for name, base in [("sd-kohya", "sd-tiny"), ("sdxl-kohya-sgm", "sdxl-tiny")]:
        ref = load_file(os.path.join(HERE, "references", "diffusion", name + ".safetensors"))
        if base.startswith("sdxl"):
            ref = reference_pipeline_outputs(base, ref)
        out = os.path.join(tmp, name + "-merged.safetensors")
        try:
            run("merge", adapter(name), "--base", os.path.join(D, base + ".safetensors"), "-o", out)
            pipe = DiffusionPipeline.from_pretrained(os.path.join(D, base), torch_dtype=torch.float32)
            pipe.unet = UNet2DConditionModel.from_single_file(out, config=os.path.join(D, base), subfolder="unet", torch_dtype=torch.float32)
            got = {"output.unet": outputs(pipe, ref)["output.unet"]}
            worst, ok = compare(got, ref)
            report(ok, "merge single", name, f"from_single_file loads the UNet of tlora's single file: output within {worst:.1e}")
        except Exception as e:
            report(False, "merge single", name, str(e)[:300])
    return failures


def same_tensors(ours, theirs):
    """Every tensor of `theirs` in `ours` with the same name, shape and values (alpha may change dtype)."""
    import torch
    from safetensors.torch import load_file
    a, b = load_file(ours), load_file(theirs)
    differ = [k for k in b if k not in a or a[k].shape != b[k].shape or not torch.equal(a[k].double(), b[k].double())
              or (a[k].dtype != b[k].dtype and not k.endswith(".alpha"))]
    return not differ and set(a) == set(b), f"the kohya export holds the LyCORIS file's {len(b)} tensors bit for bit" if not differ else f"differs at {differ[:3]}"


def lycoris_outputs(path, base, ref):
    """LyCORIS's own loader on a kohya-named file, applied to the pipeline in f64 (as the reference was made)."""
    import torch
    from lycoris import kohya as lyco
    from diffusers import DiffusionPipeline
    pipe = DiffusionPipeline.from_pretrained(os.path.join(D, base), torch_dtype=torch.float32)
    # create_network_from_weights first builds a network with the class's presets, whose default wraps
    # diffusers' time_embedding layers twice and fails: the same targets, each once (as the generator does).
    lyco.LycorisNetworkKohya.apply_preset({
        "unet_target_module": ["Transformer2DModel", "ResnetBlock2D", "Downsample2D", "Upsample2D"],
        "unet_target_name": ["conv_in", "conv_out", "time_embedding.linear_1", "time_embedding.linear_2"],
        "text_encoder_target_module": ["CLIPAttention", "CLIPSdpaAttention", "CLIPMLP"], "text_encoder_target_name": []})
    net, _ = lyco.create_network_from_weights(1.0, path, pipe.vae, pipe.text_encoder, pipe.unet)
    net.apply_to(pipe.text_encoder, pipe.unet, apply_text_encoder=True, apply_unet=True)
    pipe.unet.double()
    pipe.text_encoder.double()
    net.double()
    with torch.no_grad():
        return {"output.unet": pipe.unet(ref["input.latent"].double(), ref["input.timestep"].double(),
                                         encoder_hidden_states=ref["input.encoder_hidden_states"].double()).sample.float(),
                "output.text_encoder": pipe.text_encoder(ref["input.input_ids"]).last_hidden_state.float()}
