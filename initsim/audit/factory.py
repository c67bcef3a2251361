"""Build a model again and again: the audit's re-initialisations, each from its own seed.

A *factory* is what ``initsim audit`` is given: a class or a function that
returns an ``nn.Module`` (called with no arguments), or a model instance.
Re-initialisation ``k`` seeds PyTorch (``torch.manual_seed``) from the
audit's seed sequence and then

* calls the factory, so the model's *own* init code runs, exactly as in
  training scripts; or, for a model instance,
* calls ``reset_parameters()`` of every submodule that has one and then
  the model's own init hook (``_init_weights`` applied to every submodule,
  as HuggingFace models do, or ``init_weights()``), and says so
  (:attr:`Reinit.how`).

The same seed gives the same sequence of models.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from initsim.audit._torch import require_torch

__all__ = ["AuditUsageError", "Reinit", "load_factory", "torch_seeds"]


class AuditUsageError(ValueError):
    """A usage error of the audit (exit status 2): bad factory, bad input, bad options."""


@dataclass(frozen=True)
class Reinit:
    """How the audit makes fresh models.

    Attributes
    ----------
    build : callable
        ``build(torch_seed) -> nn.Module``.
    how : str
        A sentence saying what re-initialises the model.
    label : str
        The factory, as given.
    """

    build: Callable[[int], Any]
    how: str
    label: str


def torch_seeds(seed: Any, inits: int) -> list[int]:
    """Return the torch seeds of ``inits`` re-initialisations, from the audit's seed sequence.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence
        The audit's seed.
    inits : int
        How many.

    Returns
    -------
    list of int
        One 63-bit seed per re-initialisation.
    """
    from initsim.seeding import as_seed_sequence

    ss = as_seed_sequence(seed)
    words = ss.generate_state(inits, dtype=np.uint64)
    return [int(w >> np.uint64(1)) for w in words]


def _init_hook(model: Any) -> tuple[Callable[[], None] | None, str]:
    hook = getattr(model, "_init_weights", None)
    if callable(hook):
        return (lambda: model.apply(hook)), "the model's _init_weights applied to every submodule"
    hook = getattr(model, "init_weights", None)
    if callable(hook):
        return hook, "the model's init_weights()"
    return None, "no init hook of the model's own"


def _from_instance(model: Any, label: str) -> Reinit:
    torch = require_torch()
    _, hook_text = _init_hook(model)
    resettable = [m for m in model.modules() if callable(getattr(m, "reset_parameters", None))]

    def build(torch_seed: int) -> Any:
        fresh = copy.deepcopy(model)
        torch.manual_seed(torch_seed)
        for m in fresh.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()
        fresh_hook, _ = _init_hook(fresh)
        if fresh_hook is not None:
            fresh_hook()
        return fresh

    how = (
        f"a model instance: reset_parameters() of its {len(resettable)} submodules that have "
        f"one, then {hook_text}"
    )
    return Reinit(build, how, label)


def load_factory(factory: Any) -> Reinit:
    """Resolve what the user gave into a :class:`Reinit`.

    Parameters
    ----------
    factory : str, type, callable or nn.Module
        ``"pkg.module:name"`` (importable from the working directory), or the
        object itself: a class or function returning an ``nn.Module`` when
        called without arguments, or a model instance.

    Returns
    -------
    Reinit
        How to build fresh models.

    Raises
    ------
    AuditUsageError
        If the reference cannot be imported, or the factory is neither a
        module nor returns one (checked by building one model).
    """
    torch = require_torch()
    label = factory if isinstance(factory, str) else getattr(factory, "__qualname__", repr(factory))
    if isinstance(factory, str):
        from initsim.user_activation import resolve_reference

        try:
            factory, _ = resolve_reference(factory)
        except ValueError as err:
            raise AuditUsageError(str(err).replace("activation reference", "factory")) from None
    if isinstance(factory, torch.nn.Module):
        return _from_instance(factory, str(label))
    if not callable(factory):
        raise AuditUsageError(
            f"factory {label!r} is a {type(factory).__name__}: give a class or a function that "
            "returns an nn.Module, or a model instance"
        )

    def build(torch_seed: int) -> Any:
        torch.manual_seed(torch_seed)
        try:
            model = factory()
        except Exception as err:  # the user's code: report it as a usage error
            raise AuditUsageError(f"factory {label!r} raised {type(err).__name__}: {err}") from err
        if not isinstance(model, torch.nn.Module):
            raise AuditUsageError(
                f"factory {label!r} returned a {type(model).__name__}, not a torch.nn.Module"
            )
        return model

    return Reinit(build, "the factory called afresh for every re-initialisation", str(label))
