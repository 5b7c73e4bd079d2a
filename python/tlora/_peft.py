"""A low-rank .tlora adapter as a PEFT LoRA state dict and ``adapter_config.json`` contents."""
from collections import Counter

import numpy as np

PREFIX = "base_model.model."


def _exact_alpha(rank, scale):
    """An alpha with ``alpha / rank == scale`` in binary64, as PEFT computes the scale."""
    a = scale * rank
    for _ in range(4):
        if a / rank == scale:
            break
        a = np.nextafter(a, np.inf if a / rank < scale else -np.inf)
    return float(a)


def to_peft(f, framework="numpy"):
    """``(state_dict, config)`` for ``PeftModel.from_pretrained`` (save the dict with safetensors as
    ``adapter_model.safetensors`` and the config as ``adapter_config.json``).

    Low-rank modules keep their stored tensors as they are; the other forms whose ΔW is a product of
    two factors (joint train, Tucker-2 conv, Kronecker, Hadamard, AdaLoRA, VeRA) give their exact LoRA
    factors in float32, as ``tlora export --format peft`` does. A convolution's factors have PEFT's
    conv shapes (``lora_A`` ``[r, in_channels, k…]``, ``lora_B`` ``[out, r, 1…]``). Tensor trains,
    Tucker slices and dense updates are not LoRA: ValueError names them (``tlora convert to-lora``
    makes them LoRA exactly); so is what PEFT's LoRA cannot hold (IA³, DoRA on the input axis, bias
    changes). Each module's rank and scale are reproduced with ``rank_pattern``/``alpha_pattern``;
    DoRA magnitudes and replaced tensors (``modules_to_save``, saved biases) are included.
    """
    sd, ranks, not_lora = {}, {}, []
    layouts = set()
    for name in f.modules:
        m = f.module(name)
        prefix = m.attributes.get("peft.key_prefix", PREFIX) + name
        if m.update.type == "ia3" or m.bias_delta is not None or (m.dora_magnitude is not None and m.dora_axis == "in"):
            what = "IA³" if m.update.type == "ia3" else ("a bias change" if m.bias_delta is not None else "DoRA on the input axis")
            raise ValueError(f"{f.path}: module {name}: a PEFT LoRA adapter cannot hold {what}")
        if m.update.type == "low_rank":
            a, b = f.tensor(m.update.a), f.tensor(m.update.b)
        else:
            ab = f.lora(name)
            if ab is None:
                not_lora.append(f"{name} ({m.update.type})")
                continue
            a, b = ab[0].astype(np.float32), ab[1].astype(np.float32)
        if m.kernel:
            a = a.reshape(a.shape[0], m.channels, *m.kernel)
            b = b.reshape(*b.shape, *([1] * len(m.kernel)))
        if m.kind == "embedding":
            if m.dora_magnitude is not None:
                raise ValueError(f"{f.path}: module {name}: PEFT has no DoRA for embeddings")
            sd[prefix + ".lora_embedding_A"], sd[prefix + ".lora_embedding_B"] = a, b
        else:
            layouts.add(m.layout)
            sd[prefix + ".lora_A.weight"], sd[prefix + ".lora_B.weight"] = a, b
            if m.dora_magnitude is not None:
                mag = f.tensor(m.dora_magnitude)
                # PEFT keeps a conv layer's magnitude as [1, out, 1…] (DoraConv2dLayer.get_weight_norm).
                sd[prefix + ".lora_magnitude_vector"] = mag.reshape(1, -1, *([1] * len(m.kernel))) if m.kernel else mag
        ranks[name] = (a.shape[0], m.scale)
    if not_lora:
        raise ValueError(f"{f.path}: not low-rank, convert with `tlora convert to-lora` first: {', '.join(not_lora)}")
    if len(layouts) > 1:
        raise ValueError(f"{f.path}: PEFT's fan_in_fan_out applies to all layers; this adapter mixes Conv1D-style and Linear layers")
    for r in f.header.replaced:
        key = r.source_name if r.source_name and r.source_name.startswith(PREFIX) else PREFIX + r.target
        sd[key] = f.tensor(r.tensor)
    (rank, scale), _ = Counter(ranks.values()).most_common(1)[0] if ranks else ((8, 1.0), 0)
    alpha = _exact_alpha(rank, scale)
    rank_pattern = {n: r for n, (r, s) in ranks.items() if r != rank}
    alpha_pattern = {n: _exact_alpha(r, s) for n, (r, s) in ranks.items() if (r, s) != (rank, scale)}
    config = {
        "peft_type": "LORA", "task_type": f.metadata.get("task_type"), "base_model_name_or_path": f.metadata.get("base_model"),
        "r": rank, "lora_alpha": alpha, "lora_dropout": 0.0, "target_modules": list(ranks), "bias": "none",
        "fan_in_fan_out": layouts == {"in_out"}, "use_rslora": False,
        "use_dora": any(f.module(n).dora_magnitude is not None for n in ranks),
        "modules_to_save": sorted({r.target.rsplit(".", 1)[0] for r in f.header.replaced}) or None,
        "rank_pattern": rank_pattern, "alpha_pattern": alpha_pattern, "init_lora_weights": True, "inference_mode": True,
    }
    if framework == "torch":
        import torch

        sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}
    return sd, config
