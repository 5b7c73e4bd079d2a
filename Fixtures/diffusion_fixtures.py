"""The diffusion fixtures (`generate.py --only diffusion`): tiny random Stable Diffusion and SDXL-style
pipelines made by diffusers, their single-file forms made by diffusers' own conversion scripts, LoRA /
LoCon / LoHa / LoKr files written by diffusers (PEFT → diffusers and kohya layouts), by kohya-ss/sd-scripts
and by LyCORIS, and the references those tools' forward passes give. See Fixtures/README.md, "Diffusion".

Needs torch, diffusers 0.42, transformers, peft, lycoris-lora 4.1.3, safetensors, and two checkouts:
`--diffusers-repo` (for scripts/convert_diffusers_to_original_*.py, which the pip package lacks) and
`--sd-scripts` (kohya-ss/sd-scripts, for networks/lora.py and networks/resize_lora.py; its optional imports
torchvision and the long-prompt pipelines are stubbed, as they are not used on these paths).
"""
import json, os, shutil, subprocess, sys, types

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "diffusion")
REFS = os.path.join(HERE, "references", "diffusion")
SEED = 4321

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
                "conv1", "conv2", "conv_shortcut", "time_emb_proj", "conv"]
TE_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]


def p(*parts):
    return os.path.join(OUT, *parts)


def seed(n):
    import random, numpy as np, torch
    random.seed(n)
    np.random.seed(n)
    torch.manual_seed(n)


def clean(d):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d, exist_ok=True)


# ------------------------------------------------------------------ bases

def tokenizer(max_length=16):
    """A 54-token CLIP BPE tokenizer (letters, letters + </w>, start, end): pipelines carry one."""
    import tempfile
    from transformers import CLIPTokenizer
    d = tempfile.mkdtemp()
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {c: i for i, c in enumerate(letters)}
    vocab.update({c + "</w>": 26 + i for i, c in enumerate(letters)})
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = 52, 53
    json.dump(vocab, open(os.path.join(d, "vocab.json"), "w"))
    open(os.path.join(d, "merges.txt"), "w").write("#version: 0.2\n")
    return CLIPTokenizer(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt"), model_max_length=max_length)


def clip_config(hidden, projection=None):
    from transformers import CLIPTextConfig
    kw = dict(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2, num_attention_heads=2, vocab_size=64,
              max_position_embeddings=16, bos_token_id=52, eos_token_id=53, pad_token_id=53)
    if projection:
        kw["projection_dim"] = projection
    return CLIPTextConfig(**kw)


def tiny_vae():
    from diffusers import AutoencoderKL
    # Four blocks of two resnets: the layout diffusers' single-file conversion scripts hard-code.
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(4, 4, 4, 4), layers_per_block=2,
                         latent_channels=4, norm_num_groups=2, sample_size=32)


def make_sd():
    """SD 1.x layout (4 down blocks × 2 resnets, attention in the first three), f32."""
    from diffusers import UNet2DConditionModel, StableDiffusionPipeline, DDIMScheduler
    from transformers import CLIPTextModel
    seed(SEED)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=2,
                                block_out_channels=(4, 4, 8, 8),
                                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                                cross_attention_dim=8, attention_head_dim=2, norm_num_groups=2)
    te = CLIPTextModel(clip_config(8))
    pipe = StableDiffusionPipeline(vae=tiny_vae(), text_encoder=te, tokenizer=tokenizer(), unet=unet,
                                   scheduler=DDIMScheduler(clip_sample=False), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    clean(p("sd-tiny"))
    pipe.save_pretrained(p("sd-tiny"))


def make_sdxl():
    """SDXL layout (3 down blocks × 2 resnets, attention in the last two with depths 1 and 2, two text
    encoders, text_time conditioning), f16, the UNet in shards."""
    import torch
    from diffusers import UNet2DConditionModel, StableDiffusionXLPipeline, EulerDiscreteScheduler
    from transformers import CLIPTextModel, CLIPTextModelWithProjection
    seed(SEED + 1)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=2,
                                block_out_channels=(4, 8, 8), transformer_layers_per_block=(1, 1, 2),
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                                cross_attention_dim=16, attention_head_dim=(2, 2, 4), norm_num_groups=2,
                                use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=4,
                                projection_class_embeddings_input_dim=4 * 6 + 8)
    te = CLIPTextModel(clip_config(8))
    te2 = CLIPTextModelWithProjection(clip_config(8, projection=8))
    pipe = StableDiffusionXLPipeline(vae=tiny_vae(), text_encoder=te, text_encoder_2=te2, tokenizer=tokenizer(),
                                     tokenizer_2=tokenizer(), unet=unet, scheduler=EulerDiscreteScheduler())
    pipe = pipe.to(torch.float16)
    clean(p("sdxl-tiny"))
    pipe.save_pretrained(p("sdxl-tiny"), max_shard_size="50KB")


def single_file(diffusers_repo, pipeline, script, half=False):
    """The single-file checkpoint, by diffusers' own conversion script."""
    out = p(pipeline + ".safetensors")
    cmd = [sys.executable, os.path.join(diffusers_repo, "scripts", script), "--model_path", p(pipeline),
           "--checkpoint_path", out, "--use_safetensors"] + (["--half"] if half else [])
    # The scripts read one unsharded UNet file: join the shards for them in a scratch copy.
    import tempfile
    from safetensors.torch import load_file, save_file
    scratch = tempfile.mkdtemp()
    shutil.copytree(p(pipeline), os.path.join(scratch, pipeline))
    unet = os.path.join(scratch, pipeline, "unet")
    shards = sorted(f for f in os.listdir(unet) if f.endswith(".safetensors"))
    if len(shards) > 1:
        merged = {}
        for f in shards:
            merged.update(load_file(os.path.join(unet, f)))
            os.remove(os.path.join(unet, f))
        save_file(merged, os.path.join(unet, "diffusion_pytorch_model.safetensors"))
    cmd[cmd.index("--model_path") + 1] = os.path.join(scratch, pipeline)
    subprocess.run(cmd, check=True, capture_output=True)
    shutil.rmtree(scratch)
    return out


# ------------------------------------------------------------------ fixed inputs and outputs

def load_pipeline(name, dtype=None):
    import torch
    from diffusers import DiffusionPipeline
    return DiffusionPipeline.from_pretrained(p(name), torch_dtype=dtype or torch.float32)


def fixed_inputs(sdxl):
    import torch
    g = torch.Generator().manual_seed(7)
    inputs = {"input.latent": torch.randn(1, 4, 8, 8, generator=g), "input.timestep": torch.tensor([17.0]),
              "input.encoder_hidden_states": torch.randn(1, 5, 16 if sdxl else 8, generator=g),
              "input.input_ids": torch.tensor([[52, 26, 2, 0, 45, 53, 53, 53]])}
    if sdxl:
        inputs["input.text_embeds"] = torch.randn(1, 8, generator=g)
        inputs["input.time_ids"] = torch.tensor([[8.0, 8.0, 0.0, 0.0, 8.0, 8.0]])
    return inputs


def outputs_of(pipe, inputs):
    """UNet output for the fixed latent/timestep/prompt embedding; each text encoder's last hidden state."""
    import torch
    kw = {}
    if "input.text_embeds" in inputs:
        kw["added_cond_kwargs"] = {"text_embeds": inputs["input.text_embeds"], "time_ids": inputs["input.time_ids"]}
    with torch.no_grad():
        out = {"output.unet": pipe.unet(inputs["input.latent"], inputs["input.timestep"],
                                        encoder_hidden_states=inputs["input.encoder_hidden_states"], **kw).sample.float()}
        for te in ("text_encoder", "text_encoder_2"):
            if getattr(pipe, te, None) is not None:
                out[f"output.{te}"] = getattr(pipe, te)(inputs["input.input_ids"]).last_hidden_state.float()
    return out


def component_weights(pipe):
    comps = {}
    for c in ("unet", "text_encoder", "text_encoder_2"):
        m = getattr(pipe, c, None)
        if m is not None:
            comps[c] = {k: v.detach().clone().float() for k, v in m.state_dict().items()}
    return comps


def changed(before, after):
    """`component/tensor` → merged value (f32) for every tensor the adapter changed."""
    import torch
    out = {}
    for c, sd in after.items():
        for k, v in sd.items():
            if not torch.equal(v, before[c][k]):
                out[f"{c}/{k}"] = v.contiguous()
    return out


def save_reference(name, merged, inputs, outputs, applied):
    from safetensors.torch import save_file
    os.makedirs(REFS, exist_ok=True)
    save_file({**merged, **inputs, **outputs}, os.path.join(REFS, name + ".safetensors"),
              metadata={"modules_applied": str(applied)})


def diffusers_reference(name, base, lora, sdxl, single_file_script=None, diffusers_repo=None):
    """The pipeline in f32 with the LoRA (a file, or a PEFT-layout state dict) loaded by diffusers and fused at
    scale 1 (the f16 base's weights are exact in f32, so this is the one-rounding reference before the final
    rounding). With `single_file_script`, also the fused pipeline converted to a single file by that diffusers
    script: `<name>.single.safetensors` holds the tensors that differ from the base's single file."""
    import tempfile
    from safetensors.torch import load_file, save_file
    pipe = load_pipeline(base)
    before = component_weights(pipe)
    pipe.load_lora_weights(lora)
    pipe.fuse_lora(lora_scale=1.0)
    pipe.unload_lora_weights()
    merged = changed(before, component_weights(pipe))
    inputs = fixed_inputs(sdxl)
    save_reference(name, merged, inputs, outputs_of(pipe, inputs), len(merged))
    if single_file_script:
        scratch = tempfile.mkdtemp()
        pipe.save_pretrained(os.path.join(scratch, "fused"))
        out = os.path.join(scratch, "fused.safetensors")
        subprocess.run([sys.executable, os.path.join(diffusers_repo, "scripts", single_file_script), "--model_path",
                        os.path.join(scratch, "fused"), "--checkpoint_path", out, "--use_safetensors"], check=True, capture_output=True)
        fused, original = load_file(out), load_file(p(base + ".safetensors"))
        save_file({k: v.float().contiguous() for k, v in fused.items() if not torch_equal(v, original[k])},
                  os.path.join(REFS, name + ".single.safetensors"))
        shutil.rmtree(scratch)
    return merged


def torch_equal(a, b):
    import torch
    return torch.equal(a.float(), b.float())


def count_modules(path):
    """Modules in a LoRA file or directory: its distinct keys without the factor suffix."""
    from safetensors import safe_open
    f = os.path.join(path, "pytorch_lora_weights.safetensors") if os.path.isdir(path) else path
    suffixes = (".lora_A.weight", ".lora_B.weight", ".lora_down.weight", ".lora_up.weight", ".alpha", ".lora.down.weight",
                ".lora.up.weight", ".lora_linear_layer.down.weight", ".lora_linear_layer.up.weight", "_lora.down.weight",
                "_lora.up.weight")
    names = set()
    for k in safe_open(f, "pt").keys():
        names.add(next((k[:-len(s)] for s in suffixes if k.endswith(s)), k))
    return len(names)


# ------------------------------------------------------------------ LoRAs through PEFT and diffusers

def peft_lora(pipe, rank, alpha, unet_targets=UNET_TARGETS, te_targets=TE_TARGETS, seed_value=SEED):
    """A randomised PEFT LoRA (B ≠ 0) on the pipeline's UNet and text encoders; PEFT state dicts by component."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    seed(seed_value)
    pipe.unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=False, target_modules=unet_targets))
    out = {"unet": get_peft_model_state_dict(pipe.unet)}
    for te in ("text_encoder", "text_encoder_2"):
        if getattr(pipe, te, None) is not None and te_targets:
            getattr(pipe, te).add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=False, target_modules=te_targets))
            out[te] = get_peft_model_state_dict(getattr(pipe, te))
    return out


def make_peft_loras():
    """sd-peft (diffusers' save_lora_weights layout), sd-kohya and sdxl-kohya (convert_state_dict_to_kohya),
    sdxl-kohya-ldm (the same keys renamed to the original SGM UNet names by diffusers' SDXL conversion
    script's map), and the two older diffusers layouts (`.processor.to_q_lora.down`, `.lora.down`)."""
    import torch
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from diffusers.utils import convert_state_dict_to_kohya
    from diffusers.utils.state_dict_utils import UNET_TO_DIFFUSERS, PEFT_TO_DIFFUSERS
    from safetensors.torch import save_file
    os.makedirs(p("loras"), exist_ok=True)

    sd = load_pipeline("sd-tiny")
    lora = peft_lora(sd, rank=2, alpha=2)
    d = p("loras", "sd-peft")
    clean(d)
    # The PEFT layout load_lora_weights reads. (convert_state_dict_to_diffusers first, as the training scripts
    # do, gives `to_q.lora.down` keys for attention that diffusers 0.42's loader drops with only a warning.)
    StableDiffusionPipeline.save_lora_weights(d, unet_lora_layers=lora["unet"], text_encoder_lora_layers=lora["text_encoder"],
                                              safe_serialization=True)
    flat = {f"{c}.{k}": v for c, sd_ in lora.items() for k, v in sd_.items()}
    save_file(convert_state_dict_to_kohya(flat), p("loras", "sd-kohya.safetensors"))

    # diffusers <= 0.20 attention processors (save_attn_procs): UNet attention only, no prefix.
    inverse = {v: k for k, v in UNET_TO_DIFFUSERS.items() if "_lora" in k}
    old = {}
    for k, v in lora["unet"].items():
        for new, o in inverse.items():
            if new + "." in k and ".attn" in k:
                old[k.replace(new + ".", ".processor" + o + ".")] = v.contiguous()
    save_file(old, p("loras", "sd-attnproc.safetensors"))
    # diffusers 0.21-0.24 LoRACompatible layers: `unet.<m>.lora.down.weight`, `text_encoder.<m>.lora_linear_layer.down.weight`.
    compat = {}
    for k, v in lora["unet"].items():
        if ".attn" in k:
            compat["unet." + k.replace(".lora_A.", ".lora.down.").replace(".lora_B.", ".lora.up.")] = v.contiguous()
    for k, v in lora["text_encoder"].items():
        compat["text_encoder." + k.replace(".lora_A.", ".lora_linear_layer.down.").replace(".lora_B.", ".lora_linear_layer.up.")] = v.contiguous()
    save_file(compat, p("loras", "sd-lora-compat.safetensors"))
    # diffusers 0.42 loads neither older layout completely (it ignores the processor keys without a word), so
    # their references are diffusers' load of the same tensors in the PEFT layout.
    subsets = {"sd-attnproc": {k: v for k, v in flat.items() if k.startswith("unet.") and ".attn" in k},
               "sd-lora-compat": {k: v for k, v in flat.items() if ".attn" in k or k.startswith("text_encoder.")}}
    del sd

    xl = load_pipeline("sdxl-tiny")
    lora = peft_lora(xl, rank=2, alpha=2, seed_value=SEED + 1)
    flat = {f"{c}.{k}": v.to(torch.float16) for c, sd_ in lora.items() for k, v in sd_.items()}
    kohya = convert_state_dict_to_kohya(flat)
    save_file(kohya, p("loras", "sdxl-kohya.safetensors"))
    return kohya, subsets


def sgm_names(diffusers_repo, kohya):
    """The SDXL kohya file with UNet keys under the original SGM module names (`input_blocks.4.1…`), the
    names sd-scripts' SDXL trainer writes; the renaming is diffusers' SDXL conversion script's own map."""
    import importlib.util
    from safetensors.torch import save_file
    spec = importlib.util.spec_from_file_location("conv", os.path.join(diffusers_repo, "scripts", "convert_diffusers_to_original_sdxl.py"))
    conv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conv)
    unet_modules = load_pipeline("sdxl-tiny").unet.state_dict().keys()
    flat_to_sgm = {}
    mapping = conv.convert_unet_state_dict({k: k for k in unet_modules})  # sgm name → diffusers name
    for sgm, hf in mapping.items():
        if hf.endswith(".weight"):
            flat_to_sgm["lora_unet_" + hf[:-7].replace(".", "_")] = "lora_unet_" + sgm[:-7].replace(".", "_")
    out = {}
    for k, v in kohya.items():
        module, rest = k.split(".", 1)
        out[flat_to_sgm.get(module, module) + "." + rest] = v
    save_file(out, p("loras", "sdxl-kohya-sgm.safetensors"))


# ------------------------------------------------------------------ sd-scripts

def sd_scripts_env(sd_scripts):
    """Makes sd-scripts importable: its `library.utils` imports torchvision (for training transforms) and
    `library.train_util` the long-prompt pipelines (which need transformers 4's CLIPFeatureExtractor); none of
    that runs when building, saving or resizing a network, so they are stand-ins."""
    import diffusers, transformers  # before the stand-ins: diffusers probes which packages exist
    sys.path[:0] = [sd_scripts, os.path.join(sd_scripts, "networks")]

    def stub(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m
        return m
    tv = stub("torchvision")
    tv.transforms = stub("torchvision.transforms", Compose=lambda *a, **k: None, ToTensor=lambda *a, **k: None,
                         Normalize=lambda *a, **k: None)
    stub("library.lpw_stable_diffusion", StableDiffusionLongPromptWeightingPipeline=object)
    stub("library.sdxl_lpw_stable_diffusion", SdxlStableDiffusionLongPromptWeightingPipeline=object)


def randomise(network, scale=0.1):
    import torch
    with torch.no_grad():
        for n, prm in network.named_parameters():
            if prm.dim() == 0:
                continue
            prm.copy_(torch.randn_like(prm) * scale)


def make_sd_scripts(sd_scripts):
    """sd-scripts' own LoRA network (networks/lora.py, LoCon via conv_dim) on the tiny SD pipeline, saved by
    its save_weights in fp16 with the training metadata keys, then resized by networks/resize_lora.py."""
    import torch
    sd_scripts_env(sd_scripts)
    import lora as kohya_lora
    pipe = load_pipeline("sd-tiny")
    seed(SEED + 2)
    net = kohya_lora.create_network(1.0, 2, 1.0, pipe.vae, pipe.text_encoder, pipe.unet, conv_dim=2, conv_alpha=4.0)
    net.apply_to(pipe.text_encoder, pipe.unet, True, True)  # registers the modules, as the trainer does
    randomise(net)
    metadata = {"ss_network_module": "networks.lora", "ss_network_dim": "2", "ss_network_alpha": "1.0",
                "ss_network_args": json.dumps({"conv_dim": "2", "conv_alpha": "4.0"}), "ss_base_model_version": "sd_v1",
                "ss_output_name": "sd-sdscripts-locon", "modelspec.architecture": "stable-diffusion-v1/lora",
                "modelspec.title": "tiny locon", "modelspec.sai_model_spec": "1.0.0"}
    out = p("loras", "sd-sdscripts-locon.safetensors")
    net.save_weights(out, torch.float16, metadata)
    resized = p("loras", "sd-sdscripts-locon-resized.safetensors")
    resize(sd_scripts, out, resized)
    return out, resized


def resize(sd_scripts, src, dst):
    """networks/resize_lora.py, run as its command line does (sd-scripts' environment already set up)."""
    import runpy
    argv = sys.argv
    sys.argv = ["resize_lora.py", "--model", src, "--save_to", dst, "--new_rank", "1", "--save_precision", "fp16",
                "--device", "cpu"]
    try:
        runpy.run_path(os.path.join(sd_scripts, "networks", "resize_lora.py"), run_name="__main__")
    finally:
        sys.argv = argv


# ------------------------------------------------------------------ LyCORIS

LYCORIS_SPECS = {
    # name: create_network arguments (network_dim, network_alpha, then the algorithm's options)
    "sd-lycoris-locon-tucker": dict(network_dim=2, network_alpha=1, algo="locon", conv_dim=2, conv_alpha=4, use_tucker=True),
    "sd-lycoris-loha-tucker": dict(network_dim=2, network_alpha=1, algo="loha", conv_dim=2, conv_alpha=1, use_tucker=True),
    "sd-lycoris-lokr": dict(network_dim=2, network_alpha=1, algo="lokr", conv_dim=2, conv_alpha=1, factor=2, decompose_both=True,
                            use_tucker=True),
    "sd-lycoris-locon-dora": dict(network_dim=2, network_alpha=2, algo="locon", conv_dim=2, conv_alpha=2, dora_wd=True),
    "sd-lycoris-full": dict(network_dim=2, network_alpha=2, algo="full"),
}


def lycoris_delta(module, org, w, b):
    """(W' − W, b' − b) of one LyCORIS-wrapped layer from its forward pass: applied to the identity (for a conv
    layer: one-hot kernels, with stride 1 and no padding, so each output is one kernel's dot product) and to
    zero, minus the same for the base weight `w`, bias `b`."""
    import torch
    import torch.nn.functional as F
    conv = w.dim() == 4
    n = w[0].numel()
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *w.shape[1:])
    zero = torch.zeros_like(eye[:1])
    if conv:
        saved = (org.stride, org.padding, dict(module.kw_dict))
        org.stride, org.padding = (1, 1), (0, 0)
        module.kw_dict.update(stride=(1, 1), padding=(0, 0))
        base = lambda x: F.conv2d(x, w, b)
    else:
        base = lambda x: F.linear(x, w, b)
    with torch.no_grad():
        d_bias = (module(zero) - base(zero)).reshape(-1)
        d = (module(eye) - base(eye)).reshape(n, w.shape[0]) - d_bias
    if conv:
        org.stride, org.padding = saved[0], saved[1]
        module.kw_dict.clear()
        module.kw_dict.update(saved[2])
    return d.T.reshape(w.shape).contiguous(), d_bias


def make_lycoris():
    """LyCORIS 4.1.3 through its kohya-style network (`lycoris.kohya.create_network`, names `lora_unet_…`,
    `lora_te_…`), every parameter randomised, saved by its save_weights; the reference is each wrapped
    layer's forward pass (in f64) and the UNet's forward with the network applied. One process per network:
    create_network keeps state in class attributes, and a second network in one process fails."""
    for name in LYCORIS_SPECS:
        subprocess.run([sys.executable, "-c", f"import diffusion_fixtures as d; d.make_lycoris_network({name!r})"],
                       cwd=HERE, check=True)
        check_merged_reference(name)


def check_merged_reference(name):
    """The per-layer references, loaded into a fresh pipeline, give the outputs of the network's own forward:
    the identity trick read every layer's update right."""
    import torch
    from safetensors.torch import load_file
    ref = load_file(os.path.join(REFS, name + ".safetensors"))
    pipe = load_pipeline("sd-tiny")
    for comp in ("unet", "text_encoder"):
        model = getattr(pipe, comp)
        sd = model.state_dict()
        sd.update({k[len(comp) + 1:]: v for k, v in ref.items() if k.startswith(comp + "/")})
        model.load_state_dict(sd)
        model.double()
    with torch.no_grad():
        out = pipe.unet(ref["input.latent"].double(), ref["input.timestep"].double(),
                        encoder_hidden_states=ref["input.encoder_hidden_states"].double()).sample.float()
        te = pipe.text_encoder(ref["input.input_ids"]).last_hidden_state.float()
    for got, key in ((out, "output.unet"), (te, "output.text_encoder")):
        err = (got - ref[key]).abs().max().item() / ref[key].abs().max().item()
        if err > 1e-5:
            raise SystemExit(f"{name}: merged reference gives {key} off by {err:.2e}")


def make_lycoris_network(name):
    import torch
    from lycoris import kohya as lyco
    if True:
        i = list(LYCORIS_SPECS).index(name)
        pipe = load_pipeline("sd-tiny")
        seed(SEED + 10 + i)
        spec = dict(LYCORIS_SPECS[name])
        # LyCORIS 4.1.3's built-in "full" preset lists both the TimestepEmbedding class and the names
        # `time_embedding.linear_1/2`, and on a diffusers UNet that makes each of those layers twice
        # (create_network asserts "duplicated lora name"): the same targets, each once, as a preset file.
        import tempfile
        preset = os.path.join(tempfile.mkdtemp(), "preset.toml")
        open(preset, "w").write(
            'unet_target_module = ["Transformer2DModel", "ResnetBlock2D", "Downsample2D", "Upsample2D"]\n'
            'unet_target_name = ["conv_in", "conv_out", "time_embedding.linear_1", "time_embedding.linear_2"]\n'
            'text_encoder_target_module = ["CLIPAttention", "CLIPSdpaAttention", "CLIPMLP"]\n'
            'text_encoder_target_name = []\n')
        spec["preset"] = preset
        net = lyco.create_network(1.0, spec.pop("network_dim"), spec.pop("network_alpha"), pipe.vae, pipe.text_encoder,
                                  pipe.unet, **spec)
        before = {c: {k: v.double() for k, v in sd.items()} for c, sd in component_weights(pipe).items()}
        net.apply_to(pipe.text_encoder, pipe.unet, apply_text_encoder=True, apply_unet=True)
        randomise(net, 0.2)
        out = p("loras", name + ".safetensors")
        net.save_weights(out, torch.float32, {"ss_network_module": "lycoris.kohya", "ss_network_args": json.dumps(LYCORIS_SPECS[name])})
        pipe.unet.double()
        pipe.text_encoder.double()
        net.double()
        merged = {}
        owners = {"lora_unet": ("unet", pipe.unet), "lora_te": ("text_encoder", pipe.text_encoder)}
        for lm in net.unet_loras + net.text_encoder_loras:
            comp, model = next(v for k, v in owners.items() if lm.lora_name.startswith(k + "_"))
            org = lm.org_module[0]
            target = next(n for n, m in model.named_modules() if m is org)
            w, b = before[comp][target + ".weight"], before[comp].get(target + ".bias")
            dw, db = lycoris_delta(lm, org, w, b)
            merged[f"{comp}/{target}.weight"] = (w + dw).float()
            if b is not None and db.abs().max() > 0:
                merged[f"{comp}/{target}.bias"] = (b + db).float()
        inputs = fixed_inputs(False)
        with torch.no_grad():
            outputs = {"output.unet": pipe.unet(inputs["input.latent"].double(), inputs["input.timestep"].double(),
                                                encoder_hidden_states=inputs["input.encoder_hidden_states"].double()).sample.float(),
                       "output.text_encoder": pipe.text_encoder(inputs["input.input_ids"]).last_hidden_state.float()}
        save_reference(name, merged, inputs, outputs, len(merged))


# ------------------------------------------------------------------ entry

def make_diffusion(diffusers_repo, sd_scripts):
    for need, what in ((diffusers_repo, "--diffusers-repo"), (sd_scripts, "--sd-scripts")):
        if not need or not os.path.isdir(need):
            raise SystemExit(f"the diffusion step needs {what} (a checkout; see Fixtures/README.md)")
    make_sd()
    make_sdxl()
    single_file(diffusers_repo, "sd-tiny", "convert_diffusers_to_original_stable_diffusion.py")
    single_file(diffusers_repo, "sdxl-tiny", "convert_diffusers_to_original_sdxl.py", half=True)
    kohya_xl, subsets = make_peft_loras()
    sgm_names(diffusers_repo, kohya_xl)
    make_sd_scripts(sd_scripts)
    for name, base, xl in [("sd-peft", "sd-tiny", False), ("sd-kohya", "sd-tiny", False), ("sd-attnproc", "sd-tiny", False),
                           ("sd-lora-compat", "sd-tiny", False), ("sd-sdscripts-locon", "sd-tiny", False),
                           ("sd-sdscripts-locon-resized", "sd-tiny", False), ("sdxl-kohya", "sdxl-tiny", True),
                           ("sdxl-kohya-sgm", "sdxl-tiny", True)]:
        path = p("loras", name) if os.path.isdir(p("loras", name)) else p("loras", name + ".safetensors")
        script = {"sd-kohya": "convert_diffusers_to_original_stable_diffusion.py",
                  "sdxl-kohya-sgm": "convert_diffusers_to_original_sdxl.py"}.get(name)
        merged = diffusers_reference(name, base, subsets.get(name, path), xl, script, diffusers_repo)
        modules = count_modules(path)
        if len([k for k in merged if k.endswith(".weight")]) != modules:
            raise SystemExit(f"{name}: diffusers changed {len(merged)} tensors for {modules} modules")
    make_lycoris()


def manifest_items():
    """The diffusion fixtures for manifest.json."""
    items = []
    for base in ("sd-tiny", "sdxl-tiny"):
        items.append({"name": base, "path": f"diffusion/{base}", "kind": "diffusers-pipeline"})
        items.append({"name": base + ".safetensors", "path": f"diffusion/{base}.safetensors", "kind": "single-file",
                      "source": f"diffusion/{base}", "made_by": "diffusers scripts/convert_diffusers_to_original_*.py"})
    for name in sorted(os.listdir(p("loras"))) if os.path.isdir(p("loras")) else []:
        stem = name[:-len(".safetensors")] if name.endswith(".safetensors") else name
        base = "sdxl-tiny" if stem.startswith("sdxl") else "sd-tiny"
        refs = [f"references/diffusion/{stem}.safetensors"]
        if os.path.exists(os.path.join(REFS, stem + ".single.safetensors")):
            refs.append(f"references/diffusion/{stem}.single.safetensors")
        kind = "lycoris" if "lycoris" in stem else "sd-scripts" if "sdscripts" in stem else "diffusers"
        items.append({"name": stem, "path": f"diffusion/loras/{name}", "kind": f"diffusion-{kind}", "base": f"diffusion/{base}",
                      "references": refs})
    return items
