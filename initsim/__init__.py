"""initsim: what a weight initialization does to signals and gradients in deep nets.

Public names (imported lazily, so ``initsim --help`` does not load Numba):

- :func:`simulate` and :class:`SimulationResult`: the Monte Carlo engine,
- :func:`jacobian_spectrum`: singular values of input-output Jacobians,
- :func:`check` and :mod:`theory`: statistical verdicts against mean-field theory,
- :mod:`train`: a small compiled MLP trainer; :func:`verify`: checks of a user's initializer,
- :func:`audit`: a PyTorch model's initialisation over many re-inits (needs torch),
- :mod:`initializers`: the weight-initializer catalogue,
- :mod:`framework_names`: PyTorch, Keras and JAX names of its schemes,
- :mod:`activations`: the activation registry,
- :mod:`rng`: counter-based per-net random streams,
- :class:`Study` and :func:`load_results`: TOML studies, resumable, local or on Dask,
- :func:`build_report`: the PDF report of a study's results.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from initsim._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from initsim import activations, audit, framework_names, initializers, rng, theory, train
    from initsim.checks import check
    from initsim.jacobian import jacobian_spectrum
    from initsim.report import build_report
    from initsim.result import SimulationResult
    from initsim.simulation import simulate
    from initsim.study import Study, load_results
    from initsim.verify import verify

__all__ = [
    "SimulationResult",
    "Study",
    "__version__",
    "activations",
    "audit",
    "build_report",
    "check",
    "framework_names",
    "initializers",
    "jacobian_spectrum",
    "load_results",
    "rng",
    "simulate",
    "theory",
    "train",
    "verify",
]

_LAZY = {
    "simulate": ("initsim.simulation", "simulate"),
    "SimulationResult": ("initsim.result", "SimulationResult"),
    "activations": ("initsim.activations", None),
    "audit": ("initsim.audit", None),
    "initializers": ("initsim.initializers", None),
    "framework_names": ("initsim.framework_names", None),
    "rng": ("initsim.rng", None),
    "theory": ("initsim.theory", None),
    "train": ("initsim.train", None),
    "verify": ("initsim.verify", "verify"),
    "check": ("initsim.checks", "check"),
    "jacobian_spectrum": ("initsim.jacobian", "jacobian_spectrum"),
    "Study": ("initsim.study", "Study"),
    "load_results": ("initsim.study", "load_results"),
    "build_report": ("initsim.report", "build_report"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'initsim' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
