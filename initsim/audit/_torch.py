"""PyTorch, imported only when an audit runs (an optional extra: ``pip install initsim[torch]``)."""

from __future__ import annotations

from typing import Any

__all__ = ["TorchMissing", "require_torch"]


class TorchMissing(ImportError):
    """PyTorch is not installed; the message says what to install."""


def require_torch() -> Any:
    """Return the ``torch`` module, or raise :class:`TorchMissing` saying how to install it.

    Returns
    -------
    module
        ``torch``.

    Raises
    ------
    TorchMissing
        Without PyTorch.
    """
    try:
        import torch
    except ImportError:
        raise TorchMissing(
            "initsim audit needs PyTorch: pip install 'initsim[torch]' (or pip install "
            "torch==2.13.0 for the CPU build)"
        ) from None
    return torch
