"""Signals and gradients of each re-initialised model on one batch, with intervals over re-inits.

For every re-initialisation the same example batch goes through the model
with a forward hook on every submodule (layers, and containers such as a
residual block, whose output is the stream) recording, of its output ``y``:

* ``q``: the second moment ``E[y^2]`` (over batch, units and positions),
* the mean and the variance of its entries,
* the dead fraction: units (features; channels of a convolution) whose
  output is exactly 0 for every example of the batch,
* the saturated fraction, for saturating activation modules (Tanh, Sigmoid,
  Hardtanh, Softsign): entries where ``|phi'| < 0.01`` (NaN for others),
* the Signal Propagation Plot quantities of Brock, De and Smith (2021): the
  average over channels (the last axis; axis 1 of a convolution's output) of
  the channel's squared mean and of its variance over the batch (and
  positions). For a residual block (:func:`initsim.audit.recognise.residual_blocks`)
  the report takes them of the block's output and, for the residual-branch
  variance, of its branch module's output.

Then a random-direction loss ``L = sum(u * out) / sqrt(numel)``, ``u`` iid
standard normal from a fixed generator (as ``initsim.simulate(backward=True)``
draws a random output direction), is back-propagated and each parameter's
gradient second moment ``E[g^2]`` recorded. :func:`summarise_dynamic` gives
each quantity's mean over re-inits with its 95% t interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as _stats

__all__ = [
    "DynamicTally",
    "ModuleSignal",
    "ParamGradient",
    "SPPRow",
    "spp_rows",
    "summarise_dynamic",
]

_SATURATING = {
    "Tanh": lambda y: 1.0 - y * y,
    "Sigmoid": lambda y: y * (1.0 - y),
    "Hardtanh": None,
    "Softsign": None,
}
_SAT = 0.01
_QUANTITIES = ("q", "mean", "var", "dead", "saturated", "channel_sq_mean", "channel_var")


@dataclass(frozen=True)
class ModuleSignal:
    """One module's output statistics: ``{quantity: (mean, lo, hi)}`` over re-inits.

    Attributes
    ----------
    path, module_type : str
        The module.
    values : dict of str to (float, float, float)
        ``q``, ``mean``, ``var``, ``dead``, ``saturated``: the mean over
        re-initialisations and its 95% interval.
    per_init : dict of str to numpy.ndarray
        Every quantity's value in each re-initialisation.
    """

    path: str
    module_type: str
    values: dict[str, tuple[float, float, float]]
    per_init: dict[str, np.ndarray] = field(repr=False)

    @property
    def per_init_q(self) -> np.ndarray:
        """``q`` of every re-initialisation (what the theory rows test)."""
        return self.per_init["q"]


@dataclass(frozen=True)
class ParamGradient:
    """One parameter's gradient second moment over re-inits: ``(mean, lo, hi)``."""

    path: str
    grad_sq: tuple[float, float, float]


@dataclass
class DynamicTally:
    """Per-re-init records of the forward and backward pass (see the module docstring)."""

    modules: dict[str, str] = field(default_factory=dict)
    signals: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    grads: dict[str, list[float]] = field(default_factory=dict)

    def run(self, torch: Any, model: Any, x: Any) -> None:
        """Push ``x`` through ``model``, record the hooks, back-propagate the random loss."""
        handles = []
        for path, module in model.named_modules():
            if path:  # every submodule: leaves (layers) and containers (residual blocks)
                self.modules.setdefault(path, type(module).__name__)
                handles.append(module.register_forward_hook(self._hook(path)))
        try:
            model.zero_grad(set_to_none=True)
            out = model(x)
            out = out[0] if isinstance(out, tuple) else out
            gen = torch.Generator().manual_seed(0)
            u = torch.randn(out.shape, generator=gen, dtype=out.dtype)
            loss = (u * out).sum() / math.sqrt(out.numel())
            if loss.requires_grad:
                loss.backward()
        finally:
            for h in handles:
                h.remove()
        for name, p in model.named_parameters():
            g = p.grad
            value = float((g.double() ** 2).mean()) if g is not None else math.nan
            self.grads.setdefault(name, []).append(value)

    def _hook(self, path: str) -> Any:
        def hook(module: Any, inputs: Any, output: Any) -> None:
            y = output[0] if isinstance(output, tuple) else output
            if not hasattr(y, "detach") or not y.is_floating_point():
                return
            y = y.detach().double()
            rec = self.signals.setdefault(path, {k: [] for k in _QUANTITIES})
            rec["q"].append(float((y * y).mean()))
            rec["mean"].append(float(y.mean()))
            rec["var"].append(float(y.var(unbiased=False)))
            units = (
                y.reshape(y.shape[0], y.shape[1], -1)
                if y.dim() > 2
                else y.reshape(y.shape[0], -1, 1)
            )
            rec["dead"].append(float((units == 0).all(dim=2).all(dim=0).double().mean()))
            # channels: the last axis (features of a Linear, tokens x features of a transformer);
            # NCHW convolutions: axis 1
            conv = type(module).__name__.startswith("Conv") and y.dim() > 2
            chan = y.transpose(1, -1) if conv else y
            flat = chan.reshape(-1, chan.shape[-1])
            rec["channel_sq_mean"].append(float((flat.mean(dim=0) ** 2).mean()))
            rec["channel_var"].append(float(flat.var(dim=0, unbiased=False).mean()))
            kind = type(module).__name__
            if kind in _SATURATING:
                deriv = _SATURATING[kind]
                if deriv is None:  # piecewise: phi' = 0 outside (-1, 1)
                    sat = (y.abs() >= 1.0).double().mean()
                else:
                    sat = (deriv(y).abs() < _SAT).double().mean()
                rec["saturated"].append(float(sat))
            else:
                rec["saturated"].append(math.nan)

        return hook


def _interval(values: list[float]) -> tuple[float, float, float]:
    x = np.array(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    m = float(x.mean())
    if x.size < 2:
        return (m, m, m)
    half = float(_stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return (m, m - half, m + half)


def summarise_dynamic(t: DynamicTally) -> tuple[list[ModuleSignal], list[ParamGradient]]:
    """Means and 95% intervals over re-initialisations (module order, parameter order)."""
    signals = [
        ModuleSignal(
            path,
            t.modules[path],
            {k: _interval(rec[k]) for k in _QUANTITIES},
            {k: np.array(rec[k]) for k in _QUANTITIES},
        )
        for path, rec in t.signals.items()
    ]
    grads = [ParamGradient(name, _interval(v)) for name, v in t.grads.items()]
    return signals, grads


@dataclass(frozen=True)
class SPPRow:
    """One residual block's Signal Propagation Plot quantities, ``(mean, lo, hi)`` over re-inits.

    Attributes
    ----------
    block : str
        The block's path.
    channel_sq_mean, channel_var : (float, float, float)
        Average channel squared mean and average channel variance of the
        block's output (the stream).
    branch_var : (float, float, float)
        Average channel variance of the residual branch (NaN when the branch
        is not a module's output).
    """

    block: str
    channel_sq_mean: tuple[float, float, float]
    channel_var: tuple[float, float, float]
    branch_var: tuple[float, float, float]


def spp_rows(blocks: list[tuple[str, str | None]], signals: list[ModuleSignal]) -> list[SPPRow]:
    """Collect the Signal Propagation Plot rows of the recognised residual blocks."""
    by_path = {s.path: s for s in signals}
    nan = (math.nan, math.nan, math.nan)
    rows = []
    for block, branch in blocks:
        s = by_path.get(block)
        if s is None:
            continue
        b = by_path.get(branch) if branch is not None else None
        rows.append(
            SPPRow(
                block,
                s.values["channel_sq_mean"],
                s.values["channel_var"],
                b.values["channel_var"] if b is not None else nan,
            )
        )
    return rows
