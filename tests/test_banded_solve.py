"""The window's arrow-shaped block Cholesky step (``BandedSystem.solve``) against a dense solve."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from inscene.engine.window.banded import BANDWIDTH, BandedSystem


def _random_system(T: int, n: int, S: int, seed: int) -> BandedSystem:
    """J^T J (+ a ridge) of random residual groups spanning up to BANDWIDTH + 1 consecutive slots and the shape."""
    rng = np.random.default_rng(seed)
    L = T * n + S
    J = []
    for i in range(T):
        span = min(BANDWIDTH + 1, T - i)
        for _ in range(2 * n):
            row = np.zeros(L)
            row[i * n:(i + span) * n] = rng.standard_normal(span * n)
            row[T * n:] = 0.3 * rng.standard_normal(S)
            J.append(row)
    J = np.array(J)
    H = J.T @ J + 0.1 * np.eye(L)
    g = rng.standard_normal(L)
    band = np.zeros((T, BANDWIDTH + 1, n, n))
    for i in range(T):
        for d in range(BANDWIDTH + 1):
            if i + d < T:
                band[i, d] = H[i * n:(i + 1) * n, (i + d) * n:(i + d + 1) * n]
    border = H[:T * n, T * n:].reshape(T, n, S)
    t = torch.from_numpy
    return BandedSystem(t(band), t(border.copy()), t(H[T * n:, T * n:].copy()), t(g[:T * n].reshape(T, n).copy()),
                        t(g[T * n:].copy()))


def _dense_step(system: BandedSystem, first: int, damping: float) -> np.ndarray:
    """The same damped step from the dense H (to_dense), the fixed slots' rows and columns dropped."""
    H, g = (a.numpy() for a in system.to_dense())
    n = system.band.shape[2]
    keep = np.r_[np.arange(first * n, system.T * n), np.arange(system.T * n, len(g))]
    A = H[np.ix_(keep, keep)]
    A = A + np.diag(damping * np.diag(A) + 1e-6)
    out = np.zeros(len(g))
    out[keep] = np.linalg.solve(A, -g[keep])
    return out


@pytest.mark.parametrize("T,n,S,first", [(1, 4, 2, 0), (2, 3, 1, 0), (7, 5, 2, 0), (7, 5, 2, 2), (12, 6, 1, 5),
                                         (9, 4, 3, 8)])
def test_block_cholesky_step_equals_the_dense_solve(T, n, S, first):
    system = _random_system(T, n, S, seed=T * 100 + n + first)
    for damping in (0.0, 1e-3, 0.5):
        dx, db = system.solve(first, damping)
        dense = _dense_step(system, first, damping)
        np.testing.assert_allclose(np.r_[dx.numpy().reshape(-1), db.numpy()], dense, rtol=0, atol=1e-8)
        assert not dx[:first].any()


def test_not_positive_definite_gives_none():
    system = _random_system(5, 4, 2, seed=3)
    system.band[2, 0] = -torch.eye(4) * 10.0
    assert system.solve(0, 1e-3) is None
