"""The result of :func:`initsim.simulate`: per-net, per-layer summaries plus provenance.

:class:`SimulationResult` also owns its stored form, the arrays a study's
simulate cell writes (:meth:`SimulationResult.to_arrays`) and reads back
(:meth:`SimulationResult.from_arrays`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as _st

from initsim.provenance import json_float

__all__ = ["SUMMARY_FIELDS", "SimulationResult"]

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


@dataclass(frozen=True)
class SimulationResult:
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

    @property
    def nets(self) -> int:
        """Number of nets simulated."""
        return int(self.q.shape[0])

    @property
    def depth(self) -> int:
        """Number of hidden layers."""
        return int(self.q.shape[1])

    def _field(self, name: str) -> np.ndarray:
        if name not in SUMMARY_FIELDS:
            raise ValueError(f"name must be one of {', '.join(SUMMARY_FIELDS)}; got {name!r}")
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"{name!r} was not recorded: run simulate(..., backward=True)")
        return value

    def layer_mean(self, name: str = "q") -> np.ndarray:
        """Monte Carlo mean over nets of a summary, per layer.

        Parameters
        ----------
        name : str
            One of :data:`SUMMARY_FIELDS`.

        Returns
        -------
        numpy.ndarray (depth,)
            The mean over nets (NaN where a net diverged to NaN).
        """
        with np.errstate(invalid="ignore", over="ignore"):
            return self._field(name).mean(axis=0)

    def layer_interval(self, name: str = "q", level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Student-t confidence interval for the per-layer mean over nets.

        Parameters
        ----------
        name : str
            One of :data:`SUMMARY_FIELDS`.
        level : float
            Confidence level in (0, 1).

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            Lower and upper bounds per layer (NaN with a single net).
        """
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1); got {level}")
        v = self._field(name)
        n = v.shape[0]
        if n < 2:
            nan = np.full(v.shape[1], np.nan)
            return nan, nan.copy()
        # diverged nets make these inf/NaN: that is the answer, not a warning
        with np.errstate(invalid="ignore", over="ignore"):
            mean = v.mean(axis=0)
            se = v.std(axis=0, ddof=1) / np.sqrt(n)
            half = _st.t.ppf(0.5 + level / 2.0, df=n - 1) * se
            return mean - half, mean + half

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
        means = {f: self.layer_mean(f) for f in SUMMARY_FIELDS if getattr(self, f) is not None}
        lo, hi = self.layer_interval("q")
        for t in range(self.depth):
            row: dict[str, Any] = {"layer": t + 1}
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
            for f in SUMMARY_FIELDS:
                v = getattr(self, f)
                if v is not None:
                    out[f] = [[json_float(x) for x in row] for row in v]
            out["first_nonfinite_layer"] = self.first_nonfinite_layer.tolist()
        return out
