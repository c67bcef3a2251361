"""The GPU backend without a GPU: CUDA-simulator agreement checks and device errors.

``NUMBA_ENABLE_CUDASIM=1`` only takes effect if it is set before numba is
imported, and ``tests/conftest.py`` has already imported numba in this
process, so the simulator checks run in a subprocess: the whole of
``tests/test_gpu_device.py`` (the checks a real GPU runs) with tiny sizes.
The other tests here run in-process and need no CUDA at all.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cuda_visible() -> bool:
    try:
        from numba import cuda

        return bool(cuda.is_available())  # a GPU, or the simulator in this process
    except Exception:
        return False


def test_device_checks_pass_in_the_cuda_simulator(tmp_path):
    env = dict(os.environ)
    env.update(
        NUMBA_ENABLE_CUDASIM="1",
        INITSIM_TEST_CUDASIM="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            str(ROOT / "tests" / "test_gpu_device.py"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    # every check ran: nothing skipped, the expected number passed
    match = re.search(r"(\d+) passed", out)
    assert match and int(match.group(1)) >= 40, out[-3000:]
    assert "skipped" not in out, out[-3000:]


def test_import_initsim_does_not_import_numba_cuda():
    code = (
        "import sys, initsim, initsim.simulation, initsim.gpu\n"
        "assert 'numba.cuda' not in sys.modules, sorted(m for m in sys.modules if 'cuda' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=300)


def test_device_is_validated():
    from initsim.simulation import simulate

    with pytest.raises(ValueError, match="device must be one of cpu, cuda; got 'gpu'"):
        simulate(device="gpu", depth=1, width=2, nets=1)


@pytest.mark.skipif(_cuda_visible(), reason="a GPU is visible: the no-GPU error cannot occur")
def test_cuda_without_gpu_is_a_clear_error():
    from initsim.simulation import simulate

    with pytest.raises(RuntimeError, match=r"device='cuda' needs numba-cuda and an NVIDIA GPU"):
        simulate(device="cuda", depth=1, width=2, nets=1)


@pytest.mark.skipif(_cuda_visible(), reason="a GPU is visible: the no-GPU error cannot occur")
def test_cli_device_cuda_without_gpu_is_a_usage_error(capsys):
    from initsim.cli import main

    assert main(["simulate", "--device", "cuda", "--depth", "1", "--width", "2"]) == 2
    assert "device='cuda' needs numba-cuda" in capsys.readouterr().err


def test_cpu_provenance_records_the_device():
    from initsim.simulation import simulate

    r = simulate(depth=1, width=2, nets=1)
    assert r.provenance["device"] == "cpu"
