"""The structured update kinds of docs/FORMAT.md §2.3, forms 6–11 (LyCORIS and PEFT beyond LoRA):
Tucker-2 conv kernels, Kronecker (LoKr), Hadamard (LoHa), AdaLoRA's ``B·diag(E)·A``, VeRA over shared
projections (§2.4.1), and IA³, with the factor matrices of §2.3.1.

For a convolution (a module with ``kernel``) every matrix here is the weight flattened to
``out × in``, ``in = channels · K``, column ``c · K + s`` = channel ``c`` at kernel position ``s``.
Registered in ``_updates.KINDS`` like the forms of version 1.0; all arithmetic is float64.
"""
import numpy as np

from ._fields import Problem
from ._updates import Update, kind


class Factor:
    """One side of a Kronecker or Hadamard product (§2.3.1): a ``rows × cols`` matrix given as
    ``full`` (``matrix``), ``low_rank`` (``b · a``) or ``tucker`` (Tucker-2 over the module's kernel)."""

    FORMS = ("full", "low_rank", "tucker")

    def __init__(self, f):
        self.form = f.string("form")
        if self.form == "full":
            self.names = {"matrix": f.name("matrix")}
        elif self.form == "low_rank":
            self.names = {"a": f.name("a"), "b": f.name("b")}
        elif self.form == "tucker":
            self.names = {"core": f.name("core"), "a": f.name("a"), "b": f.name("b")}
        else:
            raise f.fail("form", f"unknown factor form {self.form!r} (full, low_rank or tucker)")

    def tensors(self):
        return list(self.names.values())

    def size(self, m, h, what):
        """``(rows, cols)`` after checking that the factor's tensors fit together."""
        s = {k: h.shape_of(v) for k, v in self.names.items()}
        if self.form == "full":
            if len(s["matrix"]) != 2:
                raise Problem(f"{what} must be a matrix, got {s['matrix']}")
            return tuple(s["matrix"])
        if self.form == "low_rank":
            a, b = s["a"], s["b"]
            if len(a) != 2 or len(b) != 2:
                raise Problem(f"{what}: low-rank factors must be matrices, got b {b} and a {a}")
            if a[0] < 1:
                raise Problem(f"{what}: rank 0")
            if b[1] != a[0]:
                raise Problem(f"{what}: b {b} and a {a} do not chain")
            return b[0], a[1]
        return tucker_size(s["core"], s["a"], s["b"], m, what)

    def matrix(self, read, m):
        t = {k: read(v) for k, v in self.names.items()}
        if self.form == "full":
            return t["matrix"]
        if self.form == "low_rank":
            return t["b"] @ t["a"]
        return tucker_matrix(t["core"], t["a"], t["b"], m.kernel_size)

    def low_rank(self, read, m):
        """Exact ``(b [rows, r], a [r, cols])`` with the matrix = ``b · a``."""
        t = {k: read(v) for k, v in self.names.items()}
        if self.form == "low_rank":
            return t["b"], t["a"]
        if self.form == "tucker":
            return t["b"], tucker_in_side(t["core"], t["a"], m.kernel_size)
        w = t["matrix"]
        rows, cols = w.shape
        return (np.eye(rows), w) if rows <= cols else (w, np.eye(cols))

    def arrays(self, read):
        return dict({k: read(v) for k, v in self.names.items()}, form=self.form)


def tucker_size(core, a, b, m, what):
    """Checks a Tucker-2 kernel factorization (form 6, §2.3.1) of a module with a kernel; returns
    ``(rows, cols)``."""
    if not m.kernel:
        raise Problem(f"{what}: a Tucker core needs a convolution (the module has no kernel)")
    if len(core) < 3 or min(core) < 1:
        raise Problem(f"{what}: the Tucker core must be [r1, r2, kernel…] without empty dimensions, got {core}")
    if len(a) != 2 or len(b) != 2:
        raise Problem(f"{what}: Tucker factors must be matrices, got b {b} and a {a}")
    if b[1] != core[0] or a[0] != core[1]:
        raise Problem(f"{what}: Tucker factors b {b} and a {a} do not match the core {core} ([rows, r1] and [r2, channels])")
    positions = 1
    for k in core[2:]:
        positions *= k
    if positions != m.kernel_size:
        raise Problem(f"{what}: the Tucker core's kernel {core[2:]} does not have the layer's {m.kernel_size} kernel positions")
    return b[0], a[1] * m.kernel_size


def tucker_in_side(core, a, kernel_size):
    """``A'[i, c · K + s] = Σ_j core[i, j, s] · a[j, c]``, so that the Tucker-2 matrix is ``b · A'``."""
    r1, r2 = core.shape[:2]
    c = core.reshape(r1, r2, kernel_size)
    return np.einsum("ijs,jc->ics", c, a).reshape(r1, a.shape[1] * kernel_size)


def tucker_matrix(core, a, b, kernel_size):
    return b @ tucker_in_side(core, a, kernel_size)


@kind
class ConvTucker(Update):
    """Form 6: ``U[o, c · K + s] = Σ_{i,j} B[o, i] · C[i, j, s] · A[j, c]`` (LoCon with ``lora_mid``)."""

    type = "conv_tucker"

    def __init__(self, u):
        self.core, self.a, self.b = u.name("core"), u.name("a"), u.name("b")

    def tensors(self):
        return [self.core, self.a, self.b]

    def features(self):
        return {"conv-tucker"}

    def check(self, m, h):
        if not m.kernel:
            raise Problem("a conv_tucker update needs a convolution (the module has no kernel)")
        rows, cols = tucker_size(h.shape_of(self.core), h.shape_of(self.a), h.shape_of(self.b), m, "conv_tucker")
        if (rows, cols) != (m.out, m.inp):
            raise Problem(f"the Tucker factors make a {rows}×{cols} update but ΔW is {m.out}×{m.inp}")

    def lora(self, read, m, h):
        return tucker_in_side(read(self.core), read(self.a), m.kernel_size), read(self.b)

    def u(self, read, m, h):
        a, b = self.lora(read, m, h)
        return b @ a

    def factors(self, read, m, h):
        return {"core": read(self.core), "a": read(self.a), "b": read(self.b)}


@kind
class Kronecker(Update):
    """Form 7: ``U = W1 ⊗ W2`` (LoKr); for a convolution the kernel belongs to ``W2``."""

    type = "kronecker"

    def __init__(self, u):
        self.w1, self.w2 = Factor(u.object("w1")), Factor(u.object("w2"))

    def tensors(self):
        return self.w1.tensors() + self.w2.tensors()

    def features(self):
        return {"kronecker"}

    def check(self, m, h):
        if self.w1.form == "tucker":
            raise Problem("the first Kronecker factor cannot carry a Tucker core (the kernel belongs to W2)")
        a, c = self.w1.size(m, h, "Kronecker factor W1")
        b, e = self.w2.size(m, h, "Kronecker factor W2")
        if (a * b, c * e) != (m.out, m.inp):
            raise Problem(f"W1 ({a}×{c}) ⊗ W2 ({b}×{e}) is not {m.out}×{m.inp}")
        if e % m.kernel_size:
            raise Problem(f"W2 has {e} columns, not a multiple of the kernel's {m.kernel_size} positions")

    def u(self, read, m, h):
        return np.kron(self.w1.matrix(read, m), self.w2.matrix(read, m))

    def lora(self, read, m, h):
        # kron(B1 A1, B2 A2) = kron(B1, B2) · kron(A1, A2): exact, of rank r1 · r2.
        b1, a1 = self.w1.low_rank(read, m)
        b2, a2 = self.w2.low_rank(read, m)
        return np.kron(a1, a2), np.kron(b1, b2)

    def factors(self, read, m, h):
        return {"w1": self.w1.arrays(read), "w2": self.w2.arrays(read)}


@kind
class Hadamard(Update):
    """Form 8: ``U = P1 ⊙ P2`` (LoHa), both factors ``low_rank`` or both ``tucker``."""

    type = "hadamard"

    def __init__(self, u):
        self.p1, self.p2 = Factor(u.object("p1")), Factor(u.object("p2"))

    def tensors(self):
        return self.p1.tensors() + self.p2.tensors()

    def features(self):
        return {"hadamard"}

    def check(self, m, h):
        for k, p in ((1, self.p1), (2, self.p2)):
            if p.form == "full":
                raise Problem(f"Hadamard factor {k} must be low-rank or Tucker, not a full matrix")
        if self.p1.form != self.p2.form:
            raise Problem(f"the Hadamard factors must have one form, got {self.p1.form} and {self.p2.form}")
        for k, p in ((1, self.p1), (2, self.p2)):
            rows, cols = p.size(m, h, f"Hadamard factor {k}")
            if (rows, cols) != (m.out, m.inp):
                raise Problem(f"Hadamard factor {k} is {rows}×{cols} but ΔW is {m.out}×{m.inp}")

    def u(self, read, m, h):
        return self.p1.matrix(read, m) * self.p2.matrix(read, m)

    def lora(self, read, m, h):
        # (B1 A1) ⊙ (B2 A2) = B A with B[o, p·r2 + q] = B1[o, p] B2[o, q], A[p·r2 + q, i] = A1[p, i] A2[q, i].
        b1, a1 = self.p1.low_rank(read, m)
        b2, a2 = self.p2.low_rank(read, m)
        b = (b1[:, :, None] * b2[:, None, :]).reshape(b1.shape[0], -1)
        a = (a1[:, None, :] * a2[None, :, :]).reshape(-1, a1.shape[1])
        return a, b

    def factors(self, read, m, h):
        return {"p1": self.p1.arrays(read), "p2": self.p2.arrays(read)}


@kind
class LowRankDiagonal(Update):
    """Form 9: ``U = B · diag(E) · A`` (AdaLoRA); rank 0 is allowed and gives ``U = 0``."""

    type = "low_rank_diagonal"

    def __init__(self, u):
        self.a, self.b, self.e = u.name("a"), u.name("b"), u.name("e")

    def tensors(self):
        return [self.a, self.b, self.e]

    def features(self):
        return {"low-rank-diagonal"}

    def check(self, m, h):
        a, b, e = h.shape_of(self.a), h.shape_of(self.b), h.shape_of(self.e)
        if len(a) != 2 or len(b) != 2:
            raise Problem(f"low-rank factors must be matrices, got A {a} and B {b}")
        r = a[0]
        if a[1] != m.inp:
            raise Problem(f"A is {a} but the layer has {m.inp} inputs")
        if b != [m.out, r]:
            raise Problem(f"B is {b} but must be [{m.out}, {r}]")
        if e != [r]:
            raise Problem(f"the diagonal E is {e} but must be [{r}]")

    def lora(self, read, m, h):
        return read(self.e)[:, None] * read(self.a), read(self.b)

    def u(self, read, m, h):
        a, b = self.lora(read, m, h)
        return b @ a

    def factors(self, read, m, h):
        return {"a": read(self.a), "b": read(self.b), "e": read(self.e)}


class Projections:
    """§2.4.1: VeRA's shared frozen projections ``A`` ``[r, max_in]`` and ``B`` ``[max_out, r]``."""

    def __init__(self, f):
        self.name, self.a, self.b = f.name("name"), f.name("a"), f.name("b")

    def tensors(self):
        return [self.a, self.b]

    def check(self, shape_of):
        a, b = shape_of(self.a), shape_of(self.b)
        if len(a) != 2 or len(b) != 2 or min(a + b) < 1 or b[1] != a[0]:
            raise Problem(f"A {a} and B {b} must be non-empty [r, in] and [out, r] matrices of one rank")
        self.rank, self.max_in, self.max_out = a[0], a[1], b[0]


@kind
class VeRA(Update):
    """Form 10: ``U = diag(λb) · B_P[:out, :] · diag(λd) · A_P[:, :in]``."""

    type = "vera"

    def __init__(self, u):
        self.projections = u.name("projections")
        self.lambda_b, self.lambda_d = u.name("lambda_b"), u.name("lambda_d")

    def tensors(self):
        return [self.lambda_b, self.lambda_d]

    def features(self):
        return {"vera"}

    def check(self, m, h):
        p = h.projection_index.get(self.projections)
        if p is None:
            raise Problem(f"refers to projections {self.projections}, which do not exist")
        if h.shape_of(self.lambda_b) != [m.out]:
            raise Problem(f"λ_b is {h.shape_of(self.lambda_b)} but must be [{m.out}]")
        if h.shape_of(self.lambda_d) != [p.rank]:
            raise Problem(f"λ_d is {h.shape_of(self.lambda_d)} but the projections {p.name} have rank {p.rank}")
        if p.max_in < m.inp or p.max_out < m.out:
            raise Problem(f"projections {p.name} ({p.max_out}×{p.rank}, {p.rank}×{p.max_in}) are smaller than the {m.out}×{m.inp} layer")

    def lora(self, read, m, h):
        p = h.projection_index[self.projections]
        a = read(self.lambda_d)[:, None] * read(p.a)[:, : m.inp]
        b = read(self.lambda_b)[:, None] * read(p.b)[: m.out, :]
        return a, b

    def u(self, read, m, h):
        a, b = self.lora(read, m, h)
        return b @ a

    def factors(self, read, m, h):
        p = h.projection_index[self.projections]
        return {"projections": p.name, "a": read(p.a), "b": read(p.b),
                "lambda_b": read(self.lambda_b), "lambda_d": read(self.lambda_d)}


@kind
class IA3(Update):
    """Form 11: ``W' = W ⊙ v`` along the output rows or the input channels; no ``ΔW`` of its own."""

    type = "ia3"
    additive = False

    def __init__(self, u):
        self.vector = u.name("vector")
        self.axis = u.opt_string("axis", "out")
        if self.axis not in ("out", "in"):
            raise u.fail("axis", f"unknown axis {self.axis!r} (out or in)")

    def tensors(self):
        return [self.vector]

    def features(self):
        return {"ia3"}

    def check(self, m, h):
        n = m.out if self.axis == "out" else m.channels
        if h.shape_of(self.vector) != [n]:
            what = "output features" if self.axis == "out" else "input channels"
            raise Problem(f"the IA³ vector is {h.shape_of(self.vector)} but must be [{n}] ({what})")
        if m.scale != 1:
            raise Problem(f"an IA³ rescaling has no scale (got {m.scale}, must be 1)")
        if m.dora_magnitude is not None or m.bias_delta is not None:
            raise Problem("an IA³ rescaling cannot carry a DoRA magnitude or a bias change")

    def u(self, read, m, h):
        raise ValueError(f"module {m.name} is an IA³ rescaling (W' = W ⊙ v): it has no ΔW without the base weight; "
                         "use apply(name, weight)")

    def factors(self, read, m, h):
        return {"vector": read(self.vector), "axis": self.axis}
