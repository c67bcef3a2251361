"""Property and statistical checks of a user's own weight initializer.

:func:`verify` takes the user's initializer (a ``"module:attribute"`` string,
a callable ``my_init(shape, rng) -> ndarray`` or an object with
``sample(shape, seed=...)`` and optionally ``variance(fan_in, fan_out)``),
draws weight matrices from it in PyTorch layout ``(fan_out, fan_in)`` and
checks, in this order:

1. **return contract** -- a float ndarray of exactly ``shape``, all finite
   (checked on every draw, not only the first ones). A violation is a usage
   error (:class:`VerifyUsageError`, a ValueError; exit status 2), and so is a
   target that cannot be imported, is not callable or raises. Two calls with
   identically seeded generators must agree, else a WARN (not reproducible).
2. **variance law** -- ``Var(W_ij)``, the variance of an entry across draws
   averaged over positions (0 for deterministic schemes such as identity,
   as in :mod:`initsim.initializers`), is estimated on a grid of fan pairs
   (``dev``: fan_in, fan_out in {16, 64, 256}). Each family ``c * g(fan_in,
   fan_out)`` with ``g`` in 1/fan_in, 1/fan_out, 2/(fan_in + fan_out),
   1/max(fan_in, fan_out), 1 (constant), fan_in, fan_out is fitted (``c`` by
   weighted least squares in log space); a family *fits* when every grid
   point is within :data:`LAW_TOLERANCE` (10 %) of ``c g``, or 4 Monte Carlo
   standard errors if that is larger. The best fitting family, with ``c``
   named when it is within 5 % of a known coefficient (1/fan_in LeCun,
   2/fan_in He, 1/(3 fan_in) PyTorch's nn.Linear default, 2/(fan_in +
   fan_out) Glorot, ...), is the reported scheme; otherwise "no known
   scheme" and the power law ``c fan_in^a fan_out^b``. Verdict: FAIL when the
   variance *grows* with a fan (``a`` or ``b`` > 0.25; the seed blog's
   ``randn(n_in, n_out) / sqrt(1/n_in)`` typo gives ``Var = fan_in``), WARN
   for a constant or unrecognised law, PASS otherwise.
3. **declared variance** (only when the target has ``variance``) -- a
   z-test per grid point of the sample variance against the declared one,
   combined with Holm's method at family-wise level ``alpha``.
4. **mean** -- a z-test per grid point of ``E[W_ij] = 0`` (Holm, ``alpha``);
   a nonzero mean is a WARN (it adds a coherent component growing like
   ``fan_in * mean``; the depth check shows whether it matters).
5. **symmetry breaking** -- no two rows (units) of any sampled matrix are
   identical; a constant initializer (zeros) FAILs.
6. **variance through depth** -- bias-free MLPs of the profile's depth and
   width are simulated in numpy with fresh weights from the target for every
   layer; inputs lie on a sphere scaled so that ``q^1`` is about 1 (the
   regime initializers are designed for; irrelevant for relu-like
   activations). PASS when ``E[q^l] / E[q^1]`` stays within
   :data:`Q_RATIO_BAND` ``[1/2, 2]`` at every layer ``l``; otherwise FAIL,
   "vanishing" or "exploding". The mean-field prediction
   (:func:`initsim.theory.q_map` with ``sigma_w2 = fan_in * Var``) is shown
   next to it.
7. **dead units** -- the fraction of last-layer units whose output is 0 for
   every input of the batch; FAIL above :data:`DEAD_LIMIT` (50 %, "dead
   network"); a WARN when every net overflowed before the last layer.
   Symmetric weights keep its expectation below 1/2 at any depth.

Sample sizes come from a profile (:data:`PROFILES`): ``dev`` (seconds),
``ci`` and ``thorough``. The same seed gives the same report for an
initializer that draws only from the generator (or seed) it is given.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import os
import queue
import sys
import threading
import time
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from initsim.provenance import json_safe
from initsim.seeding import as_seed_sequence

__all__ = [
    "DEAD_LIMIT",
    "DEFAULT_TIMEOUT",
    "LAW_TOLERANCE",
    "PROFILES",
    "Q_RATIO_BAND",
    "VerifyProfile",
    "VerifyReport",
    "VerifyRow",
    "VerifyUsageError",
    "load_target",
    "report_json",
    "verify",
]

#: Relative tolerance for a variance family to fit a grid point.
LAW_TOLERANCE = 0.10
#: Monte Carlo standard errors that also count as a fit (when larger than the tolerance).
LAW_SE_FACTOR = 4.0
#: Relative distance at which a fitted coefficient gets a known scheme's name.
COEFFICIENT_TOLERANCE = 0.05
#: A fitted exponent of fan_in or fan_out above this means "the variance grows with the fan".
GROWTH_EXPONENT = 0.25
#: ``E[q^l] / E[q^1]`` must stay in this closed band at every layer.
Q_RATIO_BAND = (0.5, 2.0)
#: Largest fraction of dead last-layer units that still passes.
DEAD_LIMIT = 0.5
#: Seconds one call of the target may take before it counts as hanging (``timeout``).
DEFAULT_TIMEOUT = 60.0

PASS, FAIL, WARN = "PASS", "FAIL", "WARN"


class VerifyUsageError(ValueError):
    """The target cannot be verified: not importable, not callable, or it broke its contract."""


class _TargetTimeout(Exception):
    """A call of the target did not return within the timeout (reported as a FAIL)."""

    def __init__(self, call: str, shape: Any, timeout: float) -> None:
        super().__init__(f"{call} did not return within {timeout:g} s")
        self.call = call
        self.shape = shape
        self.timeout = timeout


def _describe_exit(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _Caller:
    """Runs user code, with a timeout per call, in one daemon worker thread.

    Anything the user code raises, ``SystemExit`` and other ``BaseException``
    included, comes back wrapped in :class:`_Raised` (never propagated), so a
    ``sys.exit()`` inside an initializer cannot end the verification. A call
    that does not return within ``timeout`` seconds raises
    :class:`_TargetTimeout`; the worker is then abandoned (Python cannot stop
    a thread; a daemon thread does not keep the process alive). Without a
    timeout the calls run in the calling thread.
    """

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._results: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, args = job
            try:
                out = fn(*args)
            except BaseException as exc:  # SystemExit would silently end the thread
                out = _Raised(exc)
            self._results.put(out)

    def __call__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Return ``fn(*args)``, or :class:`_Raised` with what it raised."""
        if self.timeout is None:
            try:
                return fn(*args)
            except KeyboardInterrupt:  # the user's own Ctrl-C
                raise
            except BaseException as exc:
                return _Raised(exc)
        if self._worker is None:
            self._worker = threading.Thread(
                target=self._loop, name="initsim-verify-target", daemon=True
            )
            self._worker.start()
        self._jobs.put((fn, args))
        try:
            return self._results.get(timeout=self.timeout)
        except queue.Empty:
            raise _TargetTimeout("", args[0] if args else None, self.timeout) from None

    def close(self) -> None:
        """Let the worker thread end (a hung one ends with the process)."""
        if self._worker is not None:
            self._jobs.put(None)


@dataclass(frozen=True)
class _Raised:
    """What user code raised (returned by :class:`_Caller` instead of propagating)."""

    exc: BaseException


@dataclass(frozen=True)
class VerifyProfile:
    """Sample sizes of one verification profile.

    Attributes
    ----------
    name : str
        Profile name.
    fans : tuple of int
        The fan_in and fan_out values of the variance grid (all pairs).
    entries : int
        Minimum number of sampled entries per fan pair.
    min_draws : int
        Minimum number of matrices per fan pair (batch-means standard errors).
    contract_shapes : tuple of tuple of int
        Extra ``(fan_out, fan_in)`` shapes for the return contract.
    depth, width, nets, batch : int
        The simulated MLPs: hidden layers, units per layer, independent
        nets and inputs per net.
    """

    name: str
    fans: tuple[int, ...]
    entries: int
    min_draws: int
    contract_shapes: tuple[tuple[int, int], ...]
    depth: int
    width: int
    nets: int
    batch: int


_CONTRACT = ((3, 5), (5, 3), (1, 7), (7, 1), (2, 2), (64, 32))

#: The profiles by name; ``dev`` runs in a few seconds.
PROFILES: dict[str, VerifyProfile] = {
    "dev": VerifyProfile("dev", (16, 64, 256), 20_000, 4, _CONTRACT, 10, 128, 24, 32),
    "ci": VerifyProfile("ci", (16, 64, 256), 100_000, 8, _CONTRACT, 16, 128, 64, 32),
    "thorough": VerifyProfile(
        "thorough", (8, 16, 64, 256, 1024), 400_000, 16, _CONTRACT, 20, 256, 200, 64
    ),
}


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class VerifyRow:
    """One verified property.

    Attributes
    ----------
    property : str
        What is checked, e.g. ``"variance law"``.
    observed, expected : str
        What was measured and what a sound initializer gives.
    verdict : str
        ``"PASS"``, ``"FAIL"`` (the exit status becomes 3) or ``"WARN"``
        (reported, does not fail).
    detail : str
        The explanation, with the criterion.
    example : str
        For a FAIL: the minimal failing example (smallest shape, fan pair
        or layer where it fails, observed against expected); else empty.
    data : dict
        The numbers behind the row, for ``--json``.
    """

    property: str
    observed: str
    expected: str
    verdict: str
    detail: str
    example: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify`.

    Attributes
    ----------
    target : str
        The verified initializer, as given or described.
    activation : str
        The activation of the depth and dead-unit checks.
    profile : str
        The profile name.
    seed : int
        The seed.
    alpha : float
        Family-wise false-rejection rate of the statistical tests.
    rows : list of VerifyRow
        One row per property.
    settings : dict
        Sample sizes and criteria used.
    elapsed_s : float
        Wall-clock seconds.
    """

    target: str
    activation: str
    profile: str
    seed: int
    alpha: float
    rows: list[VerifyRow]
    settings: dict[str, Any]
    elapsed_s: float

    @property
    def passed(self) -> bool:
        """Whether no property FAILed (WARN rows do not fail)."""
        return all(r.verdict != FAIL for r in self.rows)

    @property
    def verdict(self) -> str:
        """``"PASS"`` or ``"FAIL"``."""
        return PASS if self.passed else FAIL

    @property
    def failures(self) -> list[VerifyRow]:
        """The FAIL rows."""
        return [r for r in self.rows if r.verdict == FAIL]

    def row(self, prop: str) -> VerifyRow:
        """Return the row of one property.

        Parameters
        ----------
        prop : str
            The property name, e.g. ``"symmetry breaking"``.

        Returns
        -------
        VerifyRow
            The row.

        Raises
        ------
        KeyError
            If the report has no such row.
        """
        for r in self.rows:
            if r.property == prop:
                return r
        raise KeyError(prop)

    def table(self) -> str:
        """Format the report as text: a table, the details and the minimal failing examples.

        Returns
        -------
        str
            Lines ready to print.
        """
        head = ("property", "verdict", "observed", "expected")
        cells = [(r.property, r.verdict, r.observed, r.expected) for r in self.rows]
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
        lines = [
            f"initsim verify: {self.target}, activation {self.activation}, "
            f"profile {self.profile}, seed {self.seed}",
            "",
            "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip(),
            "  ".join("-" * w for w in widths),
        ]
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(cs, widths, strict=True)).rstrip() for cs in cells
        ]
        lines += ["", "details:"]
        lines += [f"  {r.property}: {r.detail}" for r in self.rows]
        if self.failures:
            lines += ["", "minimal failing examples:"]
            lines += [f"  {r.property}: {r.example}" for r in self.failures]
        n_fail = len(self.failures)
        lines += [
            "",
            f"overall: {self.verdict} ({n_fail} of {len(self.rows)} properties fail; "
            f"alpha = {self.alpha:g}; {self.elapsed_s:.1f} s)",
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary (non-finite numbers written as null).

        Returns
        -------
        dict
            ``target``, ``activation``, ``profile``, ``seed``, ``alpha``,
            ``verdict``, ``passed``, ``rows``, ``settings``, ``elapsed_s``.
        """
        doc = asdict(self)
        doc["verdict"] = self.verdict
        doc["passed"] = self.passed
        return json_safe(doc, nonfinite="null")


# --------------------------------------------------------------------------- the target


def load_target(spec: str) -> Any:
    """Import ``"module:attribute"`` with the current directory importable.

    The current working directory is put at the front of ``sys.path`` for
    the import (as ``python -m`` does) and removed afterwards if it was not
    there before.

    Parameters
    ----------
    spec : str
        ``"package.module:name"``; ``name`` may be dotted (``"mod:obj.attr"``).

    Returns
    -------
    object
        The attribute.

    Raises
    ------
    VerifyUsageError
        If the string is malformed, the module is not found or fails to
        import, or the attribute does not exist (the message names which).
    """
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise VerifyUsageError(
            f"target must be 'module:attribute' (e.g. mymodule:my_init); got {spec!r}"
        )
    mod_name, attr = (s.strip() for s in spec.split(":"))
    if not mod_name or not attr:
        raise VerifyUsageError(
            f"target must be 'module:attribute' with both parts non-empty; got {spec!r}"
        )
    cwd = os.getcwd()
    inserted = cwd not in sys.path and "" not in sys.path
    if inserted:
        sys.path.insert(0, cwd)
    importlib.invalidate_caches()  # files written after start-up must be found
    try:
        module = importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (mod_name == missing or mod_name.startswith(missing + ".")):
            raise VerifyUsageError(
                f"module {mod_name!r} not found (searched the current directory {cwd} and sys.path)"
            ) from None
        raise VerifyUsageError(f"importing module {mod_name!r} failed: {exc}") from exc
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: a module that exits is a broken target
        raise VerifyUsageError(
            f"importing module {mod_name!r} raised {_describe_exit(exc)}"
        ) from exc
    finally:
        if inserted and cwd in sys.path:
            sys.path.remove(cwd)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            public = sorted(
                n
                for n, v in vars(module).items()
                if not n.startswith("_")
                and not inspect.ismodule(v)
                and (callable(v) or callable(getattr(v, "sample", None)))
            )
            listed = ", ".join(public) if public else "none"
            raise VerifyUsageError(
                f"module {mod_name!r} has no attribute {attr!r} (its callables and samplers: "
                f"{listed})"
            )
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class _Target:
    """A validated way to draw matrices from the user's initializer."""

    label: str
    call: Callable[[tuple[int, int], np.random.Generator], Any]
    how: str  # how it is called, for messages
    declared_variance: Callable[[int, int], Any] | None
    caller: _Caller = field(default_factory=lambda: _Caller(None))

    @property
    def timeout(self) -> float | None:
        """Seconds a call may take (None: no limit)."""
        return self.caller.timeout

    def draw(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """Draw one matrix, enforcing the return contract; float64."""
        return np.asarray(self.draw_raw(shape, rng), dtype=np.float64)

    def draw_raw(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """Draw one matrix, enforcing the return contract; the dtype the target returned."""
        how = self.how.format(shape=shape)
        try:
            out = self.caller(self.call, (shape, rng))
        except _TargetTimeout as hang:
            raise _TargetTimeout(how, shape, hang.timeout) from None
        if isinstance(out, _Raised):
            raise VerifyUsageError(
                f"{how} raised {_describe_exit(out.exc)} "
                f"(expected a float ndarray of shape {shape}, PyTorch layout (fan_out, fan_in))"
            ) from out.exc
        return _check_result(out, shape, self.label)

    def variance(self, fan_in: int, fan_out: int) -> Any:
        """Call the target's declared ``variance(fan_in, fan_out)`` (user code, guarded)."""
        assert self.declared_variance is not None
        how = f"{self.label}.variance({fan_in}, {fan_out})"
        try:
            out = self.caller(self.declared_variance, (fan_in, fan_out))
        except _TargetTimeout as hang:
            raise _TargetTimeout(how, (fan_out, fan_in), hang.timeout) from None
        if isinstance(out, _Raised):
            raise VerifyUsageError(f"{how} failed: {_describe_exit(out.exc)}") from out.exc
        return out


def _check_result(out: Any, shape: tuple[int, int], label: str) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise VerifyUsageError(
            f"{label} returned {type(out).__name__} for shape {shape}; "
            "expected a float numpy ndarray"
        )
    if out.shape != shape:
        hint = ""
        if out.shape == shape[::-1]:
            hint = " (transposed: shapes are PyTorch layout (fan_out, fan_in))"
        elif out.size == math.prod(shape):
            hint = " (same number of entries: reshape it)"
        raise VerifyUsageError(
            f"{label} returned wrong shape {out.shape} for requested shape {shape}{hint}"
        )
    if not np.issubdtype(out.dtype, np.floating):
        raise VerifyUsageError(
            f"{label} returned wrong dtype {out.dtype} for shape {shape}; expected a floating "
            "dtype (float32 or float64)"
        )
    finite = np.isfinite(out)
    if not finite.all():
        n_nan = int(np.isnan(out).sum())
        n_inf = int(out.size - finite.sum() - n_nan)
        raise VerifyUsageError(
            f"{label} returned non-finite values for shape {shape}: {n_nan} NaN and "
            f"{n_inf} inf among {out.size} entries"
        )
    return out


def _as_target(target: Any, caller: _Caller | None = None) -> _Target:
    """Turn a string, callable or sampler object into a :class:`_Target`."""
    label = target if isinstance(target, str) else _describe(target)
    obj = load_target(target) if isinstance(target, str) else target
    if inspect.isclass(obj):
        raise VerifyUsageError(
            f"{label} is a class ({obj.__name__}); verify an instance: define e.g. "
            f"my_init = {obj.__name__}(...) in the module and pass module:my_init"
        )
    variance = getattr(obj, "variance", None)
    declared = variance if callable(variance) else None
    sample = getattr(obj, "sample", None)
    caller = caller if caller is not None else _Caller(None)
    if callable(sample):

        def call_sample(shape: tuple[int, int], rng: np.random.Generator) -> Any:
            return sample(shape, seed=int(rng.integers(0, 2**32 - 1)))

        how = f"{label}.sample({{shape}}, seed=...)"
        return _Target(label, call_sample, how, declared, caller)
    if callable(obj):
        return _Target(label, obj, f"{label}({{shape}}, rng)", declared, caller)
    raise VerifyUsageError(
        f"{label} is not callable (it is of type {type(obj).__name__}): expected a function "
        "my_init(shape, rng) -> ndarray or an object with a sample(shape, seed=...) method"
    )


def _describe(obj: Any) -> str:
    name = getattr(obj, "name", None)
    if isinstance(name, str) and callable(getattr(obj, "sample", None)):
        return f"{type(obj).__name__}({name!r})"
    qual = getattr(obj, "__qualname__", None)
    module = getattr(obj, "__module__", None)
    if qual and module:
        return f"{module}:{qual}"
    return repr(obj)


# --------------------------------------------------------------------------- statistics


def _two_sided_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2.0))


def _z_p(diff: float, se: float) -> float:
    """Two-sided p-value of ``diff`` with standard error ``se`` (exact comparison if se = 0)."""
    if se > 0.0:
        return _two_sided_p(diff / se)
    return 1.0 if abs(diff) <= 1e-12 else 0.0


def _duplicate_rows(w: np.ndarray) -> tuple[int, int] | None:
    """Return the first pair of identical rows ``(i, j)``, or None."""
    seen: dict[bytes, int] = {}
    rows = np.ascontiguousarray(w + 0.0)  # + 0.0 turns -0.0 into 0.0
    for j in range(rows.shape[0]):
        key = rows[j].tobytes()
        if key in seen:
            return seen[key], j
        seen[key] = j
    return None


@dataclass
class _Cell:
    """Sample statistics of one fan pair.

    ``variance`` is ``Var(W_ij)`` over the randomness: the variance of each
    entry across draws, averaged over positions (what ``variance(fan_in,
    fan_out)`` of an initializer means; 0 for deterministic schemes such as
    identity). ``pooled_variance`` is the spread of all entries together.
    """

    fan_in: int
    fan_out: int
    draws: int
    entries: int
    mean: float
    variance: float
    pooled_variance: float
    se_mean: float
    se_variance: float
    duplicate: tuple[int, int] | None
    constant: bool
    deterministic: bool

    @property
    def shape(self) -> tuple[int, int]:
        return self.fan_out, self.fan_in


def _square(x: float) -> float:
    """``x ** 2``, inf where that exceeds the float64 range (Python's ``**`` raises there)."""
    try:
        return x**2
    except OverflowError:
        return math.inf


def _measure(target: _Target, fan_in: int, fan_out: int, n_draws: int, rng: Any) -> _Cell:
    """Draw ``n_draws >= 2`` matrices of one shape; mean and variance with standard errors.

    Standard errors are the larger of the iid formula and the batch-means
    one (spread of the per-matrix estimates), so entries that are dependent
    within a matrix do not make the tests overconfident.
    """
    shape = (fan_out, fan_in)
    r_draws = n_draws
    per_mean = np.empty(r_draws)
    per_sq = np.empty(r_draws)
    sums = np.zeros((4, fan_out, fan_in))  # per position: sums of d, d^2, d^3, d^4
    shift, scale = 0.0, 1.0
    first = None
    duplicate = None
    deterministic = True
    for r in range(r_draws):
        w = target.draw(shape, rng)
        if first is None:
            first = w
            shift = float(np.mean(w))
            # work in units of the first draw's spread: no under/overflow in d^4
            scale = float(np.max(np.abs(w - shift))) or 1.0
        else:
            deterministic = deterministic and bool(np.array_equal(w, first))
        if r < 2 and duplicate is None:
            duplicate = _duplicate_rows(w)
        d = (w - shift) / scale
        d2 = d * d
        sums[0] += d
        sums[1] += d2
        sums[2] += d2 * d
        sums[3] += d2 * d2
        per_mean[r] = d.mean()
        per_sq[r] = d2.mean()
    assert first is not None
    constant = deterministic and bool(np.all(first == first.flat[0]))
    positions = fan_in * fan_out
    n = r_draws * positions
    # pooled over all entries
    mu = float(sums[0].sum()) / n
    m2 = max(float(sums[1].sum()) / n - mu * mu, 0.0)
    pooled = m2 * n / (n - 1)
    per_var = per_sq - 2 * mu * per_mean + mu * mu
    se_mean = max(math.sqrt(m2 / n), float(np.std(per_mean, ddof=1)) / math.sqrt(r_draws))
    # per position, across draws
    pm = sums[0] / r_draws
    ss = np.maximum(sums[1] - r_draws * pm * pm, 0.0)
    variance = float(ss.sum()) / (positions * (r_draws - 1))
    e4 = sums[3] - 4 * pm * sums[2] + 6 * pm * pm * sums[1] - 3 * r_draws * pm**4
    mu4 = max(float(e4.sum()) / n, 0.0) * (r_draws / (r_draws - 1)) ** 2
    var_s2 = (mu4 - variance**2 * (r_draws - 3) / (r_draws - 1)) / r_draws
    se_var = max(
        math.sqrt(max(var_s2, 0.0) / positions),
        float(np.std(per_var, ddof=1)) / math.sqrt(r_draws - 1),
    )
    if deterministic:
        variance, se_var = 0.0, 0.0
    scale2 = _square(scale)  # inf when entries above 1e154 make Var exceed float64
    return _Cell(
        fan_in,
        fan_out,
        r_draws,
        n,
        shift + mu * scale,
        variance * scale2,
        pooled * scale2,
        se_mean * scale,
        se_var * scale2,
        duplicate,
        constant,
        deterministic,
    )


# --------------------------------------------------------------------------- variance law


@dataclass(frozen=True)
class _Family:
    key: str
    g: Callable[[float, float], float]
    text: str  # formats c
    known: tuple[tuple[float, str], ...]
    grows: bool = False


_FAMILIES: tuple[_Family, ...] = (
    _Family(
        "fan_in",
        lambda fi, fo: 1.0 / fi,
        "{c}/fan_in",
        (
            (1.0, "1/fan_in (LeCun; what the seed calls Xavier)"),
            (2.0, "2/fan_in (He / Kaiming, mode fan_in)"),
            (1.0 / 3.0, "1/(3 fan_in) (PyTorch nn.Linear default)"),
            (25.0 / 9.0, "(5/3)^2/fan_in (LeCun with PyTorch's tanh gain)"),
        ),
    ),
    _Family(
        "fan_out",
        lambda fi, fo: 1.0 / fo,
        "{c}/fan_out",
        ((1.0, "1/fan_out"), (2.0, "2/fan_out (He / Kaiming, mode fan_out)")),
    ),
    _Family(
        "fan_avg",
        lambda fi, fo: 2.0 / (fi + fo),
        "{c}*2/(fan_in + fan_out)",
        (
            (1.0, "2/(fan_in + fan_out) (Glorot / Xavier)"),
            (25.0 / 9.0, "(5/3)^2 * 2/(fan_in + fan_out) (Glorot with tanh gain)"),
        ),
    ),
    _Family(
        "fan_max",
        lambda fi, fo: 1.0 / max(fi, fo),
        "{c}/max(fan_in, fan_out)",
        (
            (1.0, "1/max(fan_in, fan_out) (orthogonal)"),
            (2.0, "2/max(fan_in, fan_out) (orthogonal with relu gain)"),
        ),
    ),
    _Family("constant", lambda fi, fo: 1.0, "{c} (independent of the fans)", ()),
    _Family(
        "grows_fan_in",
        lambda fi, fo: float(fi),
        "{c}*fan_in",
        ((1.0, "fan_in (= n_in)"),),
        grows=True,
    ),
    _Family(
        "grows_fan_out",
        lambda fi, fo: float(fo),
        "{c}*fan_out",
        ((1.0, "fan_out (= n_out)"),),
        grows=True,
    ),
)


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _fit_family(fam: _Family, cells: list[_Cell]) -> dict[str, Any]:
    v = np.array([c.variance for c in cells])
    rel_se = np.array([c.se_variance / c.variance for c in cells])
    g = np.array([fam.g(c.fan_in, c.fan_out) for c in cells])
    weights = 1.0 / np.maximum(rel_se, 1e-12) ** 2
    log_c = float(np.sum(weights * np.log(v / g)) / np.sum(weights))
    c = math.exp(log_c)
    rel_dev = np.abs(v / (c * g) - 1.0)
    allowed = np.maximum(LAW_TOLERANCE, LAW_SE_FACTOR * rel_se)
    name = ""
    for c0, label in fam.known:
        if abs(c / c0 - 1.0) <= COEFFICIENT_TOLERANCE:
            name = label
            break
    return {
        "family": fam.key,
        "c": c,
        "law": fam.text.format(c=_fmt(c)),
        "name": name,
        "max_rel_dev": float(np.max(rel_dev)),
        "fits": bool(np.all(rel_dev <= allowed)),
        "grows": fam.grows,
    }


def _power_law(cells: list[_Cell]) -> tuple[float, float, float]:
    """Weighted least squares of ``log Var = log c + a log fan_in + b log fan_out``."""
    v = np.array([c.variance for c in cells])
    rel_se = np.array([max(c.se_variance / c.variance, 1e-12) for c in cells])
    x = np.column_stack(
        [
            np.ones(len(cells)),
            np.log([c.fan_in for c in cells]),
            np.log([c.fan_out for c in cells]),
        ]
    )
    sw = 1.0 / rel_se
    coef, *_ = np.linalg.lstsq(x * sw[:, None], np.log(v) * sw, rcond=None)
    return math.exp(coef[0]), float(coef[1]), float(coef[2])


def _smallest(cells: list[_Cell]) -> _Cell:
    return min(cells, key=lambda c: (c.fan_in * c.fan_out, c.fan_in))


def _variance_law_row(cells: list[_Cell], act_name: str, preserving: float) -> VerifyRow:
    expected = f"decreasing like 1/fan; {_fmt(preserving)}/fan_in keeps q for {act_name}"
    crit = (
        f"families c*g fitted by weighted least squares in log space; a family fits when every "
        f"grid point is within {LAW_TOLERANCE:.0%} (or {LAW_SE_FACTOR:g} standard errors) of "
        f"c*g; FAIL when Var grows with a fan (exponent > {GROWTH_EXPONENT:g})"
    )
    grid = [{"fan_in": c.fan_in, "fan_out": c.fan_out, "variance": c.variance} for c in cells]
    if all(c.deterministic for c in cells):
        return VerifyRow(
            "variance law",
            "Var = 0 at every fan pair (deterministic)",
            expected,
            WARN,
            "the weights are deterministic (every draw is the same matrix), so Var(W_ij) = 0 "
            "over the randomness and there is no variance law to fit; see symmetry breaking",
            data={"grid": grid},
        )
    if all(c.variance == 0.0 for c in cells):
        return VerifyRow(
            "variance law",
            "Var = 0 at every fan pair (underflow)",
            expected,
            WARN,
            "the variance is below the smallest float64 (about 1e-308): no law to fit",
            data={"grid": grid},
        )
    huge = [c for c in cells if not math.isfinite(c.variance)]
    if huge:
        small = _smallest(huge)
        return VerifyRow(
            "variance law",
            f"Var beyond float64 at {len(huge)} of {len(cells)} fan pairs",
            expected,
            FAIL,
            "the entries are so large (above about 1.3e154) that Var(W_ij) exceeds the float64 "
            "range (about 1.8e308): no law can be fitted, and every signal through such "
            f"weights overflows. Criterion: {crit}",
            example=(
                f"shape (fan_out, fan_in) = {small.shape}: Var(W_ij) overflows float64, expected "
                f"{_fmt(preserving)}/fan_in = {_fmt(preserving / small.fan_in)} for {act_name}"
            ),
            data={"grid": grid},
        )
    if any(c.variance == 0.0 for c in cells):
        zero = [c.shape for c in cells if c.variance == 0.0]
        return VerifyRow(
            "variance law",
            f"Var = 0 at (fan_out, fan_in) = {zero}",
            expected,
            WARN,
            "no known scheme: the variance vanishes at some fan pairs but not at others",
            data={"grid": grid},
        )
    fits = [_fit_family(f, cells) for f in _FAMILIES]
    best = min((f for f in fits if f["fits"]), key=lambda f: f["max_rel_dev"], default=None)
    c, a, b = _power_law(cells)
    power = f"{_fmt(c)} * fan_in^{a:.2f} * fan_out^{b:.2f}"
    data = {"grid": grid, "families": fits, "power_law": {"c": c, "a": a, "b": b}}
    observed = f"Var ~ {best['name'] or best['law']}" if best else f"Var ~ {power}"
    grows = (best is not None and best["grows"]) or a > GROWTH_EXPONENT or b > GROWTH_EXPONENT
    if grows:
        small = _smallest(cells)
        want = preserving / small.fan_in
        if best is not None and best["family"] == "grows_fan_in" and best["name"]:
            why = (
                "its variance is fan_in (n_in) instead of 1/fan_in (1/n_in): the seed blog's "
                "literal randn(n_in, n_out) / sqrt(1/n_in), a '/' typo for '* sqrt(1/n_in)'; "
                "sigma_w2 = fan_in * Var = fan_in^2, so signals grow ~fan_in^2 per layer"
            )
        else:
            why = (
                f"the variance grows with the fans (Var ~ {power}); a variance-preserving law "
                "decreases like 1/fan, otherwise sigma_w2 = fan_in * Var grows with the width"
            )
        return VerifyRow(
            "variance law",
            observed,
            expected,
            FAIL,
            f"{why}. Criterion: {crit}",
            example=(
                f"shape (fan_out, fan_in) = {small.shape}: Var(W_ij) = {_fmt(small.variance)}, "
                f"expected {_fmt(preserving)}/fan_in = {_fmt(want)} for {act_name}"
            ),
            data=data,
        )
    if best is None:
        return VerifyRow(
            "variance law",
            observed,
            expected,
            WARN,
            f"no known scheme (closest power law Var ~ {power}). Criterion: {crit}",
            data=data,
        )
    if best["family"] == "constant":
        return VerifyRow(
            "variance law",
            observed,
            expected,
            WARN,
            f"the variance does not depend on the fans, so sigma_w2 = fan_in * Var = "
            f"{_fmt(best['c'])} * fan_in changes with the width; only width ~ "
            f"{_fmt(preserving / best['c'])} keeps q for {act_name}. Criterion: {crit}",
            data=data,
        )
    named = best["name"] or f"{best['law']} (variance scaling with a custom scale)"
    return VerifyRow(
        "variance law",
        observed,
        expected,
        PASS,
        f"matches {named}, max deviation {best['max_rel_dev']:.1%} over the grid. "
        f"Criterion: {crit}",
        data=data,
    )


def _declared_variance_row(
    target: _Target, label: str, cells: list[_Cell], alpha: float
) -> VerifyRow:
    from initsim.checks import holm

    expect = []
    for c in cells:
        v = target.variance(c.fan_in, c.fan_out)
        try:
            v = float(v)
        except Exception as exc:
            raise VerifyUsageError(
                f"{label}.variance({c.fan_in}, {c.fan_out}) failed: {type(exc).__name__}: {exc}"
            ) from exc
        if not math.isfinite(v) or v < 0.0:
            raise VerifyUsageError(
                f"{label}.variance({c.fan_in}, {c.fan_out}) returned {v!r}; expected a finite "
                "number >= 0"
            )
        expect.append(v)
    # a sampled variance beyond float64 disagrees with any finite declared one
    p = np.array(
        [
            _z_p(c.variance - e, c.se_variance) if math.isfinite(c.variance) else 0.0
            for c, e in zip(cells, expect, strict=True)
        ]
    )
    reject = holm(p, alpha)
    rel = [
        abs(c.variance / e - 1.0) if e > 0 else (0.0 if c.variance == 0.0 else math.inf)
        for c, e in zip(cells, expect, strict=True)
    ]
    data = {
        "grid": [
            {
                "fan_in": c.fan_in,
                "fan_out": c.fan_out,
                "observed": c.variance,
                "declared": e,
                "se": c.se_variance,
                "p_value": float(pv),
                "rejected": bool(rj),
            }
            for c, e, pv, rj in zip(cells, expect, p, reject, strict=True)
        ]
    }
    crit = (
        f"z-test of the sample variance per fan pair (conservative Monte Carlo standard error), "
        f"Holm family-wise alpha = {alpha:g} over {len(cells)} pairs"
    )
    worst = int(np.argmax([r if math.isfinite(r) else 1e300 for r in rel]))
    if math.isfinite(rel[worst]):
        observed = f"max |Var/declared - 1| = {rel[worst]:.2%}"
    elif not math.isfinite(cells[worst].variance):
        observed = "sampled Var beyond float64"
    else:
        observed = "declared 0, sampled > 0"
    if not reject.any():
        return VerifyRow(
            "declared variance",
            observed,
            "samples agree with .variance()",
            PASS,
            f"the samples agree with {label}.variance() at every fan pair. Criterion: {crit}",
            data=data,
        )
    bad = _smallest([c for c, rj in zip(cells, reject, strict=True) if rj])
    e = expect[cells.index(bad)]
    return VerifyRow(
        "declared variance",
        observed,
        "samples agree with .variance()",
        FAIL,
        f"{int(reject.sum())} of {len(cells)} fan pairs disagree with {label}.variance(). "
        f"Criterion: {crit}",
        example=(
            f"shape (fan_out, fan_in) = {bad.shape}: sampled Var = {_fmt(bad.variance)} "
            f"(+- {_fmt(bad.se_variance)}), declared {_fmt(e)}"
        ),
        data=data,
    )


def _mean_row(cells: list[_Cell], alpha: float) -> VerifyRow:
    from initsim.checks import holm

    p = np.array([_z_p(c.mean, c.se_mean) for c in cells])
    reject = holm(p, alpha)
    std_mean = [abs(c.mean) / math.sqrt(c.variance) if c.variance > 0 else math.inf for c in cells]
    biggest = max(cells, key=lambda c: abs(c.mean))
    data = {
        "grid": [
            {"fan_in": c.fan_in, "fan_out": c.fan_out, "mean": c.mean, "se": c.se_mean}
            for c in cells
        ]
    }
    crit = f"z-test of E[W_ij] = 0 per fan pair, Holm family-wise alpha = {alpha:g}"
    if not reject.any():
        return VerifyRow(
            "mean",
            f"max |mean| = {_fmt(abs(biggest.mean))}",
            "0",
            PASS,
            f"no fan pair has a detectable nonzero mean. Criterion: {crit}",
            data=data,
        )
    bad = _smallest([c for c, rj in zip(cells, reject, strict=True) if rj])
    k = cells.index(bad)
    ratio = std_mean[k]
    return VerifyRow(
        "mean",
        f"mean = {_fmt(bad.mean)} at {bad.shape}",
        "0",
        WARN,
        f"nonzero mean at {int(reject.sum())} of {len(cells)} fan pairs (|mean|/std = "
        f"{_fmt(ratio)} at (fan_out, fan_in) = {bad.shape}): a mean m adds a coherent part "
        f"m * sum_j x_j to every unit, which grows like fan_in * m; see the depth check. "
        f"Criterion: {crit}",
        data=data,
    )


def _symmetry_row(
    cells: list[_Cell], contract: list[tuple[tuple[int, int], np.ndarray]]
) -> VerifyRow:
    found: list[tuple[tuple[int, int], tuple[int, int], bool]] = []
    for shape, w in contract:
        if shape[0] >= 2:
            dup = _duplicate_rows(w)
            if dup is not None:
                found.append((shape, dup, bool(np.all(w == w.flat[0]))))
    for c in cells:
        if c.duplicate is not None:
            found.append((c.shape, c.duplicate, c.constant))
    checked = len(cells) + sum(s[0] >= 2 for s, _ in contract)
    crit = "no two rows (units) of a sampled matrix may be identical"
    if not found:
        return VerifyRow(
            "symmetry breaking",
            f"rows distinct in {checked} shapes",
            "all rows distinct",
            PASS,
            f"every sampled matrix has distinct rows, so units start different. Criterion: {crit}",
        )
    shape, (i, j), constant = min(found, key=lambda f: (math.prod(f[0]), f[0]))
    what = (
        "every entry is equal (a constant initializer, e.g. zeros)"
        if constant
        else (f"rows {i} and {j} are identical")
    )
    return VerifyRow(
        "symmetry breaking",
        f"identical rows in {len(found)} shapes",
        "all rows distinct",
        FAIL,
        f"{what}: identical units compute identical outputs and receive identical gradients, "
        "so gradient descent updates them identically and they never separate (the layer "
        f"behaves like one unit per group of copies). Criterion: {crit}",
        example=f"shape (fan_out, fan_in) = {shape}: {what}",
        data={"shapes": [list(f[0]) for f in found]},
    )


# --------------------------------------------------------------------------- depth


def _simulate(
    target: _Target, act: Any, prof: VerifyProfile, rng: np.random.Generator
) -> dict[str, Any]:
    """Forward bias-free MLPs with weights from the target; q and dead fractions per layer."""
    n, depth, nets, batch = prof.width, prof.depth, prof.nets, prof.batch
    pilot = [target.draw((n, n), rng) for _ in range(2)]
    with np.errstate(over="ignore"):  # entries above 1e154: inf, and q^1 overflows below
        second = float(np.mean([np.mean(w * w) for w in pilot]))
    # scale inputs so that q^1 ~ 1, the regime initializers are designed for
    scaled = 0.0 < second < math.inf and math.isfinite(1.0 / (n * second))
    q0 = 1.0 / (n * second) if scaled else 1.0
    q = np.full((nets, depth), np.nan)
    dead = np.full((nets, depth), np.nan)
    moments = np.zeros(3)  # count, sum, sum of squares of every simulated weight
    with np.errstate(over="ignore", invalid="ignore"):
        for m in range(nets):
            x = rng.standard_normal((n, batch))
            x *= math.sqrt(n * q0) / np.linalg.norm(x, axis=0)
            for t in range(depth):
                w = target.draw((n, n), rng)
                moments += (w.size, w.sum(), np.sum(w * w))
                h = w @ x
                q[m, t] = float(np.mean(h * h))
                x = np.asarray(act.phi(h))
                dead[m, t] = float(np.mean(np.all(x == 0.0, axis=1)))
                if not math.isfinite(q[m, t]):
                    break
    count, total, squares = moments
    if math.isfinite(squares):
        var_hat = max(squares / count - (total / count) ** 2, 0.0)
    else:  # the squares of the entries overflowed: so does the variance
        var_hat = math.inf
    return {"q": q, "dead": dead, "q0": q0, "sigma_w2": n * var_hat}


def _depth_row(sim: dict[str, Any], act: Any, prof: VerifyProfile, zero_mean: bool) -> VerifyRow:
    from initsim import theory

    q = sim["q"]
    depth, n = prof.depth, prof.width
    lo, hi = Q_RATIO_BAND
    crit = (
        f"E[q^l]/E[q^1] in [{lo:g}, {hi:g}] at every layer l = 1..{depth} of {prof.nets} "
        f"bias-free {act.label} MLPs of width {n} (inputs scaled so that q^1 ~ 1)"
    )
    finite = np.all(np.isfinite(q), axis=0)
    eq = np.where(finite, np.mean(np.where(np.isfinite(q), q, 0.0), axis=0), np.inf)
    sw = sim["sigma_w2"]
    pred = None
    if zero_mean and sw > 0.0 and math.isfinite(sw):  # mean field: zero-mean iid weights
        mf = theory.q_map(act, sw, 0.0, sim["q0"], depth)
        pred = float(mf[-1] / mf[0]) if mf[0] > 0 else None
    data: dict[str, Any] = {
        "width": n,
        "depth": depth,
        "nets": prof.nets,
        "q0": sim["q0"],
        "sigma_w2": sw,
        "mean_q": eq,
        "mean_field_ratio": pred,
    }
    pred_text = f"; mean field {_fmt(pred)}" if pred is not None else ""
    expected = f"in [{lo:g}, {hi:g}]{pred_text}"
    if eq[0] == 0.0:
        return VerifyRow(
            "variance through depth",
            "q^1 = 0: no signal",
            expected,
            FAIL,
            "vanishing: the first layer's pre-activations are 0 (the weights are zero or "
            f"vanishingly small), nothing reaches the output. Criterion: {crit}",
            example=f"layer 1 of a width-{n} net: E[q^1] = 0, expected > 0",
            data=data,
        )
    if not math.isfinite(eq[0]):
        return VerifyRow(
            "variance through depth",
            "q^1 overflows float64",
            expected,
            FAIL,
            "exploding: overflow (inf) at layer 1: the first layer's pre-activations already "
            f"exceed the float64 range (sigma_w2 = fan_in * Var = {_fmt(sw)}). "
            f"Criterion: {crit}",
            example=f"layer 1 of a width-{n} net: E[q^1] = inf, expected finite and ~1",
            data=data,
        )
    ratio = eq / eq[0]
    data["ratio"] = ratio
    outside = [t for t in range(depth) if not (lo <= ratio[t] <= hi)]
    q_l, q_1 = q[:, -1], q[:, 0]
    se = math.nan
    if finite[-1] and prof.nets > 1:
        a, b = float(np.mean(q_l)), float(np.mean(q_1))
        if a > 0.0:  # delta method on q^L / a and q^1 / b (scaled: no overflow)
            cov = np.cov(q_l / a, q_1 / b)
            rel2 = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
            se = ratio[-1] * math.sqrt(max(rel2, 0.0) / prof.nets)
        else:
            se = 0.0
    se_text = f" +- {_fmt(se)}" if math.isfinite(se) else ""
    observed = f"E[q^{depth}]/E[q^1] = {_fmt(ratio[-1])}{se_text}"
    if not outside:
        return VerifyRow(
            "variance through depth",
            observed,
            expected,
            PASS,
            f"the signal neither vanishes nor explodes: ratios between {_fmt(ratio.min())} and "
            f"{_fmt(ratio.max())} over {depth} layers (sigma_w2 = {_fmt(sw)}). Criterion: {crit}",
            data=data,
        )
    t = outside[0]
    if not math.isfinite(ratio[t]):
        kind = f"exploding: overflow (inf) at layer {t + 1}"
    elif ratio[t] > hi:
        kind = "exploding"
    else:
        kind = "vanishing"
    last = ratio[-1]
    per_layer = (
        last ** (1.0 / (depth - 1)) if math.isfinite(last) and last > 0 and depth > 1 else math.nan
    )
    rate = f", about x{_fmt(per_layer)} per layer" if math.isfinite(per_layer) else ""
    return VerifyRow(
        "variance through depth",
        observed,
        expected,
        FAIL,
        f"{kind}: E[q^l]/E[q^1] leaves the band at layer {t + 1}{rate} "
        f"(sigma_w2 = fan_in * Var = {_fmt(sw)}). Criterion: {crit}",
        example=(
            f"layer {t + 1} of a width-{n} net: E[q^{t + 1}]/E[q^1] = {_fmt(ratio[t])}, "
            f"expected in [{lo:g}, {hi:g}]"
        ),
        data=data,
    )


def _dead_row(sim: dict[str, Any], act: Any, prof: VerifyProfile) -> VerifyRow:
    dead = sim["dead"]
    reached = np.isfinite(dead)
    counts = reached.sum(axis=0)
    frac = np.full(prof.depth, np.nan)
    np.divide(np.where(reached, dead, 0.0).sum(axis=0), counts, out=frac, where=counts > 0)
    last = float(frac[-1])
    crit = (
        f"fraction of last-layer units whose output is 0 for all {prof.batch} inputs, mean over "
        f"{prof.nets} nets, at most {DEAD_LIMIT:.0%}"
    )
    observed = f"{last:.1%} dead at layer {prof.depth}" if math.isfinite(last) else "not reached"
    data = {"dead_fraction": frac}
    if not math.isfinite(last):
        return VerifyRow(
            "dead units",
            observed,
            f"<= {DEAD_LIMIT:.0%}",
            WARN,
            "not measured: the signal overflowed before the last layer in every net (see "
            f"variance through depth). Criterion: {crit}",
            data=data,
        )
    if math.isfinite(last) and last <= DEAD_LIMIT:
        return VerifyRow(
            "dead units",
            observed,
            f"<= {DEAD_LIMIT:.0%}",
            PASS,
            f"most units respond to some input. Criterion: {crit}",
            data=data,
        )
    over = [t for t in range(prof.depth) if frac[t] > DEAD_LIMIT]
    t = over[0] if over else prof.depth - 1
    what = "dead network" if act.can_be_dead else "units output exactly 0"
    return VerifyRow(
        "dead units",
        observed,
        f"<= {DEAD_LIMIT:.0%}",
        FAIL,
        f"{what}: more than half of the units output 0 for every input, so they pass no "
        f"signal and (for {act.label}) no gradient. Criterion: {crit}",
        example=(
            f"layer {t + 1} of a width-{prof.width} net: {frac[t]:.1%} of units dead, "
            f"expected <= {DEAD_LIMIT:.0%}"
        ),
        data=data,
    )


# --------------------------------------------------------------------------- entry point


def verify(
    target: Any,
    *,
    activation: str = "relu",
    profile: str = "dev",
    seed: int = 0,
    alpha: float = 0.01,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> VerifyReport:
    """Check a user's weight initializer: contract, variance law, symmetry, depth, dead units.

    Parameters
    ----------
    target : str, callable or object
        ``"module:attribute"`` (imported with the current directory on
        ``sys.path``), a callable ``my_init(shape, rng) -> ndarray`` with
        ``shape = (fan_out, fan_in)`` and ``rng`` a numpy Generator, or an
        object with ``sample(shape, seed=...)`` (an int seed is passed) and
        optionally ``variance(fan_in, fan_out)``, such as
        ``initsim.initializers.get("he_normal")``.
    activation : str
        Activation of the depth and dead-unit checks (a registry name,
        see :func:`initsim.activations.names`).
    profile : {"dev", "ci", "thorough"}
        Sample sizes (:data:`PROFILES`).
    seed : int
        Non-negative seed; the same seed gives the same report.
    alpha : float
        Family-wise false-rejection rate of each statistical test family
        (declared variance, mean), in (0, 1).
    timeout : float or None
        Seconds each call of the target (a draw, or ``variance``) may take,
        default :data:`DEFAULT_TIMEOUT` (60); None for no limit. The calls
        then run in a daemon thread. A call that does not return in time
        ends the verification with a FAIL report: its "return contract" row
        names the call and the shape; the call itself is abandoned (Python
        cannot stop a thread), the module import is not timed.

    Returns
    -------
    VerifyReport
        One row per property; ``report.passed`` is False when a property
        FAILs (or a call timed out: then the only row).

    Raises
    ------
    VerifyUsageError
        (a ValueError) If the target cannot be imported or called, returns
        something other than a finite float ndarray of the requested shape,
        or its ``variance`` fails; anything the target raises counts,
        ``SystemExit`` (``sys.exit()``) and other ``BaseException`` included
        (only the user's own Ctrl-C propagates). Also if ``activation``,
        ``profile``, ``seed``, ``alpha`` or ``timeout`` is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> def he(shape, rng):
    ...     return rng.standard_normal(shape) * np.sqrt(2 / shape[1])
    >>> verify(he).passed
    True
    """
    from initsim import activations

    start = time.perf_counter()
    if profile not in PROFILES:
        raise VerifyUsageError(
            f"profile must be one of {', '.join(map(repr, PROFILES))}; got {profile!r}"
        )
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 < alpha < 1.0:
        raise VerifyUsageError(f"alpha must be a number in (0, 1); got {alpha!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise VerifyUsageError(f"seed must be a non-negative integer; got {seed!r}")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not (math.isfinite(timeout) and timeout > 0)
    ):
        raise VerifyUsageError(f"timeout must be a number of seconds > 0 or None; got {timeout!r}")
    act = activations.get(activation)
    prof = PROFILES[profile]
    caller = _Caller(None if timeout is None else float(timeout))
    tgt = _as_target(target, caller)
    # small matrices: one BLAS thread is fastest (many threads are ~100x slower on a
    # loaded machine) and keeps the products deterministic
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            return _verify(tgt, act, prof, int(seed), float(alpha), start)
    except _TargetTimeout as hang:
        return _timeout_report(tgt, hang, act, prof, int(seed), float(alpha), start)
    finally:
        caller.close()


def _timeout_report(
    tgt: _Target,
    hang: _TargetTimeout,
    act: Any,
    prof: VerifyProfile,
    seed: int,
    alpha: float,
    start: float,
) -> VerifyReport:
    """Return the report of a verification a hanging call ended: one FAIL row naming it."""
    shape = tuple(hang.shape) if hang.shape is not None else ()
    row = VerifyRow(
        "return contract",
        f"no return within {hang.timeout:g} s",
        "float ndarray of shape (fan_out, fan_in)",
        FAIL,
        f"{hang.call} did not return within {hang.timeout:g} s (the timeout per call; raise it "
        "with timeout=... or --timeout if the initializer is just slow): an initializer must "
        "return promptly; the other properties were not checked",
        example=f"shape (fan_out, fan_in) = {shape}: no result after {hang.timeout:g} s",
        data={"timeout_s": hang.timeout, "shape": list(shape)},
    )
    return VerifyReport(
        target=tgt.label,
        activation=act.label,
        profile=prof.name,
        seed=seed,
        alpha=alpha,
        rows=[row],
        settings={"profile": asdict(prof), "timeout_s": hang.timeout},
        elapsed_s=time.perf_counter() - start,
    )


def _verify(
    tgt: _Target, act: Any, prof: VerifyProfile, seed: int, alpha: float, start: float
) -> VerifyReport:
    from initsim import theory

    streams = as_seed_sequence(seed).spawn(4)
    rngs = [np.random.default_rng(s) for s in streams]

    # 1. return contract (every later draw is checked too)
    contract = [(s, tgt.draw_raw(s, rngs[0])) for s in prof.contract_shapes]
    shape = (16, 8)
    repro = np.array_equal(
        tgt.draw(shape, np.random.default_rng(12345)), tgt.draw(shape, np.random.default_rng(12345))
    )
    dtypes = sorted({str(w.dtype) for _, w in contract})
    repro_text = (
        "identically seeded calls give identical arrays"
        if repro
        else "WARNING: identically seeded calls differ (it draws from a global or unseeded "
        "generator), so its runs are not reproducible"
    )
    rows = [
        VerifyRow(
            "return contract",
            f"{', '.join(dtypes)} arrays of the requested shape, finite",
            "float ndarray of shape (fan_out, fan_in)",
            PASS if repro else WARN,
            f"checked on every draw ({len(prof.contract_shapes)} contract shapes, the variance "
            f"grid, every simulated layer); {repro_text}",
            data={"shapes": [list(s) for s in prof.contract_shapes], "reproducible": repro},
        )
    ]

    # 2-5. variance law, declared variance, mean, symmetry
    t0 = time.perf_counter()
    cells = []
    for fi in prof.fans:
        for fo in prof.fans:
            n_draws = max(prof.min_draws, 2, math.ceil(prof.entries / (fi * fo)))
            cells.append(_measure(tgt, fi, fo, n_draws, rngs[1]))
    preserving = 1.0 / float(theory.gaussian_expectation(act, 1.0, "phi2"))
    rows.append(_variance_law_row(cells, act.label, preserving))
    if tgt.declared_variance is not None:
        rows.append(_declared_variance_row(tgt, tgt.label, cells, alpha))
    rows.append(_mean_row(cells, alpha))
    rows.append(_symmetry_row(cells, contract))
    t_grid = time.perf_counter() - t0

    # 6-7. depth
    t0 = time.perf_counter()
    sim = _simulate(tgt, act, prof, rngs[2])
    zero_mean = next(r for r in rows if r.property == "mean").verdict == PASS
    rows.append(_depth_row(sim, act, prof, zero_mean))
    rows.append(_dead_row(sim, act, prof))
    t_depth = time.perf_counter() - t0

    settings = {
        "profile": asdict(prof),
        "law_tolerance": LAW_TOLERANCE,
        "law_se_factor": LAW_SE_FACTOR,
        "growth_exponent": GROWTH_EXPONENT,
        "q_ratio_band": list(Q_RATIO_BAND),
        "dead_limit": DEAD_LIMIT,
        "preserving_sigma_w2": preserving,
        "timeout_s": tgt.timeout,
        "seconds": {"variance_grid": t_grid, "depth": t_depth},
    }
    return VerifyReport(
        target=tgt.label,
        activation=act.label,
        profile=prof.name,
        seed=seed,
        alpha=alpha,
        rows=rows,
        settings=settings,
        elapsed_s=time.perf_counter() - start,
    )


def report_json(report: VerifyReport) -> str:
    """Serialise a report as one JSON document.

    Parameters
    ----------
    report : VerifyReport
        The report.

    Returns
    -------
    str
        Indented JSON.
    """
    return json.dumps(report.to_dict(), indent=1)


class _CallableModule(types.ModuleType):
    """The type of this module: calling it calls :func:`verify`.

    ``initsim.verify`` is the package's name for the function, but importing
    this module (``import initsim.verify``, done by the CLI and by
    ``from initsim.verify import ...``) binds the module to that attribute of
    the package; calling the module calls the function, so ``initsim.verify(...)``
    works whatever was imported first.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> VerifyReport:
        return verify(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
