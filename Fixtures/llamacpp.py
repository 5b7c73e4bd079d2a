"""llama.cpp applies tlora's GGUF LoRA export: called by check.py when llama-cpp-python is installed.

For each fixture (the tiny Llama's `peft/llama-lora`, and `peft/{qwen3,gemma,phi3}-lora` on their tiny
bases): the base is converted to an f32 GGUF by llama.cpp's own `convert_hf_to_gguf.py` (with a
sentencepiece tokenizer trained here: the random tiny bases ship none, and the token ids are fed
directly), tlora exports the PEFT adapter with `export --format gguf`, llama-cpp-python loads both
(`Llama(model_path=…, lora_path=…)`), and its logits for the reference tokens are compared with
PEFT's merged model's (references/<name>.outputs.safetensors): relative difference ≤ 1e-4 of the
largest logit. The base alone is compared with transformers' logits too, so a conversion problem is
told apart from an adapter problem.

`convert_hf_to_gguf.py` is not in the llama-cpp-python wheel. It is taken from `$LLAMA_CPP_DIR` (a
llama.cpp source tree) or else from the sdist of the installed llama-cpp-python version, which
vendors llama.cpp (`pip download llama-cpp-python==V --no-deps --no-binary llama-cpp-python`, cached in
~/.cache/tlora/).
"""
import glob, os, shutil, subprocess, sys, tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
REL_TOL = 1e-4
# name -> (base, tolerance against PEFT). Gemma's MLP uses GELU, which ggml's CPU backend evaluates
# through an f16 table (GGML_GELU_FP16): llama.cpp's own forward differs from transformers' by ~2e-4
# there, with llama.cpp's converter's adapter exactly as with tlora's (the files are equal).
FIXTURES = {"llama-lora": ("tiny-llama", REL_TOL), "qwen3-lora": ("tiny-qwen3", REL_TOL), "gemma-lora": ("tiny-gemma", 1e-3),
            "phi3-lora": ("tiny-phi3", REL_TOL)}


def converter_tree(version):
    """A directory holding convert_hf_to_gguf.py, conversion/ and gguf-py/, or None."""
    d = os.environ.get("LLAMA_CPP_DIR")
    if d and os.path.exists(os.path.join(d, "convert_hf_to_gguf.py")):
        return d
    cache = os.path.join(os.path.expanduser("~"), ".cache", "tlora", f"llama-cpp-python-{version}")
    tree = os.path.join(cache, "llama.cpp")
    if os.path.exists(os.path.join(tree, "convert_hf_to_gguf.py")):
        return tree
    os.makedirs(cache, exist_ok=True)
    # --no-binary for this package only: its build requirements (scikit-build-core, cmake) come as
    # wheels; pip only prepares the sdist's metadata, it builds nothing.
    r = subprocess.run([sys.executable, "-m", "pip", "download", f"llama-cpp-python=={version}", "--no-deps", "--no-binary", "llama-cpp-python",
                        "-d", cache, "-q"], capture_output=True, text=True)
    sdists = glob.glob(os.path.join(cache, "llama_cpp_python-*.tar.gz"))
    if r.returncode != 0 or not sdists:
        return None
    with tarfile.open(sdists[0]) as t:
        prefix = t.getnames()[0].split("/")[0] + "/vendor/llama.cpp/"
        wanted = [m for m in t.getmembers() if m.name.startswith(prefix) and
                  (m.name.endswith(("convert_hf_to_gguf.py", "convert_lora_to_gguf.py")) or "/conversion/" in m.name or "/gguf-py/" in m.name)]
        for m in wanted:
            m.name = m.name[len(prefix):]
        t.extractall(tree, members=wanted, filter="data")
    return tree if os.path.exists(os.path.join(tree, "convert_hf_to_gguf.py")) else None


def with_tokenizer(base, out):
    """A copy of the base with a sentencepiece model of at most its vocabulary size."""
    import json, sentencepiece as spm
    shutil.copytree(base, out, dirs_exist_ok=True)
    vocab = json.load(open(os.path.join(base, "config.json")))["vocab_size"]
    corpus = os.path.join(out, "corpus.txt")
    words = ["tensor", "train", "adapter", "low", "rank", "llama", "gemma", "qwen", "phi", "logits", "merge", "export"]
    with open(corpus, "w") as f:
        for i in range(2000):
            f.write(" ".join(words[(i * k) % len(words)] + str(i % 7) for k in range(1, 9)) + "\n")
    # Phi-3's vocabulary loader looks these up by text.
    specials = ["<|endoftext|>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]
    spm.SentencePieceTrainer.train(input=corpus, model_prefix=os.path.join(out, "tokenizer"), vocab_size=min(vocab, 120),
                                   model_type="bpe", minloglevel=2, user_defined_symbols=specials)
    os.remove(corpus)
    os.remove(os.path.join(out, "tokenizer.vocab"))


def check(tlora, gen, tmp):
    try:
        import llama_cpp
    except ImportError:
        print("skip llama.cpp  llama-cpp-python is not installed (pip install llama-cpp-python builds llama.cpp)")
        return 0
    import numpy as np
    import torch
    from safetensors.numpy import load_file
    from transformers import AutoModelForCausalLM
    tree = converter_tree(llama_cpp.__version__)
    if tree is None:
        print("skip llama.cpp  no convert_hf_to_gguf.py (set LLAMA_CPP_DIR, or let pip download the llama-cpp-python sdist)")
        return 0
    env = {**os.environ, "PYTHONPATH": os.path.join(tree, "gguf-py")}
    failures = 0
    for name, (base, tol) in FIXTURES.items():
        base_dir = os.path.join(HERE, "models", base)
        if not os.path.exists(os.path.join(HERE, "peft", name)):
            continue
        work = os.path.join(tmp, f"llamacpp-{name}")
        with_tokenizer(base_dir, work)
        base_gguf, lora_gguf = os.path.join(tmp, f"{base}.f32.gguf"), os.path.join(tmp, f"{name}.gguf")
        r = subprocess.run([sys.executable, os.path.join(tree, "convert_hf_to_gguf.py"), work, "--outtype", "f32", "--outfile", base_gguf],
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            failures += 1
            print(f"FAIL llama.cpp {name:22} convert_hf_to_gguf.py failed: {r.stderr.strip().splitlines()[-1:]}")
            continue
        r = subprocess.run([tlora, "export", os.path.join(HERE, "peft", name), "--format", "gguf", "-o", lora_gguf, "--base-config", base_dir],
                           capture_output=True, text=True)
        if r.returncode != 0:
            failures += 1
            print(f"FAIL llama.cpp {name:22} tlora export --format gguf: {r.stderr.strip()}")
            continue
        ref = load_file(os.path.join(HERE, "references", f"{name}.outputs.safetensors"))
        ids = ref["input_ids"]
        with torch.no_grad():
            hf_base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)(input_ids=torch.from_numpy(ids)).logits.numpy()

        def logits(lora):
            kw = {"lora_path": lora} if lora else {}
            llm = llama_cpp.Llama(model_path=base_gguf, n_ctx=64, n_batch=64, n_threads=2, logits_all=True, verbose=False, type_k=0, type_v=0, flash_attn=False, **kw)
            rows = []
            for seq in ids:
                llm.reset()
                llm.eval([int(t) for t in seq])
                rows.append(np.array(llm.scores[: len(seq)], dtype=np.float64))
            llm.close()
            return np.stack(rows)

        def rel(a, b):
            return float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))
        e_base = rel(logits(None), hf_base)
        ours = logits(lora_gguf)
        e = rel(ours, ref["outputs"])
        # The same adapter through llama.cpp's own convert_lora_to_gguf.py, applied the same way.
        theirs_gguf = os.path.join(tmp, f"{name}.llamacpp.gguf")
        r = subprocess.run([sys.executable, os.path.join(tree, "convert_lora_to_gguf.py"), "--base", base_dir, "--outtype", "f32",
                            "--outfile", theirs_gguf, os.path.join(HERE, "peft", name)], capture_output=True, text=True, env=env)
        e_theirs = rel(ours, logits(theirs_gguf)) if r.returncode == 0 else float("inf")
        ok = e <= tol and e_base <= tol and e_theirs <= 1e-6
        failures += not ok
        print(f"{'ok ' if ok else 'FAIL'} llama.cpp {name:22} logits with tlora's GGUF vs PEFT {e:.1e} (≤ {tol:.0e}), vs llama.cpp's converter's GGUF {e_theirs:.1e}; base alone vs transformers {e_base:.1e}")
    return failures
