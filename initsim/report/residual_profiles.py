"""Residual networks: the stream's second moment (and its gradient's) against block.

One colour per cell (a branch multiplier, a normalization placement, a named
scheme, ...): the Monte Carlo mean of ``q^l = mean_i (x_i^l)^2`` after each
block with its confidence band, and the mean-field prediction of
:func:`initsim.theory.residual.residual_q_map` dashed where the theory covers
the cell; a second panel does the same for ``grad_sq^l`` when the cells
recorded gradients (:func:`initsim.theory.residual.residual_grad_map`).

The lines are the ones :func:`initsim.check` tests a residual run against
(:func:`initsim.residual_check.residual_predictions` on what
:func:`initsim.residual_check.residual_theory_inputs` reads from the run's
config). A configuration the theory does not cover, or a theory that fails
(raises, or returns the wrong number of values), only removes that cell's
theory line; the caption says which cells have none and why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from initsim.report._common import (
    cell_label,
    cells_inputs_phrase,
    describe_init,
    finish,
    fit_log_axis,
    fmt,
    nets_phrase,
    new_page,
    positive,
    seed_phrase,
    varying_keys,
)

__all__ = ["ResidualTheory", "residual_profile_figure", "residual_theory"]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
#: How the caption spells each normalization placement's block.
_BLOCKS = {
    "none": "x^(l+1) = skip x^l + alpha F(x^l) (no normalization)",
    "pre": "x^(l+1) = skip x^l + alpha F(N(x^l)) (Pre-LN)",
    "post": "x^(l+1) = N(skip x^l + alpha F(x^l)) (Post-LN)",
}
_NORM_NAMES = {
    "layernorm": "LayerNorm over the units (no affine)",
    "rmsnorm": "RMSNorm over the units",
    "batchnorm": "BatchNorm of each unit over a net's inputs",
}


@dataclass(frozen=True)
class ResidualTheory:
    """The theory lines of one residual cell, or why it has none.

    Attributes
    ----------
    q : numpy.ndarray (blocks,) or None
        ``E[q^l]`` after each block; None when the theory does not cover the cell.
    grad_sq : numpy.ndarray (blocks,) or None
        ``E[grad_sq^l]``; None without gradients or theory for them.
    q_reason, grad_reason : str or None
        Why ``q`` (``grad_sq``) is None (None when it is drawn, or when the
        cell recorded no gradients).
    """

    q: np.ndarray | None
    grad_sq: np.ndarray | None
    q_reason: str | None
    grad_reason: str | None


def _config(result: Any) -> Mapping[str, Any]:
    cfg = (getattr(result, "provenance", None) or {}).get("config")
    return cfg or {}


def _is_residual(result: Any) -> bool:
    return _config(result).get("arch") == "residual"


def _why(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def residual_theory(result: Any) -> ResidualTheory:
    """Theory lines of a residual run: ``E[q^l]`` and ``E[grad_sq^l]`` per block.

    The lines :func:`initsim.check` tests the run against: the run's recorded
    config is read by :func:`initsim.residual_check.residual_theory_inputs`
    and the lines come from :func:`initsim.residual_check.residual_predictions`
    (:func:`initsim.theory.residual.residual_q_map` and ``residual_grad_map``
    with ``q0 = 1``; a zero branch layer makes the branch exactly 0, given
    to the maps as ``alpha = 0``).

    Parameters
    ----------
    result : ResidualResult
        A run of ``simulate(arch="residual")``.

    Returns
    -------
    ResidualTheory
        The lines, or the reason for each missing one. Never raises: a
        configuration the theory does not cover, or a theory that fails or
        returns the wrong number of values, gives a reason.
    """
    from initsim.residual_check import residual_predictions, residual_theory_inputs

    has_grad = getattr(result, "grad_sq", None) is not None
    depth = int(result.depth)

    def none(reason: str) -> ResidualTheory:
        return ResidualTheory(None, None, reason, reason if has_grad else None)

    ti, reason = residual_theory_inputs(result)
    if ti is None:
        return none(str(reason))
    try:
        q, g = residual_predictions(ti, backward=has_grad)
    except Exception as err:  # a failing theory must not break the report
        return none(f"the residual theory failed ({_why(err)})")
    lines = []
    for line in (q, g):
        values = None if line is None else np.asarray(line, dtype=float).ravel()
        if values is not None and values.shape != (depth,):
            return none(f"the residual theory returned {values.size} values for {depth} blocks")
        lines.append(values)
    return ResidualTheory(lines[0], lines[1], None, None)


# ----------------------------------------------------------------------------------
# labels and caption pieces
# ----------------------------------------------------------------------------------


def _alpha_text(value: Any, depth: int) -> str:
    """``alpha 0.177 (1/sqrt(L))``: a float with the depth rule it equals, if one."""
    if isinstance(value, list):
        return f"alpha per block [{fmt(value[0])}, ..., {fmt(value[-1])}]"
    a = float(value)
    text = f"alpha {fmt(a)}"
    for rule, v in (("1/sqrt(L)", 1.0 / math.sqrt(depth)), ("1/L", 1.0 / depth)):
        if depth > 1 and math.isclose(a, v, rel_tol=1e-6):
            return f"{text} = {rule}"
    return text


def _labels(cells: Sequence[Any]) -> tuple[list[str], list[str]]:
    """One label per cell naming every varying parameter (a single cell: its setting)."""
    keys = varying_keys(cells)
    if not keys:
        keys = [k for k in ("scheme", "norm", "alpha") if k in cells[0].params] or ["activation"]
    labels = []
    for c in cells:
        depth = int(c.result.depth)
        parts = []
        for key in keys:
            value = c.params.get(key)
            if value is None and c.params.get("scheme"):
                continue  # the scheme sets it (an initializer's default would mislead)
            if key == "alpha" and value is not None:
                parts.append(_alpha_text(value, depth))
            elif key == "norm" and value is not None:
                parts.append({"none": "no norm", "pre": "Pre-LN", "post": "Post-LN"}[value])
            elif key == "init" and isinstance(value, list):
                parts.append("init [" + ", ".join(describe_init(v) for v in value) + "]")
            else:
                part = cell_label(c.params, [key])
                if part:
                    parts.append(part)
        if not parts:  # every varying key unset here: say what the run was
            cfg = _config(c.result)
            parts.append(
                "no scheme"
                if "scheme" in keys
                else f"{_alpha_text(cfg.get('alpha', [1.0])[0], depth)}, norm {cfg.get('norm')}"
            )
        labels.append(", ".join(parts))
    return labels, keys


def _init_name(name: str, params: Mapping[str, Any] | None) -> str:
    """``describe_init`` of a recorded initializer, its name alone when it has its defaults."""
    from initsim import initializers

    try:
        if initializers.get(name).params == dict(params or {}):
            return name
    except (TypeError, ValueError):
        pass
    return describe_init({"name": name, **(params or {})})


def _init_text(cfg: Mapping[str, Any]) -> str:
    names, params = cfg.get("init", []), cfg.get("init_params", [])
    items = [_init_name(n, p) for n, p in zip(names, params, strict=False)]
    if len(set(items)) == 1:
        return f"{items[0]} on all {len(items)} branch layers"
    return "[" + ", ".join(items) + "]"


def _per_block_text(values: Sequence[float]) -> str:
    v = [float(x) for x in values]
    if not v:
        return "-"
    if all(math.isclose(x, v[0], rel_tol=1e-12, abs_tol=0.0) for x in v):
        return fmt(v[0])
    return f"{fmt(v[0])} .. {fmt(v[-1])} per block"


def _settings_text(cell: Any) -> str:
    """Say what a scheme set, from the recorded config: init, alpha, skip, norm, scales."""
    cfg = _config(cell.result)
    parts = [
        f"norm {cfg.get('norm')}",
        f"alpha {_per_block_text(cfg.get('alpha', []))}",
        f"skip {_per_block_text(cfg.get('skip', []))}",
        f"init {_init_text(cfg)}",
    ]
    scale = cfg.get("in_scale", [])
    if scale and any(float(x) != 1.0 for x in scale):
        parts.append(f"branch input times 1/beta_l = {_per_block_text(scale)}")
    if float(cfg.get("act_scale", 1.0)) != 1.0:
        parts.append(f"activations times gamma = {fmt(cfg['act_scale'], 4)}")
    return f"{cfg.get('scheme')}: " + ", ".join(parts)


def _branch_text(configs: Sequence[Mapping[str, Any]]) -> str:
    ms = sorted({int(c.get("branch_layers", 2)) for c in configs})
    texts = []
    for m in ms:
        if m == 1:
            texts.append("F(u) = W_1 phi(u) (m = 1)")
        elif m == 2:
            texts.append("F(u) = W_2 phi(W_1 u) (m = 2 dense layers)")
        else:
            texts.append(f"F(u) = W_{m} phi(... phi(W_1 u)) (m = {m} dense layers)")
    return " or ".join(texts)


def _sizes_text(configs: Sequence[Mapping[str, Any]]) -> str:
    sizes = sorted(
        {
            (int(c["depth"]), int(c["width"]), int(c.get("width_branch") or c["width"]))
            for c in configs
        }
    )
    out = []
    for L, n, nb in sizes:
        plural = "s" if L != 1 else ""
        out.append(f"{L} block{plural}, stream width n = {n}, branch width {nb}")
    return "; ".join(out)


def _ids(cells: Sequence[Any], among: Sequence[Any] = ()) -> str:
    if among and len(cells) == len(among) > 1:
        return "every cell"
    if among and len(among) - len(cells) == 1 and len(cells) > 1:
        return f"every cell but {next(c.id for c in among if c not in cells)}"
    ids = [c.id for c in cells]
    if len(ids) > 4:
        ids = [*ids[:2], f"... ({len(ids) - 3} more)", ids[-1]]
    return ", ".join(ids)


def _regime(cfg: Mapping[str, Any]) -> str:
    """``"exact"``, ``"norm"`` or ``"mean field"``: how exact the maps are for a run."""
    from initsim import activations

    try:
        act = activations.Activation.from_config(cfg)
    except (KeyError, TypeError, ValueError):
        return "mean field"
    if not act.positively_homogeneous or int(cfg.get("branch_layers", 2)) < 2:
        return "mean field"
    return "exact" if cfg.get("norm", "none") == "none" else "norm"


def _exactness_text(cells: Sequence[Any], among: Sequence[Any], has_grad: bool) -> str:
    """Which lines are exact at every width, which mean field (the theory module's own claims)."""
    groups: dict[str, list[Any]] = {}
    for c in cells:
        groups.setdefault(_regime(_config(c.result)), []).append(c)
    parts = []
    if "exact" in groups:
        parts.append(
            f"{_ids(groups['exact'], among)}: exact at every width (positively homogeneous "
            "phi, m >= 2 branch layers, no normalization"
            + (", forward and backward)" if has_grad else ")")
        )
    if "norm" in groups:
        parts.append(
            f"{_ids(groups['norm'], among)}: q^l exact up to the normalization's eps"
            + (
                ", grad_sq^l mean field (the norms' O(1/n) terms are dropped, and they add up "
                "over the blocks)"
                if has_grad
                else ""
            )
        )
    if "mean field" in groups:
        parts.append(f"{_ids(groups['mean field'], among)}: mean field (large width)")
    return f" ({'; '.join(parts)})" if parts else ""


def _theory_text(cells: Sequence[Any], theories: Sequence[ResidualTheory], has_grad: bool) -> str:
    drawn = [c for c, t in zip(cells, theories, strict=True) if t.q is not None]
    grad_drawn = [c for c, t in zip(cells, theories, strict=True) if t.grad_sq is not None]
    what = (
        "E[q^l] from the mean-field residual length map initsim.theory.residual.residual_q_map"
        + (", E[grad_sq^l] from its gradient map residual_grad_map" if has_grad else "")
        + " (with sigma_w2 = fan_in Var(W_k) of each branch layer from the cell's "
        "initializers and the cell's recorded alpha, skip, normalization, eps and scales; a "
        "zero branch layer makes F = 0, drawn as alpha = 0)"
    )
    if drawn or grad_drawn:
        text = f"Dashed lines: theory - {what}"
        if drawn:
            text += f", drawn for {_ids(drawn, cells)}"
        text += _exactness_text(
            [c for c in cells if c in drawn or c in grad_drawn], cells, has_grad
        )
        if has_grad and len(grad_drawn) != len(drawn):
            text += (
                f"; the gradient line for {_ids(grad_drawn, cells)} only"
                if grad_drawn
                else "; no gradient line"
            )
    else:
        text = f"No theory lines are drawn (the theory would be {what})"
    reasons: dict[str, list[Any]] = {}
    for c, t in zip(cells, theories, strict=True):
        for reason in (t.q_reason, t.grad_reason):
            if reason is not None and c not in reasons.setdefault(reason, []):
                reasons[reason].append(c)
    if reasons:
        missing = "; ".join(f"{_ids(cs, cells)}: {reason}" for reason, cs in reasons.items())
        text += (
            f". Missing theory lines (not covered, or the theory failed) - {missing}"
            if drawn or grad_drawn
            else f": {missing}"
        )
    return text + "."


def _diverged_text(cells: Sequence[Any]) -> str:
    parts = []
    for c in cells:
        first = np.asarray(c.result.first_nonfinite_layer)
        k = int(np.count_nonzero(first))
        if k:
            at = int(first[first > 0].min())
            parts.append(f"{c.id}: {k} of {first.size} nets (first at block {at})")
    if not parts:
        return ""
    head = " Nets whose stream overflowed to inf or NaN (dropped from the log axis there): "
    return head + "; ".join(parts) + "."


# ----------------------------------------------------------------------------------
# the figure
# ----------------------------------------------------------------------------------


def residual_profile_figure(
    study: Any, cells: Sequence[Any], options: dict[str, Any]
) -> tuple[Any, str]:
    """Stream ``q^l`` (and ``grad_sq^l``) of residual nets against block, one colour per cell.

    Parameters
    ----------
    study : StudyResults-like
        The study (its ``seed`` is named in the caption).
    cells : sequence of Cell-like
        "simulate" cells of ``arch = "residual"`` (``backward = true`` adds
        the gradient panel).
    options : dict
        ``title``; ``level`` (confidence level of the bands, default 0.95).

    Returns
    -------
    (Figure, str)
        The page and its caption.

    Raises
    ------
    ValueError
        For a ``level`` outside (0, 1), no cells, or a cell that is not a
        residual run.
    """
    level = float(options.get("level", 0.95))
    if not 0.0 < level < 1.0:
        raise ValueError(f"residual-profile option 'level' must be in (0, 1); got {level}")
    if not cells:
        raise ValueError("residual-profile needs at least one cell")
    for c in cells:
        if not _is_residual(c.result):
            raise ValueError(
                f'residual-profile draws residual nets (arch = "residual"); cell {c.id} is '
                f'arch = {_config(c.result).get("arch", "mlp")!r}: use kind = "depth-profile"'
            )
    has_grad = any(c.result.grad_sq is not None for c in cells)
    fig, axes = new_page(1, 2 if has_grad else 1)
    panels = [("q", "q^l = mean_i (x_i^l)^2", axes[0, 0])]
    if has_grad:
        panels.append(("grad_sq", "grad_sq^l = mean_i (dL/dx_i^l)^2", axes[0, 1]))
    labels, keys = _labels(cells)
    theories = [residual_theory(c.result) for c in cells]
    for k, (c, th) in enumerate(zip(cells, theories, strict=True)):
        r = c.result
        colour = f"C{k % 10}"
        marker = _MARKERS[k % 7]  # with 10 colours: distinct up to 70 cells
        blocks = np.arange(1, r.depth + 1)
        for name, _, ax in panels:
            if name == "grad_sq" and r.grad_sq is None:
                continue
            mean = positive(r.layer_mean(name))
            lo, hi = r.layer_interval(name, level)
            lo_p, hi_p = positive(lo), positive(hi)
            lo_p = np.where(np.isnan(lo_p), mean, lo_p)  # a band below 0 is cut at the mean
            ax.fill_between(blocks, lo_p, hi_p, color=colour, alpha=0.22, lw=0)
            ax.plot(blocks, mean, marker, ms=3.5, mew=0.9, ls="none", color=colour, label=labels[k])
            curve = th.q if name == "q" else th.grad_sq
            if curve is not None:
                ax.plot(blocks, positive(curve), "--", lw=1.2, color=colour)
    for _, ylabel, ax in panels:
        fit_log_axis(ax)  # log scale; exploding streams reach 1e308
        ax.set_xlabel("block l")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].set_title("forward: the stream's second moment", fontsize=10)
    if has_grad:
        axes[0, 1].set_title("backward: the gradient's second moment", fontsize=10)
    if any(t.q is not None or t.grad_sq is not None for t in theories):
        axes[0, 0].plot([], [], "k--", label="theory (mean-field)")
    axes[0, 0].plot([], [], "ko", ms=3, label=f"Monte Carlo mean, {100 * level:g}% band")
    axes[0, 0].legend(fontsize=7, loc="best")

    configs = [_config(c.result) for c in cells]
    norms = [n for n in ("none", "pre", "post") if any(c.get("norm") == n for c in configs)]
    kinds = sorted({c.get("norm_kind", "layernorm") for c in configs if c.get("norm") != "none"})
    eps = sorted({float(c.get("eps", 0.0)) for c in configs if c.get("norm") != "none"})
    model = "; ".join(_BLOCKS[n] for n in norms) + f", with the branch {_branch_text(configs)}"
    if kinds:
        model += (
            f", N = {' or '.join(_NORM_NAMES.get(k, k) for k in kinds)} "
            f"(eps {', '.join(fmt(e) for e in eps)})"
        )
    if any(float(c.get("act_scale", 1.0)) != 1.0 for c in configs) or any(
        any(float(x) != 1.0 for x in c.get("in_scale", [])) for c in configs
    ):
        model += "; NF-ResNet cells feed the branch x^l / beta_l and scale the activations by gamma"
    schemes = [c for c in cells if _config(c.result).get("scheme")]
    scheme_text = (
        " What each scheme set (from the cells' recorded configs): "
        + "; ".join(_settings_text(c) for c in schemes)
        + "."
        if schemes
        else ""
    )
    title = options.get("title") or "Residual networks: the stream and its gradient across blocks"
    grad_text = (
        "and of the squared gradient grad_sq^l = mean_i (dL/dx_i^l)^2 of the loss "
        "L = u . x^L, u ~ N(0, I) (right), "
        if has_grad
        else ""
    )
    caption = (
        f"Per-block mean over nets of the stream's second moment q^l = mean_i (x_i^l)^2 after "
        f"block l (left) {grad_text}log scale, one colour and marker per cell "
        f"(labelled by {', '.join(keys)}). Model: {model}; phi = "
        f"{', '.join(sorted({str(c.get('activation')) for c in configs}))}. "
        f"{_sizes_text(configs)}; {nets_phrase([c.result for c in cells])}; "
        f"{cells_inputs_phrase(cells)}.{scheme_text} Markers: Monte Carlo means; shaded bands: "
        f"{100 * level:g}% Student-t confidence intervals of those means over nets. "
        f"{_theory_text(cells, theories, has_grad)}{_diverged_text(cells)} A flat q^l keeps the "
        "signal's scale across depth; growth like (1 + alpha^2 c)^l is the plain residual "
        "stream's explosion. " + seed_phrase(study, cells)
    )
    finish(fig, title, caption)
    return fig, caption
