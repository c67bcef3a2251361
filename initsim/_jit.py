"""One place for initsim's Numba options.

Every compiled function in the package is built through :func:`jit` so the
options stay consistent: ``cache=True`` (no recompilation in new processes),
``nogil=True``, ``error_model="numpy"`` (division by zero gives inf/NaN
instead of raising inside kernels), and ``fastmath`` **off**: diverging nets
produce inf/NaN, and fastmath lets LLVM delete the checks for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba

_DEFAULTS: dict[str, Any] = {
    "cache": True,
    "nogil": True,
    "error_model": "numpy",
    "fastmath": False,
}


def jit(*args: Any, **options: Any) -> Callable[..., Any]:
    """Compile with initsim's standard Numba options.

    Parameters
    ----------
    *args
        Passed to :func:`numba.njit` (a function or a signature).
    **options
        Extra or overriding Numba options (``parallel=True``,
        ``inline="always"``, ...). ``fastmath=True`` is refused.

    Returns
    -------
    callable
        The compiled dispatcher, or a decorator when no function is given.

    Raises
    ------
    ValueError
        If ``fastmath`` is requested.
    """
    if options.get("fastmath"):
        raise ValueError("fastmath must stay off in initsim: it removes inf/NaN checks")
    merged = {**_DEFAULTS, **options}
    return numba.njit(*args, **merged)
