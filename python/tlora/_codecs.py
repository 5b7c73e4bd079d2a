"""Blob codecs (docs/FORMAT.md §3): raw, zstd, bytegroup-zstd.

Every zstd frame is walked by its block headers before it is decoded (RFC 8878 §3.1.1), so a frame
that does not declare its content size, declares another size, is a skippable frame, or is followed
by extra bytes is refused, and nothing larger than the declared size is ever allocated.
"""
import threading

import numpy as np
import zstandard

ZSTD_MAGIC = 0xFD2FB528
_dctx = zstandard.ZstdDecompressor()

WIDTH = {"f32": 4, "f64": 8, "f16": 2, "bf16": 2}
_UINT = {2: np.dtype("<u2"), 4: np.dtype("<u4"), 8: np.dtype("<u8")}
CODECS = ("raw", "zstd", "bytegroup-zstd")
_SHIFTS = {w: (t.type(1), t.type(8 * w - 1)) for w, t in _UINT.items()}


class CodecError(ValueError):
    pass


def max_decoded_length(stored_length):
    """A block of at most 128 KiB needs at least 4 stored bytes: §3's bound on any valid blob."""
    return 32768 * stored_length + 131072


def frame_extent(buf, pos):
    """``(declared content size or None, end offset)`` of the Zstandard frame starting at ``buf[pos]``."""
    n = len(buf)
    if n - pos < 6:
        raise CodecError("truncated zstd frame header")
    magic = int.from_bytes(buf[pos:pos + 4], "little")
    if magic != ZSTD_MAGIC:
        if magic & 0xFFFFFFF0 == 0x184D2A50:
            raise CodecError("skippable zstd frame (only data frames are allowed)")
        raise CodecError("not a zstd frame")
    fhd = buf[pos + 4]
    fcs_flag, single, reserved, checksum, dict_flag = fhd >> 6, (fhd >> 5) & 1, (fhd >> 3) & 1, (fhd >> 2) & 1, fhd & 3
    if reserved:
        raise CodecError("zstd frame header has its reserved bit set")
    p = pos + 5 + (0 if single else 1) + (0, 1, 2, 4)[dict_flag]
    fcs_size = (1 if single else 0, 2, 4, 8)[fcs_flag]
    if p + fcs_size > n:
        raise CodecError("truncated zstd frame header")
    declared = None
    if fcs_size:
        declared = int.from_bytes(buf[p:p + fcs_size], "little") + (256 if fcs_size == 2 else 0)
    p += fcs_size
    while True:
        if p + 3 > n:
            raise CodecError("truncated zstd block")
        header = int.from_bytes(buf[p:p + 3], "little")
        p += 3
        kind, size = (header >> 1) & 3, header >> 3
        if kind == 3:
            raise CodecError("reserved zstd block type")
        p += 1 if kind == 1 else size
        if p > n:
            raise CodecError("truncated zstd block")
        if header & 1:
            break
    p += 4 if checksum else 0
    if p > n:
        raise CodecError("truncated zstd frame checksum")
    return declared, p


def _decode_frame(buf, pos, expected):
    declared, end = frame_extent(buf, pos)
    if declared is None:
        raise CodecError("zstd frame does not declare its size")
    if declared != expected:
        raise CodecError(f"zstd frame declares {declared} bytes, expected {expected}")
    try:
        out = _dctx.decompress(buf[pos:end], max_output_size=expected)
    except zstandard.ZstdError as e:
        raise CodecError(f"zstd: {e}") from None
    if len(out) != expected:
        raise CodecError(f"zstd frame decoded to {len(out)} bytes, expected {expected}")
    return out, end


def decode(stored, codec, count, width):
    """The decoded little-endian element bytes (a numpy uint8 array or bytes) of one blob."""
    if codec == "raw":
        if len(stored) != count * width:
            raise CodecError(f"raw blob holds {len(stored)} bytes, expected {count * width}")
        return stored
    if codec == "zstd":
        out, end = _decode_frame(stored, 0, count * width)
        if end != len(stored):
            raise CodecError(f"{len(stored) - end} bytes follow the zstd frame")
        return out
    # bytegroup-zstd: plane p holds byte (w-1-p) of every rotated element.
    grouped = np.empty((count, width), dtype=np.uint8)
    pos = 0
    for p in range(width):
        plane, pos = _decode_frame(stored, pos, count)
        grouped[:, width - 1 - p] = np.frombuffer(plane, dtype=np.uint8)
    if pos != len(stored):
        raise CodecError(f"{len(stored) - pos} bytes follow the last byte-plane frame")
    u = grouped.reshape(-1).view(_UINT[width])
    one, top = _SHIFTS[width]
    # Undo the rotation that moved the sign bit to the lowest bit (numpy scalars of the array's own
    # type keep the shifts on numpy's fast path).
    sign = _scratch(u.nbytes).view(u.dtype)[: u.size]
    np.left_shift(u, top, out=sign)
    u >>= one
    u |= sign
    return u


_local = threading.local()


def _scratch(nbytes):
    """A reusable per-thread buffer of at least ``nbytes`` (saves a fresh allocation per tensor)."""
    buf = getattr(_local, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _local.buf = np.empty(max(nbytes, 1 << 20), dtype=np.uint8)
    return buf
