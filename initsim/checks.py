"""Statistical verdicts: a :class:`SimulationResult` held against the theory.

Every check is a hypothesis test with a stated false-rejection rate:

- ``E[q^l]`` per layer: a z-test of the mean over nets (Monte Carlo standard
  error) against the prediction. For linear and ReLU-like activations
  (positively homogeneous) with zero-mean symmetric weights the prediction
  ``q_map`` is exact at every width. Otherwise it is the mean-field map plus
  the first finite-width correction (:mod:`initsim.theory.finite_width`); when the
  neglected ``O(1/n^2)`` remainder could be as large as half the standard
  error, the row says "outside the mean-field regime at width n" and is not
  tested (no false PASS or FAIL).
- the law of ``q^1`` (Gaussian weights, one fixed-norm input):
  ``q^1 ~ (q^1_pred / n_1) chi^2_{n_1}`` exactly; a Kolmogorov-Smirnov test.
- ``E[grad_sq^l]`` per layer (with ``backward=True``): exact for
  positively homogeneous activations and symmetric weights, mean-field
  (gradient independence) otherwise, guarded like ``q``.
- claims, e.g. ``preserves-variance``: ``E[q^L] = E[q^1]``, a paired z-test.

The p-values of all tested rows are combined with Holm's step-down method,
so the overall verdict FAILs with probability at most ``alpha`` when the
simulation agrees with the theory (any dependence between rows).

:func:`theory_inputs` is the one reader of what the theory needs from a
stored result (activation, ``sigma_w2`` per layer, ``sigma_b2``, widths,
input law), or of why the theory does not apply; :func:`check` and the
report's figures both use it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from initsim import initializers as _initializers
from initsim._validate import check_real
from initsim.activations import Activation
from initsim.result import ResidualResult, SimulationResult, mean_and_se

if TYPE_CHECKING:
    from initsim.jacobian import JacobianSpectrum

__all__ = [
    "CLAIMS",
    "MIN_NETS",
    "CheckReport",
    "CheckRow",
    "TheoryInputs",
    "check",
    "holm",
    "theory_inputs",
]

#: Claims a user can add to a check.
CLAIMS = ("preserves-variance",)
#: Fewest nets :func:`check` accepts (its standard errors need a few nets).
MIN_NETS = 10

REGIME_FRACTION = 0.5  # remainder allowed, as a fraction of the standard error
_ROUNDING = 1e-10  # relative floor of a standard error: float64 sums over many layers
_MAX_MEAN_SKEW = 0.5  # largest predicted skewness of a Monte Carlo mean we z-test


def _mean_skewness(rel_var: float, nets: int) -> float:
    """Predicted skewness of the mean of ``nets`` per-net values with relative variance ``rel_var``.

    Per-net lengths of deep nets are close to log-normal (Hanin & Rolnick
    2018), whose skewness is ``(e^s + 2) sqrt(e^s - 1)`` with
    ``e^s = 1 + rel_var``; the mean of ``nets`` values has that over
    ``sqrt(nets)``. The sample variance of such data underestimates the true
    one, so this is computed from the theory, not from the sample.
    """
    rel_var = max(rel_var, 0.0)
    return (rel_var + 3.0) * math.sqrt(rel_var) / math.sqrt(nets)


@dataclass(frozen=True)
class CheckRow:
    """One tested (or deliberately untested) quantity.

    Attributes
    ----------
    layer : int
        Hidden layer (1-based); 0 for rows about the whole net.
    quantity : str
        What is compared, e.g. ``"E[q]"``.
    observed, predicted : float
        Monte Carlo estimate and theory.
    interval : tuple of float
        ``1 - alpha`` confidence interval of the observed quantity (NaN for
        distribution tests).
    p_value : float
        Two-sided p-value (NaN when not tested).
    regime : str
        "exact", "mean-field", or why the row is not tested.
    verdict : str
        "PASS", "FAIL" (after Holm) or "N/A" (not tested).
    """

    layer: int
    quantity: str
    observed: float
    predicted: float
    interval: tuple[float, float]
    p_value: float
    regime: str
    verdict: str = "N/A"


@dataclass(frozen=True)
class CheckReport:
    """All rows, the family-wise error rate and the overall verdict."""

    rows: list[CheckRow]
    alpha: float
    verdict: str
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether the overall verdict is PASS."""
        return self.verdict == "PASS"

    def table(self) -> str:
        """Format the rows as a fixed-width text table.

        Returns
        -------
        str
            One header line and one line per row, then the verdict.
        """
        head = (
            f"{'layer':>5}  {'quantity':<22} {'observed':>11} {'predicted':>11}  "
            f"{'interval':>25}  {'p-value':>9}  {'verdict':<7} regime"
        )
        lines = [head]
        for r in self.rows:
            lo, hi = r.interval
            iv = "" if math.isnan(lo) else f"[{lo:11.4g}, {hi:11.4g}]"
            p = "" if math.isnan(r.p_value) else f"{r.p_value:9.3g}"
            lines.append(
                f"{r.layer:>5}  {r.quantity:<22} {r.observed:11.4g} {r.predicted:11.4g}  "
                f"{iv:>25}  {p:>9}  {r.verdict:<7} {r.regime}"
            )
        lines.append(f"overall: {self.summary()}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def summary(self) -> str:
        """Return the verdict with how many rows were testable and how many failed.

        Returns
        -------
        str
            E.g. ``"PASS, 21 of 41 rows testable (0 failed; Holm family-wise
            alpha = 0.01)"``: a PASS over few testable rows says little, and the
            untested rows say why in their regime.
        """
        tested = sum(r.verdict != "N/A" for r in self.rows)
        failed = sum(r.verdict == "FAIL" for r in self.rows)
        return (
            f"{self.verdict}, {tested} of {len(self.rows)} rows testable ({failed} failed; "
            f"Holm family-wise alpha = {self.alpha:g})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary (NaN written as null)."""
        return json.loads(json.dumps(asdict(self), default=str).replace("NaN", "null"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckReport:
        """Rebuild a report from :meth:`to_dict` (as a study stores it).

        Parameters
        ----------
        data : dict
            The dictionary :meth:`to_dict` returned; null numbers become NaN.

        Returns
        -------
        CheckReport
            The report.
        """

        def num(x: Any) -> float:
            return float("nan") if x is None else float(x)

        rows = [
            CheckRow(
                layer=int(r["layer"]),
                quantity=r["quantity"],
                observed=num(r["observed"]),
                predicted=num(r["predicted"]),
                interval=(num(r["interval"][0]), num(r["interval"][1])),
                p_value=num(r["p_value"]),
                regime=r["regime"],
                verdict=r["verdict"],
            )
            for r in data["rows"]
        ]
        return cls(rows=rows, alpha=data["alpha"], verdict=data["verdict"], notes=data["notes"])


def holm(p_values: np.ndarray, alpha: float) -> np.ndarray:
    """Holm's step-down rejections for a family of p-values.

    Parameters
    ----------
    p_values : array_like
        The family's p-values.
    alpha : float
        Family-wise error rate.

    Returns
    -------
    numpy.ndarray of bool
        Which hypotheses are rejected.
    """
    p = np.asarray(p_values, dtype=float)
    m = p.size
    order = np.argsort(p)
    reject = np.zeros(m, dtype=bool)
    for rank, idx in enumerate(order):
        if p[idx] <= alpha / (m - rank):
            reject[idx] = True
        else:
            break
    return reject


def z_row(
    layer: int, quantity: str, samples: np.ndarray, predicted: float, alpha: float, regime: str
) -> tuple[CheckRow, float]:
    """Return a z-test row of the mean of ``samples`` against ``predicted``, and its SE."""
    # overflow-safe: values whose squares exceed the float64 range are still tested
    mean, se_mc = mean_and_se(samples)
    # floor: deterministic quantities (orthogonal linear nets) differ only by rounding
    se = max(se_mc, _ROUNDING * abs(predicted))
    zc = stats.norm.isf(alpha / 2)
    if se == 0.0:
        p = 1.0 if mean == predicted else 0.0
    else:
        z = abs(mean - predicted) / se
        if not math.isfinite(z) and math.isfinite(mean) and math.isfinite(se):
            top = max(abs(mean), abs(predicted))  # the difference overflowed: rescale
            z = abs(mean / top - predicted / top) / (se / top)
        p = float(2 * stats.norm.sf(z))
    return CheckRow(
        layer, quantity, mean, predicted, (mean - zc * se, mean + zc * se), p, regime
    ), se


def overflow_row(layer: int, quantity: str, obs: np.ndarray, predicted: float) -> CheckRow:
    """Return a row left untested because the simulation or the theory overflowed."""
    nan2 = (math.nan, math.nan)
    return CheckRow(
        layer,
        quantity,
        mean_and_se(obs)[0],
        float(predicted),
        nan2,
        math.nan,
        "overflow: not tested",
    )


def skew_regime(row: CheckRow, rel_var: float, nets: int) -> CheckRow:
    """Leave ``row`` untested if its Monte Carlo mean is too skewed for a z-test."""
    skew = _mean_skewness(float(rel_var), nets) if math.isfinite(rel_var) else math.inf
    if skew <= _MAX_MEAN_SKEW or math.isnan(row.p_value):
        return row
    try:
        need = math.ceil(nets * (skew / _MAX_MEAN_SKEW) ** 2) if math.isfinite(skew) else 0
    except OverflowError:  # more nets than a float can count
        need = 0
    more = f"; about {need} nets would do" if need else ""
    return replace(
        row,
        p_value=math.nan,
        regime=f"mean too skewed for a z-test at {nets} nets (skewness {skew:.2g}){more}",
    )


#: The input modes whose norm law the theory knows (``E ||x||^2 / n_0 = 1`` for both).
_THEORY_INPUT_MODES = ("sphere", "gaussian")


@dataclass(frozen=True, eq=False)
class TheoryInputs:
    """What mean-field theory needs from a stored result, read by :func:`theory_inputs`.

    Attributes
    ----------
    activation : Activation
        The activation, rebuilt with :meth:`Activation.from_param`.
    law : str
        The weight law (:attr:`initsim.initializers.LawSpec.law`), the same
        at every layer; zero-mean and symmetric
        (:meth:`~initsim.initializers.LawSpec.is_centred`).
    widths : tuple of int
        ``(n_0, n_1, ..., n_L)``.
    sigma_w2 : numpy.ndarray
        Per layer ``fan_in * Var(W_ij)`` (read-only, shape ``(L,)``); for
        orthogonal weights ``gain^2 n_in / max(n_in, n_out)``, since
        ``||W x||^2 = gain^2 ||x||^2`` when ``n_out >= n_in``.
    sigma_b2 : float
        ``bias_std ** 2``.
    input : str
        ``"sphere"`` or ``"gaussian"``.
    inputs : int
        Inputs per net (1 for a Jacobian spectrum, whose config has none).
    q0 : float
        ``E ||x||^2 / n_0``: 1.0 for both input modes.
    q0_var : float
        ``Var(||x||^2 / n_0)``: ``2 / n_0`` for Gaussian inputs, 0 on the sphere.

    Notes
    -----
    Instances compare by identity (``sigma_w2`` is an array).
    """

    activation: Activation
    law: str
    widths: tuple[int, ...]
    sigma_w2: np.ndarray
    sigma_b2: float
    input: str
    inputs: int
    q0: float
    q0_var: float


def theory_inputs(
    result: SimulationResult | JacobianSpectrum,
) -> tuple[TheoryInputs, None] | tuple[None, str]:
    """Read what mean-field theory needs from a result's provenance, or why it does not apply.

    The one reader of theory inputs: :func:`check` raises the reason as a
    ValueError, the report's figures draw no theory line.

    Parameters
    ----------
    result : SimulationResult or JacobianSpectrum
        A result of :func:`initsim.simulate` or
        :func:`initsim.jacobian_spectrum` (anything with a ``provenance``
        dict holding its ``config``).

    Returns
    -------
    (TheoryInputs, None) or (None, str)
        The inputs, or None and the reason the theory does not cover the
        result: no provenance config, weights that are not zero-mean
        symmetric random ones (deterministic, shifted or asymmetric laws,
        e.g. ``uniform(0, 1)``), an input other than ``"sphere"`` or
        ``"gaussian"`` (a user array), or a residual result (read by
        :func:`initsim.residual_check.residual_theory_inputs`).
    """
    cfg = result.provenance.get("config") if result.provenance else None
    if not cfg:
        return None, "result has no provenance config: pass a result of initsim.simulate"
    if cfg.get("arch", "mlp") != "mlp":
        return None, (
            f"a result of arch={cfg['arch']!r}: its theory inputs are read by "
            "initsim.residual_check.residual_theory_inputs"
        )
    ini = _initializers.get(cfg["init"], **cfg.get("init_params", {}))
    widths = tuple(int(w) for w in cfg["widths"])
    specs = [ini.law_spec(widths[t], widths[t + 1]) for t in range(len(widths) - 1)]
    law = specs[0].law
    if not all(s.is_centred() for s in specs):
        return None, (
            f"the theory covers zero-mean symmetric random weights; initializer {ini.name!r} "
            f"(law {law!r}) is not one"
        )
    if cfg["input"] not in _THEORY_INPUT_MODES:
        return None, "checks need input='sphere' or 'gaussian' (a known input norm law)"
    if law == "orthogonal":  # ||W x||^2 = g^2 ||x||^2 when n_out >= n_in
        sigma_w2 = np.array(
            [s.gain**2 * widths[t] / max(widths[t], widths[t + 1]) for t, s in enumerate(specs)]
        )
    else:
        sigma_w2 = np.array([ini.sigma_w2(widths[t], widths[t + 1]) for t in range(len(specs))])
    sigma_w2.setflags(write=False)
    activation = Activation.from_config(cfg)
    return TheoryInputs(
        activation=activation,
        law=law,
        widths=widths,
        sigma_w2=sigma_w2,
        sigma_b2=float(cfg["bias_std"]) ** 2,
        input=cfg["input"],
        inputs=int(cfg.get("inputs", 1)),
        q0=1.0,
        q0_var=2.0 / widths[0] if cfg["input"] == "gaussian" else 0.0,
    ), None


def check(
    result: SimulationResult,
    *,
    alpha: float = 0.01,
    sigma_w2: float | None = None,
    sigma_b2: float | None = None,
    claims: str | Sequence[str] = (),
) -> CheckReport:
    """Test a simulation against the theory, with family-wise error rate ``alpha``.

    Parameters
    ----------
    result : SimulationResult or ResidualResult
        Output of :func:`initsim.simulate` (``backward=True`` adds gradient
        rows); residual results are checked per block by
        :func:`initsim.residual_check.check_residual`.
    alpha : float
        Family-wise false-rejection rate in (0, 1).
    sigma_w2, sigma_b2 : float, optional
        Test against these instead of the values implied by the result's
        initializer and ``bias_std`` (to test a claim such as "Var(w) = 2/n").
    claims : str or sequence of str
        Extra claims from :data:`CLAIMS` (one name, or a list of names).

    Returns
    -------
    CheckReport
        Rows, notes and the overall PASS/FAIL verdict.

    Raises
    ------
    ValueError
        For a ``result`` that is not a :class:`SimulationResult`, an invalid
        ``alpha``, ``sigma_w2``, ``sigma_b2`` or claim, or a
        simulation the theory does not cover (deterministic or non-symmetric
        weights, a user-supplied input array; the reason from
        :func:`theory_inputs`).
    """
    from initsim import theory
    from initsim.theory import finite_width

    if isinstance(result, ResidualResult):
        alpha = check_real("alpha", alpha, minimum=0.0, strict=True)
        if not alpha < 1.0:
            raise ValueError(f"alpha must be a number in (0, 1); got {alpha!r}")
        if sigma_w2 is not None or sigma_b2 is not None:
            raise ValueError("sigma_w2 and sigma_b2 overrides apply to arch='mlp' results only")
        from initsim.residual_check import check_residual

        claims = (claims,) if isinstance(claims, str) else tuple(claims)
        return check_residual(result, alpha=alpha, claims=claims)
    if not isinstance(result, SimulationResult):
        raise ValueError(
            f"result must be a SimulationResult (what initsim.simulate returns); got "
            f"{type(result).__name__}"
        )
    alpha = check_real("alpha", alpha, minimum=0.0, strict=True)
    if not alpha < 1.0:
        raise ValueError(f"alpha must be a number in (0, 1); got {alpha!r}")
    if isinstance(claims, str):  # one claim
        claims = (claims,)
    try:
        claims = tuple(claims)
    except TypeError:
        raise ValueError(
            f"claims must be a claim name or a list of them ({', '.join(CLAIMS)}); got {claims!r}"
        ) from None
    for c in claims:
        if c not in CLAIMS:
            raise ValueError(f"unknown claim {c!r}; valid claims: {', '.join(CLAIMS)}")
    if sigma_w2 is not None:
        sigma_w2 = check_real("sigma_w2", sigma_w2, minimum=0.0, strict=True)
    if sigma_b2 is not None:
        sigma_b2 = check_real("sigma_b2", sigma_b2, minimum=0.0)
    if result.nets < MIN_NETS:
        raise ValueError(f"checks need at least {MIN_NETS} nets; the result has {result.nets}")
    ti, reason = theory_inputs(result)
    if ti is None:
        raise ValueError(reason)
    sw = ti.sigma_w2
    if sigma_w2 is not None:
        sw = np.full_like(sw, sigma_w2)
    sb = ti.sigma_b2 if sigma_b2 is None else sigma_b2
    act = ti.activation
    widths = ti.widths
    n_min = min(widths[1:])
    depth = len(widths) - 1
    q0_var = ti.q0_var
    exact = act.positively_homogeneous
    outside = f"outside the mean-field regime at width {n_min}"
    notes: list[str] = []

    rows: list[CheckRow] = []
    # diverging predictions overflow to inf/NaN: such rows are reported "overflow: not
    # tested" below, so the overflow is expected here, not a warning
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        mean_q, var_q, mf_q = finite_width.q_moments(act, sw, sb, 1.0, widths, q0_var)
    nets = result.nets
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rel2 = 1.0 + np.asarray(var_q) / np.asarray(mean_q) ** 2  # E[q^2] / E[q]^2
        # gradient at layer l: the relative second moment gathered over layers l..L
        rel2_before = np.concatenate(([1.0 + q0_var], rel2[:-1]))
        grad_rel_var = np.cumprod((rel2 / rel2_before)[::-1])[::-1] - 1.0

    for t in range(depth):
        obs = result.q[:, t]
        if not np.all(np.isfinite(obs)) or not math.isfinite(mean_q[t]):
            rows.append(overflow_row(t + 1, "E[q]", obs, mean_q[t]))
            continue
        pred = float(mf_q[t] if exact else mean_q[t])
        row, se = z_row(t + 1, "E[q]", obs, pred, alpha, "exact" if exact else "mean-field")
        if not exact:
            correction = abs(mean_q[t] - mf_q[t])
            with np.errstate(over="ignore"):  # an infinite remainder: outside the regime
                remainder = 10.0 * correction * correction / max(abs(mf_q[t]), 1e-300)
            if remainder > REGIME_FRACTION * se:
                row = replace(row, p_value=math.nan, regime=outside)
        rows.append(skew_regime(row, rel2[t] - 1.0, nets))

    if ti.law == "gaussian" and ti.inputs == 1 and ti.input == "sphere":
        q1 = float(sw[0] + sb)
        n1 = widths[1]
        with np.errstate(over="ignore", invalid="ignore"):  # diverged nets: inf or NaN
            ks = stats.kstest(result.q[:, 0] * n1 / q1, stats.chi2(n1).cdf)
        rows.append(
            CheckRow(
                1,
                "law of q^1 (chi^2)",
                float(np.mean(result.q[:, 0])),
                q1,
                (math.nan, math.nan),
                float(ks.pvalue),
                "exact",
            )
        )

    if result.grad_sq is not None:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            pred_g = theory.grad_sq_map(act, sw, sb, 1.0, widths)
        for t in range(depth):
            obs = result.grad_sq[:, t]
            if not np.all(np.isfinite(obs)) or not math.isfinite(pred_g[t]):
                rows.append(overflow_row(t + 1, "E[grad^2]", obs, pred_g[t]))
                continue
            row, se = z_row(
                t + 1, "E[grad^2]", obs, float(pred_g[t]), alpha, "exact" if exact else "mean-field"
            )
            if not exact:
                bias_scale = abs(pred_g[t]) * (depth - t) / n_min
                if bias_scale > REGIME_FRACTION * se:
                    row = replace(row, p_value=math.nan, regime=outside)
            rows.append(skew_regime(row, grad_rel_var[t], nets))

    if "preserves-variance" in claims:
        diff = result.q[:, -1] - result.q[:, 0]
        row, _ = z_row(0, "claim E[q^L] - E[q^1]", diff, 0.0, alpha, "claim (paired z-test)")
        rows.append(row)

    tested = [i for i, r in enumerate(rows) if not math.isnan(r.p_value)]
    reject = holm(np.array([rows[i].p_value for i in tested]), alpha) if tested else []
    for i, rej in zip(tested, reject, strict=True):
        rows[i] = replace(rows[i], verdict="FAIL" if rej else "PASS")
    if not tested:
        notes.append("no row could be tested: run more nets, wider nets, or fewer layers")
    if any(r.regime.startswith("outside") for r in rows):
        notes.append(
            "rows outside the mean-field regime are not tested: the simulation resolves "
            "effects of order 1/width that the theory leaves out (use wider nets)"
        )
    if any(r.regime.startswith("mean too skewed") for r in rows):
        notes.append(
            "rows whose Monte Carlo mean is too skewed are not tested: per-net values of "
            "deep narrow nets are heavy-tailed (relative variance ~ exp(5 L / n) for ReLU), "
            "the sample variance underestimates the spread and a z-test would reject "
            "correct theory; run more nets or use wider nets"
        )
    verdict = "FAIL" if any(r.verdict == "FAIL" for r in rows) else "PASS"
    return CheckReport(rows=rows, alpha=alpha, verdict=verdict, notes=notes)
