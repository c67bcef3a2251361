"""The audit's findings: initialisation bugs, each with its evidence and a one-line fix.

Every rule reads :class:`~initsim.audit.laws.TensorStats` over all
re-initialisations, never a single draw:

``nonfinite``
    NaN or inf in some draw, or ``|x| > 1e6``: memory never initialised
    (``torch.empty``) or an overflowing init. Severity ``error``.
``uninitialised``
    A tensor that is not all zero but whose largest ``|x|`` over every draw is
    below ``1e-20``: leftover memory (``1e-29``-like values), no init. Severity
    ``error``.
``symmetry``
    Every unit (row, filter) identical in every draw, and not all zero: the
    units get identical gradients and stay copies. Also every weight matrix
    of the model zero or constant. Severity ``error``.
``packed-slice``
    A slice of a packed tensor (``nn.MultiheadAttention``'s Q, K, V) whose
    variance is a fan_out scheme at the packed tensor's fans: each of Q, K, V
    gets ``2 / (E + 3E)``, half what separate projections get. Severity
    ``warning``.
``grouped-conv-fan``
    A grouped convolution whose variance is a fan_out scheme of PyTorch's
    fans, which ignore ``groups``: the variance is ``groups`` times smaller
    than the scheme intends. Severity ``warning``.
``declared-init-ignored``
    A scale parameter (LayerScale gamma, ReZero alpha) constant at a value
    other than the ``init_values`` its module declares. Severity ``error``.
``left-at-default``
    A layer still at PyTorch's constructor default (``1/(3 fan_in)``,
    uniform) while layers of the same type were re-initialised with another
    scheme by the model's init code. Severity ``warning``.
``activation-mismatch``
    In a recognised MLP chain (no normalisation), a layer feeding a ReLU,
    leaky ReLU or linear activation whose ``sigma_w2 = fan_in Var(W)`` is
    off the ``q``-preserving value (2 for ReLU: He) by more than a factor
    1.5: PyTorch's default ``1/3`` before ReLU shrinks ``q`` sixfold per
    layer. Severity ``warning``.
``signal-vs-theory``
    A layer of a recognised chain, or a recognised residual addition, whose
    measured ``q`` fails its theory row (:mod:`initsim.audit.chain_theory`,
    :mod:`initsim.audit.residual_theory`). Severity ``warning``.
``residual-scale-not-applied``
    A model of ``N >= 2`` residual branches that declares its depth
    (``config.n_layer`` and the like: :func:`initsim.audit.residual_theory.declared_depth`),
    or whose audit is told it means to scale them (``scaled_residual=True``),
    whose branch output projections (``c_proj``) are drawn with the same
    scheme as the other Linear weights: GPT-2's ``std / sqrt(2 n_layer)`` was
    never applied (a ``2 n_layer``-fold variance error), and the stream's
    mean square grows with every branch. Severity ``warning``.

On models without these bugs (those of ``tests/test_audit.py``) the rules
give no finding over 100 seeds (the false-positive budget).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

from initsim.audit.chain_theory import TheoryRow
from initsim.audit.laws import HUGE, SCHEMES, Scheme, TensorStats

__all__ = ["Finding", "find"]

_DEFAULT = "1/(3 fan_in) (PyTorch's nn.Linear/Conv default)"


@dataclass(frozen=True)
class Finding:
    """One initialisation problem.

    Attributes
    ----------
    rule : str
        The rule's name (see the module docstring).
    severity : str
        ``"error"`` or ``"warning"``.
    tensor : str
        The tensor's path.
    evidence : str
        What was measured, over how many re-initialisations.
    expected : str
        What a correct initialisation gives.
    fix : str
        A one-line fix.
    """

    rule: str
    severity: str
    tensor: str
    evidence: str
    expected: str
    fix: str


def _scheme(name: str) -> Scheme:
    return next(s for s in SCHEMES if s.name == name)


def _g(x: float) -> str:
    return f"{x:.4g}"


def _nonfinite(s: TensorStats) -> Finding | None:
    if s.nonfinite_draws == 0 and not s.max_abs > HUGE:
        return None
    what = (
        f"NaN/inf in {s.nonfinite_draws} of {s.inits} re-initialisations"
        if s.nonfinite_draws
        else f"|x| up to {_g(s.max_abs)}"
    )
    return Finding(
        "nonfinite",
        "error",
        s.entry.path,
        what,
        "finite values of order 1/sqrt(fan_in)",
        "initialise the tensor (torch.empty leaves memory as it was): e.g. "
        "nn.init.kaiming_uniform_ / normal_ in reset_parameters",
    )


def _uninitialised(s: TensorStats) -> Finding | None:
    if not (0.0 < s.max_abs < 1e-20) or s.constant == 0.0:
        return None
    return Finding(
        "uninitialised",
        "error",
        s.entry.path,
        f"|x| at most {_g(s.max_abs)} over {s.inits} re-initialisations, not all zero",
        "values of order 1/sqrt(fan_in), or exact zeros",
        "initialise the tensor (torch.empty leaves memory as it was)",
    )


def _symmetry(s: TensorStats) -> Finding | None:
    if s.entry.role not in ("weight", "embedding") or s.identical_unit_draws < s.inits:
        return None
    if s.constant == 0.0:
        return None  # zero-init (Fixup, SkipInit, ReZero): judged with the whole model
    return Finding(
        "symmetry",
        "error",
        s.entry.path,
        f"all {s.entry.shape[0]} units identical in each of {s.inits} re-initialisations"
        + (f" (constant {_g(s.constant)})" if s.constant is not None else ""),
        "independent random units",
        "draw the weights at random (the units stay copies: "
        "identical units get identical gradients)",
    )


def _packed(s: TensorStats) -> Finding | None:
    e = s.entry
    if e.rows is None or e.param != "in_proj_weight" or s.scheme_fans != "torch":
        return None
    if "fan_out" not in s.scheme and "Glorot" not in s.scheme:
        return None
    want = _scheme(s.scheme).variance(e.true_fan_in, e.true_fan_out)
    return Finding(
        "packed-slice",
        "warning",
        e.path,
        f"Var = {_g(s.variance)} = {s.scheme} of the packed {3 * e.shape[0]}x{e.shape[1]} tensor",
        f"Var = {_g(want)}, the same scheme for a separate {e.shape[0]}x{e.shape[1]} projection "
        f"({_g(want / s.variance)} times more)",
        "initialise the Q, K and V slices separately, e.g. nn.init.xavier_uniform_ on "
        "in_proj_weight[i*E:(i+1)*E] for i = 0, 1, 2",
    )


def _grouped(s: TensorStats) -> Finding | None:
    e = s.entry
    if e.groups <= 1 or e.role != "weight" or s.scheme_fans != "torch" or s.scheme is None:
        return None
    if not ("fan_out" in s.scheme or "Glorot" in s.scheme):
        return None
    if e.fan_out == e.true_fan_out:
        return None
    want = _scheme(s.scheme).variance(e.true_fan_in, e.true_fan_out)
    return Finding(
        "grouped-conv-fan",
        "warning",
        e.path,
        f"Var = {_g(s.variance)} = {s.scheme} with PyTorch's fan_out = {e.fan_out}",
        f"Var = {_g(want)}, the same scheme with the true fan_out = out_channels / groups * "
        f"kernel = {e.true_fan_out} ({_g(want / s.variance)} times more)",
        "use mode='fan_in', or compute fan_out = out_channels // groups * kernel_size "
        "yourself (PyTorch's fan_out ignores groups)",
    )


def _declared(s: TensorStats) -> Finding | None:
    e = s.entry
    if e.declared is None or s.constant is None:
        return None
    if math.isclose(s.constant, e.declared, rel_tol=1e-6, abs_tol=1e-12):
        return None
    return Finding(
        "declared-init-ignored",
        "error",
        e.path,
        f"constant {_g(s.constant)} in every re-initialisation",
        f"{_g(e.declared)}, the module's declared init value",
        "set the parameter from the declared value in reset_parameters, e.g. "
        "nn.init.constant_(self.gamma, self.init_values)",
    )


def _left_at_default(stats: list[TensorStats]) -> list[Finding]:
    by_type: dict[str, list[TensorStats]] = defaultdict(list)
    for s in stats:
        if s.entry.role == "weight" and s.entry.rows is None:
            by_type[s.entry.module_type.split("(")[0]].append(s)
    out = []
    for kind, group in by_type.items():
        schemes = {s.scheme for s in group if s.scheme is not None}
        others = sorted(schemes - {_DEFAULT})
        if _DEFAULT not in schemes or not others:
            continue
        for s in group:
            if s.scheme == _DEFAULT and s.law == "uniform":
                out.append(
                    Finding(
                        "left-at-default",
                        "warning",
                        s.entry.path,
                        f"Var = {_g(s.variance)}: still PyTorch's default (uniform, {_DEFAULT})",
                        f"the scheme of the other {kind} layers: {', '.join(others)}",
                        "include this layer in the model's init code (it was skipped)",
                    )
                )
    return out


def _all_symmetric(stats: list[TensorStats]) -> list[Finding]:
    weights = [s for s in stats if s.entry.role == "weight"]
    if not weights or any(s.constant is None for s in weights):
        return []
    return [
        Finding(
            "symmetry",
            "error",
            "(every weight matrix)",
            f"all {len(weights)} weight tensors constant in every re-initialisation",
            "random weights somewhere, to break the symmetry between units",
            "draw the weights at random (zero-init is only safe for some layers of a net)",
        )
    ]


def _activation_mismatch(
    stats: list[TensorStats], chain: list[tuple[str, str | None]] | None
) -> list[Finding]:
    from initsim.audit.chain_theory import preserving_sigma_w2
    from initsim.audit.recognise import as_activation

    if chain is None:
        return []
    by_path = {s.entry.path: s for s in stats}
    out = []
    for path, label in chain:
        if label is None:
            continue
        act = as_activation(label)
        keep = preserving_sigma_w2(act)
        w = by_path.get(f"{path}.weight")
        if keep is None or w is None or w.sigma_w2 is None:
            continue
        ratio = w.sigma_w2 / keep
        if 1.0 / 1.5 <= ratio <= 1.5:
            continue
        trend = "shrinks" if ratio < 1.0 else "grows"
        out.append(
            Finding(
                "activation-mismatch",
                "warning",
                w.entry.path,
                f"sigma_w2 = fan_in Var(W) = {_g(w.sigma_w2)} before {act.label}, no "
                f"normalisation in the chain: q {trend} by {_g(ratio)} per layer",
                f"{_g(keep)} keeps q through {act.label} (He: 2/fan_in for ReLU)",
                "nn.init.kaiming_normal_(weight, nonlinearity='relu') (or the scheme of the "
                "activation that follows)",
            )
        )
    return out


def _theory_failures(theory: list[TheoryRow], what: str = "layer") -> list[Finding]:
    return [
        Finding(
            "signal-vs-theory",
            "warning",
            f"{r.module} ({what} {r.layer})",
            f"measured q = {_g(r.observed)} [{_g(r.interval[0])}, {_g(r.interval[1])}] over "
            f"re-inits (p = {r.p_value:.2g}, Holm)",
            f"{_g(r.predicted)} from the measured laws' length map ({r.regime})",
            "look for correlated or non-centred weights, or an operation the chain's "
            "theory does not see",
        )
        for r in theory
        if r.verdict == "FAIL"
    ]


def _residual_scale(
    stats: list[TensorStats],
    projections: list[str],
    branches: int,
    declared: tuple[int, str] | None,
    growth: tuple[float, float] | None,
) -> list[Finding]:
    by_path = {s.entry.path: s for s in stats}
    proj = [by_path[p] for p in dict.fromkeys(projections) if p in by_path]
    if branches < 2 or not proj:
        return []
    names = {s.entry.path for s in proj}
    others = Counter(
        s.scheme
        for s in stats
        if s.entry.role == "weight"
        and s.entry.module_type.startswith("Linear")
        and s.entry.path not in names
        and s.scheme is not None
    )
    if not others:
        return []
    ref = others.most_common(1)[0][0]
    unscaled = [s for s in proj if s.scheme == ref]
    if not unscaled:
        return []
    first = unscaled[0]
    tensors = (
        ", ".join(s.entry.path for s in unscaled)
        if len(unscaled) <= 3
        else f"{first.entry.path} ... {unscaled[-1].entry.path} ({len(unscaled)} tensors)"
    )
    why = declared[1] if declared is not None else "told that the model scales them"
    evidence = (
        f"Var = {_g(first.variance)} = {ref}, the scheme of the other Linear weights, "
        f"in {len(unscaled)} of {len(proj)} branch output projections ({branches} residual "
        f"branches; {why})"
    )
    if growth is not None:
        evidence += (
            f"; the stream's q grows from {_g(growth[0])} after the first branch to "
            f"{_g(growth[1])} after the last"
        )
    gpt2 = (
        f" (GPT-2: 2 n_layer = {2 * declared[0]})"
        if declared is not None and "layer" in declared[1]
        else ""
    )
    suffix = first.entry.path.rsplit(".", 2)[-2]
    want = _scheme(ref).variance(first.entry.true_fan_in, first.entry.true_fan_out)
    return [
        Finding(
            "residual-scale-not-applied",
            "warning",
            tensors,
            evidence,
            f"Var = {_g(want / branches)}: the scheme divided by the number of "
            f"residual branches N = {branches}{gpt2}, std / sqrt(N)",
            f"after the generic init loop, redraw them: for name, p in model.named_parameters(): "
            f"if name.endswith('{suffix}.weight'): nn.init.normal_(p, std=std / math.sqrt(N))",
        )
    ]


def find(
    stats: list[TensorStats],
    chain: list[tuple[str, str | None]] | None = None,
    theory: list[TheoryRow] | None = None,
    *,
    residual_theory: list[TheoryRow] | None = None,
    residual: dict | None = None,
) -> list[Finding]:
    """Apply every rule of the module docstring.

    Parameters
    ----------
    stats : list of TensorStats
        The audited tensors, in module order.
    chain : list of (str, str or None), optional
        A recognised MLP chain (for ``activation-mismatch``).
    theory : list of TheoryRow, optional
        The chain's theory rows (for ``signal-vs-theory``).
    residual_theory : list of TheoryRow, optional
        The rows of the residual additions (for ``signal-vs-theory``).
    residual : dict, optional
        For ``residual-scale-not-applied`` when the model should scale its
        branches: ``projections`` (the branches' output projection weights),
        ``branches`` (their number), ``declared`` (the depth and where it is
        declared, or None when the caller says so) and ``growth`` (the
        stream's ``q`` after the first and the last branch, or None).

    Returns
    -------
    list of Finding
        Errors first, then warnings, each in module order.
    """
    found: list[Finding] = []
    for s in stats:
        for rule in (_nonfinite, _uninitialised, _symmetry, _packed, _grouped, _declared):
            f = rule(s)
            if f is not None:
                found.append(f)
    found += _left_at_default(stats)
    found += _all_symmetric(stats)
    found += _activation_mismatch(stats, chain)
    found += _theory_failures(theory or [])
    found += _theory_failures(residual_theory or [], "residual addition")
    if residual is not None:
        found += _residual_scale(stats, **residual)
    return sorted(found, key=lambda f: f.severity != "error")
