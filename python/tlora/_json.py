"""Strict JSON for .tlora headers (docs/FORMAT.md §2): RFC 8259 in UTF-8 and nothing more.

Refused: invalid UTF-8, a byte-order mark, lone surrogate escapes, duplicate keys, NaN/Infinity
literals, number literals longer than 400 bytes, nesting deeper than 64 (the top-level value's
container is depth 1), and anything after the value but whitespace. Python's ``json`` does the
grammar; the hooks and one walk over the result add the rest.
"""
import json

MAX_DEPTH = 64
MAX_NUMBER_LENGTH = 400


class JSONNumber:
    """A number kept as its literal text, so integers and reals are told apart exactly."""

    __slots__ = ("text",)

    def __init__(self, text):
        if len(text) > MAX_NUMBER_LENGTH:
            raise ValueError(f"number literal longer than {MAX_NUMBER_LENGTH} bytes")
        self.text = text

    def as_int(self):
        """The integer, or None: no fraction, exponent or sign (so ``-0`` is not an integer)."""
        t = self.text
        if not t.isdigit() or not t.isascii():
            return None
        return int(t)

    def as_float(self):
        """The nearest binary64, or None when it is not finite (``1e999``)."""
        v = float(self.text)
        return v if v == v and v not in (float("inf"), float("-inf")) else None

    def __repr__(self):
        return self.text


class _Object(dict):
    """A JSON object; keys unique (duplicates refused while parsing)."""


def _pairs(pairs):
    o = _Object()
    for k, v in pairs:
        if k in o:
            raise ValueError(f"duplicate key {k!r}")
        o[k] = v
    return o


def _constant(name):
    raise ValueError(f"{name} is not JSON")


_decoder = json.JSONDecoder(object_pairs_hook=_pairs, parse_int=JSONNumber, parse_float=JSONNumber,
                            parse_constant=_constant, strict=True)


def _check_string(s):
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("lone surrogate escape in a string") from None


def loads(data):
    """Parses ``data`` (bytes) into dicts, lists, str, bool, None and JSONNumber.

    Raises ValueError with the reason on anything the spec refuses.
    """
    if data[:3] == b"\xef\xbb\xbf":
        raise ValueError("byte-order mark before the JSON text")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"invalid UTF-8 at byte {e.start}") from None
    try:
        value = _decoder.decode(text)
    except RecursionError:
        raise ValueError(f"nesting deeper than {MAX_DEPTH}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON: {e.msg} at character {e.pos}") from None
    # Depth and strings, without recursion.
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            if depth > MAX_DEPTH:
                raise ValueError(f"nesting deeper than {MAX_DEPTH}")
            for k, x in v.items():
                _check_string(k)
                stack.append((x, depth + 1))
        elif isinstance(v, list):
            if depth > MAX_DEPTH:
                raise ValueError(f"nesting deeper than {MAX_DEPTH}")
            stack.extend((x, depth + 1) for x in v)
        elif isinstance(v, str):
            _check_string(v)
    return value
