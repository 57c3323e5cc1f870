"""Shading of a :class:`~inscene.kernels.raster.Raster` (uniform / vertex colours / UV textures, Lambert) and overlays.

Texture lookup: ``uv`` in [0, 1] with v up (OBJ / trimesh), repeating; texel
``(i, j)`` of a (Ht, Wt) texture has its centre at ``u = (j + 0.5) / Wt``,
``v = 1 - (i + 0.5) / Ht``. Nearest or bilinear.
Lighting: ``ambient + (1 - ambient) * |n . l|`` (two-sided Lambert) with the
camera-frame light direction ``l`` (default: along the optical axis, a head light)
and ``n`` the interpolated vertex normal (``smooth``) or the face normal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ._parallel import launch
from .raster import PARALLEL_PIXELS, Raster, rasterize

MODE_UNIFORM, MODE_VERTEX, MODE_NEAREST, MODE_BILINEAR = 0, 1, 2, 3


@dataclass(frozen=True)
class Appearance:
    """How one mesh looks: a texture (with per-vertex UVs), else vertex colours, else one colour."""

    color: tuple[float, float, float] = (0.75, 0.75, 0.75)
    """Uniform RGB in [0, 1], used when there is neither texture nor vertex colours."""
    vertex_colors: np.ndarray | None = None
    """(V, 3) uint8 RGB per vertex."""
    uv: np.ndarray | None = None
    """(V, 2) float texture coordinates per vertex (v up)."""
    texture: np.ndarray | None = None
    """(Ht, Wt, 3) uint8 RGB texture image (row 0 at the top)."""
    bilinear: bool = True
    """Bilinear texture filtering (else nearest texel)."""

    @classmethod
    def from_trimesh(cls, mesh, bilinear: bool = True) -> Appearance:
        """The texture or vertex colours a trimesh carries (else the default colour)."""
        vis = getattr(mesh, "visual", None)
        kind = getattr(vis, "kind", None)
        if kind == "texture" and getattr(vis, "uv", None) is not None:
            image = getattr(vis.material, "image", None)
            if image is None and hasattr(vis.material, "baseColorTexture"):
                image = vis.material.baseColorTexture
            if image is not None:
                tex = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
                return cls(uv=np.asarray(vis.uv, dtype=np.float64), texture=tex, bilinear=bilinear)
        if kind == "vertex":
            return cls(vertex_colors=np.asarray(vis.vertex_colors)[:, :3].astype(np.uint8))
        return cls()


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V, 3) of a mesh (zero for unused vertices)."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    idx = f.reshape(-1)
    n = np.stack([np.bincount(idx, weights=np.repeat(fn[:, k], 3), minlength=len(v)) for k in range(3)], axis=1)
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, norm, out=np.zeros_like(n), where=norm > 0)


def shade(raster: Raster, meshes: Sequence, poses: np.ndarray, appearances: Sequence[Appearance | None], *,
          light_dir: Sequence[float] = (0.0, 0.0, 1.0), ambient: float = 0.35, smooth: bool = True,
          background: Sequence[int] = (0, 0, 0)) -> np.ndarray:
    """RGB image (H, W, 3) uint8 of a raster of ``meshes`` (M) at ``poses`` (M, 4, 4) (those rasterized)."""
    h, w = raster.depth.shape
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:] = np.asarray(background, np.uint8)
    light = np.asarray(light_dir, dtype=np.float64)
    light = light / np.linalg.norm(light)
    T = np.asarray(poses, dtype=np.float64).reshape(-1, 4, 4)
    none_f, none_u, none_t = np.zeros((0, 3), np.float32), np.zeros((0, 2)), np.zeros((1, 1, 3), np.uint8)
    for m, mesh in enumerate(meshes):
        v, f = (mesh if isinstance(mesh, tuple) else (mesh.vertices, mesh.faces))
        f = np.ascontiguousarray(f, dtype=np.int64)
        app = appearances[m] if m < len(appearances) and appearances[m] is not None else Appearance()
        if smooth:
            normals = vertex_normals(v, f) @ T[m, :3, :3].T
        else:
            v = np.asarray(v, dtype=np.float64)
            normals = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]) @ T[m, :3, :3].T
            normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)
        mode, vcol, uv, tex = MODE_UNIFORM, none_f, none_u, none_t
        if app.texture is not None and app.uv is not None:
            mode = MODE_BILINEAR if app.bilinear else MODE_NEAREST
            uv = np.ascontiguousarray(app.uv, dtype=np.float64)
            tex = np.ascontiguousarray(app.texture, dtype=np.uint8)
        elif app.vertex_colors is not None:
            mode, vcol = MODE_VERTEX, np.ascontiguousarray(app.vertex_colors[:, :3], dtype=np.float32) / 255.0
        with launch(h * w, PARALLEL_PIXELS, 8):
            _shade_mesh(m, raster.mesh_id, raster.face_id, raster.bary, f, np.ascontiguousarray(normals), smooth, mode,
                        np.asarray(app.color, np.float64), vcol, uv, tex, light, float(ambient), rgb)
    return rgb


def render(meshes: Sequence, poses: np.ndarray, K: np.ndarray, size: tuple[int, int],
           appearances: Sequence[Appearance | None] | None = None, **shading) -> tuple[np.ndarray, Raster]:
    """Rasterize and shade: RGB (H, W, 3) uint8 and the :class:`Raster`; ``appearances`` default from trimesh."""
    if appearances is None:
        appearances = [Appearance.from_trimesh(m) if not isinstance(m, tuple) else None for m in meshes]
    raster = rasterize(meshes, poses, K, size)
    return shade(raster, meshes, poses, appearances, **shading), raster


def overlay(image: np.ndarray, meshes: Sequence, poses: np.ndarray, K: np.ndarray,
            appearances: Sequence[Appearance | None] | None = None, *, opacity: float = 0.6,
            outline: Sequence[int] | None = (255, 255, 255), **shading) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with the shaded meshes blended over it (and their outlines drawn)."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"overlay needs an RGB uint8 image (H, W, 3), got {img.dtype} {img.shape}")
    rgb, raster = render(meshes, poses, K, img.shape[:2], appearances, **shading)
    return blend(img, rgb, raster.mesh_id, opacity, outline)


def blend(image: np.ndarray, rgb: np.ndarray, mesh_id: np.ndarray, opacity: float = 0.6,
          outline: Sequence[int] | None = (255, 255, 255)) -> np.ndarray:
    """``image`` with ``rgb`` blended in where ``mesh_id >= 0`` (all (H, W, ...)); outline where the id changes."""
    out = image.copy()
    cover = mesh_id >= 0
    mix = image[cover].astype(np.float32) * (1.0 - opacity) + rgb[cover].astype(np.float32) * opacity
    out[cover] = (mix + 0.5).astype(np.uint8)
    if outline is not None:
        edge = np.zeros_like(cover)
        edge[:-1] |= mesh_id[:-1] != mesh_id[1:]
        edge[1:] |= mesh_id[:-1] != mesh_id[1:]
        edge[:, :-1] |= mesh_id[:, :-1] != mesh_id[:, 1:]
        edge[:, 1:] |= mesh_id[:, :-1] != mesh_id[:, 1:]
        out[edge & cover] = np.asarray(outline, np.uint8)
    return out


@njit(cache=True, inline="always", error_model="numpy")
def _texel(tex, i, j):
    ht, wt = tex.shape[0], tex.shape[1]
    i, j = i % ht, j % wt
    return tex[i, j, 0] / 255.0, tex[i, j, 1] / 255.0, tex[i, j, 2] / 255.0


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _shade_mesh(m, mesh_id, face_id, bary, faces, normals, smooth, mode, color, vcol, uv, tex, light, ambient, out):
    """Write the shaded colour of every pixel of mesh ``m`` into ``out`` (H, W, 3) uint8 (clamped, rounded)."""
    h, w = mesh_id.shape
    ht, wt = tex.shape[0], tex.shape[1]
    for y in prange(h):
        for x in range(w):
            if mesh_id[y, x] != m:
                continue
            f = face_id[y, x]
            b0, b1, b2 = bary[y, x, 0], bary[y, x, 1], bary[y, x, 2]
            i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
            if smooth:
                nx = b0 * normals[i0, 0] + b1 * normals[i1, 0] + b2 * normals[i2, 0]
                ny = b0 * normals[i0, 1] + b1 * normals[i1, 1] + b2 * normals[i2, 1]
                nz = b0 * normals[i0, 2] + b1 * normals[i1, 2] + b2 * normals[i2, 2]
            else:
                nx, ny, nz = normals[f, 0], normals[f, 1], normals[f, 2]
            nn = np.sqrt(nx * nx + ny * ny + nz * nz)
            lam = abs(nx * light[0] + ny * light[1] + nz * light[2]) / nn if nn > 0.0 else 1.0
            s = ambient + (1.0 - ambient) * lam
            if mode == MODE_UNIFORM:
                r, g, b = color[0], color[1], color[2]
            elif mode == MODE_VERTEX:
                r = b0 * vcol[i0, 0] + b1 * vcol[i1, 0] + b2 * vcol[i2, 0]
                g = b0 * vcol[i0, 1] + b1 * vcol[i1, 1] + b2 * vcol[i2, 1]
                b = b0 * vcol[i0, 2] + b1 * vcol[i1, 2] + b2 * vcol[i2, 2]
            else:
                u = b0 * uv[i0, 0] + b1 * uv[i1, 0] + b2 * uv[i2, 0]
                v = b0 * uv[i0, 1] + b1 * uv[i1, 1] + b2 * uv[i2, 1]
                tx = u * wt - 0.5  # continuous texel coordinates, texel centres at integers
                ty = (1.0 - v) * ht - 0.5
                if mode == MODE_NEAREST:
                    r, g, b = _texel(tex, int(np.floor(ty + 0.5)), int(np.floor(tx + 0.5)))
                else:
                    j0, i0t = int(np.floor(tx)), int(np.floor(ty))
                    ax, ay = tx - j0, ty - i0t
                    r00, g00, b00 = _texel(tex, i0t, j0)
                    r01, g01, b01 = _texel(tex, i0t, j0 + 1)
                    r10, g10, b10 = _texel(tex, i0t + 1, j0)
                    r11, g11, b11 = _texel(tex, i0t + 1, j0 + 1)
                    r = (r00 * (1 - ax) + r01 * ax) * (1 - ay) + (r10 * (1 - ax) + r11 * ax) * ay
                    g = (g00 * (1 - ax) + g01 * ax) * (1 - ay) + (g10 * (1 - ax) + g11 * ax) * ay
                    b = (b00 * (1 - ax) + b01 * ax) * (1 - ay) + (b10 * (1 - ax) + b11 * ax) * ay
            out[y, x, 0] = np.uint8(min(max(r * s, 0.0), 1.0) * 255.0 + 0.5)
            out[y, x, 1] = np.uint8(min(max(g * s, 0.0), 1.0) * 255.0 + 0.5)
            out[y, x, 2] = np.uint8(min(max(b * s, 0.0), 1.0) * 255.0 + 0.5)
