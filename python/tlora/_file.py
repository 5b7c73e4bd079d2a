"""An open .tlora file: header checked on open, tensors read lazily (docs/FORMAT.md)."""
import builtins
import mmap
import os

import numpy as np
import xxhash

from ._codecs import WIDTH, CodecError, decode
from ._errors import corrupt
from ._header import PREAMBLE, Header

_NUMPY = {"f32": np.dtype("<f4"), "f64": np.dtype("<f8"), "f16": np.dtype("<f2")}


def _to_torch(a):
    import torch  # optional: only when asked for

    return torch.from_numpy(np.ascontiguousarray(a))


class TLoRAFile:
    """A ``.tlora`` file. ``open`` checks the preamble, the header checksum and every rule the header
    alone decides; tensor data is read (and its checksum checked) only when asked for.

    ``modules``: module names in file order. ``delta(name)``: ΔW (out × in, scale applied).
    ``tensor(name)``: one stored tensor. ``verify()``: every byte (raises CorruptFile).
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        with builtins.open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise corrupt(self.path, "not a .tlora file (empty)")
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self._buf = memoryview(self._map)
        try:
            self.header = Header.parse(self._buf, self.path)
        except BaseException:
            self.close()
            raise
        self._modules = {m.name: m for m in self.header.modules}

    # -- plumbing
    def close(self):
        """Unmaps the file. Arrays already returned stay valid (they own their memory)."""
        buf, self._buf = getattr(self, "_buf", None), None
        mapping, self._map = getattr(self, "_map", None), None
        try:
            if buf is not None:
                buf.release()
            if mapping is not None:
                mapping.close()
        except BufferError:
            pass  # a slice is still referenced (e.g. by a traceback being handled): unmapped when collected

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<tlora.TLoRAFile {self.path!r}: {len(self._modules)} modules, {len(self.header.tensors)} tensors>"

    # -- what the header says
    @property
    def version(self):
        return f"{self.header.major}.{self.header.minor}"

    @property
    def metadata(self):
        return dict(self.header.metadata)

    @property
    def modules(self):
        """Module names (each a layer path of the base model), in file order."""
        return list(self._modules)

    @property
    def tensors(self):
        """Names of the stored tensors, in file order."""
        return [t.name for t in self.header.tensors]

    @property
    def groups(self):
        return list(self.header.group_index)

    @property
    def replaced(self):
        """``{target: tensor name}`` of replaced base tensors (§2.5)."""
        return {r.target: r.tensor for r in self.header.replaced}

    def module(self, name):
        """The module entry: ``.target``, ``.kind``, ``.layout``, ``.shape``, ``.scale``, ``.update``
        (``.update.type``), ``.dora_magnitude``, ``.conversion``, ``.attributes``."""
        try:
            return self._modules[name]
        except KeyError:
            raise KeyError(f"{self.path}: no module {name!r}") from None

    # -- tensor data
    def _entry(self, name):
        try:
            return self.header.by_name[name]
        except KeyError:
            raise KeyError(f"{self.path}: no tensor {name!r}") from None

    def _stored(self, t):
        start = self.header.data_start + t.offset
        return self._buf[start:start + t.length]

    def tensor(self, name, framework="numpy", bf16="float32"):
        """One tensor, decoded after its checksum is checked, as a numpy array of its shape (or a
        torch tensor with ``framework="torch"``). bf16 has no numpy dtype: it is widened exactly to
        float32, or given as its raw uint16 bits with ``bf16="bits"``.

        Raises CorruptFile on a checksum mismatch, a bad codec stream or a NaN/infinite value.
        """
        t = self._entry(name)
        stored = self._stored(t)
        if xxhash.xxh64_intdigest(stored) != t.xxh64:
            raise corrupt(self.path, f"tensor {name}: checksum mismatch (the data is damaged)")
        try:
            raw = decode(stored, t.codec, t.count, WIDTH[t.dtype])
        except CodecError as e:
            raise corrupt(self.path, f"tensor {name}: {e}") from None
        if t.dtype == "bf16":
            bits = np.frombuffer(raw, dtype="<u2").copy() if not isinstance(raw, np.ndarray) else raw.view("<u2")
            values = (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)
            out = bits if bf16 == "bits" else values
        else:
            # Raw blobs are slices of the mapping: copy, so arrays outlive the file.
            values = np.frombuffer(raw, dtype=_NUMPY[t.dtype]).copy() if not isinstance(raw, np.ndarray) else raw.view(_NUMPY[t.dtype])
            out = values
        # NaN propagates through min and max, an infinity is one of them: two passes, no temporary.
        if values.size and not (np.isfinite(values.min()) and np.isfinite(values.max())):
            raise corrupt(self.path, f"tensor {name}: holds NaN or infinite values")
        out = out.reshape(t.shape)
        return _to_torch(out) if framework == "torch" else out

    def _read64(self, name):
        return self.tensor(name).astype(np.float64, copy=False)

    # -- modules
    def _u(self, m):
        return m.update.u(self._read64, m, self.header)

    def delta(self, name, dtype=np.float32, framework="numpy", flat=False):
        """ΔW of a module, ``scale · U``, computed in float64 and returned as ``dtype``.

        Shape: ``out × in`` (the canonical orientation of docs/FORMAT.md §2.3, whatever the base
        stores: transpose it yourself for layout ``in_out``); for a convolution the weight's own
        shape ``out × in_channels × k_1 × …`` (``flat=True`` gives the spec's flattened
        ``out × (in_channels · K)``). DoRA's magnitude and a bias change are not part of ΔW (see
        ``apply`` and ``bias_delta``). An IA³ module has no ΔW (it multiplies the weight): ValueError,
        use ``apply``.
        """
        m = self.module(name)
        d = m.scale * self._u(m)
        if m.kernel and not flat:
            d = d.reshape(m.weight_shape)
        d = d.astype(dtype, copy=False)
        return _to_torch(d) if framework == "torch" else d

    def bias_delta(self, name, dtype=np.float32):
        """The change ``scale · Δβ`` a module adds to its layer's bias (``module(name).bias_target``),
        or None when it has none. IA³ on the output axis multiplies the bias instead (``apply_bias``)."""
        m = self.module(name)
        if m.bias_delta is None:
            return None
        return (m.scale * self._read64(m.bias_delta)).astype(dtype, copy=False)

    def apply(self, name, weight, dtype=None):
        """The merged weight ``W'`` of a module, given the base weight ``W`` as the model stores it
        (``module(name).weight_shape``: ``out × in``, ``in × out`` for layout ``in_out``,
        ``out × in_channels × k…`` for a convolution). Computed in float64, returned as ``dtype``
        (default: the weight's own floating dtype, else float32).

        ``W' = W + ΔW``, then with a DoRA magnitude ``m`` every row (``dora_axis`` ``out``) or every
        input channel's columns (``in``) of the canonical ``out × in`` matrix scaled by
        ``m / (‖·‖ + dora_epsilon)`` (§2.3.5); IA³ gives ``W ⊙ v`` along its axis (form 11). A module
        whose target is replaced (``replaced``) applies to the replacement, not the base tensor.
        """
        m = self.module(name)
        w = np.asarray(weight)
        out_dtype = dtype or (w.dtype if w.dtype.kind == "f" else np.float32)
        # out_in: any shape [out, …] holding out × in values row-major (a 1×1 conv read as a linear layer too).
        fits = w.shape == m.weight_shape if m.layout == "in_out" else (w.ndim >= 1 and w.shape[0] == m.out and w.size == m.out * m.inp)
        if not fits:
            raise ValueError(f"{self.path}: module {name}: the weight is {w.shape}, expected {m.weight_shape}")
        shape = w.shape
        w = w.astype(np.float64)
        c = (w.T if m.layout == "in_out" else w.reshape(m.out, m.inp)).copy()  # canonical out × in
        if m.update.type == "ia3":
            v = self._read64(m.update.vector)
            if m.update.axis == "out":
                c *= v[:, None]
            else:
                c *= np.repeat(v, m.kernel_size)[None, :]
        else:
            c += m.scale * self._u(m)
        if m.dora_magnitude is not None:
            mag = self._read64(m.dora_magnitude)
            if m.dora_axis == "out":
                c *= (mag / (np.linalg.norm(c, axis=1) + m.dora_epsilon))[:, None]
            else:
                norms = np.sqrt((c.reshape(m.out, m.channels, m.kernel_size) ** 2).sum(axis=(0, 2)))
                c *= np.repeat(mag / (norms + m.dora_epsilon), m.kernel_size)[None, :]
        merged = c.T if m.layout == "in_out" else c
        return np.ascontiguousarray(merged).reshape(shape).astype(out_dtype, copy=False)

    def apply_bias(self, name, bias, dtype=None):
        """The merged bias of a module's layer (``module(name).bias_target``): ``β + scale · Δβ`` with a
        bias change, ``β ⊙ v`` for IA³ on the output axis, otherwise ``β`` unchanged."""
        m = self.module(name)
        b = np.asarray(bias)
        out_dtype = dtype or (b.dtype if b.dtype.kind == "f" else np.float32)
        if b.shape != (m.out,):
            raise ValueError(f"{self.path}: module {name}: the bias is {b.shape}, expected ({m.out},)")
        merged = b.astype(np.float64)
        if m.bias_delta is not None:
            merged = merged + m.scale * self._read64(m.bias_delta)
        elif m.update.type == "ia3" and m.update.axis == "out":
            merged = merged * self._read64(m.update.vector)
        return merged.astype(out_dtype, copy=False)

    def factors(self, name):
        """The module's stored parts as numpy arrays, by role, plus ``type`` and ``scale``:
        ``a``/``b`` (low_rank), ``cores`` and the digit orders (tensor_train), ``cores``/``latent``/``rank``
        (joint_train), ``delta`` (dense), the group's ``core``/``factors`` and the ``index`` (tucker_slice),
        ``core``/``a``/``b`` (conv_tucker), ``w1``/``w2`` (kronecker) and ``p1``/``p2`` (hadamard) as dicts
        with ``form`` and ``matrix`` or ``a``/``b`` (+ ``core``), ``a``/``b``/``e`` (low_rank_diagonal), the
        shared ``a``/``b`` with ``lambda_b``/``lambda_d`` and the ``projections`` name (vera), ``vector`` and
        ``axis`` (ia3); and when present ``kernel``, ``dora_magnitude`` (+ ``dora_axis``, ``dora_epsilon``),
        ``bias_delta`` (unscaled)."""
        m = self.module(name)
        f = m.update.factors(self._read64, m, self.header)
        f["type"], f["scale"] = m.update.type, m.scale
        if m.kernel:
            f["kernel"] = list(m.kernel)
        if m.dora_magnitude is not None:
            f["dora_magnitude"] = self._read64(m.dora_magnitude)
            f["dora_axis"], f["dora_epsilon"] = m.dora_axis, m.dora_epsilon
        if m.bias_delta is not None:
            f["bias_delta"] = self._read64(m.bias_delta)
        return f

    def lora(self, name):
        """Exact LoRA factors ``(A [r, in], B [out, r], scale)`` with ΔW = scale·B·A (``in`` flattened
        for a convolution): the stored ones for low_rank, built exactly from the stored factors for
        joint_train, conv_tucker (rank r1), kronecker (rank r(W1)·r(W2)), hadamard (rank r1·r2),
        low_rank_diagonal and vera. None for tensor trains, Tucker slices and dense updates (convert
        them with ``tlora convert to-lora``) and for IA³."""
        m = self.module(name)
        ab = m.update.lora(self._read64, m, self.header)
        return None if ab is None else (ab[0], ab[1], m.scale)

    # -- integrity
    def verify(self):
        """Checks every byte (§1.4): zero padding, every blob's checksum and codec stream, no NaN or
        infinity. Raises CorruptFile at the first problem; returns the number of tensors checked."""
        buf, h = self._buf, self.header
        gaps = [(PREAMBLE + h.header_length + 8, h.data_start)]
        for a, b in zip(h.tensors, h.tensors[1:]):
            gaps.append((h.data_start + a.offset + a.length, h.data_start + b.offset))
        for start, end in gaps:
            if any(buf[start:end]):
                bad = start + next(i for i, x in enumerate(buf[start:end]) if x)
                raise corrupt(self.path, f"padding byte at offset {bad} is not zero")
        for t in h.tensors:
            self.tensor(t.name, bf16="bits")
        return len(h.tensors)


def open(path):  # noqa: A001 - the package's entry point is tlora.open(path)
    """Opens a ``.tlora`` file (see TLoRAFile)."""
    return TLoRAFile(path)
