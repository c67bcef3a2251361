"""Benchmark the GPU backend against plain torch implementations of the same laws.

Throughput is in unit-layers per second: nets x depth x width / seconds.
Timed, on one GPU, in one process:

* ``exact forward``: initsim's exact sampler (one input per net, ReLU, He
  weights), forward pass with all per-layer statistics, for each block size
  in ``--blocks``; ``exact forward+backward``: the same with the exact
  conditional backward pass.
* ``dense forward``: initsim's dense sampler (weights regenerated from their
  counters inside the matrix-vector products).
* ``exact B inputs fwd+bwd``: the exact Gram sampler with ``--inputs``
  inputs per net (unit-layers count units, not unit-inputs), forward and
  backward; ``dense orthogonal forward``: the dense sampler with weights
  materialised first (one Householder QR per matrix and thread). Neither has
  a torch counterpart here.
* ``normals only (roofline)``: the exact forward pass's normal draws alone
  (Philox + ziggurat in registers, summed per thread; no statistics, no
  reductions), the ceiling for the exact sampler.
* torch baselines (float64, like initsim): the exact law ``h = s ||x|| z``
  per layer (forward; and forward + the exact backward, nets in chunks to
  bound memory), and a dense loop drawing each layer's weights with
  ``randn`` and multiplying with ``bmm``. Each computes q, the activation
  mean and variance and the dead fraction per net and layer, on the GPU.

Times exclude compilation and warm-up: each case runs once untimed, then
``--repeats`` times between ``cuda.synchronize()`` calls; the median is
reported. initsim timings are kernel time on device-resident arrays (no
host transfers), like torch's; ``--end-to-end`` adds one timed
``initsim.simulate(device="cuda")`` call (transfers included).

``--tiny`` shrinks every size (a smoke test, also under
``NUMBA_ENABLE_CUDASIM=1``); without torch the baselines are skipped and
reported as such.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _time(fn: Callable[[], None], sync: Callable[[], None], repeats: int) -> list[float]:
    fn()  # warm-up: compilation, allocations
    sync()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def _initsim_case(
    method: str,
    nets: int,
    depth: int,
    width: int,
    backward: bool,
    block: int | None,
    *,
    init: str = "he_normal",
    inputs: int = 1,
) -> tuple[Callable[[], None], str]:
    from numba import cuda

    from initsim.gpu import driver
    from initsim.plan import make_plan
    from initsim.rng import net_keys, root_key

    plan = make_plan(
        activation="relu",
        init=init,
        depth=depth,
        width=width,
        nets=nets,
        inputs=inputs,
        method=method,
        backward=backward,
        device="cuda",
    )
    kern, name = driver.make_kernel(plan, block=block)
    d_keys = cuda.to_device(net_keys(root_key(0), 0, nets))
    d_stats = cuda.to_device(np.zeros((nets, depth, 6)))
    d_first = cuda.to_device(np.zeros(nets, dtype=np.int64))
    d_hh = cuda.to_device(np.zeros((depth, 1), dtype=np.int64))
    d_ha = cuda.to_device(np.zeros((depth, 1), dtype=np.int64))
    if nets > kern.batch:
        raise SystemExit(f"{nets} nets exceed one launch ({kern.batch}); use fewer nets")

    def run() -> None:
        kern.launch(d_keys, d_stats, d_first, d_hh, d_ha)

    return run, name


def _normals_case(nets: int, depth: int, width: int, block: int) -> Callable[[], None]:
    """Roofline: the exact forward pass's normal draws alone (summed, no statistics)."""
    from numba import cuda

    from initsim.gpu.streams import normals_sum_kernel, tables
    from initsim.rng import Purpose, net_keys, root_key

    d_keys = cuda.to_device(net_keys(root_key(0), 0, nets))
    d_tab = [cuda.to_device(a) for a in tables()]
    d_out = cuda.device_array(nets * block)
    c2 = np.uint64(Purpose.FORWARD)

    def run() -> None:
        normals_sum_kernel[nets, block](d_keys, c2, depth, width // 2, *d_tab, d_out)

    return run


def _torch_stats(torch: Any, h: Any, y: Any) -> Any:
    q = (h * h).mean(1)
    m = y.mean(1)
    v = ((y - m[:, None]) ** 2).mean(1)
    dead = (y == 0).double().mean(1)
    return torch.stack([q, m, v, dead], 1)


def _torch_exact(torch: Any, nets: int, depth: int, width: int, backward: bool, chunk: int):
    dev = "cuda"
    s = math.sqrt(2.0 / width)

    def one(n: int) -> None:
        stats = torch.empty(n, depth, 5, dtype=torch.float64, device=dev)
        x2 = torch.full((n,), float(width), dtype=torch.float64, device=dev)
        x2s = [x2]
        hs = []
        for t in range(depth):
            z = torch.randn(n, width, dtype=torch.float64, device=dev)
            h = (s * torch.sqrt(x2))[:, None] * z
            y = torch.relu(h)
            stats[:, t, :4] = _torch_stats(torch, h, y)
            x2 = (y * y).sum(1)
            x2s.append(x2)
            if backward:
                hs.append(h)
        if not backward:
            return
        u = torch.randn(n, width, dtype=torch.float64, device=dev)
        d = u * (hs[-1] > 0)
        dd = (d * d).sum(1)
        ad = (hs[-1] * d).sum(1)
        stats[:, depth - 1, 4] = dd / width
        for t in range(depth - 1, 0, -1):
            x = torch.relu(hs[t - 1])
            x2 = x2s[t]
            g = torch.randn(n, width, dtype=torch.float64, device=dev)
            proj = (x * g).sum(1) / x2
            coef = ad / x2
            sz = s * torch.sqrt(dd)
            gi = x * coef[:, None] + sz[:, None] * (g - x * proj[:, None])
            d = gi * (hs[t - 1] > 0)
            dd = (d * d).sum(1)
            ad = (hs[t - 1] * d).sum(1)
            stats[:, t - 1, 4] = dd / width

    def run() -> None:
        for lo in range(0, nets, chunk):
            one(min(chunk, nets - lo))

    return run


def _torch_dense(torch: Any, nets: int, depth: int, width: int):
    dev = "cuda"
    s = math.sqrt(2.0 / width)

    def run() -> None:
        stats = torch.empty(nets, depth, 4, dtype=torch.float64, device=dev)
        x = torch.randn(nets, width, 1, dtype=torch.float64, device=dev)
        x = x * torch.sqrt(width / (x * x).sum(1, keepdim=True))
        for t in range(depth):
            w = torch.randn(nets, width, width, dtype=torch.float64, device=dev) * s
            h = torch.bmm(w, x)
            y = torch.relu(h)
            stats[:, t] = _torch_stats(torch, h[:, :, 0], y[:, :, 0])
            x = y

    return run


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table (or JSON) and return the exit status.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success.
    """
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nets-exact", type=int, default=100_000)
    ap.add_argument("--nets-dense", type=int, default=1_000)
    ap.add_argument("--nets-gram", type=int, default=10_000, help="nets of the B-input case")
    ap.add_argument("--inputs", type=int, default=4, help="B of the exact B-input case")
    ap.add_argument("--nets-stored", type=int, default=10, help="nets of the dense orthogonal case")
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--blocks", default="32,64,128", help="exact-forward block sizes to try")
    ap.add_argument("--dense-blocks", default="128,256", help="dense block sizes to try")
    ap.add_argument("--torch-chunk", type=int, default=25_000, help="nets per torch exact chunk")
    ap.add_argument("--no-torch", action="store_true", help="skip the torch baselines")
    ap.add_argument("--end-to-end", action="store_true", help="also time simulate(device='cuda')")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (smoke test, simulator)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = ap.parse_args(argv)

    from numba import config, cuda

    from initsim.gpu import driver

    sim = bool(config.ENABLE_CUDASIM)
    if args.tiny:
        args.nets_exact, args.nets_dense, args.depth, args.width = 4, 2, 2, 16
        args.nets_gram, args.nets_stored, args.inputs = 2, 2, 2
        args.repeats = 1
        args.blocks = "32" if sim else "32,64"
        args.dense_blocks = "32"
        args.torch_chunk = 4
    driver.require_cuda()
    blocks = [int(b) for b in args.blocks.split(",") if b]
    depth, width = args.depth, args.width
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def record(key: str, name: str, nets: int, times: list[float]) -> None:
        med = statistics.median(times)
        results[key] = {
            "kernel": name,
            "nets": nets,
            "depth": depth,
            "width": width,
            "median_s": med,
            "times_s": times,
            "unit_layers_per_s": nets * depth * width / med,
        }
        print(
            f"{key:<34} {nets:>8} nets  median {med * 1e3:10.3f} ms  "
            f"{nets * depth * width / med:10.3e} unit-layers/s   [{name}]",
            flush=True,
        )

    sync = cuda.synchronize
    for blk in blocks:
        run, name = _initsim_case("exact", args.nets_exact, depth, width, False, blk)
        record(
            f"initsim exact forward b{blk}", name, args.nets_exact, _time(run, sync, args.repeats)
        )
    run = _normals_case(args.nets_exact, depth, width, 64)
    record(
        "normals only (roofline)",
        "Philox+ziggurat, summed",
        args.nets_exact,
        _time(run, sync, args.repeats),
    )
    fwd = [k for k in results if k.startswith("initsim exact forward")]
    best_key = max(fwd, key=lambda k: results[k]["unit_layers_per_s"])
    results["initsim exact forward"] = dict(results[best_key], best_of=fwd)
    run, name = _initsim_case("exact", args.nets_exact, depth, width, True, None)
    record("initsim exact forward+backward", name, args.nets_exact, _time(run, sync, args.repeats))
    for blk in [int(b) for b in args.dense_blocks.split(",") if b]:
        run, name = _initsim_case("dense", args.nets_dense, depth, width, False, blk)
        times = _time(run, sync, args.repeats)
        record(f"initsim dense forward b{blk}", name, args.nets_dense, times)
    dense = [k for k in results if k.startswith("initsim dense forward")]
    best_key = max(dense, key=lambda k: results[k]["unit_layers_per_s"])
    results["initsim dense forward"] = dict(results[best_key], best_of=dense)
    # no torch counterparts: the B-input exact law and a materialised (QR) law
    for key, nets, kw in (
        (f"initsim exact {args.inputs} inputs fwd+bwd", args.nets_gram, dict(inputs=args.inputs)),
        ("initsim dense orthogonal forward", args.nets_stored, dict(init="orthogonal")),
    ):
        method = "exact" if "inputs" in kw else "dense"
        run, name = _initsim_case(method, nets, depth, width, method == "exact", None, **kw)
        record(key, name, nets, _time(run, sync, args.repeats))
    if args.end_to_end:
        from initsim.simulation import simulate

        def e2e() -> None:
            simulate(depth=depth, width=width, nets=args.nets_exact, device="cuda", seed=0)

        record("simulate(device='cuda') exact", "end to end", args.nets_exact, _time(e2e, sync, 1))

    torch_note = None
    if args.no_torch:
        torch_note = "skipped (--no-torch)"
    else:
        try:
            import torch
        except ImportError:
            torch_note = "torch is not installed: baselines skipped"
        else:
            if not torch.cuda.is_available():
                torch_note = "torch sees no CUDA device: baselines skipped"
    if torch_note is None:
        tsync = torch.cuda.synchronize
        chunk = args.torch_chunk
        cases = [
            ("torch exact forward", args.nets_exact, False),
            ("torch exact forward+backward", args.nets_exact, True),
        ]
        runs = [
            (key, "torch float64", nets, _torch_exact(torch, nets, depth, width, bwd, chunk))
            for key, nets, bwd in cases
        ]
        dense = _torch_dense(torch, args.nets_dense, depth, width)
        runs.append(("torch dense forward", "torch float64 randn+bmm", args.nets_dense, dense))
        for key, name, nets, run in runs:
            try:
                record(key, name, nets, _time(run, tsync, args.repeats))
            except Exception as exc:  # a failing baseline must not lose initsim's numbers
                errors[key] = f"{type(exc).__name__}: {exc}"
                print(f"{key}: FAILED {errors[key]}", flush=True)
            torch.cuda.empty_cache()
    else:
        print(torch_note)

    ratios = {}
    for ours, theirs in (
        ("initsim exact forward", "torch exact forward"),
        ("initsim exact forward+backward", "torch exact forward+backward"),
        ("initsim dense forward", "torch dense forward"),
    ):
        if ours in results and theirs in results:
            r = results[ours]["unit_layers_per_s"] / results[theirs]["unit_layers_per_s"]
            ratios[f"{ours} / {theirs}"] = r
            print(f"ratio {ours} / {theirs}: {r:.2f}x")
    targets = {
        "exact forward >= 2e11 unit-layers/s": results["initsim exact forward"]["unit_layers_per_s"]
        >= 2e11,
    }
    if "torch dense forward" in results:
        targets["dense forward >= torch dense"] = (
            results["initsim dense forward"]["unit_layers_per_s"]
            >= results["torch dense forward"]["unit_layers_per_s"]
        )
    for k, v in targets.items():
        print(f"target {k}: {'met' if v else 'NOT met'}")

    doc = {
        "device": driver.device_name(),
        "simulator": sim,
        "tiny": bool(args.tiny),
        "repeats": args.repeats,
        "results": results,
        "ratios": ratios,
        "errors": errors,
        "targets": targets,
        "torch": torch_note or f"torch {torch.__version__}",
        "versions": {"python": platform.python_version(), "numpy": np.__version__},
    }
    try:
        import numba
        import numba_cuda

        doc["versions"].update(numba=numba.__version__, numba_cuda=numba_cuda.__version__)
    except ImportError:
        pass
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
