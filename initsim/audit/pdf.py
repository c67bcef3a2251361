"""The audit as a PDF: findings, inventory, forward and gradient profiles, verdicts, provenance.

:func:`write_pdf` draws, in order: the findings (each with evidence,
expectation and fix) and the provenance; the inventory table; the forward
profile (each weight layer's output ``q`` in execution order, mean and 95%
band over re-inits, with the chain theory's line and verdicts where the
model was recognised); the gradient profile (each weight's ``E[g^2]``); and,
for recognised residual blocks, the Signal Propagation Plot. The file is
written atomically (a temporary file moved into place), with fixed metadata,
so the same report gives the same bytes and a failure leaves no partial file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["write_pdf"]


def _finding_lines(report: Any) -> list[list[str]]:
    blocks = []
    for f in report.findings:
        blocks.append(
            [
                f"[{f.severity}] {f.rule}: {f.tensor}",
                f"    measured: {f.evidence}",
                f"    expected: {f.expected}",
                f"    fix:      {f.fix}",
                "",
            ]
        )
    return blocks or [["no findings"]]


def _provenance_lines(report: Any) -> list[str]:
    prov = report.provenance
    keys = ("factory", "reinit", "inits", "seed", "input_shape", "output_shape", "consumers_from")
    lines = [f"{k}: {prov.get(k)}" for k in keys]
    lines += [f"version {k}: {v}" for k, v in sorted(prov.get("versions", {}).items())]
    seeds = prov.get("torch_seeds", [])
    lines.append(f"torch seeds: {seeds[:4]}{' ...' if len(seeds) > 4 else ''}")
    return lines


def _g(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def _inventory_lines(report: Any) -> list[str]:
    lines = [f"{'tensor':<36} {'shape':<12} {'fans (true)':<18} {'std [95%]':<28} law / scheme"]
    for s in report.tensors:
        e = s.entry
        fans = "-" if e.fan_in is None else f"{e.fan_in}/{e.fan_out}"
        if e.fan_in is not None and (e.fan_in, e.fan_out) != (e.true_fan_in, e.true_fan_out):
            fans += f" ({e.true_fan_in}/{e.true_fan_out})"
        std = f"{_g(s.std)} [{_g(s.std_interval[0])}, {_g(s.std_interval[1])}]"
        law = s.law if s.constant is None else f"constant {s.constant:g}"
        if s.scheme:
            law += "; " + s.scheme.split(" (")[0]
        shape = "x".join(map(str, e.shape))
        lines.append(f"{e.path[:36]:<36} {shape:<12} {fans:<18} {std:<28} {law}")
    return lines


def _profile_figure(report: Any) -> Any:
    import numpy as np
    from matplotlib.figure import Figure

    weights = {s.entry.module for s in report.tensors if s.entry.role == "weight"}
    rows = [s for s in report.signals if s.path in weights]
    grads = [g for g in report.gradients if g.path.endswith("weight") or "in_proj_weight" in g.path]
    fig = Figure(figsize=(8.27, 11.69))
    ax_q, ax_g = fig.subplots(2, 1)
    if rows:
        x = np.arange(1, len(rows) + 1)
        q = np.array([r.values["q"] for r in rows])
        ax_q.errorbar(x, q[:, 0], yerr=[q[:, 0] - q[:, 1], q[:, 2] - q[:, 0]], fmt="o-",
                      ms=3, capsize=2, label="measured (95% over re-inits)")  # fmt: skip
        if report.theory:
            pos = {r.path: i + 1 for i, r in enumerate(rows)}
            tx = [pos[t.module] for t in report.theory if t.module in pos]
            ty = [t.predicted for t in report.theory if t.module in pos]
            ax_q.plot(tx, ty, "k--", lw=1, label="length map of the measured laws")
            for t in report.theory:
                if t.module in pos:
                    ax_q.annotate(t.verdict, (pos[t.module], t.predicted), fontsize=7,
                                  color="red" if t.verdict == "FAIL" else "green")  # fmt: skip
        ax_q.set_yscale("log")
        ax_q.set_xticks(x, [r.path for r in rows], rotation=60, ha="right", fontsize=6)
        ax_q.legend()
    ax_q.set_title("forward: output second moment q of each weight layer (execution order)")
    if grads:
        x = np.arange(1, len(grads) + 1)
        g = np.array([r.grad_sq for r in grads])
        ax_g.errorbar(x, g[:, 0], yerr=[g[:, 0] - g[:, 1], g[:, 2] - g[:, 0]], fmt="s-", ms=3,
                      capsize=2)  # fmt: skip
        ax_g.set_yscale("log")
        ax_g.set_xticks(x, [r.path for r in grads], rotation=60, ha="right", fontsize=6)
    ax_g.set_title("backward: E[g^2] of each weight (random-direction loss)")
    fig.tight_layout()
    return fig


def _spp_figure(report: Any) -> Any:
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.27, 5.0))
    axes = fig.subplots(1, 3)
    x = np.arange(1, len(report.spp) + 1)
    for ax, key, title in zip(
        axes,
        ("channel_sq_mean", "channel_var", "branch_var"),
        ("avg channel squared mean", "avg channel variance", "residual-branch variance"),
        strict=True,
    ):
        v = np.array([getattr(r, key) for r in report.spp])
        ax.errorbar(x, v[:, 0], yerr=[v[:, 0] - v[:, 1], v[:, 2] - v[:, 0]], fmt="o-", ms=3)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("block")
    fig.suptitle("Signal Propagation Plot (Brock, De and Smith 2021), 95% over re-inits")
    fig.tight_layout()
    return fig


def _residual_figure(report: Any) -> Any:
    import numpy as np
    from matplotlib.figure import Figure

    rows = report.residual_theory
    fig = Figure(figsize=(8.27, 5.5))
    ax, ax_t = fig.subplots(2, 1, height_ratios=(3, 2))
    x = np.arange(1, len(rows) + 1)
    obs = np.array([r.observed for r in rows])
    lo = np.array([r.interval[0] for r in rows])
    hi = np.array([r.interval[1] for r in rows])
    ax.errorbar(
        x, obs, yerr=[obs - lo, hi - obs], fmt="o", ms=3, label="measured q (99.9% + allowance)"
    )
    ax.plot(x, [r.predicted for r in rows], "k_", ms=12, mew=1.5, label="branch length map")
    for xi, r in zip(x, rows, strict=True):
        colour = {"PASS": "tab:green", "FAIL": "tab:red"}.get(r.verdict, "0.5")
        ax.annotate(r.verdict, (xi, hi[xi - 1] if math.isfinite(hi[xi - 1]) else 0.0),
                    fontsize=6, color=colour, ha="center", va="bottom")  # fmt: skip
    ax.set_xticks(x, [r.module for r in rows], rotation=60, ha="right", fontsize=6)
    ax.set_ylabel("q of the addition's output")
    ax.legend(fontsize=7)
    ax.set_title("Residual additions against theory (Holm at 1e-3)", fontsize=9)
    ax_t.axis("off")
    lines = [f"{r.layer:>2} {r.module:<18} {r.verdict:<4} {r.regime}" for r in rows[:14]]
    if len(rows) > 14:
        lines.append(f"... and {len(rows) - 14} more (see --json)")
    ax_t.text(0.0, 1.0, "\n".join(lines), family="monospace", fontsize=6, va="top")
    fig.tight_layout()
    return fig


def write_pdf(report: Any, path: str | Path) -> Path:
    """Write the audit report as a PDF (see the module docstring).

    Parameters
    ----------
    report : AuditReport
        The audit.
    path : str or Path
        The PDF's path; its folder must exist.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    OSError
        If the file cannot be written (nothing partial is left).
    """
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages

    from initsim._files import atomic_write
    from initsim.report.pages import text_pages
    from initsim.report.pdf import PDF_METADATA, RC

    out = Path(path)
    title = f"initsim audit: {report.provenance.get('factory')}"
    figures = text_pages(title, [*_finding_lines(report), _provenance_lines(report)])
    figures += text_pages("Inventory", _inventory_lines(report), size=5.5)
    if report.signals:
        figures.append(_profile_figure(report))
    if report.spp:
        figures.append(_spp_figure(report))
    if report.theory:
        lines = [
            f"layer {t.layer:>2} {t.module:<24} q {_g(t.observed):>10} predicted "
            f"{_g(t.predicted):>10} p {_g(t.p_value):>9} {t.verdict:<4} {t.regime}"
            for t in report.theory
        ]
        figures += text_pages("Theory rows (MLP chain, Holm at 1e-3)", lines)
    if report.residual_theory:
        figures.append(_residual_figure(report))
    with matplotlib.rc_context(RC), atomic_write(out) as fh:
        with PdfPages(fh, metadata={**PDF_METADATA, "Title": title}) as pdf:
            for fig in figures:
                pdf.savefig(fig)
    return out
