"""Engine benchmark: initsim against a plain-numpy baseline, in the same process.

Run: python scripts/bench_engine.py [--repeats 3] [--only W1,W2,W3,W4,cold]

Workloads (issue #3):

- W1: 50 nets, depth 50, width 512, one input, He/ReLU, forward + backward.
  initsim's exact sampler against numpy materialising every W from
  ``default_rng`` and looping matrix-vector products (the baseline runs on a
  subset of the nets; both are reported as nets per second).
- W2: the seed's experiment at scale: 200 nets x 1000 inputs, width 100,
  depth 5, sigmoid, std 1, dense method, 50-bin histograms; the baseline
  computes the same summaries with numpy (matmul, sigmoid, np.histogram).
- W3: 10,000 nets, depth 100, width 1024, one input, forward only, initsim
  alone: unit-layers per second (nets x depth x width / wall seconds) and
  the process's peak RSS.
- W4 (issue #16): 1,000 residual nets x 100 blocks, stream and branch width
  512, two-layer branches, He/ReLU, alpha = 1/sqrt(L), one input, forward +
  backward, initsim's exact sampler against numpy materialising both branch
  matrices of every block (the baseline runs on a few nets; nets per second).
- cold: ``initsim simulate`` on a small net in a fresh process (Numba cache
  warm), wall seconds.

Every figure is the median over ``--repeats`` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

from initsim import initializers, simulate


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def numpy_w1(nets: int, depth: int, n: int, seed: int = 0) -> np.ndarray:
    """He/ReLU forward + backward, one input, weights materialised with numpy."""
    rng = np.random.default_rng(seed)
    out = np.empty((nets, depth, 2))
    std = np.sqrt(2.0 / n)
    for k in range(nets):
        x = rng.standard_normal(n)
        x *= np.sqrt(n) / np.linalg.norm(x)
        ws, hs = [], []
        for t in range(depth):
            w = rng.standard_normal((n, n)) * std
            h = w @ x
            x = np.maximum(h, 0.0)
            ws.append(w)
            hs.append(h)
            out[k, t, 0] = np.mean(h * h)
        d = rng.standard_normal(n) * (hs[-1] > 0)
        out[k, depth - 1, 1] = np.mean(d * d)
        for t in range(depth - 1, 0, -1):
            d = (ws[t].T @ d) * (hs[t - 1] > 0)
            out[k, t - 1, 1] = np.mean(d * d)
    return out


def numpy_w2(nets: int, inputs: int, n: int, depth: int, bins: int, seed: int = 0) -> None:
    """Sigmoid, std 1, B inputs: the same per-layer summaries and histograms as initsim."""
    rng = np.random.default_rng(seed)
    hist_h = np.zeros((depth, bins), dtype=np.int64)
    hist_a = np.zeros((depth, bins), dtype=np.int64)
    stats = np.empty((nets, depth, 5))
    for k in range(nets):
        x = rng.standard_normal((inputs, n))
        for t in range(depth):
            w = rng.standard_normal((n, n))
            h = x @ w.T
            a = 1.0 / (1.0 + np.exp(-h))
            stats[k, t] = (
                np.mean(h * h),
                a.mean(),
                a.var(),
                np.mean(np.all(a == 0.0, axis=0)),
                np.mean(a * (1.0 - a) < 1e-2),
            )
            hist_h[t] += np.histogram(h, bins=bins, range=(-5.0, 5.0))[0]
            hist_a[t] += np.histogram(a, bins=bins, range=(-1.5, 1.5))[0]
            x = a


def numpy_w4(nets: int, blocks: int, n: int, seed: int = 0) -> np.ndarray:
    """Residual He/ReLU nets, x + alpha W2 relu(W1 x), forward + backward, numpy weights."""
    rng = np.random.default_rng(seed)
    alpha = 1.0 / np.sqrt(blocks)
    std = np.sqrt(2.0 / n)
    out = np.empty((nets, blocks, 2))
    for k in range(nets):
        x = rng.standard_normal(n)
        x *= np.sqrt(n) / np.linalg.norm(x)
        tape = []
        for t in range(blocks):
            w1 = rng.standard_normal((n, n)) * std
            w2 = rng.standard_normal((n, n)) * std
            h = w1 @ x
            x = x + alpha * (w2 @ np.maximum(h, 0.0))
            tape.append((w1, w2, h))
            out[k, t, 0] = np.mean(x * x)
        g = rng.standard_normal(n)
        out[k, blocks - 1, 1] = np.mean(g * g)
        for t in range(blocks - 1, 0, -1):
            w1, w2, h = tape[t]
            g = g + alpha * (w1.T @ ((w2.T @ g) * (h > 0.0)))
            out[k, t - 1, 1] = np.mean(g * g)
    return out


def bench_w1(repeats: int) -> None:
    nets, depth, n = 50, 50, 512
    t_is = median_time(
        lambda: simulate(
            activation="relu",
            init="he_normal",
            depth=depth,
            width=n,
            nets=nets,
            backward=True,
            method="exact",
            seed=0,
            progress=False,
        ),
        repeats,
    )
    base_nets = 5
    t_np = median_time(lambda: numpy_w1(base_nets, depth, n), max(1, repeats // 2))
    rate_is, rate_np = nets / t_is, base_nets / t_np
    print(
        f"W1 exact fwd+bwd   initsim {rate_is:10.1f} nets/s   numpy {rate_np:8.2f} nets/s   "
        f"ratio {rate_is / rate_np:8.0f}x   (initsim {t_is:.3f} s for {nets} nets)"
    )


def bench_w2(repeats: int) -> None:
    nets, inputs, n, depth, bins = 200, 1000, 100, 5, 50
    init = initializers.get("normal", std=1.0)
    t_is = median_time(
        lambda: simulate(
            activation="sigmoid",
            init=init,
            depth=depth,
            width=n,
            nets=nets,
            inputs=inputs,
            input="gaussian",
            method="dense",
            histograms=bins,
            seed=0,
            progress=False,
        ),
        repeats,
    )
    t_np = median_time(lambda: numpy_w2(nets, inputs, n, depth, bins), repeats)
    print(
        f"W2 dense seed-exp  initsim {t_is:8.3f} s   numpy {t_np:8.3f} s   "
        f"ratio {t_np / t_is:6.2f}x"
    )


def bench_w3(repeats: int) -> None:
    nets, depth, n = 10_000, 100, 1024
    t_is = median_time(
        lambda: simulate(
            activation="relu",
            init="he_normal",
            depth=depth,
            width=n,
            nets=nets,
            method="exact",
            seed=0,
            progress=False,
        ),
        repeats,
    )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"W3 exact forward   {nets * depth * n / t_is:10.3e} unit-layers/s   "
        f"({t_is:.3f} s)   peak RSS of this process {rss_mb:.0f} MB"
    )


def bench_w4(repeats: int) -> None:
    nets, blocks, n = 1000, 100, 512
    t_is = median_time(
        lambda: simulate(
            arch="residual",
            activation="relu",
            init="he_normal",
            depth=blocks,
            width=n,
            width_branch=n,
            branch_layers=2,
            alpha=1.0 / np.sqrt(blocks),
            nets=nets,
            backward=True,
            method="exact",
            seed=0,
            progress=False,
        ),
        repeats,
    )
    base_nets = 2
    t_np = median_time(lambda: numpy_w4(base_nets, blocks, n), max(1, repeats // 2))
    rate_is, rate_np = nets / t_is, base_nets / t_np
    print(
        f"W4 residual exact  initsim {rate_is:10.1f} nets/s   numpy {rate_np:8.2f} nets/s   "
        f"ratio {rate_is / rate_np:8.0f}x   (initsim {t_is:.3f} s for {nets} nets)"
    )


def bench_cold(repeats: int) -> None:
    cmd = [
        sys.executable,
        "-m",
        "initsim.cli",
        "simulate",
        "--depth",
        "5",
        "--width",
        "64",
        "--nets",
        "10",
        "--backward",
        "--no-progress",
    ]
    subprocess.run(cmd, check=True, capture_output=True)  # fills the Numba cache

    def run() -> None:
        subprocess.run(cmd, check=True, capture_output=True)

    print(
        f"cold start         initsim simulate in a fresh process: {median_time(run, repeats):.2f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="W1,W2,W3,W4,cold", help="comma-separated workloads")
    args = ap.parse_args()
    chosen = {w.strip().lower() for w in args.only.split(",")}
    workloads = (
        ("w1", bench_w1),
        ("w2", bench_w2),
        ("w3", bench_w3),
        ("w4", bench_w4),
        ("cold", bench_cold),
    )
    for name, fn in workloads:
        if name in chosen:
            fn(args.repeats)


if __name__ == "__main__":
    main()
