"""The keywords of a run, declared once: default, validation rule and one-line doc.

:func:`initsim.simulate` and :func:`initsim.jacobian_spectrum` take these
keywords; the study spec schema (``[[experiment]]`` keys of a simulate or
jacobian cell), the defaults and choices of ``initsim simulate`` / ``initsim
check`` and the plan of a run (:mod:`initsim.plan`) all read them from here, so
a new keyword is one edit. A test checks that each function's signature
defaults are the table's.

``rule`` names a validator of the study spec (``pos_int``, ``nonneg_real``,
``bool``, ``widths``, ``histograms``, ``activation``, ``init``, or
``choice:a,b,c``). This module imports nothing heavy: the command line reads it
while building its parser.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "ARCHS",
    "DEVICES",
    "INPUT_MODES",
    "JACOBIAN",
    "JACOBIAN_REQUIRED",
    "METHODS",
    "NORMS",
    "NORM_KINDS",
    "RESIDUAL_KEYS",
    "SCHEMES",
    "SIMULATE",
    "Keyword",
    "choices",
]

#: How the nets' weights are sampled (see :func:`initsim.plan.choose_method`).
METHODS = ("auto", "exact", "dense")
#: Where the kernels run.
DEVICES = ("cpu", "cuda")
#: The named input distributions (an array of inputs is the other option).
INPUT_MODES = ("sphere", "gaussian")
#: Network architectures (:mod:`initsim.residual`).
ARCHS = ("mlp", "residual")
#: Residual normalization placements and kinds, and the named residual schemes.
NORMS = ("none", "pre", "post")
NORM_KINDS = ("layernorm", "rmsnorm", "batchnorm")
SCHEMES = ("skipinit", "rezero", "fixup", "layerscale", "gpt2", "deepnorm", "nf", "stable")


@dataclass(frozen=True)
class Keyword:
    """One keyword of a run.

    Attributes
    ----------
    name : str
        The Python keyword (the TOML key; the CLI option with ``-`` for ``_``).
    default : object
        Its default.
    rule : str
        The study spec's validator for it.
    doc : str
        One line of help.
    """

    name: str
    default: Any
    rule: str
    doc: str


def choices(keyword: Keyword) -> tuple[str, ...]:
    """Return the valid values of a ``choice:`` keyword.

    Parameters
    ----------
    keyword : Keyword
        A keyword whose rule is ``choice:a,b,...``.

    Returns
    -------
    tuple of str
        The values.
    """
    if not keyword.rule.startswith("choice:"):
        raise ValueError(f"keyword {keyword.name!r} is not a choice")
    return tuple(keyword.rule[len("choice:") :].split(","))


def _table(*keywords: Keyword) -> dict[str, Keyword]:
    return {k.name: k for k in keywords}


#: The keywords of :func:`initsim.simulate` that a study cell may set, in signature order.
SIMULATE: dict[str, Keyword] = _table(
    Keyword("activation", "relu", "activation", "activation name"),
    Keyword("init", "he_normal", "init", "initializer name"),
    Keyword("depth", 10, "pos_int", "hidden layers"),
    Keyword("width", 256, "widths", "hidden width, or one width per hidden layer"),
    Keyword("input_dim", None, "pos_int", "input dimension (default: the first width)"),
    Keyword("bias_std", 0.0, "nonneg_real", "bias standard deviation"),
    Keyword("nets", 100, "pos_int", "number of random nets"),
    Keyword("inputs", 1, "pos_int", "inputs per net"),
    Keyword("input", "sphere", "choice:" + ",".join(INPUT_MODES), "input distribution"),
    Keyword("method", "auto", "choice:" + ",".join(METHODS), "sampler"),
    Keyword("backward", False, "bool", "also propagate gradients"),
    Keyword("histograms", None, "histograms", "per-layer histograms: bins or a table"),
    Keyword(
        "saturation_threshold", 1e-2, "nonneg_real", "|phi'(h)| below this counts as saturated"
    ),
    Keyword("device", "cpu", "choice:" + ",".join(DEVICES), "where the kernels run"),
    Keyword("arch", "mlp", "choice:" + ",".join(ARCHS), "network architecture"),
    Keyword(
        "alpha",
        None,
        "per_block_nonneg",
        "residual branch multiplier, one number or one per block (default 1)",
    ),
    Keyword(
        "skip",
        None,
        "per_block_real",
        "residual skip multiplier, one number or one per block (default 1)",
    ),
    Keyword("norm", None, "choice:" + ",".join(NORMS), "residual normalization placement"),
    Keyword("norm_kind", "layernorm", "choice:" + ",".join(NORM_KINDS), "residual normalization"),
    Keyword("branch_layers", 2, "pos_int", "dense layers per residual branch"),
    Keyword("width_branch", None, "pos_int", "hidden width of a branch (default: width)"),
    Keyword("eps", 1e-5, "nonneg_real", "epsilon of the residual normalization"),
    Keyword("scheme", None, "choice:" + ",".join(SCHEMES), "named residual scheme"),
)

#: The keywords that only a residual net (``arch="residual"``) takes.
RESIDUAL_KEYS = (
    "alpha", "skip", "norm", "norm_kind", "branch_layers", "width_branch", "eps", "scheme",
)  # fmt: skip

_JACOBIAN_KEYS = ("activation", "init", "depth", "width", "input_dim", "bias_std", "nets", "input")
#: The keywords of :func:`initsim.jacobian_spectrum` that a study cell may set.
JACOBIAN: dict[str, Keyword] = {
    k: replace(SIMULATE[k], default="linear") if k == "activation" else SIMULATE[k]
    for k in _JACOBIAN_KEYS
}
#: Keywords :func:`initsim.jacobian_spectrum` requires (their table default is unused).
JACOBIAN_REQUIRED = ("depth", "width", "nets")
