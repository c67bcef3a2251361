"""Users' own activations: validate, compile and describe a plain Python ``phi``.

:func:`initsim.activations.register` hands a Python function of one float to
:func:`compile_user`, which

1. evaluates it in Python on a probe grid (:data:`PROBE`: 0, ``+-1e-300``
   and 1201 points in ``[-60, 60]``, denser near 0): a function that raises
   or returns something that is not a real number, or returns NaN or inf at
   a finite input of ``[-60, 60]``, is refused with an error naming it and
   the input;
2. compiles it with Numba (``njit``, ``error_model="numpy"``, fastmath
   off) and as a C callback ``float64(float64)``, the form the kernels
   call; a function Numba cannot compile is refused with Numba's own first
   error line;
3. checks that the compiled function agrees with the Python one on the grid
   (to ``1e-12`` relative): Numba's semantics differ from Python's in
   corners (integer overflow, ``math`` domain errors return NaN), and such a
   function is refused rather than simulated differently from what it says.

The derivative. A given ``dphi`` goes through the same three steps and is
checked against a difference quotient of ``phi`` away from the kinks (an
error when they disagree by more than ``1e-4`` relative: a wrong
derivative would give silently wrong gradients). Without ``dphi`` the
derivative is **derived numerically**: the five-point central difference
``(8 (phi(x+h) - phi(x-h)) - (phi(x+2h) - phi(x-2h))) / (12 h)`` with
``h = 2^-10 max(1, |x|)`` (truncation ``O(h^4)``, rounding
``O(eps / h)``: about ``1e-12`` relative for smooth functions of unit scale,
measured against the built-ins' exact derivatives by the tests). Within
``2 h`` of a kink it switches to the one-sided five-point stencil on ``x``'s
side (at the kink itself the left one, as ``relu'(0) = 0``). At ``+-inf`` it
is the difference quotient at ``+-1e150``.

Kinks (points where ``phi'`` jumps; the theory's quadratures split there)
are taken from ``kinks=`` or detected in ``[-12, 12]`` by
:func:`detect_kinks`. Metadata the theory reads (odd, bounded, nonnegative,
can be dead) is measured on the grid unless given.

The provenance of a registered activation is its name, its source reference
(``module:attribute`` when it came from one) and the SHA-256 of its source
code (:attr:`UserFunction.source_hash`), so a changed function gives a new
config hash.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DERIVATIVE_STEP",
    "PROBE",
    "UserFunction",
    "compile_user",
    "detect_kinks",
    "resolve_reference",
    "source_hash",
]

FloatArray = npt.NDArray[np.float64]

#: The relative step ``h / max(1, |x|)`` of the derived derivative (2^-10, exact).
DERIVATIVE_STEP = 2.0**-10


def _probe_grid() -> FloatArray:
    inner = np.linspace(-4.0, 4.0, 801)
    outer = np.linspace(-60.0, 60.0, 401)
    tiny = np.array([0.0, 1e-300, -1e-300, 1e-8, -1e-8])
    return np.unique(np.concatenate([inner, outer, tiny]))


#: The inputs at which a user's functions are validated.
PROBE = _probe_grid()


@dataclass(frozen=True, eq=False)
class UserFunction:
    """A registered activation's functions, compiled, with their provenance.

    Attributes
    ----------
    name : str
        The registered name.
    phi, dphi : callable
        The user's Python functions (``dphi`` None when derived).
    phi_c, dphi_c : numba.core.ccallback.CFunc
        The compiled C callbacks ``float64(float64)`` the kernels call.
    phi_ufunc, dphi_ufunc : numpy.ufunc
        Vectorised compiled versions (the numpy side and the theory).
    kinks : tuple of float
        Where ``phi'`` jumps (given or detected).
    params : tuple of (str, float)
        The values of the function's keyword parameters.
    derived_dphi : bool
        Whether ``phi'`` is the numerical derivative.
    reference : str or None
        ``module:attribute`` the function was loaded from, if any.
    source_hash : str
        SHA-256 of the source of ``phi`` (and ``dphi``) and the parameters.
    """

    name: str
    phi: Callable[..., float]
    dphi: Callable[..., float] | None
    kinks: tuple[float, ...]
    phi_c: Any = field(repr=False)
    dphi_c: Any = field(repr=False)
    phi_ufunc: Any = field(repr=False)
    dphi_ufunc: Any = field(repr=False)
    params: tuple[tuple[str, float], ...] = ()
    derived_dphi: bool = False
    reference: str | None = None
    source_hash: str = ""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UserFunction):
            return NotImplemented
        return (self.name, self.params, self.source_hash) == (
            other.name,
            other.params,
            other.source_hash,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.params, self.source_hash))

    def __reduce__(self) -> tuple[Any, ...]:
        # Compiled callbacks do not pickle: a worker process rebuilds the
        # activation from its registered name or its module reference.
        return (_rebuild, (self.name, self.reference, dict(self.params)))


def _rebuild(name: str, reference: str | None, params: dict[str, float]) -> UserFunction:
    from initsim import activations

    act = activations.get(reference if reference is not None else name, **params)
    assert act.user is not None
    return act.user


def source_hash(*functions: Callable[..., Any] | None, params: Mapping[str, float]) -> str:
    """SHA-256 of the functions' source code (or bytecode) and the parameter values.

    Parameters
    ----------
    *functions : callable or None
        The functions (None entries are skipped).
    params : mapping
        Parameter values, included so that two parameterisations differ.

    Returns
    -------
    str
        The hex digest.
    """
    h = hashlib.sha256()
    for f in functions:
        if f is None:
            continue
        try:
            text = inspect.getsource(f)
        except (OSError, TypeError):
            code = getattr(f, "__code__", None)
            text = repr(code.co_code) + repr(code.co_consts) if code is not None else repr(f)
        h.update(text.encode())
    h.update(repr(sorted(params.items())).encode())
    return h.hexdigest()


def _bind(f: Callable[..., Any], params: Mapping[str, float]) -> Callable[[float], Any]:
    """Return ``x -> f(x, name=value, ...)`` (compilable when ``f`` is)."""
    if not params:
        return f
    names = list(params)
    for k in names:
        if not k.isidentifier():
            raise ValueError(f"params: {k!r} is not a valid parameter name")
    args = ", ".join(f"{k}=_v{i}" for i, k in enumerate(names))
    namespace: dict[str, Any] = {"_f": f}
    namespace.update({f"_v{i}": float(params[k]) for i, k in enumerate(names)})
    exec(f"def bound(x):\n    return _f(x, {args})\n", namespace)  # a fixed template
    return namespace["bound"]


def _as_python_function(f: Callable[..., Any]) -> Callable[..., Any]:
    """Return a Python function Numba can compile, for a builtin such as ``math.tanh`` too."""
    if inspect.isfunction(f):
        return f

    def call(x: float) -> Any:
        return f(x)

    call.__qualname__ = getattr(f, "__qualname__", repr(f))
    return call


def _python_values(label: str, f: Callable[[float], Any]) -> FloatArray:
    out = np.empty(PROBE.shape[0])
    for i, x in enumerate(PROBE):
        xf = float(x)
        try:
            y = f(xf)
        except Exception as err:  # any error of the user's code is reported
            raise ValueError(
                f"activation {label} raised {type(err).__name__}({err}) at x = {xf!r}"
            ) from err
        try:
            yf = float(y)
        except (TypeError, ValueError):
            raise ValueError(
                f"activation {label} must return a real number; at x = {xf!r} it returned "
                f"{y!r} ({type(y).__name__})"
            ) from None
        if not math.isfinite(yf):
            raise ValueError(
                f"activation {label} returned {yf!r} for the finite input x = {xf!r}; "
                "an activation must be finite on finite inputs (at least on [-60, 60])"
            )
        out[i] = yf
    return out


def _compile(label: str, f: Callable[..., Any], params: Mapping[str, float]) -> Any:
    import numba

    try:
        inner = numba.njit(f, error_model="numpy", fastmath=False)
        jitted = numba.njit(_bind(inner, params), error_model="numpy") if params else inner
        jitted(0.5)
    except Exception as err:  # Numba raises many error types
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        useful = [ln for ln in lines if not ln.startswith(("Failed in", "During:", "File "))]
        reason = (useful or lines or [type(err).__name__])[0]
        raise ValueError(
            f"activation {label} cannot be compiled by Numba: {reason}. Write it with the math "
            "module and scalar arithmetic on one float (no numpy arrays, no Python objects)"
        ) from None
    return jitted


def _agree(label: str, jitted: Any, want: FloatArray) -> None:
    got = np.array([jitted(float(x)) for x in PROBE])
    bad = ~(np.abs(got - want) <= 1e-12 * np.maximum(1.0, np.abs(want)))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"activation {label}: the Numba-compiled function differs from the Python one "
            f"at x = {PROBE[i]!r} ({got[i]!r} against {want[i]!r}); it would be simulated "
            "differently from what it computes in Python"
        )


def _derivative(phi_j: Any, kinks: tuple[float, ...]) -> Any:
    import numba

    step = DERIVATIVE_STEP
    ks = tuple(float(k) for k in kinks) if kinks else (math.inf,)

    @numba.njit(error_model="numpy", fastmath=False)
    def central(x: float, h: float) -> float:  # pragma: no cover - compiled
        return (8.0 * (phi_j(x + h) - phi_j(x - h)) - (phi_j(x + 2.0 * h) - phi_j(x - 2.0 * h))) / (
            12.0 * h
        )

    @numba.njit(error_model="numpy", fastmath=False)
    def one_sided(x: float, h: float) -> float:  # pragma: no cover - compiled
        # the five-point one-sided stencil towards x + 4 h (h may be negative)
        return (
            -25.0 * phi_j(x)
            + 48.0 * phi_j(x + h)
            - 36.0 * phi_j(x + 2.0 * h)
            + 16.0 * phi_j(x + 3.0 * h)
            - 3.0 * phi_j(x + 4.0 * h)
        ) / (12.0 * h)

    @numba.njit(error_model="numpy", fastmath=False)
    def dphi(x: float) -> float:  # pragma: no cover - compiled
        if x != x:
            return x
        if abs(x) == math.inf:
            x = math.copysign(1e150, x)
        h = step * max(1.0, abs(x))
        for k in ks:
            if abs(x - k) < 2.0 * h:  # the central stencil would straddle the kink
                if x > k:
                    return one_sided(x, h)
                return one_sided(x, -h)  # at the kink itself: the left derivative
        return central(x, h)

    return dphi


def _nan_guard(f_j: Any) -> Any:
    """Wrap a compiled function so that NaN in gives NaN out (the registry's convention)."""
    import numba

    @numba.njit(error_model="numpy", fastmath=False)
    def g(x: float) -> float:  # pragma: no cover - compiled
        if x != x:
            return x
        return f_j(x)

    return g


def detect_kinks(
    phi: Callable[[FloatArray], FloatArray], lo: float = -12.0, hi: float = 12.0
) -> tuple[float, ...]:
    """Locate the jumps of ``phi'`` in ``[lo, hi]`` from values of ``phi``.

    A cell of a fine grid (spacing ``1/256``) whose slope change stays the
    same when the cell is halved (a kink) rather than halving with it
    (curvature) is refined by bisection to width ``1e-10``; the kink is
    where the two one-sided tangents meet (exact for piecewise-linear
    functions), snapped to a multiple of ``2^-30`` within ``1e-9``.

    Parameters
    ----------
    phi : callable
        Vectorised ``phi``.
    lo, hi : float
        The search interval.

    Returns
    -------
    tuple of float
        The kinks found, increasing.
    """
    dx = 1.0 / 256.0
    x = np.arange(lo, hi + dx, dx)
    y = phi(x)
    slope = np.diff(y) / dx
    jump = np.abs(np.diff(slope))
    scale = 1e-6 * (1.0 + np.abs(slope[1:]) + np.abs(slope[:-1]))
    found: list[float] = []
    for i in np.flatnonzero(jump > scale):
        a, b = float(x[i]), float(x[i + 2])  # the kink, if any, is inside (a, b)
        k = _refine(phi, a, b)
        if k is not None and not any(abs(k - f) < 4 * dx for f in found):
            found.append(k)
    return tuple(sorted(found))


def _refine(phi: Callable[[FloatArray], FloatArray], a: float, b: float) -> float | None:
    def jump_in(lo: float, hi: float) -> float:
        w = (hi - lo) / 4.0
        p = phi(np.array([lo - w, lo, hi, hi + w]))
        return abs((p[3] - p[2]) / w - (p[1] - p[0]) / w)

    first = jump_in(a, b)
    if not first > 0.0:
        return None
    for _ in range(60):
        if b - a < 1e-10:
            break
        m = 0.5 * (a + b)
        left, right = jump_in(a, m), jump_in(m, b)
        if max(left, right) < 0.25 * first:  # the change spreads out: curvature, no kink
            return None
        a, b = (a, m) if left >= right else (m, b)
    w = max(b - a, 1e-6)
    p = phi(np.array([a - w, a, b, b + w]))
    s_left, s_right = (p[1] - p[0]) / w, (p[3] - p[2]) / w
    if abs(s_left - s_right) < 1e-9 * (1.0 + abs(s_left)):
        return None
    k = (p[2] - p[1] + s_left * a - s_right * b) / (s_left - s_right)
    if not a - w <= k <= b + w:
        k = 0.5 * (a + b)
    snapped = round(k * 2.0**30) / 2.0**30
    return float(snapped if abs(snapped - k) < 1e-9 else k)


def compile_user(
    name: str,
    phi: Callable[..., Any],
    dphi: Callable[..., Any] | None,
    *,
    params: Mapping[str, float],
    reference: str | None = None,
    kinks: tuple[float, ...] | None = None,
) -> UserFunction:
    """Validate and compile a user's ``phi`` (and ``dphi``); see the module docstring.

    Parameters
    ----------
    name : str
        The name being registered (used in the error messages).
    phi : callable
        ``phi(x, **params) -> float``.
    dphi : callable or None
        ``phi'(x, **params)``, or None to derive it numerically.
    params : mapping
        The parameter values.
    reference : str, optional
        ``module:attribute`` the function came from.
    kinks : tuple of float, optional
        Where ``phi'`` jumps; None detects them (:func:`detect_kinks`).

    Returns
    -------
    UserFunction
        The compiled functions.

    Raises
    ------
    ValueError
        If a function raises, returns a non-real or non-finite value on the
        probe grid, cannot be compiled, compiles to something else, or
        ``dphi`` is not the derivative of ``phi``.
    """
    import numba

    label = f"{name!r} (phi {getattr(phi, '__qualname__', repr(phi))})"
    digest = source_hash(phi, dphi, params=params)
    given_phi, given_dphi = phi, dphi
    phi = _as_python_function(phi)
    dphi = _as_python_function(dphi) if dphi is not None else None
    sig = numba.float64(numba.float64)
    phi1 = _bind(phi, params)
    want = _python_values(label, phi1)
    phi_j = _compile(label, phi, params)
    _agree(label, phi_j, want)
    phi_g = _nan_guard(phi_j)
    phi_u = numba.vectorize([sig])(phi_g)
    if kinks is None:
        with np.errstate(all="ignore"):
            kinks = detect_kinks(phi_u)
    if dphi is not None:
        dlabel = f"{name!r} (dphi {getattr(dphi, '__qualname__', repr(dphi))})"
        dphi1 = _bind(dphi, params)
        dwant = _python_values(dlabel, dphi1)
        dphi_j = _compile(dlabel, dphi, params)
        _agree(dlabel, dphi_j, dwant)
        dphi_g = _nan_guard(dphi_j)
    else:
        dphi_g = _derivative(phi_j, kinks)
    dphi_u = numba.vectorize([sig])(dphi_g)
    if dphi is not None:
        with np.errstate(all="ignore"):
            _check_derivative(name, phi_u, dphi_u, kinks)
    return UserFunction(
        name=name,
        phi=given_phi,
        dphi=given_dphi,
        kinks=tuple(kinks),
        phi_c=numba.cfunc(sig, error_model="numpy")(phi_g),
        dphi_c=numba.cfunc(sig, error_model="numpy")(dphi_g),
        phi_ufunc=phi_u,
        dphi_ufunc=dphi_u,
        params=tuple(sorted((k, float(v)) for k, v in params.items())),
        derived_dphi=dphi is None,
        reference=reference,
        source_hash=digest,
    )


def _check_derivative(name: str, phi_u: Any, dphi_u: Any, kinks: tuple[float, ...]) -> None:
    """Refuse a ``dphi`` that is not the derivative of ``phi`` (away from kinks)."""
    x = np.linspace(-6.0, 6.0, 601) + 1e-3  # off the usual kink locations
    h = DERIVATIVE_STEP * np.maximum(1.0, np.abs(x))
    near = np.zeros(x.shape, dtype=bool)
    for k in kinks:
        near |= np.abs(x - k) <= 3.0 * h
    fd = (8.0 * (phi_u(x + h) - phi_u(x - h)) - (phi_u(x + 2 * h) - phi_u(x - 2 * h))) / (12.0 * h)
    d = dphi_u(x)
    bad = (~near) & ~(np.abs(d - fd) <= 1e-4 * np.maximum(1.0, np.abs(fd)))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"activation {name!r}: dphi is not the derivative of phi: at x = {x[i]:.6g}, "
            f"dphi gives {float(d[i])!r} but phi's difference quotient is {float(fd[i])!r}"
        )


def resolve_reference(reference: str) -> tuple[Any, str]:
    """Import ``module:attribute`` (the working directory first on the path).

    Parameters
    ----------
    reference : str
        ``"pkg.module:name"``.

    Returns
    -------
    obj : object
        The attribute.
    reference : str
        The reference, normalised (whitespace stripped).

    Raises
    ------
    ValueError
        If the reference is malformed, the module cannot be imported or has
        no such attribute.
    """
    text = reference.strip()
    module_name, sep, attr = text.partition(":")
    if not sep or not module_name or not attr or ":" in attr:
        raise ValueError(
            f"activation reference {reference!r} must be 'module:function' (e.g. 'myacts:swish')"
        )
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(
            f"activation reference {reference!r}: cannot import module {module_name!r} "
            f"({err}); it must be importable from the working directory ({cwd}) or the path"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(
                f"activation reference {reference!r}: module {module_name!r} has no "
                f"attribute {attr!r}"
            )
        obj = getattr(obj, part)
    return obj, text
