"""The update kinds of docs/FORMAT.md §2.3: how each is parsed, checked from shapes alone, and
turned into ``U`` (``ΔW = scale · U``, out × in) or its factors.

Each kind is one class registered in ``KINDS`` by its ``type`` string; a new kind of the format is a
new class here (parse, tensor names, shape check, features it needs, ``u``, ``factors``).
All arithmetic is float64.
"""
import numpy as np

from ._fields import Problem

KINDS = {}


def kind(cls):
    KINDS[cls.type] = cls
    return cls


class Update:
    type = None
    additive = True  # ΔW = scale · U; False for IA³, which multiplies the weight

    def tensors(self):
        """Tensor names this update owns."""
        return []

    def features(self):
        """Required features (§2.1) this update uses."""
        return set()

    def check(self, m, h):
        """Raises Problem if the shapes (``h.shape_of(tensor)``) do not fit module ``m`` (``m.out`` ×
        ``m.inp``, ``m.kernel_size``), the groups (``h.group_index``) or projections (``h.projection_index``)."""

    def u(self, read, m, h):
        """``U`` as a float64 ``m.out × m.inp`` array; ``read(tensor)`` gives a tensor as float64."""
        raise NotImplementedError

    def factors(self, read, m, h):
        return {}

    def lora(self, read, m, h):
        """Exact low-rank factors ``(A [r, in], B [out, r])`` with ``U = B·A``, or None."""
        return None


@kind
class LowRank(Update):
    type = "low_rank"

    def __init__(self, u):
        self.a, self.b = u.name("a"), u.name("b")

    def tensors(self):
        return [self.a, self.b]

    def check(self, m, h):
        a, b = h.shape_of(self.a), h.shape_of(self.b)
        if len(a) != 2 or len(b) != 2:
            raise Problem(f"low-rank factors must be matrices, got A {a} and B {b}")
        if a[0] < 1:
            raise Problem("rank 0")
        if a[1] != m.inp:
            raise Problem(f"A is {a} but the layer has {m.inp} inputs")
        if b != [m.out, a[0]]:
            raise Problem(f"B is {b} but must be [{m.out}, {a[0]}]")

    def lora(self, read, m, h):
        return read(self.a), read(self.b)

    def u(self, read, m, h):
        return read(self.b) @ read(self.a)

    def factors(self, read, m, h):
        a, b = read(self.a), read(self.b)
        return {"a": a, "b": b}


def _order(u, key):
    o = u.opt_string(key, "forward")
    if o not in ("forward", "reversed"):
        raise Problem(f"{u.at(key)}: unknown digit order {o!r} (forward or reversed)")
    return o


def _chain(cores, what):
    """Checks 4-D cores chaining from rank 1 to rank 1; returns the products of modes 1 and 2."""
    if not cores:
        raise Problem(f"{what} without cores")
    prev, p1, p2 = 1, 1, 1
    for k, c in enumerate(cores):
        if len(c) != 4:
            raise Problem(f"{what} core {k} must be 4-D, got {c}")
        if min(c) < 1:
            raise Problem(f"{what} core {k} has an empty dimension: {c}")
        if c[0] != prev:
            raise Problem(f"{what} core {k} starts with rank {c[0]} but the previous core ends with {prev}")
        p1, p2, prev = p1 * c[1], p2 * c[2], c[3]
    if prev != 1:
        raise Problem(f"last {what} core must end with rank 1, got {prev}")
    return p1, p2


def _contract(cores, first_reversed, second_reversed):
    """Contracts 4-D cores [r, p, q, r'] into a (P, Q) matrix; each index mixed-radix over the
    cores' modes, first core most significant unless that index is reversed."""
    t = np.ones((1, 1, 1))
    for g in cores:
        r, p, q, s = g.shape
        x = np.einsum("abr,rpqs->apbqs", t, g)
        if first_reversed:
            x = x.transpose(1, 0, 2, 3, 4)
        if second_reversed:
            x = x.transpose(0, 1, 3, 2, 4)
        t = x.reshape(x.shape[0] * x.shape[1], x.shape[2] * x.shape[3], s)
    return t[:, :, 0]


@kind
class TensorTrain(Update):
    type = "tensor_train"

    def __init__(self, u):
        self.cores = u.strings("cores")
        if not self.cores:
            raise Problem(f"{u.at('cores')}: must not be empty")
        self.row_order, self.column_order = _order(u, "row_order"), _order(u, "column_order")

    def tensors(self):
        return list(self.cores)

    def features(self):
        return {"tt-index-order"} if (self.row_order, self.column_order) != ("forward", "forward") else set()

    def check(self, m, h):
        rows, cols = _chain([h.shape_of(c) for c in self.cores], "TT")
        if (rows, cols) != (m.out, m.inp):
            raise Problem(f"TT row modes multiply to {rows} and column modes to {cols}, but ΔW is {m.out}×{m.inp}")

    def u(self, read, m, h):
        return _contract([read(c) for c in self.cores], self.row_order == "reversed", self.column_order == "reversed")

    def factors(self, read, m, h):
        return {"cores": [read(c) for c in self.cores], "row_order": self.row_order, "column_order": self.column_order}


@kind
class JointTrain(Update):
    type = "joint_train"

    def __init__(self, u):
        self.cores = u.strings("cores")
        if not self.cores:
            raise Problem(f"{u.at('cores')}: must not be empty")
        self.latent, self.rank = u.name("latent"), u.integer("rank", lo=1)

    def tensors(self):
        return self.cores + [self.latent]

    def features(self):
        return {"joint-train"}

    def check(self, m, h):
        latent = h.shape_of(self.latent)
        if not (len(latent) == 1 or (len(latent) == 2 and latent[0] == 1)):
            raise Problem(f"joint-train latent must have shape [N] or [1, N], got {latent}")
        n, g = _chain([h.shape_of(c) for c in self.cores], "joint-train")
        if int(np.prod(latent, dtype=object)) != n:
            raise Problem(f"joint-train latent modes multiply to {n} but the latent holds {int(np.prod(latent, dtype=object))} values")
        if g != self.rank * (m.inp + m.out):
            raise Problem(f"joint-train generated modes multiply to {g}, need {self.rank} × ({m.inp} + {m.out})")

    def lora(self, read, m, h):
        # v = Z · (the train read as a latent × generated matrix); W1 = v[:in·r] as in × r, W2 the rest as r × out.
        v = (read(self.latent).reshape(1, -1) @ _contract([read(c) for c in self.cores], False, False)).reshape(-1)
        r, inp = self.rank, m.inp
        return v[: inp * r].reshape(inp, r).T, v[inp * r:].reshape(r, m.out).T

    def u(self, read, m, h):
        a, b = self.lora(read, m, h)
        return b @ a

    def factors(self, read, m, h):
        return {"cores": [read(c) for c in self.cores], "latent": read(self.latent), "rank": self.rank}


@kind
class TuckerSlice(Update):
    type = "tucker_slice"

    def __init__(self, u):
        self.group = u.name("group")
        self.index = u.ints("index", max_count=8)

    def check(self, m, h):
        g = h.group_index.get(self.group)
        if g is None:
            raise Problem(f"refers to Tucker group {self.group}, which does not exist")
        dims = g.member_dims()
        if len(self.index) != len(dims):
            raise Problem(f"slice index {self.index} has {len(self.index)} entries but group {self.group} has {len(dims)} member modes")
        if any(i >= d for i, d in zip(self.index, dims)):
            raise Problem(f"slice index {self.index} is outside group {self.group}'s member sizes {dims}")
        if (g.out, g.inp) != (m.out, m.inp):
            raise Problem(f"group {self.group} holds {g.out}×{g.inp} slices but the module is {m.out}×{m.inp}")

    def u(self, read, m, h):
        return h.group_index[self.group].slice(read, self.index)

    def factors(self, read, m, h):
        g = h.group_index[self.group]
        return {"group": g.name, "index": list(self.index), "core": read(g.core), "factors": [read(f) for f in g.factors],
                "roles": [m[0] for m in g.modes]}


@kind
class Dense(Update):
    type = "dense"

    def __init__(self, u):
        self.delta = u.name("delta")

    def tensors(self):
        return [self.delta]

    def check(self, m, h):
        if h.shape_of(self.delta) != [m.out, m.inp]:
            raise Problem(f"dense ΔW is {h.shape_of(self.delta)} but must be [{m.out}, {m.inp}]")

    def u(self, read, m, h):
        return read(self.delta)

    def factors(self, read, m, h):
        return {"delta": read(self.delta)}


class TuckerGroup:
    """§2.4: ``T = C ×_1 U_1 ⋯ ×_N U_N`` with row, column and member modes."""

    def __init__(self, f):
        self.name, self.core = f.name("name"), f.name("core")
        self.factors = f.strings("factors")
        self.modes = []
        for m in f.objects("modes"):
            role = m.string("role")
            if role not in ("row", "column", "member"):
                raise Problem(f"{m.at('role')}: unknown role {role!r} (row, column or member)")
            name = m.string("name")
            labels = None
            if m.present("labels"):
                if role != "member":
                    raise Problem(f"{m.at('labels')}: labels name the members of a member mode; a {role} mode has none")
                labels = m.strings("labels")
            self.modes.append((role, name, labels))
        self.dims = []

    def tensors(self):
        return [self.core] + self.factors

    def check(self, shape_of):
        core = shape_of(self.core)
        n = len(core)
        if n < 2:
            raise Problem(f"core must have at least 2 modes, got {core}")
        if len(self.factors) != n or len(self.modes) != n:
            raise Problem(f"core has {n} modes but there are {len(self.factors)} factors and {len(self.modes)} mode descriptions")
        if min(core) < 1:
            raise Problem(f"core has an empty mode: {core}")
        self.dims = []
        for k, (f, (role, name, labels)) in enumerate(zip(self.factors, self.modes)):
            s = shape_of(f)
            if len(s) != 2 or s[1] != core[k] or s[0] < 1:
                raise Problem(f"factor {k} has shape {s} but must be [I, {core[k]}] with I > 0")
            if labels is not None and len(labels) != s[0]:
                raise Problem(f"mode {k} ({name}) has {len(labels)} labels for {s[0]} members")
            self.dims.append(s[0])
        roles = [m[0] for m in self.modes]
        if "row" not in roles or "column" not in roles:
            raise Problem("needs at least one row mode and one column mode")
        prod = 1
        for d in self.dims:
            prod *= d
        if prod > 2**63 - 1:
            raise Problem(f"dimensions {self.dims} overflow")
        self.out = _prod(d for d, m in zip(self.dims, self.modes) if m[0] == "row")
        self.inp = _prod(d for d, m in zip(self.dims, self.modes) if m[0] == "column")

    def member_dims(self):
        return [d for d, m in zip(self.dims, self.modes) if m[0] == "member"]

    def slice(self, read, index):
        core = read(self.core)
        factors = [read(f) for f in self.factors]
        members = iter(index)
        axes = []  # (role) of the remaining axes, in mode order
        t = core
        axis = 0
        for (role, _, _), u in zip(self.modes, factors):
            if role == "member":
                t = np.tensordot(t, u[next(members)], axes=([axis], [0]))
            else:
                t = np.moveaxis(np.tensordot(t, u, axes=([axis], [1])), -1, axis)
                axes.append(role)
                axis += 1
        rows = [i for i, r in enumerate(axes) if r == "row"]
        cols = [i for i, r in enumerate(axes) if r == "column"]
        return t.transpose(rows + cols).reshape(self.out, self.inp)


def _prod(xs):
    p = 1
    for x in xs:
        p *= x
    return p
