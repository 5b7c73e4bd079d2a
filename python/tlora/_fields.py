"""Typed access to header JSON objects; every failure names the field's path."""
from ._json import JSONNumber

MAX_NAME_BYTES = 1024
INT_MAX = 2**63 - 1


class Problem(ValueError):
    pass


class Fields:
    def __init__(self, value, path):
        if not isinstance(value, dict):
            raise Problem(f"{path or 'header'}: expected an object")
        self.obj, self.path = value, path

    def at(self, key):
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key, message):
        return Problem(f"{self.at(key)}: {message}")

    def present(self, key):
        """An optional key counts as absent when it is missing or null (docs/FORMAT.md §2)."""
        return self.obj.get(key) is not None

    def value(self, key):
        if key not in self.obj:
            raise self.fail(key, "missing")
        return self.obj[key]

    def string(self, key):
        v = self.value(key)
        if not isinstance(v, str):
            raise self.fail(key, "expected a string")
        return v

    def opt_string(self, key, default=None):
        return self.string(key) if self.present(key) else default

    def name(self, key):
        """A name: 1 to 1024 bytes of UTF-8."""
        s = self.string(key)
        if not 1 <= len(s.encode("utf-8")) <= MAX_NAME_BYTES:
            raise self.fail(key, f"must be 1 to {MAX_NAME_BYTES} bytes")
        return s

    def integer(self, key, lo=0, hi=INT_MAX):
        return _int(self.value(key), self.at(key), lo, hi)

    def opt_integer(self, key, lo=0, hi=INT_MAX):
        return self.integer(key, lo, hi) if self.present(key) else None

    def number(self, key):
        v = self.value(key)
        f = v.as_float() if isinstance(v, JSONNumber) else None
        if f is None:
            raise self.fail(key, "expected a finite number")
        return f

    def opt_number(self, key):
        return self.number(key) if self.present(key) else None

    def array(self, key):
        v = self.value(key)
        if not isinstance(v, list):
            raise self.fail(key, "expected an array")
        return v

    def opt_array(self, key):
        return self.array(key) if self.present(key) else []

    def ints(self, key, lo=0, hi=INT_MAX, max_count=None):
        items = self.array(key)
        if max_count is not None and len(items) > max_count:
            raise self.fail(key, f"more than {max_count} entries")
        return [_int(v, f"{self.at(key)}[{i}]", lo, hi) for i, v in enumerate(items)]

    def strings(self, key):
        items = self.array(key)
        for i, v in enumerate(items):
            if not isinstance(v, str):
                raise Problem(f"{self.at(key)}[{i}]: expected a string")
        return items

    def string_map(self, key):
        o = self.object(key)
        for k, v in o.obj.items():
            if not isinstance(v, str):
                raise o.fail(k, "expected a string")
        return dict(o.obj)

    def object(self, key):
        return Fields(self.value(key), self.at(key))

    def opt_object(self, key):
        return self.object(key) if self.present(key) else None

    def objects(self, key, optional=False):
        items = self.opt_array(key) if optional else self.array(key)
        return [Fields(v, f"{self.at(key)}[{i}]") for i, v in enumerate(items)]


def _int(v, path, lo, hi):
    n = v.as_int() if isinstance(v, JSONNumber) else None
    if n is None or n > INT_MAX:
        raise Problem(f"{path}: expected an integer")
    if not lo <= n <= hi:
        raise Problem(f"{path}: {n} is outside {lo}...{hi}")
    return n
