"""Per-tensor statistics over re-initialisations, and the law and variance scheme they match.

For every re-initialisation :class:`Tally` records, per :class:`~initsim.audit.inventory.Entry`,
the mean and variance of the entries, the extremes, non-finite counts,
whether units (rows, filters) are identical, whether the matrix is
orthogonal, and a standardised sample of values. :func:`summarise` turns
the records into a :class:`TensorStats`:

* mean and std over the re-initialisations with 95% intervals (t intervals
  over the ``inits`` per-init values: never a single draw);
* the **law**: ``constant`` (no spread within a draw), ``orthogonal``
  (``W W^T`` proportional to the identity), ``uniform`` (the median over
  draws of max ``|z|`` within 5% of ``sqrt(3)``, excess kurtosis below
  -0.9; a Gaussian truncated at 2 sigma has 2.27 and -0.73),
  ``truncated normal`` (kurtosis below -0.3, bounded below 3.2 standard
  deviations) or ``normal``;
* the **variance scheme**: the known schemes of :data:`SCHEMES` evaluated at
  PyTorch's fans (what ``kaiming_*_``/``xavier_*_`` compute) and at the true
  fans, matched when within 4 standard errors (over re-inits) or 0.5% of the
  measured variance; the closest match is reported, the others dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as _stats

from initsim.audit.inventory import Entry

__all__ = ["SCHEMES", "Scheme", "Tally", "TensorStats", "summarise"]

#: Values a draw may hold before it counts as uninitialised memory (|x| above).
HUGE = 1e6
_SAMPLE = 4096  # standardised values kept per draw for the law's shape


@dataclass(frozen=True)
class Scheme:
    """A known variance scheme ``Var(W) = f(fan_in, fan_out)``."""

    name: str
    variance: Callable[[float, float], float]
    uses_fan_out: bool = False


#: The schemes an audited tensor is matched against (PyTorch, Keras and JAX defaults).
SCHEMES: tuple[Scheme, ...] = (
    Scheme("1/(3 fan_in) (PyTorch's nn.Linear/Conv default)", lambda fi, fo: 1.0 / (3.0 * fi)),
    Scheme("1/fan_in (LeCun)", lambda fi, fo: 1.0 / fi),
    Scheme("2/fan_in (He / Kaiming, fan_in)", lambda fi, fo: 2.0 / fi),
    Scheme("2/(fan_in + fan_out) (Glorot / Xavier)", lambda fi, fo: 2.0 / (fi + fo), True),
    Scheme("1/fan_out", lambda fi, fo: 1.0 / fo, True),
    Scheme("2/fan_out (He / Kaiming, fan_out)", lambda fi, fo: 2.0 / fo, True),
    Scheme("std 0.02 (GPT-2, BERT)", lambda fi, fo: 4e-4),
    Scheme("std 1 (N(0, 1), nn.Embedding's default)", lambda fi, fo: 1.0),
)


@dataclass
class Tally:
    """Per-draw records of one tensor (filled by :meth:`add`)."""

    entry: Entry
    means: list[float] = field(default_factory=list)
    variances: list[float] = field(default_factory=list)
    max_abs: list[float] = field(default_factory=list)
    nonfinite: list[int] = field(default_factory=list)
    identical_units: list[bool] = field(default_factory=list)
    orthogonal: list[bool] = field(default_factory=list)
    constants: list[float] = field(default_factory=list)
    bounds: list[float] = field(default_factory=list)
    sample: list[np.ndarray] = field(default_factory=list)

    def add(self, values: np.ndarray) -> None:
        """Record one draw of the tensor (a float64 array of the entry's shape)."""
        v = np.asarray(values, dtype=np.float64)
        flat = v.ravel()
        finite = np.isfinite(flat)
        self.nonfinite.append(int(flat.size - finite.sum()))
        good = flat[finite]
        with np.errstate(over="ignore", invalid="ignore"):
            self.max_abs.append(float(np.max(np.abs(good))) if good.size else math.inf)
            mean = float(np.mean(good)) if good.size else math.nan
            var = float(np.var(good)) if good.size else math.nan
        self.means.append(mean)
        self.variances.append(var)
        self.constants.append(float(good[0]) if good.size and var == 0.0 else math.nan)
        rows = v.reshape(v.shape[0], -1) if v.ndim >= 2 else None
        same = bool(rows is not None and rows.shape[0] > 1 and np.all(rows == rows[:1]))
        self.identical_units.append(same)
        self.orthogonal.append(_is_orthogonal(rows) if rows is not None and var > 0.0 else False)
        if var > 0.0 and math.isfinite(var):
            z = (good - mean) / math.sqrt(var)
            self.bounds.append(float(np.max(np.abs(z))))
            self.sample.append(z[:_SAMPLE])


def _is_orthogonal(rows: np.ndarray) -> bool:
    m = rows if rows.shape[0] <= rows.shape[1] else rows.T
    if m.shape[0] < 2 or not np.all(np.isfinite(m)):
        return False
    g = m @ m.T
    d = np.diag(g)
    if not np.all(d > 0.0):
        return False
    off = g - np.diag(d)
    return bool(np.max(np.abs(off)) <= 1e-6 * d.mean() and np.ptp(d) <= 1e-6 * d.mean())


def _interval(x: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% t interval of per-draw values (the interval is the mean for one draw)."""
    m = float(np.mean(x))
    if x.size < 2:
        return m, m, m
    half = float(_stats.t.ppf(0.975, x.size - 1) * np.std(x, ddof=1) / math.sqrt(x.size))
    return m, m - half, m + half


@dataclass(frozen=True)
class TensorStats:
    """What the re-initialisations say about one tensor.

    Attributes
    ----------
    entry : Entry
        The tensor.
    inits : int
        Re-initialisations measured.
    mean, mean_interval : float, (float, float)
        Mean entry, and its 95% interval over re-inits.
    std, std_interval : float, (float, float)
        ``sqrt`` of the mean per-draw variance, and the 95% interval of the
        per-draw std.
    variance, variance_se : float
        Mean per-draw variance and its standard error over re-inits.
    max_abs : float
        Largest ``|x|`` over all draws (finite entries).
    nonfinite_draws : int
        Draws with at least one NaN or inf.
    identical_unit_draws : int
        Draws in which every unit (row, filter) is the same.
    law : str
        ``constant``, ``orthogonal``, ``uniform``, ``truncated normal``,
        ``normal`` or ``-`` (nothing measurable).
    constant : float or None
        The value of a constant tensor (the same in every draw), else None.
    scheme : str or None
        The variance scheme matched (see the module docstring), e.g.
        ``"2/fan_in (He / Kaiming, fan_in)"``.
    scheme_fans : str or None
        ``"torch"`` or ``"true"``: the fans it matched with.
    sigma_w2 : float or None
        ``true_fan_in * variance``.
    """

    entry: Entry
    inits: int
    mean: float
    mean_interval: tuple[float, float]
    std: float
    std_interval: tuple[float, float]
    variance: float
    variance_se: float
    max_abs: float
    nonfinite_draws: int
    identical_unit_draws: int
    law: str
    constant: float | None
    scheme: str | None
    scheme_fans: str | None
    sigma_w2: float | None

    @property
    def second_moment(self) -> float:
        """``E[x^2] = Var + mean^2`` of an entry (a bias's or a gain's part of a length map)."""
        return float(self.variance + self.mean * self.mean)


def _law(t: Tally, variance: float) -> str:
    if variance == 0.0:
        return "constant"
    if t.orthogonal and all(t.orthogonal):
        return "orthogonal"
    if not t.sample:
        return "-"
    z = np.concatenate(t.sample)
    if z.size < 20:
        return "-"
    bound = float(np.median(t.bounds))  # max |z| of a draw: sqrt(3) for a uniform law
    kurt = float(_stats.kurtosis(z))
    if abs(bound - math.sqrt(3.0)) <= 0.05 * math.sqrt(3.0) and kurt < -0.9:
        return "uniform"
    if kurt < -0.3 and bound < 3.2:
        return "truncated normal"
    return "normal"


def _match(e: Entry, variance: float, se: float) -> tuple[str | None, str | None]:
    if e.fan_in is None or not (variance > 0.0 and math.isfinite(variance)):
        return None, None
    best: tuple[float, str, str] | None = None
    for fans, (fi, fo) in (
        ("torch", (e.fan_in, e.fan_out)),
        ("true", (e.true_fan_in, e.true_fan_out)),
    ):
        if fi is None or fo is None:
            continue
        for s in SCHEMES:
            want = s.variance(fi, fo)
            gap = abs(variance - want)
            if gap <= max(4.0 * se, 5e-3 * want):
                score = gap / want
                if best is None or score < best[0]:
                    best = (score, s.name, fans)
    if best is None:
        return None, None
    return best[1], best[2]


def summarise(t: Tally) -> TensorStats:
    """Summarise one tensor's draws (see the module docstring).

    Parameters
    ----------
    t : Tally
        The per-draw records.

    Returns
    -------
    TensorStats
        The summary.
    """
    e = t.entry
    var = np.array(t.variances)
    ok = np.isfinite(var)
    mean_m, mean_lo, mean_hi = _interval(np.array(t.means)[ok]) if ok.any() else (math.nan,) * 3
    _, std_lo, std_hi = _interval(np.sqrt(var[ok])) if ok.any() else (math.nan,) * 3
    v = float(np.mean(var[ok])) if ok.any() else math.nan
    se = float(np.std(var[ok], ddof=1) / math.sqrt(ok.sum())) if ok.sum() > 1 else 0.0
    consts = np.array(t.constants)
    constant = (
        float(consts[0])
        if consts.size and np.all(np.isfinite(consts)) and np.all(consts == consts[0])
        else None
    )
    scheme, fans = _match(e, v, se)
    return TensorStats(
        entry=e,
        inits=len(t.means),
        mean=mean_m,
        mean_interval=(mean_lo, mean_hi),
        std=math.sqrt(v) if v >= 0.0 else math.nan,
        std_interval=(std_lo, std_hi),
        variance=v,
        variance_se=se,
        max_abs=float(np.max(t.max_abs)) if t.max_abs else math.nan,
        nonfinite_draws=int(np.sum(np.array(t.nonfinite) > 0)),
        identical_unit_draws=int(np.sum(t.identical_units)),
        law=_law(t, v) if math.isfinite(v) else "-",
        constant=constant,
        scheme=scheme,
        scheme_fans=fans,
        sigma_w2=(e.true_fan_in * v) if e.true_fan_in is not None and math.isfinite(v) else None,
    )
