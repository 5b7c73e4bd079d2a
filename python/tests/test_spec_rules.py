"""The places docs/FORMAT.md used to leave open, each settled in the spec, decided here by hand-built
files (spec_builder), and checked against BOTH readers: this package, and tlora's own reader through
`tlora verify` (exit 0 intact, 3 refused) when the binary is built. The Swift suite has the same cases
(Tests/TLoRAFormatTests/SpecSettlementTests.swift)."""
import json
import os
import struct
import subprocess

import numpy as np
import pytest
import xxhash
import zstandard

import tlora
from conftest import tlora_binary
from spec_builder import align64, build, example, structured, tensor

OK, BAD, NEWER = "ok", "corrupt", "unsupported"


def replace_json(data, old, new):
    """Edits the header text of a built file and rebuilds it (checksum and lengths recomputed)."""
    h = int.from_bytes(data[16:24], "little")
    text = data[32:32 + h].decode("utf-8")
    assert old in text, old
    start = align64(32 + h + 8)
    body, blobs = text.replace(old, new, 1), data[start:]
    doc = json.loads(text)
    chunks = [blobs[t["offset"]:t["offset"] + t["length"]] for t in doc["tensors"]]
    return build(body, chunks)


def group_file(modes, module_index=(0,), extra_modules=True):
    """A Tucker group (core [1,1,1]; modes given) and one module using the slice ``module_index``."""
    tensors, blobs = [], []
    def add(name, values, shape):
        off = align64(tensors[-1]["offset"] + tensors[-1]["length"]) if tensors else 0
        t, b = tensor(name, values, shape, off)
        tensors.append(t)
        blobs.append(b)
    add("g0.core", [1.0], [1, 1, 1])
    dims = {"column": 4, "row": 2, "member": 2}
    for k, m in enumerate(modes):
        add(f"g0.f{k}", list(np.arange(1, dims[m["role"]] + 1, dtype=float)), [dims[m["role"]], 1])
    doc = {"format": "tlora", "version": "1.0", "tensors": tensors,
           "modules": [{"name": "m", "shape": [2, 4], "scale": 1, "update": {"type": "tucker_slice", "group": "g", "index": list(module_index)}}]
           if extra_modules else [],
           "tucker_groups": [{"name": "g", "core": "g0.core", "factors": [f"g0.f{k}" for k in range(len(modes))], "modes": modes}]}
    return build(json.dumps(doc), blobs)


COL, ROW = {"role": "column", "name": "in"}, {"role": "row", "name": "out"}


def zstd_frame(data, content_size=True):
    return zstandard.ZstdCompressor(level=3, write_content_size=content_size).compress(data)


def empty_replacement(stored, codec="zstd"):
    """The spec example plus a replaced tensor of shape [0] (an empty bias) stored as given."""
    t = {"name": "r0", "dtype": "f32", "shape": [0], "codec": codec}
    return example(top_extra={"replaced_tensors": [{"target": "m.bias", "tensor": "r0"}]}, tensors_extra=[t], blobs_extra=[stored])


def nested(depth_of_value):
    return example(top_extra={"x": json.loads("[" * depth_of_value + "]" * depth_of_value)})


SKIPPABLE = struct.pack("<II", 0x184D2A50, 0)
A_BYTES = np.asarray([1, 2, 3, 4], "<f4").tobytes()

RNG = np.random.default_rng(5)


def arr(*shape):
    return RNG.standard_normal(shape).round(3)


def lowrank(prefix, rows, cols, r=1):
    return {"form": "low_rank", "a": prefix + ".a", "b": prefix + ".b"}, {prefix + ".b": arr(rows, r), prefix + ".a": arr(r, cols)}


def tucker(prefix, rows, channels, kernel, r=1):
    return ({"form": "tucker", "core": prefix + ".core", "a": prefix + ".a", "b": prefix + ".b"},
            {prefix + ".core": arr(r, r, *kernel), prefix + ".b": arr(rows, r), prefix + ".a": arr(r, channels)})


def hadamard_file(p1, p2, kernel=None, features=("hadamard",)):
    """A 4 × 6 module (a conv of 2 channels × kernel [3] when ``kernel``) whose update is P1 ⊙ P2."""
    (f1, t1), (f2, t2) = p1, p2
    m = {"name": "m", "shape": [4, 6], "scale": 1, "update": {"type": "hadamard", "p1": f1, "p2": f2}}
    if kernel:
        m["kernel"] = kernel
    return structured([m], {**t1, **t2}, sorted(features))


def kron_file(features=("kronecker",), scale=1):
    w2, t = lowrank("m0.w2", 2, 3)
    m = {"name": "m", "shape": [4, 6], "scale": scale, "update": {"type": "kronecker", "w1": {"form": "full", "matrix": "m0.w1"}, "w2": w2}}
    return structured([m], {"m0.w1": arr(2, 2), **t}, list(features))


def vera_file(extra_pair=False):
    mods = [{"name": "m", "shape": [4, 6], "scale": 1,
             "update": {"type": "vera", "projections": "p", "lambda_b": "m0.lambda_b", "lambda_d": "m0.lambda_d"}}]
    arrays = {"p0.a": arr(2, 8), "p0.b": arr(5, 2), "m0.lambda_b": arr(4), "m0.lambda_d": arr(2)}
    pairs = [{"name": "p", "a": "p0.a", "b": "p0.b"}]
    if extra_pair:
        arrays.update({"p1.a": arr(2, 8), "p1.b": arr(5, 2)})
        pairs.append({"name": "q", "a": "p1.a", "b": "p1.b"})
    return structured(mods, arrays, ["vera"], pairs)


def ia3_file(scale=1, axis="out"):
    m = {"name": "m", "shape": [4, 6], "scale": scale, "update": {"type": "ia3", "vector": "m0.v", "axis": axis}}
    return structured([m], {"m0.v": arr(4 if axis == "out" else 6)}, ["ia3"])


CASES = {
    # The example of §5 and harmless spellings.
    "spec-example": (example(), OK),
    "whitespace-around-json": (replace_json(example(), '{"format"', ' \n{"format"'), OK),
    # Non-finite tensor values (§2.2).
    "nan-value": (example(a=[1, float("nan"), 3, 4]), BAD),
    "infinite-value": (example(b=[float("inf"), 1]), BAD),
    # -0 is not an integer (§2).
    "minus-zero-offset": (replace_json(example(), '"offset":0', '"offset":-0'), BAD),
    "minus-zero-scale-is-a-number": (replace_json(example(), '"scale":2', '"scale":-0'), OK),
    # Replaced tensor that is also a module's target (§2.5).
    "replacement-out-in": (example(top_extra={"replaced_tensors": [{"target": "m.weight", "tensor": "r0"}]},
                                   tensors_extra=[{"name": "r0", "dtype": "f32", "shape": [2, 4], "codec": "raw"}],
                                   blobs_extra=[np.zeros(8, "<f4").tobytes()]), OK),
    "replacement-wrong-shape": (example(top_extra={"replaced_tensors": [{"target": "m.weight", "tensor": "r0"}]},
                                        tensors_extra=[{"name": "r0", "dtype": "f32", "shape": [3, 3], "codec": "raw"}],
                                        blobs_extra=[np.zeros(9, "<f4").tobytes()]), BAD),
    "replacement-transposed-for-out-in": (example(top_extra={"replaced_tensors": [{"target": "m.weight", "tensor": "r0"}]},
                                                  tensors_extra=[{"name": "r0", "dtype": "f32", "shape": [4, 2], "codec": "raw"}],
                                                  blobs_extra=[np.zeros(8, "<f4").tobytes()]), BAD),
    "replacement-in-out": (example(module_extra={"layout": "in_out"}, top_extra={"replaced_tensors": [{"target": "m.weight", "tensor": "r0"}]},
                                   tensors_extra=[{"name": "r0", "dtype": "f32", "shape": [4, 2], "codec": "raw"}],
                                   blobs_extra=[np.zeros(8, "<f4").tobytes()]), OK),
    # conversion (§2.6): method required, numbers finite and not negative.
    "conversion-method-only": (example(module_extra={"conversion": {"method": "tt-svd"}}), OK),
    "conversion-no-method": (example(module_extra={"conversion": {"rel_error": 0.1}}), BAD),
    "conversion-infinite": (replace_json(example(module_extra={"conversion": {"method": "x", "rel_error": 1}}), '"rel_error":1', '"rel_error":1e999'), BAD),
    "conversion-negative": (example(module_extra={"conversion": {"method": "x", "max_rel_error": -0.5}}), BAD),
    # Names (§2): 1..1024 bytes for names written in the file; mode names, labels, notes are free text.
    "name-1024-bytes": (example(module_extra={"name": "é" * 512}), OK),
    "name-1025-bytes": (example(module_extra={"name": "é" * 512 + "x"}), BAD),
    "empty-target": (example(module_extra={"target": ""}), BAD),
    "empty-mode-name": (group_file([COL, dict(ROW, name=""), {"role": "member", "name": "p"}]), OK),
    # Required features (§2.1).
    "feature-listed-unused": (example(features=["tt-index-order"]), OK),
    "features-sorted": (example(features=["joint-train", "tt-index-order"]), OK),
    "features-unsorted": (example(features=["tt-index-order", "joint-train"]), BAD),
    "features-repeated": (example(features=["tt-index-order", "tt-index-order"]), BAD),
    "feature-unknown": (example(features=["int4-blocks"]), NEWER),
    # JSON nesting depth: the header object is depth 1 (§2, §4).
    "depth-64": (nested(63), OK),
    "depth-65": (nested(64), BAD),
    # Byte-order mark and lone surrogates (§2).
    "byte-order-mark": (replace_json(example(), '{"format"', '\ufeff{"format"'), BAD),
    "lone-high-surrogate": (replace_json(example(), '"spec"', '"\\ud800"'), BAD),
    "lone-low-surrogate": (replace_json(example(), '"spec"', '"\\udc00x"'), BAD),
    "surrogate-pair": (replace_json(example(), '"spec"', '"\\ud83d\\ude00"'), OK),
    # Labels only on member modes, one per member (§2.4); a group must be used (§2.7).
    "labels-on-member": (group_file([COL, ROW, {"role": "member", "name": "p", "labels": ["q", "v"]}]), OK),
    "labels-on-row": (group_file([COL, dict(ROW, labels=["a", "b"]), {"role": "member", "name": "p"}]), BAD),
    "labels-empty": (group_file([COL, ROW, {"role": "member", "name": "p", "labels": []}]), BAD),
    "labels-miscounted": (group_file([COL, ROW, {"role": "member", "name": "p", "labels": ["q"]}]), BAD),
    "group-unused": (group_file([COL, ROW, {"role": "member", "name": "p"}], extra_modules=False), BAD),
    # xxh64 text (§2.2): the value's hex digits, most significant first, lowercase.
    "xxh64-uppercase": (replace_json(example(), xxhash.xxh64_hexdigest(A_BYTES), xxhash.xxh64_hexdigest(A_BYTES).upper()), BAD),
    "xxh64-byte-reversed": (replace_json(example(), xxhash.xxh64_hexdigest(A_BYTES), xxhash.xxh64_intdigest(A_BYTES).to_bytes(8, "little").hex()), BAD),
    # Zstandard frames (§3): data frames only, content size declared.
    "zstd-empty-tensor": (empty_replacement(zstd_frame(b"")), OK),
    "zstd-skippable-as-empty": (empty_replacement(SKIPPABLE), BAD),
    "zstd-skippable-before-data": (example(a_codec="zstd", a_stored=SKIPPABLE + zstd_frame(A_BYTES)), BAD),
    "zstd-no-content-size": (example(a_codec="zstd", a_stored=zstd_frame(A_BYTES, content_size=False)), BAD),
    "zstd-data-frame": (example(a_codec="zstd", a_stored=zstd_frame(A_BYTES)), OK),
    # null for an optional key means absent (§2).
    "null-optionals": (example(module_extra={"dora_magnitude": None, "target": None, "conversion": None, "kind": None},
                               top_extra={"required_features": None, "metadata": None}), OK),
    "null-required": (example(module_extra={"scale": None}), BAD),
    # The structured forms (§2.3 forms 6–11, §2.3.1, §2.4.1).
    "kronecker": (kron_file(), OK),
    "kronecker-without-feature": (kron_file(features=()), BAD),
    "ia3": (ia3_file(), OK),
    "ia3-in-axis": (ia3_file(axis="in"), OK),
    "ia3-with-a-scale": (ia3_file(scale=2), BAD),
    "vera": (vera_file(), OK),
    "vera-projections-unused": (vera_file(extra_pair=True), BAD),
    "hadamard-low-rank": (hadamard_file(lowrank("m0.p1", 4, 6, 2), lowrank("m0.p2", 4, 6)), OK),
    "hadamard-tucker-conv": (hadamard_file(tucker("m0.p1", 4, 2, [3]), tucker("m0.p2", 4, 2, [3]), kernel=[3],
                                           features=("conv-kernel", "hadamard")), OK),
    "hadamard-mixed-forms": (hadamard_file(tucker("m0.p1", 4, 2, [3]), lowrank("m0.p2", 4, 6), kernel=[3],
                                           features=("conv-kernel", "hadamard")), BAD),
    "tucker-factor-on-a-linear-layer": (hadamard_file(tucker("m0.p1", 4, 6, [1]), tucker("m0.p2", 4, 6, [1])), BAD),
    "tucker-factor-on-a-1x1-kernel": (hadamard_file(tucker("m0.p1", 4, 6, [1]), tucker("m0.p2", 4, 6, [1]), kernel=[1],
                                                    features=("conv-kernel", "hadamard")), OK),
    # Number literals longer than 400 bytes (§4).
    "number-400-bytes": (replace_json(example(), '"scale":2', '"scale":2.' + "0" * 398), OK),
    "number-401-bytes": (replace_json(example(), '"scale":2', '"scale":2.' + "0" * 399), BAD),
}


def python_verdict(path):
    try:
        with tlora.open(path) as f:
            f.verify()
            for m in f.modules:
                if f.module(m).update.type == "ia3":
                    f.factors(m)  # no ΔW of its own
                else:
                    f.delta(m)
        return OK
    except tlora.CorruptFile:
        return BAD
    except tlora.UnsupportedFile:
        return NEWER


@pytest.mark.parametrize("case", sorted(CASES))
def test_python_reader(case, tmp_path):
    data, expected = CASES[case]
    p = tmp_path / f"{case}.tlora"
    p.write_bytes(data)
    assert python_verdict(p) == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_swift_reader_agrees(case, tmp_path):
    binary = tlora_binary()
    if binary is None:
        pytest.skip("no tlora binary")
    data, expected = CASES[case]
    p = tmp_path / f"{case}.tlora"
    p.write_bytes(data)
    r = subprocess.run([binary, "verify", str(p)], capture_output=True, text=True)
    assert r.returncode == (0 if expected == OK else 3), r.stderr


def test_spec_example_values(tmp_path):
    p = tmp_path / "example.tlora"
    p.write_bytes(example())
    f = tlora.open(p)
    assert f.modules == ["m"]
    np.testing.assert_array_equal(f.delta("m"), [[1, 2, 3, 4], [-1, -2, -3, -4]])
    np.testing.assert_array_equal(f.tensor("m0.a"), [[1, 2, 3, 4]])


def test_nan_is_refused_when_read_not_when_opened(tmp_path):
    p = tmp_path / "nan.tlora"
    p.write_bytes(example(a=[1, float("nan"), 3, 4]))
    f = tlora.open(p)  # the header is fine
    np.testing.assert_array_equal(f.tensor("m0.b"), [[0.5], [-0.5]])
    with pytest.raises(tlora.CorruptFile, match="NaN"):
        f.tensor("m0.a")
