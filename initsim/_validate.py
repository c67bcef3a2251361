"""Argument checks shared by every entry point (simulate, jacobian_spectrum, train, theory).

Each raises ``ValueError`` with a message that names the parameter and the valid
range, so that bad input never reaches a kernel. Nothing here imports Numba.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["check_bool", "check_choice", "check_int", "check_real"]


def check_int(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """Return ``value`` as an int after checking that it is an integer >= ``minimum``.

    Parameters
    ----------
    name : str
        The parameter's name, for the message.
    value : object
        What the user gave; bools are refused (``True`` is not a width).
    minimum : int
        The smallest valid value.
    maximum : int, optional
        The largest valid value.

    Returns
    -------
    int
        The value.

    Raises
    ------
    ValueError
        If ``value`` is not an integer or is out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        # numpy.bool_ is not an Integral, so it is refused with the rest
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(
            f"{name} must be an integer between {minimum} and {maximum}; got {value!r}"
        )
    return int(value)


def check_bool(name: str, value: Any, *, allow_none: bool = False) -> bool | None:
    """Return ``value`` as a bool after checking that it is one (numpy's included).

    Parameters
    ----------
    name : str
        The parameter's name, for the message.
    value : object
        What the user gave; strings and numbers are refused (``"no"`` is truthy).
    allow_none : bool
        Whether None is valid (returned as None).

    Returns
    -------
    bool or None
        The value.

    Raises
    ------
    ValueError
        If ``value`` is not a bool (or None, when allowed).
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool):
        return value
    np = sys.modules.get("numpy")  # a numpy bool implies numpy is imported: no import here
    if np is not None and isinstance(value, np.bool_):
        return bool(value)
    valid = "True, False or None" if allow_none else "True or False"
    raise ValueError(f"{name} must be {valid}; got {value!r}")


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
