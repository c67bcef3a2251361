"""Residual additions of a PyTorch model, and their mean-field theory held against the audit.

Recognition (:func:`find_sites`)
--------------------------------
The outermost submodules that ``torch.fx`` traces (the model itself when it
does) are searched for *residual additions* ``a + b`` where the branch ``b``
is computed from the skip ``a`` (``a`` is an ancestor of ``b`` in the traced
graph): ``x + f(x)`` in a block's forward, both additions of a GPT-2 block
(``x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))``), or a loop of them in one
forward. The skip may carry multipliers, constants or parameters: in
``alpha * x + f(x)`` (DeepNorm's ``LN(alpha x + f(x))``) the branch starts
from ``x`` and the skip added is ``alpha * x``. Each site is named after the
innermost module whose forward performs the addition (``"h.0"``;
``"h.0[2]"`` for its second). A sum that feeds a LayerNorm / RMSNorm module
is a post-norm site, whose output is the norm's.

A branch is *modelled* when the path from ``a`` to ``b`` is a chain of
``nn.Linear``, elementwise activations (modules or functions, as
:mod:`initsim.audit.recognise` knows them), ``nn.LayerNorm`` / ``nn.RMSNorm``,
``nn.Dropout``, ``nn.Identity``, and multiplications by a constant or by a
parameter (LayerScale's ``gamma``, a ReZero ``alpha``), that ends in a
Linear (followed only by dropout and multipliers) whose bias is not a nonzero
constant: then the branch is centred given the skip, and its cross term with
the skip averages to 0. Attention, a convolution, any other operation, or a
branch ending otherwise (``x + relu(W x)``) leaves it unmodelled (the reason
is reported); the site still counts as a residual branch.

Theory (:func:`site_rows`)
--------------------------
Each re-initialisation records, of the example batch, the mean square of the
skip as added ``q_a``, of the site's output, and of the branch's input
``q_u``: its first norm's output when the branch starts with one (pre-norm),
else the node it starts from (``q_u = q_a`` without a skip multiplier).
Given them, the branch's weights are independent of the skip, so the
prediction of the site's output mean square is

    ``q_out = q_a + Q_F(q_u)``   (post-norm: ``(E g^2 + E b^2) p / (p + eps)``,
    ``p = q_a + Q_F(q_u)``),

with ``Q_F`` the length map of the branch's steps at the *inventory's*
laws: a Linear maps ``m -> true_fan_in Var(W) m + E[b^2]``, an activation
``m -> E_{N(0, m)}[phi^2]``, a norm ``m -> (E g^2 + E b^2) m / (m + eps)``,
a multiplier ``m -> E[c^2] m``, dropout (training) ``m -> m / (1 - p)``. The
cross term ``2 <a, b>`` averages to 0 over the branch's centred last layer
(under the theory's centred laws; a weight law that is not centred FAILs).
The row is **exact** (at any width, for any symmetric weight law) when every
activation is positively homogeneous (ReLU, leaky ReLU, linear) and follows a
Linear, and no norm sits inside the branch after its first step; else
**mean field**, with the allowance ``|Q_F| k / n`` for ``k`` mean-field
steps and ``n`` the narrowest Linear, as :mod:`initsim.audit.chain_theory`
(the skip's part is measured; post-norm: ``|q_out| (k + 1) / n``).
The per-re-init differences ``q_out - prediction`` are t-tested over the
re-inits (at least :data:`~initsim.audit.chain_theory.MIN_INITS`) and the
rows Holm-combined; a FAIL is a ``signal-vs-theory`` finding.

The branch's *output projection* (the last Linear before the addition,
through dropout, identity and multipliers) is recorded for every site, for
the ``residual-scale-not-applied`` rule of :mod:`initsim.audit.findings`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import operator
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from initsim.audit.chain_theory import (
    MIN_INITS,
    TheoryRow,
    holm_verdicts,
    linear_map,
    tested_row,
)

__all__ = ["ResidualSite", "SiteTally", "Step", "declared_depth", "find_sites", "site_rows"]

_ADDS = {operator.add, operator.iadd}
_MULS = {operator.mul, operator.imul}
#: Attributes that declare a model's depth in its own code (GPT-2's ``config.n_layer``).
DEPTH_ATTRIBUTES = ("n_layer", "num_hidden_layers", "n_layers", "num_layers", "depth")


@dataclass(frozen=True)
class Step:
    """One operation of a modelled branch.

    Attributes
    ----------
    kind : str
        ``"linear"``, ``"act"``, ``"norm"``, ``"scale"`` (a constant),
        ``"param"`` (a parameter multiplier) or ``"dropout"``.
    target : str or None
        The module's or parameter's path in the model (an activation's label
        for ``"act"``).
    value : float
        The constant, the dropout probability (0 in eval mode) or the norm's eps.
    node : str
        The traced node's name.
    width : int
        A Linear's ``out_features`` (0 for other steps).
    """

    kind: str
    target: str | None
    value: float
    node: str
    width: int = 0


@dataclass(frozen=True)
class ResidualSite:
    """One residual addition (see the module docstring).

    Attributes
    ----------
    label : str
        The module performing the addition (``"[k]"`` for its k-th).
    owner : str
        The traced module whose graph holds the addition.
    skip, branch, out : str
        Node names: the skip ``a`` as added, the branch ``b``, the site's
        output (the sum, or the post-norm's output).
    post_norm : str or None
        Path of the norm applied to the sum (post-norm), else None.
    steps : tuple of Step or None
        The branch from ``a`` to ``b``; None when unmodelled.
    unmodelled : str or None
        Why the branch is not modelled.
    output_projection : str or None
        The weight path of the branch's last Linear.
    post_eps : float
        The post-norm's eps (0 without one).
    root : str
        The node the branch starts from: ``x`` in ``alpha * x + f(x)``, else
        the skip itself.
    """

    label: str
    owner: str
    skip: str
    branch: str
    out: str
    post_norm: str | None
    steps: tuple[Step, ...] | None
    unmodelled: str | None
    output_projection: str | None
    post_eps: float
    root: str

    @property
    def anchor(self) -> str:
        """The branch's input node, whose mean square is measured (pre-norm: its norm's)."""
        if self.steps and self.steps[0].kind == "norm":
            return self.steps[0].node
        return self.root

    def watched(self) -> set[str]:
        """Nodes whose mean square each re-initialisation records."""
        return {self.skip, self.out, self.anchor}


def _join(owner: str, target: str) -> str:
    return f"{owner}.{target}" if owner else target


def declared_depth(model: Any) -> tuple[int, str] | None:
    """Return the depth a model declares and where (``model.config.n_layer``), or None."""
    for holder, prefix in ((getattr(model, "config", None), "config."), (model, "")):
        if holder is None:
            continue
        for name in DEPTH_ATTRIBUTES:
            value = getattr(holder, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
                return value, f"{type(model).__name__}.{prefix}{name} = {value}"
    return None


def find_sites(model: Any) -> tuple[list[ResidualSite], dict[str, Any]]:
    """Find the residual additions (see the module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        The model.

    Returns
    -------
    sites : list of ResidualSite
        In execution order within each traced module, modules in module order.
    graphs : dict of str to torch.fx.GraphModule
        The traced module of each owner holding a site.
    """
    import torch

    sites: list[ResidualSite] = []
    graphs: dict[str, Any] = {}

    def visit(path: str, module: Any) -> None:
        if not any(True for _ in module.children()):
            return
        try:
            gm = torch.fx.symbolic_trace(module)
        except Exception:  # untraceable: look inside
            for name, child in module.named_children():
                visit(_join(path, name), child)
            return
        found = _sites_in(path, gm)
        if found:
            graphs[path] = gm
            sites.extend(found)

    visit("", model)
    return sites, graphs


def _ancestors(graph: Any) -> dict[Any, set[Any]]:
    anc: dict[Any, set[Any]] = {}
    for n in graph.nodes:
        s: set[Any] = set()
        for a in n.all_input_nodes:
            s.add(a)
            s |= anc[a]
        anc[n] = s
    return anc


def _is_add(n: Any) -> bool:
    if n.op == "call_function":
        return n.target in _ADDS or n.target is _torch_add()
    return n.op == "call_method" and n.target in ("add", "add_")


def _torch_add() -> Any:
    import torch

    return torch.add


def _sites_in(owner: str, gm: Any) -> list[ResidualSite]:
    import torch

    modules = dict(gm.named_modules())
    anc = _ancestors(gm.graph)
    raw = []
    for n in gm.graph.nodes:
        if not _is_add(n) or len(n.args) < 2:
            continue
        a, b = n.args[0], n.args[1]
        if not (isinstance(a, torch.fx.Node) and isinstance(b, torch.fx.Node)) or a is b:
            continue
        pair = _skip_and_branch(owner, modules, anc, a, b)
        if pair is None:
            continue
        stack = list(n.meta.get("nn_module_stack", {}).keys())
        block = _join(owner, stack[-1]) if stack else owner
        raw.append((block or "(model)", n, *pair))
    counts = Counter(block for block, *_ in raw)
    seen: Counter[str] = Counter()
    sites = []
    for block, n, skip, branch, root in raw:
        seen[block] += 1
        label = block if counts[block] == 1 else f"{block}[{seen[block]}]"
        out, post, eps = n, None, 0.0
        users = list(n.users)
        if len(users) == 1 and users[0].op == "call_module":
            norm = modules[str(users[0].target)]
            if _is_norm(norm):
                out, post, eps = users[0], _join(owner, str(users[0].target)), _eps(norm)
        steps, why, projection = _branch_steps(owner, modules, root, branch)
        sites.append(
            ResidualSite(
                label,
                owner,
                skip.name,
                branch.name,
                out.name,
                post,
                steps,
                why,
                projection,
                eps,
                root.name,
            )
        )
    return sites


def _skip_and_branch(
    owner: str, modules: dict[str, Any], anc: dict[Any, set[Any]], a: Any, b: Any
) -> tuple[Any, Any, Any] | None:
    """Return ``(skip, branch, root)`` of a sum ``a + b``, or None when it is no residual.

    ``root`` is the node the branch is computed from: the skip itself
    (``x + f(x)``), else the node the skip multiplies (``alpha * x + f(x)``).
    """
    for skip, branch in ((a, b), (b, a)):
        if skip in anc[branch]:
            return skip, branch, skip
    for skip, branch in ((a, b), (b, a)):
        root = skip
        while root.op in ("call_function", "call_method"):
            step, prev, _ = _step(owner, modules, root)
            if step is None or step.kind not in ("scale", "param"):
                break
            root = prev
        if root is not skip and root in anc[branch]:
            return skip, branch, root
    return None


def _is_norm(module: Any) -> bool:
    import torch

    kinds = tuple(
        k for k in (torch.nn.LayerNorm, getattr(torch.nn, "RMSNorm", None)) if k is not None
    )
    return isinstance(module, kinds)


def _eps(norm: Any) -> float:
    """Return a norm module's eps (RMSNorm's None means float32's machine epsilon)."""
    import torch

    return float(norm.eps) if norm.eps is not None else float(torch.finfo(torch.float32).eps)


def _chain_input(n: Any) -> tuple[Any, list[Any]]:
    """Return the one tensor node ``n`` reads from its chain, and the other arguments."""
    nodes = [a for a in n.args if hasattr(a, "op") and a.op != "get_attr"]
    others = [a for a in n.args if not (hasattr(a, "op") and a.op != "get_attr")]
    return (nodes[0] if len(nodes) == 1 else None), others


def _step(owner: str, modules: dict[str, Any], n: Any) -> tuple[Step | None, Any, str | None]:
    """Parse one node of a branch: ``(step, previous node, reason if unmodelled)``."""
    import torch

    from initsim.audit.recognise import activation_of

    prev, others = _chain_input(n)
    if prev is None:
        return None, None, f"{n.name} combines several tensors"
    if n.op == "call_module":
        mod = modules[str(n.target)]
        path = _join(owner, str(n.target))
        if others or n.kwargs:
            return None, None, f"{path} takes extra arguments"
        if isinstance(mod, torch.nn.Linear):
            return Step("linear", path, 0.0, n.name, int(mod.out_features)), prev, None
        if _is_norm(mod):
            return Step("norm", path, _eps(mod), n.name), prev, None
        if isinstance(mod, torch.nn.Dropout):
            return Step("dropout", path, float(mod.p) if mod.training else 0.0, n.name), prev, None
        if isinstance(mod, torch.nn.Identity):
            return Step("scale", None, 1.0, n.name), prev, None
        label = activation_of(n, modules)
        if label is not None:
            return Step("act", label, 0.0, n.name), prev, None
        return None, None, f"{path} ({type(mod).__name__})"
    label = activation_of(n, modules)
    if label is not None:
        return Step("act", label, 0.0, n.name), prev, None
    is_mul = (n.op == "call_function" and (n.target in _MULS or n.target is torch.mul)) or (
        n.op == "call_method" and n.target in ("mul", "mul_")
    )
    is_div = n.op == "call_function" and n.target in (operator.truediv, torch.div)
    if (is_mul or is_div) and len(others) == 1 and not n.kwargs:
        (c,) = others
        if is_mul and hasattr(c, "op"):  # get_attr: a parameter multiplier
            return Step("param", _join(owner, str(c.target)), 1.0, n.name), prev, None
        if isinstance(c, (int, float)) and (is_mul or n.args[0] is prev):
            value = float(c) if is_mul else 1.0 / float(c)
            return Step("scale", None, value, n.name), prev, None
    return None, None, _describe(owner, modules, n)


def _describe(owner: str, modules: dict[str, Any], n: Any) -> str:
    """Name the operation a branch cannot model (a tuple item: the module that made it)."""
    name = getattr(n.target, "__name__", str(n.target))
    src = n.args[0] if n.args else None
    if name == "getitem" and getattr(src, "op", None) == "call_module":
        return f"{_join(owner, str(src.target))} ({type(modules[str(src.target)]).__name__})"
    return f"{name}() at node {n.name}" if n.op == "call_function" else f".{name}() at {n.name}"


def _branch_steps(
    owner: str, modules: dict[str, Any], skip: Any, branch: Any
) -> tuple[tuple[Step, ...] | None, str | None, str | None]:
    """Parse a branch back from ``b`` to its root: ``(steps or None, why not, projection)``.

    The output projection is the first Linear met walking back through
    dropout and multipliers, also when an operation further back leaves the
    branch unmodelled.
    """
    steps: list[Step] = []
    n = branch
    while n is not skip:
        step, prev, why = _step(owner, modules, n)
        if step is None:
            return None, why, _projection(steps)
        steps.append(step)
        n = prev
    projection = _projection(steps)
    if projection is None:  # e.g. x + relu(W x): not centred given the skip
        why = "the branch does not end in a Linear (its cross term with the skip is not 0)"
        return None, why, None
    return tuple(reversed(steps)), None, projection


def _projection(steps_from_the_end: list[Step]) -> str | None:
    for step in steps_from_the_end:
        if step.kind == "linear":
            return f"{step.target}.weight"
        if step.kind not in ("dropout", "scale", "param"):
            return None
    return None


class SiteTally:
    """Records, per re-initialisation, the mean squares each site needs.

    Inside :meth:`capture`, a forward pre-hook on every owner keeps its inputs
    during the model's own forward pass (the audit's, with its hooks);
    :meth:`record` then runs the owner's traced graph on them (without
    gradients) and keeps the mean square of every watched node.
    """

    def __init__(self, sites: list[ResidualSite], graphs: dict[str, Any]) -> None:
        self.sites = sites
        self.graphs = graphs
        self.values: dict[tuple[str, str], list[float]] = {}

    @contextlib.contextmanager
    def capture(self, model: Any) -> Iterator[None]:
        """Keep every owner's inputs during the model's forward passes inside the block."""
        self._captured: dict[str, tuple[Any, Any]] = {}
        modules = dict(model.named_modules())
        handles = []
        for owner in self.graphs:

            def keep(module: Any, args: Any, kwargs: Any, owner: str = owner) -> None:
                self._captured[owner] = (args, kwargs)

            handles.append(modules[owner].register_forward_pre_hook(keep, with_kwargs=True))
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def record(self, torch: Any, model: Any) -> None:
        """Run each owner's graph on its captured inputs and keep the watched mean squares."""
        modules = dict(model.named_modules())
        with torch.no_grad():
            for owner, traced in self.graphs.items():
                args, kwargs = self._captured.get(owner, (None, None))
                if args is None:
                    continue
                # the graph, on this re-initialisation's modules (a factory builds new ones)
                gm = torch.fx.GraphModule(modules[owner], traced.graph)
                bound = inspect.signature(gm.forward).bind(*args, **kwargs)
                bound.apply_defaults()
                watch = set().union(*(s.watched() for s in self.sites if s.owner == owner))
                _recorder()(gm, owner, watch, self.values).run(*bound.args)

    def per_init(self, site: ResidualSite, node: str | None) -> np.ndarray:
        """Return the recorded mean square of ``node`` in each re-initialisation."""
        if node is None:
            return np.array([])
        return np.array(self.values.get((site.owner, node), []), dtype=float)


@functools.cache
def _recorder() -> type:
    """Return the ``torch.fx.Interpreter`` class that keeps the watched nodes' mean squares."""
    import torch

    class Recorder(torch.fx.Interpreter):
        def __init__(self, gm: Any, owner: str, watch: set[str], sink: dict) -> None:
            super().__init__(gm)
            self.owner, self.watch, self.sink = owner, watch, sink

        def run_node(self, n: Any) -> Any:
            out = super().run_node(n)
            if n.name in self.watch and hasattr(out, "double"):
                value = float((out.double() ** 2).mean())
                self.sink.setdefault((self.owner, n.name), []).append(value)
            return out

    return Recorder


def _branch_regime(steps: tuple[Step, ...]) -> tuple[int, int]:
    """Return the number of mean-field steps of a branch and its narrowest Linear's width.

    An activation is exact when it is positively homogeneous and follows a
    Linear (its input is symmetric); every norm is mean field.
    """
    from initsim.audit.recognise import as_activation

    mean_field, after_linear, narrowest = 0, False, None
    for step in steps:
        if step.kind == "linear":
            after_linear = True
            narrowest = min(narrowest or step.width, step.width)
        elif step.kind == "act" and as_activation(step.target).name != "linear":
            mean_field += not (after_linear and as_activation(step.target).positively_homogeneous)
            after_linear = False
        elif step.kind == "norm":
            mean_field += 1
            after_linear = False
    return mean_field, narrowest or 1


def _branch_map(steps: tuple[Step, ...], laws: dict[str, Any], m: float) -> float:
    """Return ``Q_F(m)``, the branch's length map at the inventory's laws."""
    from initsim.audit.recognise import as_activation
    from initsim.theory import gaussian_expectation

    for step in steps:
        if step.kind == "linear":
            m = linear_map(laws, step.target, m)
        elif step.kind == "act":
            m = float(gaussian_expectation(as_activation(step.target), m, "phi2"))
        elif step.kind == "norm":
            g, b = laws.get(f"{step.target}.weight"), laws.get(f"{step.target}.bias")
            affine = (1.0 if g is None else g.second_moment) + (
                0.0 if b is None else b.second_moment
            )
            m = affine * m / (m + step.value)
        elif step.kind == "param":
            m *= laws[step.target].second_moment
        elif step.kind == "scale":
            m *= step.value * step.value
        elif step.kind == "dropout":
            m /= 1.0 - step.value
    return m


def _unmodelled(site: ResidualSite, laws: dict[str, Any]) -> str | None:
    """Return why a site has no theory row at these laws, or None."""
    if site.steps is None:
        return site.unmodelled
    path = site.output_projection
    bias = laws.get(f"{path.removesuffix('weight')}bias") if path else None
    if bias is not None and bias.constant:  # a nonzero constant: <a, b> != 0
        return f"{bias.entry.path} is the constant {bias.constant:g} (the cross term is not 0)"
    return None


def site_rows(
    sites: list[ResidualSite], laws: dict[str, Any], tally: SiteTally, *, alpha: float
) -> list[TheoryRow]:
    """Test every modelled site (see the module docstring).

    Parameters
    ----------
    sites : list of ResidualSite
        The model's residual additions.
    laws : dict
        Tensor path -> :class:`~initsim.audit.laws.TensorStats`.
    tally : SiteTally
        The recorded mean squares.
    alpha : float
        Family-wise level of the Holm combination.

    Returns
    -------
    list of TheoryRow
        One per site; unmodelled sites are ``N/A`` with the reason as regime.
    """
    rows = []
    for i, site in enumerate(sites, start=1):
        q_a = tally.per_init(site, site.skip)
        q_out = tally.per_init(site, site.out)
        why = _unmodelled(site, laws)
        if why is not None or q_a.size < MIN_INITS or q_out.size != q_a.size:
            why = f"not modelled: {why}" if why is not None else "too few re-inits"
            nan = math.nan
            rows.append(TheoryRow(i, site.label, nan, (nan, nan), nan, nan, why, "N/A"))
            continue
        steps, q_u = site.steps, tally.per_init(site, site.anchor)
        if steps[0].kind == "norm":  # pre-norm: the branch starts from the norm's output
            steps = steps[1:]
        mean_field, narrowest = _branch_regime(steps)
        branch = np.array([_branch_map(steps, laws, float(qu)) for qu in q_u])
        pred = q_a + branch
        # the skip's part is measured: only the branch's map (or the post-norm) is mean field
        bound = float(abs(branch.mean())) * mean_field / narrowest
        if site.post_norm is not None:
            post = (Step("norm", site.post_norm, site.post_eps, site.out),)
            pred = np.array([_branch_map(post, laws, float(p)) for p in pred])
            mean_field += 1
            bound = float(abs(pred.mean())) * mean_field / narrowest
        rows.append(tested_row(i, site.label, q_out, pred, bound, mean_field == 0, alpha))
    return holm_verdicts(rows, alpha)
