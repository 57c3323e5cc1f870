"""Shared fixtures: paths to the shared test data, small helpers to run the CLI."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle OpenMP workers sleep (see inscene.engine)

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_data(rel: str) -> Path:
    """A file of ../shared/data, or skip the test with the reason."""
    p = SHARED_DATA / rel
    if not p.exists():
        pytest.skip(f"shared test data {p} is not present")
    return p


def run_cli(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``inscene ARGS`` in a fresh interpreter, capturing text output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "inscene.engine.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env)


@pytest.fixture
def cli():
    return run_cli
from conftest_hands import *  # noqa: F401,F403  (hand-model session fixtures)


def wait_for_final_rows(store: Path, rows: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Poll a store another process writes until ``rows`` rows are final (or ``timeout`` s pass, or ``proc`` ends)."""
    import time

    from inscene.engine import open_result
    from inscene.engine.errors import StoreError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        try:
            if open_result(store).finalized_frames >= rows:
                return
        except StoreError:  # not created yet
            pass
        time.sleep(0.01)


def torch_single_thread():
    """Small problems on shared cores: torch's intra-op threads only wait on each other (restored afterwards).

    A generator for a module's autouse fixture: ``one_torch_thread = pytest.fixture(scope="module",
    autouse=True)(torch_single_thread)``.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
