"""Signed-distance grid of a mesh, cached on disk, with parallel trilinear lookup of distance and gradient.

Grid: samples at ``origin + spacing * (i, j, k)`` over the mesh's bounding box padded
by ``padding`` times its longest side; ``resolution`` samples along the longest
side. Each sample holds the exact unsigned distance to the triangles (BVH
branch-and-bound) signed by the generalized winding number (negative inside where
``|w| > 0.5``), so the sign is robust for meshes that are not watertight.

Lookup: trilinear interpolation of the samples; its gradient is the exact gradient
of that trilinear field. Outside the grid a point ``p`` is clamped to the box
(``c``) and ``d(p) = d(c) + |p - c|``, gradient ``grad_d(c)`` (tangential part) +
``(p - c) / |p - c|`` -- continuous, positive and growing away from the object.
"""

from __future__ import annotations

import json
import math
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from numba import njit, prange

from ._cache import array_hash, cache_dir, write_atomic
from ._parallel import launch
from .bvh import BVH, _nearest
from .winding import _winding, dipole_tree

SDF_VERSION = 1
# fast-math without nnan/ninf: NaN inputs are detected and give NaN outputs
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


@dataclass(frozen=True)
class SDFGrid:
    """A signed-distance grid (metres, mesh frame; negative inside)."""

    values: np.ndarray
    """(NX, NY, NZ) float32 signed distance at the samples."""
    origin: np.ndarray
    """(3,) float64 position of sample (0, 0, 0)."""
    spacing: float
    """Distance between neighbouring samples (the same along x, y, z)."""
    meta: dict = field(default_factory=dict, compare=False)
    """Provenance: mesh hash, parameters, build seconds."""

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.values.shape)  # type: ignore[return-value]

    @property
    def bounds(self) -> np.ndarray:
        """(2, 3) first and last sample positions."""
        return np.stack([self.origin, self.origin + self.spacing * (np.array(self.shape) - 1)])

    def lookup(self, points: np.ndarray, gradient: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """See :func:`sdf_lookup`."""
        return sdf_lookup(self, points, gradient)

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` (atomically)."""
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, values=self.values, origin=self.origin, spacing=np.float64(self.spacing),
                         meta=np.array(json.dumps(self.meta)))
        write_atomic(Path(path), write)

    @classmethod
    def load(cls, path: str | Path) -> SDFGrid:
        """Read a grid written by :meth:`save`."""
        with np.load(path) as z:
            return cls(z["values"], z["origin"], float(z["spacing"]), json.loads(str(z["meta"])))


def _mesh_arrays(mesh) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(mesh, tuple):
        v, f = mesh
    else:
        v, f = mesh.vertices, mesh.faces
    v = np.ascontiguousarray(v, dtype=np.float64)
    f = np.ascontiguousarray(f, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise ValueError(f"mesh needs vertices (V, 3) and faces (F>=1, 3), got {v.shape} and {f.shape}")
    return v, f


def build_sdf(mesh, resolution: int = 96, padding: float = 0.1, beta: float = 2.0) -> SDFGrid:
    """Build the grid of ``mesh`` (a trimesh or ``(vertices (V, 3), faces (F, 3))``); no caching.

    ``resolution`` samples along the longest side of the padded box (>= 4);
    ``beta`` is the winding-number far-field threshold (``inf``: exact).
    """
    if resolution < 4:
        raise ValueError(f"SDF resolution must be >= 4, got {resolution}")
    v, f = _mesh_arrays(mesh)
    t0 = time.perf_counter()
    lo, hi = v.min(axis=0), v.max(axis=0)
    pad = padding * float((hi - lo).max())
    size = hi - lo + 2 * pad
    h = float(size.max()) / (resolution - 1)
    n = np.maximum(np.ceil(size / h - 1e-9).astype(np.int64) + 1, 2)
    origin = 0.5 * (lo + hi) - 0.5 * h * (n - 1)
    bvh = BVH.build(v, f)
    cen, area, rad = dipole_tree(bvh)
    values = np.empty(tuple(n), np.float32)
    with launch(values.size, 1 << 15, 16):
        _sdf_grid(bvh.lo, bvh.hi, bvh.child, bvh.start, bvh.count, bvh.tris, cen, area, rad, origin, h, float(beta),
                  bvh.stack_size, values)
    meta = {"resolution": int(resolution), "padding": float(padding), "beta": float(beta),
            "faces": int(len(f)), "build_seconds": round(time.perf_counter() - t0, 3), "version": SDF_VERSION}
    return SDFGrid(values, origin, h, meta)


def sdf_grid(mesh, resolution: int = 96, padding: float = 0.1, beta: float = 2.0, cache: bool = True) -> SDFGrid:
    """The grid of ``mesh``, from the on-disk cache (``$INSCENE_CACHE/sdf``) or built and stored there."""
    v, f = _mesh_arrays(mesh)
    if not cache:
        return build_sdf((v, f), resolution, padding, beta)
    key = array_hash(v, f, extra=f"sdf v{SDF_VERSION} res={resolution} pad={padding!r} beta={beta!r}")
    path = cache_dir("sdf") / f"{key[:32]}.npz"
    if path.exists():
        try:
            return SDFGrid.load(path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)  # damaged entry: rebuild
    grid = build_sdf((v, f), resolution, padding, beta)
    grid.meta["key"] = key
    grid.save(path)
    return grid


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _sdf_grid(lo, hi, child, start, count, tris, cen, area, rad, origin, h, beta, stack_size, out):
    """Fill ``out`` (NX, NY, NZ): exact unsigned distance, negative where the winding number exceeds 0.5."""
    nx, ny, nz = out.shape
    for ij in prange(nx * ny):
        i, j = ij // ny, ij % ny
        stack = np.empty(stack_size, np.int64)
        prev = np.inf
        for k in range(nz):
            px, py, pz = origin[0] + h * i, origin[1] + h * j, origin[2] + h * k
            # the previous sample is h away, so the nearest triangle is within prev + h
            bound = (prev + 1.001 * h) ** 2
            d2, tri = _nearest(lo, hi, child, start, count, tris, px, py, pz, bound, stack)
            if tri < 0:
                d2, tri = _nearest(lo, hi, child, start, count, tris, px, py, pz, np.inf, stack)
            d = math.sqrt(d2)
            prev = d
            w = _winding(child, start, count, tris, cen, area, rad, px, py, pz, beta, stack)
            out[i, j, k] = -d if abs(w) > 0.5 else d


@njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _lookup(values, origin, inv_h, points, out_d, out_g, with_grad):
    """Trilinear distance (N,) and its gradient (N, 3) at ``points`` (N, 3); outputs preallocated."""
    nx, ny, nz = values.shape
    h = 1.0 / inv_h
    for q in prange(points.shape[0]):
        x = (points[q, 0] - origin[0]) * inv_h
        y = (points[q, 1] - origin[1]) * inv_h
        z = (points[q, 2] - origin[2]) * inv_h
        if x != x or y != y or z != z:
            out_d[q] = np.nan
            if with_grad:
                out_g[q, 0] = out_g[q, 1] = out_g[q, 2] = np.nan
            continue
        cx, cy, cz = min(max(x, 0.0), nx - 1.0), min(max(y, 0.0), ny - 1.0), min(max(z, 0.0), nz - 1.0)
        i, j, k = min(int(cx), nx - 2), min(int(cy), ny - 2), min(int(cz), nz - 2)
        fx, fy, fz = cx - i, cy - j, cz - k
        c000, c001 = np.float64(values[i, j, k]), np.float64(values[i, j, k + 1])
        c010, c011 = np.float64(values[i, j + 1, k]), np.float64(values[i, j + 1, k + 1])
        c100, c101 = np.float64(values[i + 1, j, k]), np.float64(values[i + 1, j, k + 1])
        c110, c111 = np.float64(values[i + 1, j + 1, k]), np.float64(values[i + 1, j + 1, k + 1])
        c00 = c000 + (c001 - c000) * fz
        c01 = c010 + (c011 - c010) * fz
        c10 = c100 + (c101 - c100) * fz
        c11 = c110 + (c111 - c110) * fz
        c0 = c00 + (c01 - c00) * fy
        c1 = c10 + (c11 - c10) * fy
        d = c0 + (c1 - c0) * fx
        ex, ey, ez = x - cx, y - cy, z - cz
        e2 = ex * ex + ey * ey + ez * ez
        el = math.sqrt(e2)
        out_d[q] = d + el * h
        if with_grad:
            gx = (c1 - c0) * inv_h
            gy = ((c01 - c00) + ((c11 - c10) - (c01 - c00)) * fx) * inv_h
            c0z = (c001 - c000) + ((c011 - c001) - (c010 - c000)) * fy
            c1z = (c101 - c100) + ((c111 - c101) - (c110 - c100)) * fy
            gz = (c0z + (c1z - c0z) * fx) * inv_h
            if ex != 0.0:  # clamped axes: the grid term does not vary along them
                gx = ex / el
            if ey != 0.0:
                gy = ey / el
            if ez != 0.0:
                gz = ez / el
            out_g[q, 0], out_g[q, 1], out_g[q, 2] = gx, gy, gz


def sdf_lookup(grid: SDFGrid, points: np.ndarray, gradient: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Signed distance (...,) and its gradient (..., 3) (or None) at ``points`` (..., 3), mesh frame.

    ``points`` float32 or float64 (other types are converted to float64); outputs
    have the points' float type. Evaluated in parallel; defined everywhere.
    """
    p = np.asarray(points)
    if p.ndim < 1 or p.shape[-1] != 3:
        raise ValueError(f"SDF lookup needs points (..., 3), got shape {p.shape}")
    if p.dtype not in (np.float32, np.float64):
        p = p.astype(np.float64)
    flat = np.ascontiguousarray(p.reshape(-1, 3))
    d = np.empty(len(flat), p.dtype)
    g = np.empty((len(flat), 3) if gradient else (0, 3), p.dtype)
    with launch(len(flat), 1 << 20, 4096):
        _lookup(grid.values, grid.origin, 1.0 / grid.spacing, flat, d, g, gradient)
    return d.reshape(p.shape[:-1]), (g.reshape(p.shape) if gradient else None)


class SDFLookup(torch.autograd.Function):
    """``SDFLookup.apply(points (..., 3), grid) -> distance (...)``, differentiable w.r.t. the points (CPU)."""

    @staticmethod
    def forward(ctx, points: torch.Tensor, grid: SDFGrid) -> torch.Tensor:  # type: ignore[override]
        if points.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"SDF lookup needs float32 or float64 points, got {points.dtype}")
        need = ctx.needs_input_grad[0]
        d, g = sdf_lookup(grid, points.detach().cpu().numpy(), gradient=need)
        if need:
            ctx.save_for_backward(torch.from_numpy(g).to(points.device))
        return torch.from_numpy(d).to(points.device)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_d: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (g,) = ctx.saved_tensors
        if grad_d.device.type != "cpu":
            return grad_d.unsqueeze(-1) * g, None
        # in numpy: one thread, no torch intra-op fork-join for a few hundred thousand products
        return torch.from_numpy(grad_d.detach().numpy()[..., None] * g.numpy()), None


def sdf_torch(grid: SDFGrid, points: torch.Tensor) -> torch.Tensor:
    """Signed distance (...,) at ``points`` (..., 3) (float32/float64 tensor), with autograd to the points."""
    if points.ndim < 1 or points.shape[-1] != 3:
        raise ValueError(f"SDF lookup needs points (..., 3), got shape {tuple(points.shape)}")
    return SDFLookup.apply(points, grid)
