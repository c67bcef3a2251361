"""Singular-value spectra of input-output Jacobians: Gaussian against orthogonal weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from initsim.checks import theory_inputs
from initsim.report._common import (
    cell_label,
    cell_labels,
    cells_inputs_phrase,
    finish,
    fit_log_axis,
    fmt,
    nets_phrase,
    new_page,
    seed_phrase,
)

__all__ = ["jacobian_spectra_figure", "spectrum_theory"]


def spectrum_theory(spectrum: Any) -> tuple[float, float, str] | None:
    """Predicted mean and normalised variance of the ``J J^T`` spectrum.

    Linear nets: exact finite-width moments for Gaussian weights, a point
    mass at ``gain^(2L)`` for square orthogonal ones. Other activations: the
    large-width free-probability result of Pennington, Schoenholz and Ganguli
    (2017) (:func:`initsim.jacobian.psg_spectrum_variance` at a fixed point),
    taken along the mean-field ``q^l`` of each layer so that it also holds
    before ``q^l`` reaches ``q*``: mean ``prod_l sigma_w2 mu_1(q^l)``,
    normalised variance ``sum_l (mu_2 / mu_1^2 - 1 - s_1)`` with ``s_1 = -1``
    (Gaussian) or 0 (orthogonal).

    Parameters
    ----------
    spectrum : JacobianSpectrum
        The Monte Carlo spectra (their provenance names the net).

    Returns
    -------
    (float, float, str) or None
        Mean, normalised variance and which theory; None when none applies.
    """
    from initsim import jacobian, theory

    ti = theory_inputs(spectrum)[0]
    if ti is None or ti.law not in ("gaussian", "orthogonal"):
        return None
    act, widths, sw = ti.activation, ti.widths, ti.sigma_w2
    depth = len(widths) - 1
    if act.name == "linear" and ti.sigma_b2 == 0.0:
        if ti.law == "gaussian":
            m1, m2 = jacobian.linear_gaussian_moments(widths, list(sw))
            return m1, m2 / (m1 * m1) - 1.0, "exact (linear, Gaussian)"
        if len(set(widths)) == 1:
            return float(np.prod(sw)), 0.0, "exact (linear, orthogonal: all s equal)"
        return None
    # mean-field pre-activation variances along the net, then per layer the moments
    # mu_k = E[phi'(h)^(2k)]: means multiply, normalised variances add (free probability)
    with np.errstate(over="ignore", invalid="ignore"):
        q = theory.q_map(act, sw, ti.sigma_b2, ti.q0, depth)
    if not np.all(np.isfinite(q)):
        return None
    s1 = {"gaussian": -1.0, "orthogonal": 0.0}[ti.law]
    mean = 1.0
    nvar = 0.0
    for t in range(depth):
        mu1, mu2 = jacobian.derivative_moments(act, float(q[t]))
        if mu1 <= 0.0:
            return None
        mean *= float(sw[t]) * mu1
        nvar += mu2 / (mu1 * mu1) - 1.0 - s1
    return mean, nvar, "large width, free probability along the mean-field q^l (PSG 2017)"


def jacobian_spectra_figure(
    study: Any, cells: Sequence[Any], options: dict[str, Any]
) -> tuple[Any, str]:
    """Pooled laws of the squared singular values, one panel per activation.

    Parameters
    ----------
    study : StudyResults-like
        The study.
    cells : sequence of Cell-like
        "jacobian" cells.
    options : dict
        ``title``.

    Returns
    -------
    (Figure, str)
        The page and its caption.
    """
    acts: list[str] = []
    for c in cells:
        name = c.result.provenance.get("config", {}).get("activation", "?")
        if name not in acts:
            acts.append(name)
    fig, axes = new_page(1, len(acts))
    lines = []
    # the panel's title names the activation; the legend every other varying parameter
    _, keys = cell_labels(cells, ("init",))
    keys = [k for k in keys if k != "activation"]
    for k, c in enumerate(cells):
        cfg = c.result.provenance.get("config", {})
        ax = axes[0, acts.index(cfg.get("activation", "?"))]
        colour = f"C{k % 10}"
        with np.errstate(over="ignore", invalid="ignore"):  # beyond 1e308: not drawn
            s2 = np.asarray(c.result.singular_values, dtype=float) ** 2
        s2 = s2[np.isfinite(s2) & (s2 > 0)]
        m1, m2 = c.result.moments()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            nv = m2 / (m1 * m1) - 1.0
        if abs(nv) < 1e-12:  # a point mass: rounding, not a negative variance
            nv = 0.0
        th = spectrum_theory(c.result)
        label = cell_label(c.params, keys)
        text = f"{label}: mean {fmt(m1)}, var/mean^2 {fmt(nv)}"
        if th is not None:
            text += f" (theory {fmt(th[0])}, {fmt(th[1])})"
        if s2.size:
            lo, hi = np.log10(s2.min()), np.log10(s2.max())
            if hi - lo < 1e-6:  # a point mass (orthogonal linear net)
                ax.axvline(float(s2[0]), color=colour, lw=2.5, label=text)
            else:
                # 10^308.25 is the last decade float64 holds (s^2 of an exploding net)
                bins = np.logspace(lo - 0.05, min(hi + 0.05, 308.25), 60)
                counts, _ = np.histogram(s2, bins)
                dens = counts / s2.size / np.diff(np.log10(bins))
                ax.stairs(dens, bins, color=colour, lw=1.4, label=text)
        else:  # every s^2 overflowed (or the nets diverged): the legend still says so
            ax.plot([], [], color=colour, lw=1.4, label=f"{text}; no finite s^2 to draw")
        if th is not None:
            ax.axvline(th[0], color=colour, ls=":", lw=1.2)
            lines.append(f"{cfg.get('activation')}, {label}: theory {th[2]}")
        ax.set_title(
            f"{cfg.get('activation')}, depth {len(cfg.get('widths', [])) - 1}, width "
            f"{cfg.get('widths', [0])[-1]}",
            fontsize=10,
        )
    for ax in axes[0]:
        fit_log_axis(ax, "x")  # log scale; exploding nets reach 1e308
        ax.set_xlabel("squared singular value s^2 of J = dx^L/dx^0 (log scale)")
        ax.set_ylabel("density per unit of log10 s^2")
        ax.legend(fontsize=6.5, loc="upper left")
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)

    title = options.get("title") or "Jacobian singular-value spectra: Gaussian against orthogonal"
    caption = (
        "Law of the squared singular values s^2 of the input-output Jacobian "
        "J = D_L W_L ... D_1 W_1 (D_l = diag(phi'(h^l))) at the net's input "
        f"({cells_inputs_phrase(cells)}), pooled over nets (density per unit of log10 s^2, "
        "log x axis); one panel per activation, one colour per cell. Legends: mean and "
        "normalised variance var/mean^2 of the spectrum (Monte Carlo, then theory); dotted "
        "lines: the predicted mean. Orthogonal weights keep every singular value of a linear "
        "net at gain^L (a point mass, drawn as a solid line) and concentrate the spectrum of "
        "nonlinear nets (dynamical isometry), while Gaussian weights spread it over orders of "
        "magnitude as depth grows. Theory: "
        + "; ".join(lines)
        + f". {nets_phrase([c.result for c in cells])}. {seed_phrase(study, cells)}"
    )
    finish(fig, title, caption)
    return fig, caption
