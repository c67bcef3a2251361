"""Argument checks of the theory functions (:mod:`initsim.theory`).

Each raises ``ValueError`` naming the parameter and its valid range. The
module is private to the package (its names are shared by the theory modules,
not re-exported); it imports nothing else of :mod:`initsim.theory`, so every
theory module can use it without an import cycle.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import numpy.typing as npt

from initsim import activations
from initsim.activations import Activation


def as_activation(activation: str | Activation) -> Activation:
    """Return the registry activation (:func:`initsim.activations.get`).

    Parameters
    ----------
    activation : str or Activation
        A registry name or an activation.

    Returns
    -------
    Activation
        The activation.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    return activations.get(activation)


def as_real(name: str, value: Any) -> float:
    """Return ``value`` as a float (any real number, also inf or NaN; no bools).

    Parameters
    ----------
    name : str
        The parameter's name, for the message.
    value : object
        What the caller gave.

    Returns
    -------
    float
        The value.

    Raises
    ------
    ValueError
        If ``value`` is a bool or not convertible to float.
    """
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None


def check_sigma_w2(value: Any, length: int | None = None) -> npt.NDArray[np.float64] | float:
    """Check sigma_w2: finite and > 0, a scalar or (with ``length``) one per layer.

    Parameters
    ----------
    value : float or array_like
        ``sigma_w2``: one value, or (only if ``length`` is given) one per layer.
    length : int, optional
        The number of layers a per-layer array must have.

    Returns
    -------
    float or numpy.ndarray
        A float for a scalar, else a float64 array of shape ``(length,)``.

    Raises
    ------
    ValueError
        For a value that is not finite and positive, or an array of the wrong shape.
    """
    if np.ndim(value) == 0:
        v = as_real("sigma_w2", value)
        if not (math.isfinite(v) and v > 0.0):
            raise ValueError(f"sigma_w2 must be finite and > 0 (valid range (0, inf)), got {v!r}")
        return v
    if length is None:
        raise ValueError(f"sigma_w2 must be a scalar here, got an array of shape {np.shape(value)}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"sigma_w2 must be real numbers, got {value!r}") from None
    if arr.ndim != 1 or arr.shape[0] != length:
        raise ValueError(
            f"sigma_w2 must be a scalar or one value per layer (length {length}), "
            f"got shape {arr.shape}"
        )
    if not (np.all(np.isfinite(arr)) and np.all(arr > 0.0)):
        raise ValueError(
            f"sigma_w2 must be finite and > 0 (valid range (0, inf)) in every layer, got {value!r}"
        )
    return arr


def check_sigma_b2(value: Any) -> float:
    """Check ``sigma_b2``: a finite real number ``>= 0``.

    Parameters
    ----------
    value : float
        ``Var(b_i)``.

    Returns
    -------
    float
        The value.

    Raises
    ------
    ValueError
        Outside ``[0, inf)``.
    """
    v = as_real("sigma_b2", value)
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"sigma_b2 must be finite and >= 0 (valid range [0, inf)), got {v!r}")
    return v


def check_q0(value: Any) -> float:
    """Check ``q0``: a finite real number ``> 0``.

    Parameters
    ----------
    value : float
        The input's second moment.

    Returns
    -------
    float
        The value.

    Raises
    ------
    ValueError
        Outside ``(0, inf)``.
    """
    v = as_real("q0", value)
    if not (math.isfinite(v) and v > 0.0):
        raise ValueError(f"q0 must be finite and > 0 (valid range (0, inf)), got {v!r}")
    return v


def check_c0(value: Any) -> float:
    """Check ``c0``: a correlation in ``[-1, 1]``.

    Parameters
    ----------
    value : float
        The inputs' correlation.

    Returns
    -------
    float
        The value.

    Raises
    ------
    ValueError
        Outside ``[-1, 1]`` (or NaN).
    """
    v = as_real("c0", value)
    if not (-1.0 <= v <= 1.0):
        raise ValueError(f"c0 must be a correlation in [-1, 1], got {v!r}")
    return v


def check_widths(widths: Any) -> list[int]:
    """Check ``widths = [n_0, n_1, ..., n_L]``: at least two positive integers.

    Parameters
    ----------
    widths : sequence of int
        The input width and the hidden widths.

    Returns
    -------
    list of int
        The widths.

    Raises
    ------
    ValueError
        For anything else.
    """
    if isinstance(widths, str | bytes) or np.ndim(widths) != 1:
        raise ValueError(
            f"widths must be a sequence [n_0, n_1, ..., n_L] of integers >= 1, got {widths!r}"
        )
    out = []
    for w in widths:
        if isinstance(w, bool | np.bool_) or not isinstance(w, numbers.Integral) or w < 1:
            raise ValueError(
                f"widths must be a sequence [n_0, n_1, ..., n_L] of integers >= 1, got {widths!r}"
            )
        out.append(int(w))
    if len(out) < 2:
        raise ValueError(
            f"widths must list the input width and at least one hidden width "
            f"([n_0, n_1, ..., n_L], length >= 2), got {widths!r}"
        )
    return out
