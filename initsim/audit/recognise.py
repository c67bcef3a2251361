"""Which activation consumes each layer's output, and which models are chains the theory knows.

:func:`consumers` traces the model with ``torch.fx`` and maps every module
whose output feeds exactly one elementwise activation (a module such as
``nn.ReLU``, or a function such as ``torch.relu`` / ``F.gelu`` / the
``.tanh()`` method) to that activation's initsim name. A model that does
not trace falls back to module order: the next leaf module, when it is an
activation module. :attr:`Recognised.source` says which was used.

:func:`mlp_chain` recognises a plain MLP: ``Linear -> activation -> Linear
-> ... -> Linear`` with nothing else in the traced graph, for which
:func:`initsim.audit.theory_rows` draws the mean-field prediction.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

__all__ = ["Recognised", "as_activation", "consumers", "mlp_chain", "residual_blocks"]

#: PyTorch activation modules, functions and methods, by initsim name.
_MODULES = {
    "ReLU": "relu",
    "LeakyReLU": "leaky_relu",
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "GELU": "gelu",
    "SiLU": "silu",
    "ELU": "elu",
    "SELU": "selu",
    "Softplus": "softplus",
    "Hardtanh": "hard_tanh",
    "Softsign": "softsign",
    "Identity": "linear",
}
_FUNCTIONS = {
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "gelu": "gelu",
    "silu": "silu",
    "elu": "elu",
    "selu": "selu",
    "softplus": "softplus",
    "hardtanh": "hard_tanh",
    "softsign": "softsign",
}


@dataclass(frozen=True)
class Recognised:
    """What tracing found.

    Attributes
    ----------
    consumer : dict of str to str
        Module path -> the initsim name of the activation its output feeds
        (``"leaky_relu:0.2"`` with a parameter; :func:`as_activation` reads it).
    source : str
        ``"torch.fx"`` or ``"module order"`` (the model did not trace: the
        reason follows).
    chain : list of (str, str or None) or None
        For a plain MLP, ``[(linear path, activation or None), ...]`` in
        order (the last Linear has None); else None.
    """

    consumer: dict[str, str]
    source: str
    chain: list[tuple[str, str | None]] | None


def _module_label(module: Any) -> str | None:
    """Return the label of an activation module (with a LeakyReLU's or ELU's parameter)."""
    name = _MODULES.get(type(module).__name__)
    if name == "leaky_relu":
        return f"leaky_relu:{float(module.negative_slope)!r}"
    if name == "elu":
        return f"elu:{float(module.alpha)!r}"
    return name


def activation_of(node: Any, modules: dict[str, Any]) -> str | None:
    """Return the initsim activation that a traced node applies, or None.

    Parameters
    ----------
    node : torch.fx.Node
        A node of a traced graph.
    modules : dict of str to nn.Module
        The traced module's ``named_modules()``, to resolve ``call_module`` targets.

    Returns
    -------
    str or None
        The activation's initsim name with its parameter (``"elu:0.5"``), or None when
        the node is not an elementwise activation initsim knows at its default settings.
    """
    if node.op == "call_module":
        return _module_label(modules[node.target])
    if node.op in ("call_function", "call_method"):
        target = (
            node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
        )
        name = _FUNCTIONS.get(target.rstrip("_"))
        extra = len(node.args) > 1 or any(k not in ("inplace",) for k in node.kwargs)
        if name is not None and extra:  # a non-default parameter: not recognised
            return None
        return name
    return None


def as_activation(label: str) -> Any:
    """Return the :class:`~initsim.activations.Activation` of a label (``"leaky_relu:0.2"``)."""
    from initsim import activations

    name, _, value = label.partition(":")
    if not value:
        return activations.get(name)
    key = "slope" if name == "leaky_relu" else "alpha"
    return activations.get(name, **{key: float(value)})


def consumers(model: Any) -> Recognised:
    """Trace ``model`` (see the module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        The model.

    Returns
    -------
    Recognised
        The consumers, how they were found, and the MLP chain if any.
    """
    import torch

    modules = dict(model.named_modules())
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as err:  # dynamic control flow and friends: fall back to module order
        return Recognised(
            _by_module_order(model), f"module order ({type(err).__name__} in torch.fx)", None
        )
    found: dict[str, str] = {}
    for node in graph.nodes:
        if node.op != "call_module":
            continue
        users = list(node.users)
        if len(users) == 1:
            act = activation_of(users[0], modules)
            if act is not None:
                found[str(node.target)] = act
    return Recognised(found, "torch.fx", _chain(graph, modules))


def _by_module_order(model: Any) -> dict[str, str]:
    leaves = [(p, m) for p, m in model.named_modules() if p and not any(True for _ in m.children())]
    found = {}
    for (path, _), (_, nxt) in itertools.pairwise(leaves):
        act = _module_label(nxt)
        if act is not None:
            found[path] = act
    return found


def _chain(graph: Any, modules: dict[str, Any]) -> list[tuple[str, str | None]] | None:
    import torch

    nodes = [n for n in graph.nodes if n.op not in ("placeholder", "output")]
    chain: list[tuple[str, str | None]] = []
    i = 0
    while i < len(nodes):
        n = nodes[i]
        if n.op != "call_module" or not isinstance(modules[n.target], torch.nn.Linear):
            return None
        act = activation_of(nodes[i + 1], modules) if i + 1 < len(nodes) else None
        if i + 1 < len(nodes) and act is None:
            return None
        chain.append((str(n.target), act))
        i += 2 if act is not None else 1
    if not chain or chain[-1][1] is not None:
        return None
    return chain


def mlp_chain(model: Any) -> list[tuple[str, str | None]] | None:
    """Return the ``(Linear, activation)`` pairs of a plain MLP, or None (:func:`consumers`)."""
    return consumers(model).chain


def residual_blocks(model: Any) -> list[tuple[str, str | None]]:
    """Find the submodules whose forward is ``x + branch(x)``, and the module of the branch.

    Each submodule is traced on its own (``torch.fx``); it is a residual block
    when its output is ``input + b`` (or ``b + input``) for its first input,
    and ``b`` is then the output of the module that computes it (None when
    ``b`` comes from a function, not a module).

    Parameters
    ----------
    model : torch.nn.Module
        The model.

    Returns
    -------
    list of (str, str or None)
        ``(block path, branch module path)`` in module order (the branch path
        is relative to the model).
    """
    import operator

    import torch

    out = []
    for path, module in model.named_modules():
        if not path or not any(True for _ in module.children()):
            continue
        try:
            graph = torch.fx.symbolic_trace(module).graph
        except Exception:  # untraceable submodules are simply not recognised
            continue
        inputs = [n for n in graph.nodes if n.op == "placeholder"]
        result = next(n for n in graph.nodes if n.op == "output").args[0]
        if not inputs or getattr(result, "op", None) != "call_function":
            continue
        if result.target not in (operator.add, torch.add) or len(result.args) != 2:
            continue
        a, b = result.args
        branch = b if a is inputs[0] else a if b is inputs[0] else None
        if branch is None:
            continue
        name = f"{path}.{branch.target}" if branch.op == "call_module" else None
        out.append((path, name))
    return out
