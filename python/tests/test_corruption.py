"""Damaged files: every single-byte change of small files of every kind is refused (docs/FORMAT.md
§1.4), agreeing with `tlora verify` on a sample; truncation and appended bytes; the fuzz corpus reads
the same way in both readers."""
import glob
import os
import random
import subprocess

import numpy as np
import pytest

import tlora
from conftest import ROOT, tlora_binary

CORPUS = sorted(glob.glob(os.path.join(ROOT, "fuzz", "corpus", "container", "*.tlora")))
SMALL = [p for p in CORPUS if os.path.basename(p).startswith(("every-kind", "lora-small", "empty"))]


def refused(path):
    try:
        with tlora.open(path) as f:
            f.verify()
        return False
    except (tlora.CorruptFile, tlora.UnsupportedFile):
        return True


@pytest.mark.parametrize("path", SMALL, ids=os.path.basename)
def test_every_single_byte_change_is_refused(path, tmp_path):
    data = open(path, "rb").read()
    target = tmp_path / "flipped.tlora"
    rng = random.Random(len(data))
    # Every byte of the preamble, the header checksum and the padding; every 3rd byte of the JSON and
    # of the blobs (each region is covered by one checksum: more positions test nothing new).
    h = tlora.open(path).header
    json_end = 32 + h.header_length
    for pos in [*range(32), *range(32, json_end, 3), *range(json_end, h.data_start), *range(h.data_start, len(data), 3)]:
        b = bytearray(data)
        b[pos] ^= 1 << rng.randrange(8)
        target.write_bytes(bytes(b))
        assert refused(target), f"byte {pos} of {os.path.basename(path)} changed, not detected"


@pytest.mark.parametrize("path", SMALL, ids=os.path.basename)
def test_both_readers_agree_on_damaged_files(path, tmp_path):
    binary = tlora_binary()
    if binary is None:
        pytest.skip("no tlora binary")
    data = open(path, "rb").read()
    rng = random.Random(7)
    cases = [("flip", p) for p in sorted(rng.sample(range(len(data)), min(24, len(data))))]
    cases += [("truncate", n) for n in (0, 8, 31, 40, len(data) // 2, len(data) - 1)] + [("append", 1)]
    for what, n in cases:
        b = bytearray(data)
        if what == "flip":
            b[n] ^= 0xFF
        elif what == "truncate":
            b = b[:n]
        else:
            b += b"\0"
        p = tmp_path / f"{what}-{n}.tlora"
        p.write_bytes(bytes(b))
        swift = subprocess.run([binary, "verify", str(p)], capture_output=True).returncode
        assert swift == 3, (what, n)
        assert refused(p), (what, n)


# Features the Swift reader reads and this reader refuses as unknown (python/README.md, "Not read").
NOT_READ_HERE = ("adapter-bank",)


@pytest.mark.parametrize("path", CORPUS, ids=os.path.basename)
def test_fuzz_corpus_reads_alike(path):
    binary = tlora_binary()
    try:
        with tlora.open(path) as f:
            f.verify()
        ok_python = True
    except tlora.CorruptFile:
        ok_python = False
    except tlora.UnsupportedFile as e:
        # Only a valid file whose every unknown feature is one this reader leaves to the Swift tool.
        unknown = str(e).rsplit(": ", 1)[-1].split(", ")
        assert "does not know" in str(e) and set(unknown) <= set(NOT_READ_HERE), str(e)
        if binary is not None:
            assert subprocess.run([binary, "verify", path], capture_output=True).returncode == 0, path
        return
    if binary is not None:
        assert (subprocess.run([binary, "verify", path], capture_output=True).returncode == 0) == ok_python
    if ok_python:
        f = tlora.open(path)
        for m in f.modules:
            assert np.isfinite(f.delta(m)).all()


def test_dense_updates_agree_with_cli_export(cli, tmp_path):
    """The corpus's every-kind files hold the one form no CLI command writes directly: dense."""
    from peft_reference import deltas
    for path in [p for p in CORPUS if "every-kind" in p]:
        f = tlora.open(path)
        assert "dense" in {f.module(m).update.type for m in f.modules}
        d = tmp_path / (os.path.basename(path) + "-peft")
        cli("export", path, "--format", "peft", "-o", d)
        ref = deltas(d)
        for m in f.modules:
            got = f.delta(m, dtype=np.float64)
            assert np.linalg.norm(got - ref[m]) <= 1e-6 * np.linalg.norm(ref[m]), (path, m)
