"""An example of users' own activations, referenced as ``reports.my_activations:NAME``.

Any module importable from the working directory works the same way: a
study spec says ``activation = "my_activations:penalized_tanh"`` and the
command line ``--activation my_activations:penalized_tanh``. A function's
``dphi`` attribute, when present, is its derivative; without one initsim
derives it numerically. ``params`` declares keyword parameters and their
defaults.
"""

from __future__ import annotations

import math


def penalized_tanh(x: float) -> float:
    """Return ``tanh(x)`` for ``x > 0`` and ``tanh(x) / 4`` otherwise (Xu et al. 2016)."""
    t = math.tanh(x)
    return t if x > 0.0 else 0.25 * t


def _penalized_tanh_dphi(x: float) -> float:
    d = 1.0 - math.tanh(x) ** 2
    return d if x > 0.0 else 0.25 * d


penalized_tanh.dphi = _penalized_tanh_dphi  # type: ignore[attr-defined]


def swish(x: float, beta: float) -> float:
    """Return ``x sigmoid(beta x)`` (Ramachandran et al. 2017), in an overflow-free form."""
    e = math.exp(-abs(beta * x))
    return x / (1.0 + e) if beta * x >= 0.0 else x * e / (1.0 + e)


swish.params = {"beta": 1.0}  # type: ignore[attr-defined]
