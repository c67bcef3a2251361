"""Argument checks shared by every entry point (simulate, jacobian_spectrum, train, theory).

Each raises ``ValueError`` with a message that names the parameter and the valid
range, so that bad input never reaches a kernel. Nothing here imports Numba.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

__all__ = ["check_choice", "check_int", "check_real"]


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` as an int after checking that it is an integer >= ``minimum``.

    Parameters
    ----------
    name : str
        The parameter's name, for the message.
    value : object
        What the user gave; bools are refused (``True`` is not a width).
    minimum : int
        The smallest valid value.

    Returns
    -------
    int
        The value.

    Raises
    ------
    ValueError
        If ``value`` is not an integer or is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        # numpy.bool_ is not an Integral, so it is refused with the rest
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def check_real(
    name: str, value: Any, *, minimum: float | None = None, strict: bool = False
) -> float:
    """Return ``value`` as a finite float, optionally bounded below.

    Parameters
    ----------
    name : str
        The parameter's name, for the message.
    value : object
        What the user gave; bools and non-numbers are refused.
    minimum : float, optional
        Lower bound.
    strict : bool
        Whether the bound is strict (``> minimum``) or not (``>= minimum``).

    Returns
    -------
    float
        The value.

    Raises
    ------
    ValueError
        If ``value`` is not a finite real number in range.
    """
    bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite number{bound}; got {value!r}")
    v = float(value)
    ok = math.isfinite(v) and (minimum is None or (v > minimum if strict else v >= minimum))
    if not ok:
        raise ValueError(f"{name} must be a finite number{bound}; got {value!r}")
    return v


def check_choice(name: str, value: Any, options: Sequence[str]) -> str:
    """Return ``value`` after checking that it is one of ``options``.

    Parameters
    ----------
    name : str
        The parameter's name, for the message.
    value : object
        What the user gave.
    options : sequence of str
        The valid values.

    Returns
    -------
    str
        The value.

    Raises
    ------
    ValueError
        If ``value`` is not one of ``options``.
    """
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}; got {value!r}")
    return value
