"""Builds .tlora files by hand from docs/FORMAT.md alone (§1 layout, §5 example), so hostile or
unusual headers get past the checksum to the rule under test."""
import json
import struct

import numpy as np
import xxhash

MAGIC = b"\x89TLORA\r\n"


def align64(x):
    return (x + 63) // 64 * 64


def build(header, blobs=(), major=1, minor=0, flags=0):
    """``header``: the JSON text (str or bytes) as written; ``blobs``: stored bytes in order."""
    h = header.encode("utf-8") if isinstance(header, str) else header
    data, pos = b"", 0
    for i, b in enumerate(blobs):
        if i:
            data += b"\0" * (align64(len(data)) - len(data))
        data += b
    start = align64(32 + len(h) + 8)
    pre = MAGIC + struct.pack("<HHIQQ", major, minor, flags, len(h), start + len(data))
    head = pre + h
    head += struct.pack("<Q", xxhash.xxh64_intdigest(head))
    return head + b"\0" * (start - len(head)) + data


def tensor(name, values, shape, offset, dtype="f32", codec="raw", stored=None):
    raw = np.asarray(values, dtype={"f32": "<f4", "f64": "<f8", "f16": "<f2"}[dtype]).tobytes()
    stored = raw if stored is None else stored
    entry = {"name": name, "dtype": dtype, "shape": shape, "codec": codec, "offset": offset, "length": len(stored),
             "xxh64": xxhash.xxh64_hexdigest(stored)}
    return entry, stored


A = [1, 2, 3, 4]
B = [0.5, -0.5]


def example(module_extra=None, top_extra=None, a=A, b=B, tensors_extra=(), blobs_extra=(), features=None,
            a_codec="raw", a_stored=None):
    """The spec's §5 example (one 2×4 rank-1 module, scale 2) with changes; returns file bytes."""
    ta, ba = tensor("m0.a", a, [1, 4], 0, codec=a_codec, stored=a_stored)
    tb, bb = tensor("m0.b", b, [2, 1], align64(len(ba)))
    blobs = [ba, bb]
    tensors = [ta, tb]
    for t, blob in zip(tensors_extra, blobs_extra):
        end = tensors[-1]["offset"] + tensors[-1]["length"]
        t = dict(t, offset=align64(end), length=len(blob), xxh64=xxhash.xxh64_hexdigest(blob))
        tensors.append(t)
        blobs.append(blob)
    module = {"name": "m", "shape": [2, 4], "scale": 2, "update": {"type": "low_rank", "a": "m0.a", "b": "m0.b"}}
    module.update(module_extra or {})
    doc = {"format": "tlora", "version": "1.0", "required_features": features or [], "metadata": {"source_format": "spec"},
           "tensors": tensors, "modules": [module], "tucker_groups": [], "replaced_tensors": []}
    doc.update(top_extra or {})
    return build(json.dumps(doc, separators=(",", ":"), ensure_ascii=False), blobs)


def structured(modules, arrays, features, projections=None):
    """A file of ``modules`` (module entries) over ``arrays`` (``{name: array}``, stored f32 raw in
    that order) listing ``features``; ``projections`` as given."""
    tensors, blobs, end = [], [], 0
    for name, values in arrays.items():
        v = np.asarray(values, dtype=float)
        t, b = tensor(name, v.ravel(), list(v.shape), align64(end))
        tensors.append(t)
        blobs.append(b)
        end = t["offset"] + t["length"]
    doc = {"format": "tlora", "version": "1.0", "required_features": features, "tensors": tensors, "modules": modules}
    if projections is not None:
        doc["projections"] = projections
    return build(json.dumps(doc, separators=(",", ":")), blobs)
