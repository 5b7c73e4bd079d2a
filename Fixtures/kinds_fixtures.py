"""Fixtures of the structured adapter kinds (issue 12), written by the real tools:

- PEFT 0.21.2 `save_pretrained` of LOKR, LOHA, ADALORA (trained a few steps so its rank allocator
  prunes), VERA (with and without `save_projection`) and IA3 adapters on `models/tiny-llama`, and of
  LoRA, LoHa and LoKr on the Conv2d layers of `models/tiny-convnet` (a small torch network);
- lycoris-lora 4.1.3 `create_lycoris(...).save_weights` of lokr (every factorization: full and
  low-rank W1 and W2, Tucker W2), loha, locon (with `lora_mid`), full, with `weight_decompose` on
  either axis, on tiny-llama and tiny-convnet.

References come from the tools' forward passes, never from their merge functions: each adapter is
loaded back by the tool's own loader (`PeftModel.from_pretrained`, `create_lycoris_from_weights`),
the model is cast to float64, and for every adapted layer the merged weight is
`(adapted(I) - adapted(0))^T` (a Linear applied to the identity; a Conv2d without padding applied to
one-hot kernel-sized images, so each output is one column of the flattened weight), the merged bias
`adapted(0)`. `references/kinds/<name>.merged.safetensors` holds those merged tensors (f32, base
names, only the ones the adapter changes); `<name>.outputs.safetensors` the adapted model's outputs on
a fixed input (logits for the Llama, the convnet's output for the convnet).
"""
import json, os, shutil, sys

HERE = os.path.dirname(os.path.abspath(__file__))


def path(*parts):
    return os.path.join(HERE, *parts)


def seed(n):
    import random, numpy as np, torch
    random.seed(n)
    np.random.seed(n)
    torch.manual_seed(n)


def clean(d):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d, exist_ok=True)


ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
CONV_TARGETS = ["conv1", "conv2", "conv3", "fc"]


def convnet_class():
    import torch.nn as nn
    import torch.nn.functional as F

    class TinyConvNet(nn.Module):
        """3x3 convs without padding (so a kernel-sized input gives one output pixel), a 1x1 conv and
        a linear head; every layer has a bias."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3)
            self.conv2 = nn.Conv2d(8, 12, 3)
            self.conv3 = nn.Conv2d(12, 16, 1)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            x = F.relu(self.conv1(x))
            x = F.relu(self.conv2(x))
            x = self.conv3(x).mean(dim=(2, 3))
            return self.fc(x)

    return TinyConvNet


def make_convnet():
    from safetensors.torch import save_file
    seed(31)
    net = convnet_class()()
    d = path("models", "tiny-convnet")
    clean(d)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, os.path.join(d, "model.safetensors"), {"format": "pt"})
    json.dump({"architectures": ["TinyConvNet"], "model_type": "tiny-convnet",
               "layers": {"conv1": [8, 3, 3, 3], "conv2": [12, 8, 3, 3], "conv3": [16, 12, 1, 1], "fc": [16, 10]}},
              open(os.path.join(d, "config.json"), "w"), indent=2)


def load_convnet():
    from safetensors.torch import load_file
    net = convnet_class()()
    net.load_state_dict(load_file(path("models", "tiny-convnet", "model.safetensors")))
    return net


def load_llama():
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(path("models", "tiny-llama"))


def load_base(base):
    return load_llama() if base == "tiny-llama" else load_convnet()


def fixed_input(base):
    import torch
    g = torch.Generator().manual_seed(7)
    if base == "tiny-llama":
        return torch.randint(0, 256, (2, 12), generator=g)
    return torch.randn(2, 3, 9, 9, generator=g, dtype=torch.float64)


def outputs(model, base):
    import torch
    x = fixed_input(base)
    with torch.no_grad():
        y = model(input_ids=x).logits if base == "tiny-llama" else model(x)
    return {"input": x.contiguous(), "outputs": y.float().contiguous()}


def merged_from_forward(layer, base_layer):
    """(weight, bias) of what `layer` computes, from its forward pass in float64."""
    import torch
    import torch.nn as nn
    with torch.no_grad():
        # LyCORIS's full algorithm removes the base layer's weight and keeps the sum in its own.
        shape = (base_layer.weight if hasattr(base_layer, "weight") else layer.weight).shape
        if isinstance(base_layer, nn.Conv2d):
            out_c, in_c, kh, kw = shape
            n = in_c * kh * kw
            eye = torch.eye(n, dtype=torch.float64).reshape(n, in_c, kh, kw)
            zero = torch.zeros(1, in_c, kh, kw, dtype=torch.float64)
            b = layer(zero).reshape(out_c)
            w = (layer(eye).reshape(n, out_c) - b).T.reshape(out_c, in_c, kh, kw)
        else:
            n = base_layer.in_features
            b = layer(torch.zeros(1, n, dtype=torch.float64)).reshape(-1)
            w = (layer(torch.eye(n, dtype=torch.float64)) - b).T
    return w, b


def save_references(name, model, base, layers, base_state):
    """`layers`: (module path, adapted layer, base layer) for every adapted layer."""
    import torch
    from safetensors.torch import save_file
    out = {}
    for module, layer, base_layer in layers:
        w, b = merged_from_forward(layer, base_layer)
        out[module + ".weight"] = w.float().contiguous()
        if module + ".bias" in base_state:
            bias = b.float().contiguous()
            if not torch.equal(bias, base_state[module + ".bias"]):
                out[module + ".bias"] = bias
    d = path("references", "kinds")
    os.makedirs(d, exist_ok=True)
    save_file(out, os.path.join(d, f"{name}.merged.safetensors"))
    save_file(outputs(model, base), os.path.join(d, f"{name}.outputs.safetensors"))


# ---------------------------------------------------------------- PEFT

def peft_kind_specs():
    from peft import LoKrConfig, LoHaConfig, AdaLoraConfig, VeraConfig, IA3Config, LoraConfig
    return {
        "llama-lokr": ("tiny-llama", LoKrConfig(r=4, alpha=8, target_modules=ALL_LINEAR, init_weights=False)),
        "llama-lokr-factored": ("tiny-llama", LoKrConfig(r=2, alpha=3, target_modules=ALL_LINEAR, decompose_both=True, decompose_factor=4,
                                                         rank_pattern={"down_proj": 1}, alpha_pattern={"v_proj": 5}, init_weights=False)),
        "llama-loha": ("tiny-llama", LoHaConfig(r=4, alpha=8, target_modules=ALL_LINEAR, rank_pattern={"o_proj": 2}, init_weights=False)),
        "llama-adalora": ("tiny-llama", None),
        "llama-vera": ("tiny-llama", VeraConfig(r=8, target_modules=["q_proj", "v_proj", "up_proj"], save_projection=True, init_weights=False)),
        "llama-vera-noproj": ("tiny-llama", VeraConfig(r=8, target_modules=["q_proj", "v_proj"], save_projection=False, init_weights=False)),
        "llama-ia3": ("tiny-llama", IA3Config(target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"],
                                              init_ia3_weights=False)),
        "convnet-lora": ("tiny-convnet", LoraConfig(r=4, lora_alpha=8, target_modules=CONV_TARGETS, init_lora_weights=False)),
        "convnet-loha": ("tiny-convnet", LoHaConfig(r=2, alpha=4, target_modules=CONV_TARGETS, use_effective_conv2d=True, init_weights=False)),
        "convnet-lokr": ("tiny-convnet", LoKrConfig(r=4, alpha=4, target_modules=CONV_TARGETS, rank_pattern={"conv2": 1, "conv3": 1},
                                                    use_effective_conv2d=True, init_weights=False)),
    }


def train_adalora():
    """AdaLoRA with its rank allocator run for a few steps, so the saved adapter is pruned
    (`rank_pattern` in the config, fewer rows per module, some modules possibly rank 0)."""
    import torch
    from peft import AdaLoraConfig, get_peft_model
    model = load_llama()
    cfg = AdaLoraConfig(init_r=6, target_r=2, tinit=1, tfinal=2, deltaT=1, total_step=8, lora_alpha=8,
                        target_modules=["q_proj", "v_proj", "up_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, cfg)
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=5e-2)
    g = torch.Generator().manual_seed(3)
    for step in range(8):
        ids = torch.randint(0, 256, (4, 16), generator=g)
        loss = peft_model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        peft_model.base_model.update_and_allocate(step)
        opt.zero_grad()
    return peft_model


def adapted_layers(model, kind):
    """(module path, adapted layer, base layer) of every layer the adapter wraps."""
    import torch.nn as nn
    out = []
    for name, mod in model.named_modules():
        if kind == "peft" and hasattr(mod, "base_layer") and isinstance(mod.get_base_layer(), (nn.Linear, nn.Conv2d)) \
                and not isinstance(mod, (nn.Linear, nn.Conv2d)):
            path_ = name.removeprefix("base_model.model.")
            out.append((path_, mod, mod.get_base_layer()))
    return out


def make_peft_kinds(names=None):
    import torch
    from peft import get_peft_model, PeftModel
    for i, (name, (base, cfg)) in enumerate(peft_kind_specs().items()):
        if names and name not in names:
            continue
        seed(300 + i)
        base_model = load_base(base)
        base_state = {k: v.clone() for k, v in base_model.state_dict().items()}
        if name == "llama-adalora":
            peft_model = train_adalora()
        else:
            peft_model = get_peft_model(base_model, cfg)
        out = path("peft", name)
        clean(out)
        peft_model.save_pretrained(out)
        readme = os.path.join(out, "README.md")
        if os.path.exists(readme):
            os.remove(readme)
        if name == "llama-vera-noproj":
            continue  # only for the refusal test: no projections, no reference
        reloaded = PeftModel.from_pretrained(load_base(base), out).double().eval()
        save_references(name, reloaded, base, adapted_layers(reloaded, "peft"), base_state)


# ---------------------------------------------------------------- LyCORIS

def lycoris_specs():
    # name -> (base, create_lycoris kwargs, dtype of save_weights)
    llama = {"target_module": ["LlamaAttention", "LlamaMLP"]}
    conv = {"target_module": ["TinyConvNet"], "enable_conv": True}
    return {
        "llama-lokr": ("tiny-llama", llama, dict(linear_dim=4, linear_alpha=2, algo="lokr", factor=4)),
        "llama-lokr-full": ("tiny-llama", llama, dict(linear_dim=64, linear_alpha=1e10, algo="lokr", factor=8)),
        "llama-lokr-w1-dora": ("tiny-llama", llama, dict(linear_dim=4, linear_alpha=3, algo="lokr", factor=16, decompose_both=True, dora_wd=True)),
        "llama-loha-dora-in": ("tiny-llama", llama, dict(linear_dim=4, linear_alpha=2, algo="loha", dora_wd=True, wd_on_output=False)),
        "llama-locon-bf16": ("tiny-llama", llama, dict(linear_dim=4, linear_alpha=2, algo="locon"), "bfloat16"),
        "llama-full": ("tiny-llama", llama, dict(algo="full")),
        "convnet-locon-tucker": ("tiny-convnet", conv, dict(linear_dim=4, linear_alpha=2, conv_dim=2, conv_alpha=1, algo="locon", use_tucker=True,
                                                             dora_wd=True)),
        "convnet-loha-tucker": ("tiny-convnet", conv, dict(linear_dim=2, linear_alpha=1, conv_dim=2, conv_alpha=1, algo="loha", use_tucker=True)),
        "convnet-lokr-tucker": ("tiny-convnet", conv, dict(linear_dim=2, linear_alpha=1, conv_dim=1, conv_alpha=0.5, algo="lokr", use_tucker=True,
                                                           factor=2, dora_wd=True, wd_on_output=False)),
        "convnet-full": ("tiny-convnet", conv, dict(algo="full")),
    }


def make_lycoris(names=None):
    import torch
    from lycoris import create_lycoris, LycorisNetwork
    d = path("lycoris")
    os.makedirs(d, exist_ok=True)
    for i, (name, spec) in enumerate(lycoris_specs().items()):
        if names and name not in names:
            continue
        base, preset, kwargs = spec[0], spec[1], dict(spec[2])
        dtype = getattr(torch, spec[3]) if len(spec) > 3 else torch.float32
        seed(400 + i)
        model = load_base(base)
        base_state = {k: v.clone() for k, v in model.state_dict().items()}
        LycorisNetwork.apply_preset(preset)
        net = create_lycoris(model, 1.0, **kwargs)
        net.apply_to()
        # Trainers start some factors at zero (ΔW = 0): give every factor values, and move DoRA's
        # magnitude off the base norms, so every part of every update matters. Values are rounded to
        # the dtype the file stores, so the network in memory is exactly the one in the file.
        with torch.no_grad():
            for pname, p in net.named_parameters():
                if "dora_scale" in pname:
                    p.mul_(1 + 0.1 * torch.randn_like(p))
                else:
                    p.copy_(0.2 * torch.randn_like(p))
                p.copy_(p.to(dtype).to(p.dtype))
        out = os.path.join(d, f"{name}.safetensors")
        net.save_weights(out, dtype, {"ss_network_module": "lycoris.kohya", "ss_network_args": json.dumps(kwargs)})
        # The reference: LyCORIS's forward pass in float64. (Its loader, create_lycoris_from_weights,
        # cannot read back a file with weight_decompose on the input axis: it builds the module with
        # wd_on_out=True and fails to copy a [1, in] dora_scale; the crosscheck uses it where it can.)
        model = model.double().eval()
        net = net.double().eval()
        layers = []
        for lora in net.loras:
            module_path = next(n for n, m in model.named_modules() if m is lora.org_module[0])
            layers.append((module_path, lora, lora.org_module[0]))
        save_references(f"lycoris-{name}", model, base, layers, base_state)


def make_kinds():
    make_convnet()
    make_peft_kinds()
    make_lycoris()


# ---------------------------------------------------------------- research formats, other configurations

RESEARCH_GAPS = {"ttlora_reconstruction": dict(qshape=[8, 8, 8, 8], vshape=[4, 8, 8, 8], rank=3, alpha=2.0),
                 "tt2lora_boundary": dict(r=4, in_dims=[2, 2], out_dims=[16, 32], ranks=[2, 3, 2], scale=0.5)}


def lightning_checkpoint(adapter_pt, out):
    """The same tensors as a PyTorch Lightning checkpoint saves them (TTLoRAMoE trains with Lightning):
    the module's state dict under "state_dict" with the LightningModule's `model.` prefix, beside the
    epoch, step and loop state."""
    import torch
    sd = torch.load(adapter_pt, weights_only=True)
    torch.save({"epoch": 2, "global_step": 40, "pytorch-lightning_version": "2.5.0",
                "state_dict": {"model." + k: v for k, v in sd.items()},
                "loops": {"fit_loop": {"epoch_progress": {"total": {"ready": 3, "completed": 2}}}},
                "callbacks": {}, "optimizer_states": [], "lr_schedulers": []}, out)


def make_research_gaps(ttloramoe, tt2lora):
    """Research adapters in configurations the `research` step does not use, from the repositories'
    own code (checkouts given as in generate.py):

    - TTLoRAMoE's `wrap_model_with_ttcores_with_reconstruction` (TTLoRALinearWrapper_Reconstruction):
      the same `tt_cores` names as the contraction wrapper with another ΔW layout; tensorly's
      `tensor_train` gives non-contiguous cores, which torch.save keeps with their strides;
    - TT2LoRA's TensorGuide with boundary TT ranks 2 (`TensorTrainLayer` sums over them).
    """
    import importlib.util, types, torch
    from safetensors.torch import save_file
    sys_path = __import__("sys").path
    out_dir = path("research")
    refs = {}

    sys_path.insert(0, ttloramoe)
    import TTLoRAWrapper_utils as ttu
    seed(500)
    model = load_llama()
    s = RESEARCH_GAPS["ttlora_reconstruction"]
    model = ttu.wrap_model_with_ttcores_with_reconstruction(model, {"qshape": s["qshape"], "vshape": s["vshape"], "rank": s["rank"],
                                                                    "alpha": s["alpha"], "model_name": "tiny-llama"})
    sd = model.state_dict()
    for k in list(sd.keys()):
        if ".tt_cores." not in k:
            del sd[k]
    assert any(not v.is_contiguous() for v in sd.values()), "tensorly's cores were expected to be non-contiguous"
    d = os.path.join(out_dir, "ttlora-reconstruction-llama")
    clean(d)
    torch.save(sd, os.path.join(d, "adapter.pt"))
    lightning_checkpoint(os.path.join(d, "adapter.pt"), os.path.join(d, "adapter.ckpt"))
    model = model.double()
    for i, layer in enumerate(model.model.layers):
        for name in ["q_proj", "v_proj"]:
            w = getattr(layer.self_attn, name)
            n = w.base_module.in_features
            with torch.no_grad():
                eye = torch.eye(n, dtype=torch.float64)
                delta = (w(eye) - w.base_module(eye)).T
            refs[f"ttlora-reconstruction-llama/model.layers.{i}.self_attn.{name}"] = delta.float().contiguous()

    sys.modules.setdefault("torchvision", types.ModuleType("torchvision"))
    spec = importlib.util.spec_from_file_location("tt2lora_qd", os.path.join(tt2lora, "tt2lora_qd.py"))
    tt2 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tt2)
    g = RESEARCH_GAPS["tt2lora_boundary"]

    class TensorGuideLinear(tt2.TTPostNN):
        def __init__(self, base):
            super().__init__(base.in_features, g["r"], base.out_features, g["in_dims"], g["out_dims"], g["ranks"], g["scale"])
            self.base_layer = base

        def forward(self, x):
            return self.base_layer(x) + tt2.TTPostNN.forward(self, x)

    seed(501)
    model = load_llama()
    for layer in model.model.layers:
        layer.self_attn.q_proj = TensorGuideLinear(layer.self_attn.q_proj)
    sd = {k: v.contiguous() for k, v in model.state_dict().items() if ".tt_layer." in k or k.endswith(".z_latent")}
    d = os.path.join(out_dir, "tt2lora-boundary-llama")
    clean(d)
    save_file(sd, os.path.join(d, "adapter.safetensors"))
    model = model.double()
    for i, layer in enumerate(model.model.layers):
        w = layer.self_attn.q_proj
        with torch.no_grad():
            eye = torch.eye(w.base_layer.in_features, dtype=torch.float64)
            refs[f"tt2lora-boundary-llama/model.layers.{i}.self_attn.q_proj"] = (w(eye) - w.base_layer(eye)).T.float().contiguous()
    os.makedirs(path("references"), exist_ok=True)
    save_file(refs, path("references", "research-gaps.delta.safetensors"))
