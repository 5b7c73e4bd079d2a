"""Preamble and header of a .tlora file (docs/FORMAT.md §1, §2, §4), checked as far as the header
goes: every rule that needs no tensor data."""
import xxhash

from . import _json
from ._codecs import CODECS, WIDTH, max_decoded_length
from ._errors import UnsupportedFile, corrupt
from ._fields import Fields, Problem
from ._structured import Projections
from ._updates import KINDS, TuckerGroup

MAGIC = b"\x89TLORA\r\n"
PREAMBLE = 32
MAX_HEADER = 64 << 20
MAX_RANK = 8
ALIGN = 64
MAJOR = 1
KNOWN_FEATURES = frozenset({
    "tt-index-order", "joint-train",  # version 1.0's research forms
    "conv-kernel", "conv-tucker", "kronecker", "hadamard", "low-rank-diagonal", "vera", "ia3", "dora-in-axis", "bias-delta",
})
MAX_KERNEL = 3
_HEX = frozenset("0123456789abcdef")


def align64(x):
    return (x + ALIGN - 1) // ALIGN * ALIGN


class Tensor:
    __slots__ = ("name", "dtype", "shape", "codec", "offset", "length", "xxh64", "count")

    def __init__(self, f):
        self.name = f.name("name")
        self.dtype = f.string("dtype")
        if self.dtype not in WIDTH:
            raise f.fail("dtype", f"unknown dtype {self.dtype!r} (expected f32, f64, f16 or bf16)")
        self.shape = f.ints("shape", max_count=MAX_RANK)
        count = 1
        for d in self.shape:
            count *= d
        if count * WIDTH[self.dtype] > 2**63 - 1:
            raise f.fail("shape", f"{self.shape} has more elements than can be addressed")
        self.count = count
        self.codec = f.string("codec")
        if self.codec not in CODECS:
            raise f.fail("codec", f"unknown codec {self.codec!r}")
        self.offset, self.length = f.integer("offset"), f.integer("length")
        text = f.string("xxh64")
        if len(text) != 16 or not set(text) <= _HEX:
            raise f.fail("xxh64", "must be 16 lowercase hex digits")
        self.xxh64 = int(text, 16)

    @property
    def decoded_length(self):
        return self.count * WIDTH[self.dtype]


class Conversion:
    def __init__(self, f):
        self.method = f.string("method")
        self.max_rel_error = f.opt_number("max_rel_error")
        self.rel_error = f.opt_number("rel_error")
        for key, v in (("max_rel_error", self.max_rel_error), ("rel_error", self.rel_error)):
            if v is not None and v < 0:
                raise f.fail(key, "must not be negative")
        self.source_parameters = f.opt_integer("source_parameters")
        self.note = f.opt_string("note")


class Module:
    """One module entry (§2.3). ``update`` is an instance of a class in ``_updates.KINDS``.

    ``kernel`` is ``[]`` for a linear layer; ``kernel_size`` = ``∏ kernel`` (1 without one) and
    ``channels`` = ``inp / kernel_size``.
    """

    def __init__(self, f):
        self.name = f.name("name")
        self.target = f.name("target") if f.present("target") else self.name + ".weight"
        self.kind = f.opt_string("kind", "linear")
        if self.kind not in ("linear", "embedding"):
            raise f.fail("kind", f"unknown module kind {self.kind!r}")
        self.layout = f.opt_string("layout", "out_in")
        if self.layout not in ("out_in", "in_out"):
            raise f.fail("layout", f"unknown layout {self.layout!r}")
        shape = f.ints("shape", lo=1, max_count=2)
        if len(shape) != 2:
            raise f.fail("shape", "must be [out, in]")
        self.out, self.inp = shape
        self.scale = f.number("scale")
        u = f.object("update")
        t = u.string("type")
        if t not in KINDS:
            raise u.fail("type", f"unknown update type {t!r}")
        self.update = KINDS[t](u)
        self.dora_magnitude = f.name("dora_magnitude") if f.present("dora_magnitude") else None
        self.dora_axis = f.opt_string("dora_axis", "out")
        if self.dora_axis not in ("out", "in"):
            raise f.fail("dora_axis", f"unknown axis {self.dora_axis!r} (out or in)")
        self.dora_epsilon = f.opt_number("dora_epsilon") or 0.0
        if self.dora_epsilon < 0:
            raise f.fail("dora_epsilon", "must be ≥ 0")
        self.bias_delta = f.name("bias_delta") if f.present("bias_delta") else None
        self.kernel = f.ints("kernel", lo=1, max_count=MAX_KERNEL) if f.present("kernel") else []
        if f.present("kernel") and not self.kernel:
            raise f.fail("kernel", f"must list 1 to {MAX_KERNEL} sizes")
        self.kernel_size = 1
        for k in self.kernel:
            self.kernel_size *= k
        self.channels = self.inp // self.kernel_size
        self.conversion = Conversion(f.object("conversion")) if f.present("conversion") else None
        self.attributes = f.string_map("attributes") if f.present("attributes") else {}

    @property
    def shape(self):
        return (self.out, self.inp)

    @property
    def weight_shape(self):
        """The base weight's shape as the model stores it: ``(out, in)``, ``(in, out)`` for layout
        ``in_out``, ``(out, channels, *kernel)`` for a convolution."""
        if self.kernel:
            return (self.out, self.channels, *self.kernel)
        return (self.out, self.inp) if self.layout == "out_in" else (self.inp, self.out)

    @property
    def bias_target(self):
        """The base tensor a bias change (or IA³ on the output axis) changes: ``<target>`` with
        ``.weight`` replaced by ``.bias``, or ``<target>.bias`` (§2.3)."""
        stem = self.target[: -len(".weight")] if self.target.endswith(".weight") else self.target
        return stem + ".bias"

    def tensors(self):
        return self.update.tensors() + [t for t in (self.dora_magnitude, self.bias_delta) if t is not None]

    def features(self):
        """The required features (§2.1) this module uses."""
        f = set(self.update.features())
        if self.kernel:
            f.add("conv-kernel")
        if self.dora_magnitude is not None and self.dora_axis == "in":
            f.add("dora-in-axis")
        if self.bias_delta is not None:
            f.add("bias-delta")
        return f

    def check_extras(self, shape_of):
        """The kernel, DoRA and bias-change rules of §2.3 (the update's own are in its class)."""
        if self.kernel:
            if self.layout != "out_in":
                raise Problem(f"a convolution's weight is stored out × in × kernel (layout out_in), not {self.layout}")
            if self.inp % self.kernel_size:
                raise Problem(f"{self.inp} columns are not whole input channels of a {'×'.join(map(str, self.kernel))} kernel")
        if self.dora_magnitude is not None:
            n = self.out if self.dora_axis == "out" else self.channels
            if shape_of(self.dora_magnitude) != [n]:
                per = "output feature" if self.dora_axis == "out" else "input channel"
                raise Problem(f"DoRA magnitude has shape {shape_of(self.dora_magnitude)} but must be [{n}] (one per {per})")
        elif self.dora_axis != "out" or self.dora_epsilon != 0:
            raise Problem("DoRA axis or epsilon without a DoRA magnitude")
        if self.bias_delta is not None and shape_of(self.bias_delta) != [self.out]:
            raise Problem(f"the bias change has shape {shape_of(self.bias_delta)} but must be [{self.out}]")


class Replaced:
    def __init__(self, f):
        self.target, self.tensor = f.name("target"), f.name("tensor")
        self.source_name = f.opt_string("source_name")


class Header:
    """Everything but the tensor data, validated. ``parse`` raises CorruptFile or UnsupportedFile."""

    @classmethod
    def parse(cls, buf, path):
        size = len(buf)
        if size < len(MAGIC) or bytes(buf[:8]) != MAGIC:
            raise corrupt(path, "not a .tlora file (wrong magic bytes)")
        if size < PREAMBLE:
            raise corrupt(path, f"truncated: the preamble needs {PREAMBLE} bytes, the file has {size}")
        major, minor = int.from_bytes(buf[8:10], "little"), int.from_bytes(buf[10:12], "little")
        flags = int.from_bytes(buf[12:16], "little")
        h, length = int.from_bytes(buf[16:24], "little"), int.from_bytes(buf[24:32], "little")
        if major > MAJOR:
            raise UnsupportedFile(f"{path}: format version {major}.{minor} is newer than this reader (reads {MAJOR}.x)")
        if major != MAJOR:
            raise corrupt(path, f"major version {major} does not exist")
        if flags:
            raise corrupt(path, f"preamble flags 0x{flags:x} are not zero")
        if h > MAX_HEADER:
            raise corrupt(path, f"header length {h} exceeds {MAX_HEADER}")
        if h < 2:
            raise corrupt(path, f"header length {h} is too short")
        if length != size:
            raise corrupt(path, f"the preamble declares {length} bytes but the file has {size}")
        end = PREAMBLE + h
        if end + 8 > size:
            raise corrupt(path, f"truncated: the header needs {end + 8} bytes, the file has {size}")
        if xxhash.xxh64_intdigest(buf[:end]) != int.from_bytes(buf[end:end + 8], "little"):
            raise corrupt(path, "header checksum mismatch (the header is damaged)")
        data_start = align64(end + 8)
        if data_start > size:
            raise corrupt(path, f"truncated: the header padding needs {data_start} bytes, the file has {size}")
        try:
            doc = _json.loads(buf[PREAMBLE:end])
        except ValueError as e:
            raise corrupt(path, f"header: {e}") from None
        self = cls()
        self.path, self.major, self.minor = path, major, minor
        self.header_length, self.data_start, self.file_length = h, data_start, size
        try:
            self._document(doc, path)
            self._layout()
            self._semantics()
        except Problem as e:
            raise corrupt(path, str(e)) from None
        return self

    def _document(self, doc, path):
        root = Fields(doc, "")
        if root.string("format") != "tlora":
            raise root.fail("format", 'must be "tlora"')
        version = root.string("version")
        if version != f"{self.major}.{self.minor}":
            raise root.fail("version", f"{version!r} does not match the preamble's {self.major}.{self.minor}")
        self.required_features = root.strings("required_features") if root.present("required_features") else []
        unknown = [f for f in self.required_features if f not in KNOWN_FEATURES]
        if unknown:
            raise UnsupportedFile(f"{path}: requires features this reader does not know: {', '.join(unknown)}")
        if any(a >= b for a, b in zip(self.required_features, self.required_features[1:])):
            raise root.fail("required_features", "must be sorted (by code point) without repeats")
        self.metadata = root.string_map("metadata") if root.present("metadata") else {}
        self.tensors = [Tensor(f) for f in root.objects("tensors")]
        self.modules = [Module(f) for f in root.objects("modules", optional=True)]
        self.groups = [TuckerGroup(f) for f in root.objects("tucker_groups", optional=True)]
        self.replaced = [Replaced(f) for f in root.objects("replaced_tensors", optional=True)]
        self.projections = [Projections(f) for f in root.objects("projections", optional=True)]
        self.by_name = {}
        for i, t in enumerate(self.tensors):
            if t.name in self.by_name:
                raise Problem(f"tensors[{i}].name: {t.name!r} is listed twice")
            self.by_name[t.name] = t

    def shape_of(self, name):
        """A tensor's shape from its entry (the name is known to exist once references are checked)."""
        return self.by_name[name].shape

    def _layout(self):
        """§1.3: blobs in listed order, each at the 64-aligned end of the previous, the file ending at the last."""
        expected = 0
        for t in self.tensors:
            if t.offset != expected:
                raise Problem(f"tensor {t.name} starts at data offset {t.offset}, expected {expected}")
            if t.codec == "raw":
                if t.length != t.decoded_length:
                    raise Problem(f"raw tensor {t.name} stores {t.length} bytes but its shape needs {t.decoded_length}")
            elif t.length == 0 or t.decoded_length > max_decoded_length(t.length):
                raise Problem(f"tensor {t.name} declares {t.decoded_length} decoded bytes, impossible from {t.length} compressed bytes")
            end = t.offset + t.length
            if self.data_start + end > self.file_length:
                raise Problem(f"tensor {t.name} extends past the end of the file")
            expected = align64(end)
        last_end = self.data_start + (self.tensors[-1].offset + self.tensors[-1].length if self.tensors else 0)
        if last_end != self.file_length:
            raise Problem(f"{self.file_length - last_end} bytes follow the last tensor")

    def _semantics(self):
        """§2.7 and the shape rules: references resolve, each tensor used once, shapes fit."""
        owner = {}

        def use(name, who):
            if name not in self.by_name:
                raise Problem(f"{who}: refers to tensor {name}, which is not in the file")
            if name in owner:
                raise Problem(f"tensor {name} is used by both {owner[name]} and {who}")
            owner[name] = who

        shape_of = self.shape_of

        def index(entries, what):
            """Named entries (Tucker groups, projections): tensors claimed, shapes checked, names unique."""
            out = {}
            for e in entries:
                for t in e.tensors():
                    use(t, f"{what} {e.name}")
                try:
                    e.check(shape_of)
                except Problem as err:
                    raise Problem(f"{what} {e.name}: {err}") from None
                if e.name in out:
                    raise Problem(f"{what} {e.name}: name used twice")
                out[e.name] = e
            return out

        self.group_index = index(self.groups, "Tucker group")
        self.projection_index = index(self.projections, "projections")
        if self.projections and "vera" not in self.required_features:
            raise Problem("projections are listed but the file does not list the required feature vera")
        names, targets, slices = {}, {}, set()
        for m in self.modules:
            if m.name in names:
                raise Problem(f"module {m.name}: listed twice")
            if m.target in targets:
                raise Problem(f"module {m.name}: another module already updates {m.target}")
            names[m.name], targets[m.target] = m, m
            if m.update.type == "tucker_slice":
                key = (m.update.group, tuple(m.update.index))
                if key in slices:
                    raise Problem(f"module {m.name}: another module already uses Tucker slice {key}")
                slices.add(key)
        replaced = set()
        for r in self.replaced:
            if r.target in replaced:
                raise Problem(f"replaced tensor {r.target}: replaced twice")
            replaced.add(r.target)
        for m in self.modules:
            for t in m.tensors():
                use(t, f"module {m.name}")
            missing = m.features() - set(self.required_features)
            if missing:
                raise Problem(f"module {m.name}: uses {', '.join(sorted(missing))} but the file does not list it in required_features")
            try:
                m.check_extras(shape_of)
                m.update.check(m, self)
            except Problem as e:
                raise Problem(f"module {m.name}: {e}") from None
        for r in self.replaced:
            use(r.tensor, f"replaced tensor {r.target}")
            m = targets.get(r.target)
            if m is not None:
                want = [m.out, m.inp] if m.layout == "out_in" else [m.inp, m.out]
                if shape_of(r.tensor) != want:
                    raise Problem(f"replaced tensor {r.target}: is {shape_of(r.tensor)} but module {m.name} updates it as {want}")
        for t in self.tensors:
            if t.name not in owner:
                raise Problem(f"tensor {t.name} is not used by any module, group or replaced tensor")
        used_groups = {m.update.group for m in self.modules if m.update.type == "tucker_slice"}
        for g in self.groups:
            if g.name not in used_groups:
                raise Problem(f"Tucker group {g.name} is used by no module")
        used_projections = {m.update.projections for m in self.modules if m.update.type == "vera"}
        for p in self.projections:
            if p.name not in used_projections:
                raise Problem(f"projections {p.name} are used by no module")
