"""Normal equations of a window as block-banded storage, and their block Cholesky solve.

Every residual of the window touches at most three consecutive slots (the
acceleration term), plus the shape shared by all slots. So ``H`` is block
pentadiagonal in the slots (bandwidth 2) with a dense border for the shape: an
"arrow". Stored as the upper band ``band`` (T, 3, n, n) (``band[i, d]`` = block
(i, i + d)), the border ``border`` (T, n, S) and the corner ``corner`` (S, S),
it is factored slot by slot (block Cholesky, O(T n^3)) and the shape is
eliminated by its Schur complement. ``to_dense`` is the reference the tests
compare against.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BANDWIDTH = 2
"""Slots a residual group may span beyond its first (the acceleration term: 2)."""


@dataclass
class BandedSystem:
    """Symmetric arrow-shaped normal equations ``H`` and gradient ``g`` (float64)."""

    band: torch.Tensor
    """(T, BANDWIDTH + 1, n, n): ``band[i, d]`` is the block (slot i, slot i + d)."""
    border: torch.Tensor
    """(T, n, S): the blocks (slot i, shape)."""
    corner: torch.Tensor
    """(S, S): the shape block."""
    g_x: torch.Tensor
    """(T, n)"""
    g_b: torch.Tensor
    """(S,)"""

    @property
    def T(self) -> int:
        return self.band.shape[0]

    def to_dense(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(T n + S, T n + S) H and (T n + S,) g, shape last."""
        T, _, n, _ = self.band.shape
        S = self.corner.shape[0]
        H = torch.zeros(T * n + S, T * n + S, dtype=self.band.dtype)
        for i in range(T):
            for d in range(BANDWIDTH + 1):
                j = i + d
                if j < T:
                    H[i * n:(i + 1) * n, j * n:(j + 1) * n] = self.band[i, d]
                    if d:
                        H[j * n:(j + 1) * n, i * n:(i + 1) * n] = self.band[i, d].T
        H[:T * n, T * n:] = self.border.reshape(T * n, S)
        H[T * n:, :T * n] = self.border.reshape(T * n, S).T
        H[T * n:, T * n:] = self.corner
        return H, torch.cat([self.g_x.reshape(-1), self.g_b])

    def solve(self, first: int, damping: float) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The Levenberg-Marquardt step ``(H + damping diag(H)) d = -g`` over slots ``first..T-1`` and the shape.

        Slots before ``first`` are held fixed (their step is zero). Returns (dx (T, n), db (S,)),
        or None when the damped system is not positive definite.
        """
        band, B = self.band[first:], self.border[first:]
        m, n = band.shape[0], band.shape[2]
        rhs = torch.cat([-self.g_x[first:, :, None], B], dim=2)  # (m, n, 1 + S)
        Lb: list[list[torch.Tensor | None]] = [[None] * (BANDWIDTH + 1) for _ in range(m)]  # Lb[i][d] = L[i, i - d]
        for i in range(m):
            D = band[i, 0] + torch.diag(damping * torch.diagonal(band[i, 0]) + 1e-6)
            for d in range(1, BANDWIDTH + 1):
                if i - d >= 0:
                    D = D - Lb[i][d] @ Lb[i][d].T
            Lii, info = torch.linalg.cholesky_ex(D)
            if int(info) != 0:
                return None
            Lb[i][0] = Lii
            for d in range(1, BANDWIDTH + 1):  # blocks (i + d, i) of L
                j = i + d
                if j >= m:
                    break
                A = band[i, d].T.clone()  # block (j, i) of H
                for e in range(1, BANDWIDTH + 1):  # subtract sum_k L[j, k] L[i, k]^T over k < i
                    k = i - e
                    if k >= 0 and j - k <= BANDWIDTH:
                        A = A - Lb[j][j - k] @ Lb[i][e].T if Lb[j][j - k] is not None else A
                Lb[j][d] = torch.linalg.solve_triangular(Lii, A.T, upper=False).T
        # forward: L y = rhs
        y = []
        for i in range(m):
            r = rhs[i]
            for d in range(1, BANDWIDTH + 1):
                if i - d >= 0:
                    r = r - Lb[i][d] @ y[i - d]
            y.append(torch.linalg.solve_triangular(Lb[i][0], r, upper=False))
        # backward: L^T z = y
        z: list[torch.Tensor | None] = [None] * m
        for i in reversed(range(m)):
            r = y[i]
            for d in range(1, BANDWIDTH + 1):
                if i + d < m:
                    r = r - Lb[i + d][d].T @ z[i + d]
            z[i] = torch.linalg.solve_triangular(Lb[i][0].T, r, upper=True)
        Z = torch.stack(z)  # (m, n, 1 + S): A^-1 [-g_x, B]
        C = self.corner + torch.diag(damping * torch.diagonal(self.corner) + 1e-6)
        schur = C - torch.einsum("mns,mnt->st", B, Z[:, :, 1:])
        rb = -self.g_b - torch.einsum("mns,mn->s", B, Z[:, :, 0])
        try:
            db = torch.linalg.solve(schur, rb)
        except RuntimeError:
            return None
        dx = Z[:, :, 0] - Z[:, :, 1:] @ db
        out = torch.zeros(self.T, n, dtype=band.dtype)
        out[first:] = dx
        return out, db
