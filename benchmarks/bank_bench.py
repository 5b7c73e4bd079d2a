#!/usr/bin/env python3
"""Adapter banks on real data: the 16 LoRAs trained on all-MiniLM-L6-v2 (Fixtures/bank, written by
`Fixtures/generate.py --only bank`: 8 tasks × 2 vocabulary slices, each its own seed; r 8 on
query/value of 6 layers).

For each bound E, side by side in one run:
  bank      `tlora bank build <16> --max-rel-error E` (and with `--clusters 4`): file size and
            parameters against the 16 adapters' own, every member's worst module error;
  baseline  the paper's: each member alone truncated by SVD (`tlora convert to-lora --max-rank r`) to
            the uniform rank r whose 16 adapters hold about as many parameters as the bank (at most
            the bank's), with the same error measure;
  effect    every member merged into the base from the bank (written back as PEFT by `tlora bank
            get`), from the baseline (`--format peft`) and from its original, each merged by PEFT's
            own `merge_and_unload`; sentence embeddings (mean-pooled, normalized, as sentence-transformers
            does for all-MiniLM-L6-v2) of a fixed set of 64 sentences; the cosine similarity of each
            sentence's embedding with the original member's merge: mean and minimum per member.

With --shared-init DIR the same is done for 16 members trained like the committed ones but all from
one LoRA initialization (`make_bank(init_seed=7)`: trained into DIR first when it is empty, ~30 min
of CPU), the case of many adapters made by one recipe with a fixed seed.

Usage: benchmarks/bank_bench.py [--tlora .build/release/tlora] [--work /tmp/tlora-bank-bench]
       [--members DIR | --shared-init DIR] [--errors 0.01,0.05,0.1] [--clusters 4] [--json OUT.json]
Prints a markdown table (the one in docs/BENCHMARKS.md) and, with --json, every number.
"""
import argparse, json, os, shutil, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "Fixtures"))


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    return r.stdout


def texts():
    """64 fixed sentences: 48 from the training grammar (both slices, and mixed), 16 unrelated."""
    import random
    import generate as g
    rng = random.Random(2024)
    out = []
    for lo, hi in [(0, 8), (8, 16), (0, 16)]:
        for _ in range(16):
            out.append(g.bank_sentence(*(rng.randrange(lo, hi) for _ in range(4))))
    out += ["The committee postponed its decision until next spring.", "Photosynthesis converts light into chemical energy.",
            "She missed the last train and walked home in the rain.", "Interest rates rose for the third month in a row.",
            "The museum reopened after a two-year renovation.", "How do I reset my password?",
            "A tensor train factorizes a large array into small cores.", "The recipe calls for two cups of flour.",
            "Our flight was delayed by fog over the airport.", "He plays the cello in a string quartet.",
            "Volcanic ash grounded flights across the region.", "Please send the invoice by Friday.",
            "The library is closed on public holidays.", "Quantum computers use qubits instead of bits.",
            "The team celebrated their first championship.", "Water boils at a lower temperature at altitude."]
    return out


class Embedder:
    """Mean-pooled, normalized sentence embeddings of a fixed text set, from the base model or from
    the base with one PEFT adapter merged in by PEFT (`merge_and_unload`)."""
    def __init__(self, base_dir, sentences):
        import torch
        from transformers import AutoModel, AutoTokenizer
        torch.set_num_threads(1)
        self.base = AutoModel.from_pretrained(base_dir).eval()
        self.batch = AutoTokenizer.from_pretrained(base_dir)(sentences, padding=True, return_tensors="pt")

    def __call__(self, peft_dir=None):
        import copy, torch
        from peft import PeftModel
        model = self.base if peft_dir is None else PeftModel.from_pretrained(copy.deepcopy(self.base), peft_dir).merge_and_unload().eval()
        with torch.no_grad():
            h = model(**self.batch).last_hidden_state
        m = self.batch["attention_mask"].unsqueeze(-1).float()
        return torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)


def verify_errors(tlora, candidate, reference):
    """Per-module relative errors of candidate against reference (`tlora verify --against --json`)."""
    doc = json.loads(run([tlora, "verify", candidate, "--against", reference, "--json"]))
    return [m["rel_error"] for m in doc["entries"] if m.get("rel_error") is not None]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tlora", default=os.path.join(ROOT, ".build/release/tlora"))
    ap.add_argument("--work", default="/tmp/tlora-bank-bench")
    ap.add_argument("--members", default=os.path.join(ROOT, "Fixtures/bank"))
    ap.add_argument("--shared-init", help="train (if needed) and use members that share one initialization")
    ap.add_argument("--errors", default="0.01,0.05,0.1")
    ap.add_argument("--clusters", type=int, default=4)
    ap.add_argument("--json")
    args = ap.parse_args()
    import generate as g
    if args.shared_init:
        if not os.path.exists(os.path.join(args.shared_init, "training.json")):
            g.make_bank(root=args.shared_init, init_seed=7)
        args.members = args.shared_init
    tlora = args.tlora
    base = run([os.path.join(ROOT, "scripts/minilm-base.sh")]).strip()
    names = [m[0] for m in g.bank_members()]
    paths = [os.path.join(args.members, n) for n in names]
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    own_bytes = sum(os.path.getsize(os.path.join(p, "adapter_model.safetensors")) for p in paths)
    own_params = None
    embed = Embedder(base, texts())

    def merged_embedding(adapter, member=None):
        """Embeddings with `adapter` merged; a bank member or a .tlora file is written as PEFT first."""
        if member is None and os.path.isdir(adapter):
            return embed(adapter)
        out = os.path.join(args.work, "peft")
        shutil.rmtree(out, ignore_errors=True)
        if member:
            run([tlora, "bank", "get", adapter, "--member", member, "-o", out, "--format", "peft"])
        else:
            run([tlora, "export", adapter, "--format", "peft", "-o", out])
        e = embed(out)
        shutil.rmtree(out)
        return e

    originals = {n: embed(p) for n, p in zip(names, paths)}
    base_embedding = embed()

    def effect(embeddings):
        per = {}
        for n in names:
            cos = (embeddings[n] * originals[n]).sum(-1)
            per[n] = (float(cos.mean()), float(cos.min()))
        return per

    # How far each member moves the embeddings at all: cosine of the base model's embedding with the
    # original member's (a bank error is only meaningful against this scale).
    moved = {n: float((base_embedding * originals[n]).sum(-1).mean()) for n in names}
    rows = []
    for e in [float(x) for x in args.errors.split(",")]:
        for clusters in [1, args.clusters]:
            bank = os.path.join(args.work, f"bank-{e}-{clusters}.tlora")
            doc = json.loads(run([tlora, "bank", "build", *paths, "-o", bank, "--max-rel-error", str(e), "--clusters", str(clusters), "--json"]))
            own_params = doc["source_parameters"]
            bank_embeddings = {n: merged_embedding(bank, n) for n in names}
            rows.append({"method": "bank" if clusters == 1 else f"bank --clusters {clusters}", "E": e, "file_bytes": doc["file_bytes"],
                         "parameters": doc["parameters"], "clusters_used": len({b["cluster"] for b in doc["bases"]}),
                         "ranks": sorted({tuple(b["ranks"]) for b in doc["bases"]}),
                         "worst_error": doc["worst_rel_error"],
                         "member_errors": {m["name"]: m["worst_rel_error"] for m in doc["members"]},
                         "effect": effect(bank_embeddings)})
        # The paper's baseline: each member truncated alone, to the uniform rank at which the 16
        # hold about as many parameters as the smaller bank (never more); and, for reference, each
        # member truncated alone to the same bound E.
        bank_params = min(rows[-1]["parameters"], rows[-2]["parameters"])
        per_rank = 16 * 12 * (384 + 384)
        r = max(1, min(8, bank_params // per_rank))
        for label, limit in [(f"per-member SVD, rank {r} (equal size)", ["--max-rank", str(r)]),
                             (f"per-member SVD at the bound", ["--max-rel-error", str(e)])]:
            embeddings, worst, member_errors, sizes, params = {}, 0.0, {}, 0, 0
            for n, p in zip(names, paths):
                out = os.path.join(args.work, f"svd-{n}.tlora")
                run([tlora, "convert", "to-lora", p, "-o", out, *limit, "--force"])
                errs = verify_errors(tlora, out, p)
                member_errors[n] = max(errs)
                worst = max(worst, max(errs))
                sizes += os.path.getsize(out)
                params += json.loads(run([tlora, "inspect", out, "--json"]))["totals"]["parameters"]
                embeddings[n] = merged_embedding(out)
            rows.append({"method": label, "E": e, "file_bytes": sizes, "parameters": params,
                         "worst_error": worst, "member_errors": member_errors, "effect": effect(embeddings)})

    print(f"16 adapters: {own_params} parameters, {own_bytes} bytes of safetensors; "
          f"base-vs-member embedding cosine (how far the members move the embeddings): "
          f"mean {sum(moved.values()) / len(moved):.4f}, lowest {min(moved.values()):.4f}")
    print()
    print("| E | method | file | vs 16 adapters | parameters | vs theirs | worst member error | cosine mean (worst member) | cosine min (worst member) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        means = [v[0] for v in row["effect"].values()]
        mins = [v[1] for v in row["effect"].values()]
        print(f"| {row['E']} | {row['method']} | {row['file_bytes'] / 1024:.0f} KiB | {row['file_bytes'] / own_bytes:.3f}× | "
              f"{row['parameters']} | {row['parameters'] / own_params:.3f}× | {row['worst_error']:.4f} | "
              f"{min(means):.6f} | {min(mins):.6f} |")
    if args.json:
        json.dump({"own_parameters": own_params, "own_bytes": own_bytes, "moved": moved, "rows": rows},
                  open(args.json, "w"), indent=2, default=list)


if __name__ == "__main__":
    main()
