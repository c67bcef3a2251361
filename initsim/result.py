"""The result of :func:`initsim.simulate`: per-net, per-layer summaries plus provenance.

:class:`SimulationResult` also owns its stored form, the arrays a study's
simulate cell writes (:meth:`SimulationResult.to_arrays`) and reads back
(:meth:`SimulationResult.from_arrays`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy import stats as _st

from initsim.provenance import json_float

__all__ = ["RESIDUAL_FIELDS", "SUMMARY_FIELDS", "ResidualResult", "SimulationResult", "mean_and_se"]

#: Prefix of the stored histogram arrays (``hist_h``, ``hist_act``, ``hist_h_edges``, ...).
_HIST_PREFIX = "hist_"

#: Per-net, per-layer summary arrays of a result, each of shape (nets, depth).
SUMMARY_FIELDS = (
    "q",
    "act_mean",
    "act_var",
    "dead_fraction",
    "saturated_fraction",
    "grad_sq",
)


def _column_scale(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(s, v / s)`` with ``s`` the largest ``|value|`` of each column (1 for zeros)."""
    s = np.max(np.abs(v), axis=0)
    s = np.where(s > 0.0, s, 1.0)
    return s, v / s


def mean_and_se(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over axis 0 and its standard error, without overflow for finite values.

    The plain formulas (``mean``, ``std(ddof=1) / sqrt(n)``) are used where
    they give finite numbers, so those results are bit-identical to them.
    Where they do not although every value of the column is finite (a sum
    or a square beyond the float64 range, e.g. values above ``1.3e154``, or
    squares that all underflow to a zero standard error for values that
    differ), the column is divided by its largest ``|value|`` first and the
    results multiplied back; they are then infinite only if the quantity itself
    exceeds the float64 range. Columns holding inf or NaN keep the plain
    (non-finite) result: there the data are not finite.

    Parameters
    ----------
    values : numpy.ndarray (n,) or (n, m)
        Samples along axis 0, ``n >= 1``.

    Returns
    -------
    (numpy.ndarray or float, numpy.ndarray or float)
        The mean and the standard error (NaN for ``n = 1``), per column
        (scalars for 1-D input).
    """
    v = np.asarray(values, dtype=float)
    n = v.shape[0]
    with np.errstate(invalid="ignore", over="ignore", under="ignore", divide="ignore"):
        mean = np.asarray(v.mean(axis=0), dtype=float).copy()
        if n < 2:  # no standard error from one sample
            se = np.full(mean.shape, np.nan)
        else:
            se = np.asarray(v.std(axis=0, ddof=1) / np.sqrt(n), dtype=float).copy()
        finite = np.all(np.isfinite(v), axis=0)
        redo_mean = finite & ~np.isfinite(mean)
        redo_se = finite & ~np.isfinite(se)
        redo_se |= finite & (se == 0.0) & (v.max(axis=0) > v.min(axis=0))
        redo = redo_mean | redo_se
        if np.any(redo):
            s, y = _column_scale(v)
            mean[redo_mean] = (s * y.mean(axis=0))[redo_mean]
            if n >= 2:
                se[redo_se] = (s * (y.std(axis=0, ddof=1) / np.sqrt(n)))[redo_se]
    if v.ndim == 1:
        return float(mean), float(se)
    return mean, se


class _LayerSummaries:
    """Per-net, per-layer (or per-block) summary arrays: means, intervals, JSON."""

    _summary_fields: ClassVar[tuple[str, ...]] = SUMMARY_FIELDS
    _axis: ClassVar[str] = "layer"
    q: np.ndarray
    first_nonfinite_layer: np.ndarray
    provenance: dict[str, Any]

    @property
    def nets(self) -> int:
        """Number of nets simulated."""
        return int(self.q.shape[0])

    @property
    def depth(self) -> int:
        """Number of hidden layers (blocks of a residual net)."""
        return int(self.q.shape[1])

    def _field(self, name: str) -> np.ndarray:
        fields = self._summary_fields
        if name not in fields:
            raise ValueError(f"name must be one of {', '.join(fields)}; got {name!r}")
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"{name!r} was not recorded: run simulate(..., backward=True)")
        return value

    def layer_mean(self, name: str = "q") -> np.ndarray:
        """Monte Carlo mean over nets of a summary, per layer.

        Parameters
        ----------
        name : str
            One of the summaries (:data:`SUMMARY_FIELDS`, :data:`RESIDUAL_FIELDS`).

        Returns
        -------
        numpy.ndarray (depth,)
            The mean over nets (NaN where a net diverged to NaN, inf where
            one diverged to inf). Finite values never overflow it: where
            their sum exceeds the float64 range the layer is averaged in
            units of its largest value (see :func:`mean_and_se`).
        """
        v = self._field(name)
        with np.errstate(invalid="ignore", over="ignore"):
            mean = v.mean(axis=0)
            redo = ~np.isfinite(mean) & np.all(np.isfinite(v), axis=0)
            if np.any(redo):
                s, y = _column_scale(v[:, redo])
                mean[redo] = s * y.mean(axis=0)
        return mean

    def layer_interval(self, name: str = "q", level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Student-t confidence interval for the per-layer mean over nets.

        Parameters
        ----------
        name : str
            One of the summaries (:data:`SUMMARY_FIELDS`, :data:`RESIDUAL_FIELDS`).
        level : float
            Confidence level in (0, 1).

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            Lower and upper bounds per layer (NaN with a single net).

        Notes
        -----
        A layer whose values are all finite gets finite bounds unless a bound
        itself lies beyond the float64 range (about ``1.8e308``): where the
        plain formulas overflow (squares of values above ``1.3e154``) or
        underflow to a zero standard error for values that differ, the layer
        is computed in units of its largest ``|value|`` and scaled back.
        Everywhere else the bounds are exactly the plain formulas'. A layer
        with an inf or NaN value (a diverged net) gets non-finite bounds.
        """
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1); got {level}")
        v = self._field(name)
        n = v.shape[0]
        if n < 2:
            nan = np.full(v.shape[1], np.nan)
            return nan, nan.copy()
        tq = _st.t.ppf(0.5 + level / 2.0, df=n - 1)
        # diverged nets make these inf/NaN: that is the answer, not a warning
        with np.errstate(invalid="ignore", over="ignore", under="ignore"):
            mean = v.mean(axis=0)
            se = v.std(axis=0, ddof=1) / np.sqrt(n)
            half = tq * se
            lo, hi = mean - half, mean + half
            finite = np.all(np.isfinite(v), axis=0)
            redo = finite & ~(np.isfinite(lo) & np.isfinite(hi))
            redo |= finite & (se == 0.0) & (v.max(axis=0) > v.min(axis=0))
            if np.any(redo):
                s, y = _column_scale(v[:, redo])
                m = y.mean(axis=0)
                h = tq * (y.std(axis=0, ddof=1) / np.sqrt(n))
                lo[redo] = s * (m - h)
                hi[redo] = s * (m + h)
        return lo, hi

    def to_dict(self, per_net: bool = False) -> dict[str, Any]:
        """Return a JSON-ready dictionary (per-layer means and intervals; optionally per-net).

        Parameters
        ----------
        per_net : bool
            Include the full (nets, depth) arrays.

        Returns
        -------
        dict
            Plain Python types only.
        """
        layers: list[dict[str, Any]] = []
        fields = self._summary_fields
        means = {f: self.layer_mean(f) for f in fields if getattr(self, f) is not None}
        lo, hi = self.layer_interval("q")
        for t in range(self.depth):
            row: dict[str, Any] = {self._axis: t + 1}
            for f, m in means.items():
                row[f] = json_float(m[t])
            row["q_ci95"] = [json_float(lo[t]), json_float(hi[t])]
            layers.append(row)
        out: dict[str, Any] = {
            "nets": self.nets,
            "depth": self.depth,
            "layers": layers,
            "diverged_nets": int(np.count_nonzero(self.first_nonfinite_layer)),
            "provenance": self.provenance,
        }
        if per_net:
            for f in fields:
                v = getattr(self, f)
                if v is not None:
                    out[f] = [[json_float(x) for x in row] for row in v]
            out["first_nonfinite_layer"] = self.first_nonfinite_layer.tolist()
        return out


@dataclass(frozen=True)
class SimulationResult(_LayerSummaries):
    """Per-layer statistics of many random nets.

    Layer axis convention: column ``l`` is hidden layer ``l + 1`` (layer 0 is
    the input, which has no column).

    Attributes
    ----------
    q : numpy.ndarray (nets, depth)
        Mean over units (and inputs) of the squared pre-activation ``h^2``.
    act_mean, act_var : numpy.ndarray (nets, depth)
        Mean and (population) variance over units and inputs of ``phi(h)``.
    dead_fraction : numpy.ndarray (nets, depth)
        Fraction of units whose output is exactly 0 for every input.
    saturated_fraction : numpy.ndarray (nets, depth)
        Fraction of (unit, input) pairs with ``|phi'(h)| < saturation_threshold``.
    grad_sq : numpy.ndarray (nets, depth) or None
        Mean over units (and inputs) of the squared back-propagated gradient
        ``delta_l = dL/dh_l`` for the loss ``L = sum_b u_b . phi(h^L_b)``
        with ``u_b ~ N(0, I)``; None unless ``backward=True``.
    first_nonfinite_layer : numpy.ndarray of int (nets,)
        First hidden layer (1-based) whose ``q`` is inf or NaN (a pre-activation
        or its square overflowed, or a NaN appeared); 0 if none.
    histograms : dict or None
        ``{"h": counts, "act": counts, "h_edges": e, "act_edges": e}`` with
        counts of shape (depth, bins + 2), summed over nets; slot 0 counts
        values below the range, slot -1 values at or above it.
    provenance : dict
        Seed, configuration and its hash, method, threads, threading layer,
        versions.
    """

    q: np.ndarray
    act_mean: np.ndarray
    act_var: np.ndarray
    dead_fraction: np.ndarray
    saturated_fraction: np.ndarray
    grad_sq: np.ndarray | None
    first_nonfinite_layer: np.ndarray
    histograms: dict[str, np.ndarray] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Return the arrays of the stored form (a study's simulate cell file).

        Returns
        -------
        dict of numpy.ndarray
            The recorded :data:`SUMMARY_FIELDS` under their own names
            (``grad_sq`` only if recorded), ``first_nonfinite_layer``, and
            each histogram entry ``key`` as ``hist_<key>``; the arrays
            themselves, not copies, with their own dtypes. The provenance is
            not included (the store keeps it as JSON).

        See Also
        --------
        from_arrays : The inverse.
        """
        arrays: dict[str, np.ndarray] = {
            name: getattr(self, name) for name in SUMMARY_FIELDS if getattr(self, name) is not None
        }
        arrays["first_nonfinite_layer"] = self.first_nonfinite_layer
        if self.histograms is not None:
            for key, value in self.histograms.items():
                arrays[f"{_HIST_PREFIX}{key}"] = value
        return arrays

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, np.ndarray], provenance: dict[str, Any] | None = None
    ) -> SimulationResult:
        """Rebuild a result from its stored form.

        Parameters
        ----------
        arrays : mapping of str to numpy.ndarray
            What :meth:`to_arrays` returned (e.g. as read from a cell file).
        provenance : dict, optional
            The result's provenance (default: empty).

        Returns
        -------
        SimulationResult
            The result; ``grad_sq`` is None and ``histograms`` is None when
            their arrays are absent.
        """
        n = len(_HIST_PREFIX)
        hist = {k[n:]: v for k, v in arrays.items() if k.startswith(_HIST_PREFIX)}
        return cls(
            q=arrays["q"],
            act_mean=arrays["act_mean"],
            act_var=arrays["act_var"],
            dead_fraction=arrays["dead_fraction"],
            saturated_fraction=arrays["saturated_fraction"],
            grad_sq=arrays.get("grad_sq"),
            first_nonfinite_layer=arrays["first_nonfinite_layer"],
            histograms=hist or None,
            provenance=provenance if provenance is not None else {},
        )


#: Per-net, per-block summary arrays of a residual net, each of shape (nets, blocks).
RESIDUAL_FIELDS = (
    "q",
    "branch_share",
    "branch_q",
    "dead_fraction",
    "saturated_fraction",
    "grad_sq",
)


@dataclass(frozen=True)
class ResidualResult(_LayerSummaries):
    """Per-block statistics of many random residual nets (``simulate(arch="residual")``).

    Block axis convention: column ``l`` is the output ``x^{l+1}`` of block
    ``l + 1`` (the input ``x^0`` has no column).

    Attributes
    ----------
    q : numpy.ndarray (nets, blocks)
        Mean over units (and inputs) of the squared stream ``(x^{l+1})^2``.
    branch_share : numpy.ndarray (nets, blocks)
        The branch's share of the block's energy,
        ``||alpha F||^2 / (||skip x^l||^2 + ||alpha F||^2)`` (before a
        Post-LN normalization; 0 when both are 0).
    branch_q : numpy.ndarray (nets, blocks)
        Mean square of the pre-activations entering the branch's first
        nonlinearity (``W_1 u`` for two or more branch layers, ``u`` for one).
    dead_fraction, saturated_fraction : numpy.ndarray (nets, blocks)
        Of the branch's nonlinearities: units whose output is exactly 0 for
        every input, and (unit, input) pairs with ``|phi'| < saturation_threshold``.
    grad_sq : numpy.ndarray (nets, blocks) or None
        Mean square of ``dL/dx^{l+1}`` for ``L = sum_b u_b . x^L_b``,
        ``u_b ~ N(0, I)`` (the last block's is the direction's); None unless
        ``backward=True``.
    first_nonfinite_layer : numpy.ndarray of int (nets,)
        First block (1-based) whose ``q`` is inf or NaN; 0 if none.
    provenance : dict
        Seed, configuration and its hash, method, threads, versions.
    """

    _summary_fields: ClassVar[tuple[str, ...]] = RESIDUAL_FIELDS
    _axis: ClassVar[str] = "block"

    q: np.ndarray
    branch_share: np.ndarray
    branch_q: np.ndarray
    dead_fraction: np.ndarray
    saturated_fraction: np.ndarray
    grad_sq: np.ndarray | None
    first_nonfinite_layer: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def histograms(self) -> None:
        """None: residual runs record no histograms."""
        return None

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Return the arrays of the stored form (a study's simulate cell file).

        Returns
        -------
        dict of numpy.ndarray
            The recorded :data:`RESIDUAL_FIELDS` under their own names
            (``grad_sq`` only if recorded) and ``first_nonfinite_layer``.

        See Also
        --------
        from_arrays : The inverse.
        """
        arrays = {n: getattr(self, n) for n in RESIDUAL_FIELDS if getattr(self, n) is not None}
        arrays["first_nonfinite_layer"] = self.first_nonfinite_layer
        return arrays

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, np.ndarray], provenance: dict[str, Any] | None = None
    ) -> ResidualResult:
        """Rebuild a result from its stored form.

        Parameters
        ----------
        arrays : mapping of str to numpy.ndarray
            What :meth:`to_arrays` returned.
        provenance : dict, optional
            The result's provenance (default: empty).

        Returns
        -------
        ResidualResult
            The result; ``grad_sq`` is None when its array is absent.
        """
        return cls(
            **{n: arrays[n] for n in RESIDUAL_FIELDS if n != "grad_sq"},
            grad_sq=arrays.get("grad_sq"),
            first_nonfinite_layer=arrays["first_nonfinite_layer"],
            provenance=provenance if provenance is not None else {},
        )
