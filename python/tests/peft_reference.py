"""ΔW of every module of a PEFT LoRA directory, read with safetensors and PEFT's config rules
(`rank_pattern`/`alpha_pattern` keys match a module when they are its whole name or a suffix
after a dot, first match wins; rsLoRA divides by √r) — independent of the reader under test."""
import json
import math
import os
import re

import numpy as np


def load_file(path):
    """A safetensors file as float64 arrays (bf16 too, which numpy lacks)."""
    data = open(path, "rb").read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        raw = data[8 + n + a:8 + n + b]
        if v["dtype"] == "BF16":
            x = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            x = np.frombuffer(raw, {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4"}[v["dtype"]])
        out[k] = x.reshape(v["shape"]).astype(np.float64)
    return out

PREFIX = "base_model.model."


def _pattern(patterns, name):
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", name):
            return value
    return None


def deltas(directory):
    cfg = json.load(open(os.path.join(directory, "adapter_config.json")))
    path = os.path.join(directory, "adapter_model.safetensors")
    st = load_file(path)
    out = {}
    for key in st:
        for a_suffix, b_suffix in ((".lora_A.weight", ".lora_B.weight"), (".lora_embedding_A", ".lora_embedding_B")):
            if key.endswith(a_suffix):
                stem = key[: -len(a_suffix)]
                name = stem[len(PREFIX):] if stem.startswith(PREFIX) else stem
                a, b = st[key], st[stem + b_suffix]
                r = _pattern(cfg.get("rank_pattern") or {}, name) or cfg["r"]
                alpha = _pattern(cfg.get("alpha_pattern") or {}, name) or cfg["lora_alpha"]
                assert a.shape[0] == r, (name, a.shape, r)
                scale = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
                out[name] = scale * (b @ a)
    return out
