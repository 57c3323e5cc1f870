"""A z-buffer rasterizer (numba) for several meshes at once: depth, mesh / face ids, barycentrics, silhouettes.

Conventions:

- Camera: OpenCV (x right, y down, z forward); each mesh has a pose ``T_cam_obj``
  (4, 4) and all share the intrinsics ``K`` (3, 3).
- **Pixel centres are at integer coordinates**: pixel ``image[v, u]`` is the sample
  at ``(x, y) = (u, v)`` where ``(x, y)`` is a point's projection ``K X / Z`` (so
  ``cx = (W - 1) / 2`` centres the principal point). :func:`project` uses the same rule.
- A pixel is covered by a triangle when all three screen barycentrics are ``>= 0``
  (shared edges are covered by both; the depth test keeps one). Depth is the camera
  ``z`` (not ray length), interpolated perspective-correctly; the nearer fragment wins,
  on equal float32 depth the earlier triangle (meshes in order, faces in order).
- Triangles with a vertex closer than ``near`` (or behind the camera) are dropped,
  not clipped. Faces are two-sided unless ``cull_backfaces``.

Work: a parallel set-up pass per triangle, a binning pass by bands of 16 rows, a
parallel pass per band (dynamically scheduled), then a resolve pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ._parallel import launch

BAND = 16  # rows per band
PARALLEL_PIXELS = 1 << 22  # images at least this large use all threads (see _parallel)


@dataclass(frozen=True)
class Raster:
    """What a full rasterization returns (H, W image)."""

    depth: np.ndarray
    """(H, W) float32 camera z of the visible surface; inf where nothing is drawn."""
    mesh_id: np.ndarray
    """(H, W) int32 index of the visible mesh; -1 background."""
    face_id: np.ndarray
    """(H, W) int32 face index within that mesh; -1 background."""
    bary: np.ndarray
    """(H, W, 3) float32 perspective-correct barycentrics of the face's 3 vertices; 0 background."""


@dataclass(frozen=True)
class Silhouettes:
    """What the silhouette path returns (H, W image, M meshes)."""

    depth: np.ndarray
    """(H, W) float32 camera z of the visible surface; inf background."""
    mesh_id: np.ndarray
    """(H, W) int32 index of the visible mesh (occlusion-aware masks); -1 background."""
    amodal: np.ndarray | None = None
    """(M, H, W) bool coverage of each mesh ignoring the others, if asked for."""

    def mask(self, m: int) -> np.ndarray:
        """(H, W) bool visible pixels of mesh ``m``."""
        return self.mesh_id == m


def point_box(points_cam: np.ndarray, K: np.ndarray, size: tuple[int, int], pad: int = 1
              ) -> tuple[int, int, int, int] | None:
    """Pixel box ``(x0, y0, x1, y1)`` (end exclusive) of the projections of camera-frame points (all in front of
    the camera), grown by ``pad`` pixels and clipped to ``size`` (h, w); None when nothing of it is in the image.
    Render into it with :func:`crop_intrinsics`: the same pixel centres as the whole frame."""
    uv = project(points_cam, K)
    h, w = int(size[0]), int(size[1])
    x0, y0 = (max(int(c) - pad, 0) for c in np.floor(uv.min(0)))
    x1, y1 = (min(int(c) + pad + 1, n) for c, n in zip(np.ceil(uv.max(0)), (w, h)))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def crop_intrinsics(K: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """``K`` for the image cropped at ``(x0, y0)``: the principal point moves with the crop."""
    Kc = np.array(K, dtype=np.float64)
    Kc[0, 2] -= x0
    Kc[1, 2] -= y0
    return Kc


def project(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixel coordinates (..., 2) of camera-frame points (..., 3): integer values are pixel centres."""
    p = np.asarray(points_cam, dtype=np.float64)
    x = (K[0, 0] * p[..., 0] + K[0, 1] * p[..., 1] + K[0, 2] * p[..., 2]) / p[..., 2]
    y = (K[1, 1] * p[..., 1] + K[1, 2] * p[..., 2]) / p[..., 2]
    return np.stack([x, y], axis=-1)


def _mesh_vf(mesh) -> tuple[np.ndarray, np.ndarray]:
    v, f = (mesh if isinstance(mesh, tuple) else (mesh.vertices, mesh.faces))
    return np.asarray(v), np.asarray(f)


def pack_meshes(meshes: Sequence, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Camera-frame vertices (Vt, 3) float64, faces (Ft, 3) int32 into them, face -> mesh (Ft,) int32,
    and the first face of each mesh (M + 1,) int64, for ``meshes`` (trimesh or ``(V, F)``) at ``poses`` (M, 4, 4)."""
    T = np.asarray(poses, dtype=np.float64).reshape(-1, 4, 4)
    if len(T) != len(meshes):
        raise ValueError(f"rasterizer: {len(meshes)} meshes but {len(T)} poses; give one T_cam_obj (4, 4) each")
    vs, fs, nv = [], [], 0
    face_start = np.zeros(len(meshes) + 1, np.int64)
    for m, mesh in enumerate(meshes):
        v, f = _mesh_vf(mesh)
        if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
            raise ValueError(f"rasterizer: mesh {m} needs vertices (V, 3) and faces (F, 3), got {v.shape}, {f.shape}")
        vs.append(v @ T[m, :3, :3].T + T[m, :3, 3])
        fs.append(f.astype(np.int32) + np.int32(nv))
        nv += len(v)
        face_start[m + 1] = face_start[m] + len(f)
    faces = np.concatenate(fs) if fs else np.zeros((0, 3), np.int32)
    face_mesh = np.repeat(np.arange(len(meshes), dtype=np.int32), np.diff(face_start))
    verts = np.concatenate(vs) if vs else np.zeros((0, 3))
    return verts, faces, face_mesh, face_start


def _check_camera(K: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, int, int]:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"rasterizer: K must be (3, 3), got {K.shape}")
    h, w = int(size[0]), int(size[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"rasterizer: size must be (H, W) > 0, got {size}")
    return K, h, w


def _triangles(verts, faces, K, h, w, near, cull):
    """Per-triangle set-up: barycentric planes and 1/z (F, 12) float64, pixel boxes (F, 4) int32."""
    coef = np.empty((len(faces), 12))
    box = np.empty((len(faces), 4), np.int32)
    with launch(h * w, PARALLEL_PIXELS, 1024):
        _setup(verts, faces, K, h, w, float(near), bool(cull), coef, box)
    return coef, box


def _draw(coef, box, labels, h, w):
    """Bin and rasterize set-up triangles: depth (H, W) float32 and the winning triangle's label (H, W) int32."""
    start, items = _bin(box, (h + BAND - 1) // BAND)
    depth = np.empty((h, w), np.float32)
    label = np.empty((h, w), np.int32)
    with launch(h * w, PARALLEL_PIXELS, 1):
        _raster(coef, box, start, items, labels, depth, label)
    return depth, label


def rasterize(meshes: Sequence, poses: np.ndarray, K: np.ndarray, size: tuple[int, int], *,
              cull_backfaces: bool = False, near: float = 1e-3) -> Raster:
    """Depth, mesh id, face id and barycentrics of ``meshes`` (M) at ``poses`` (M, 4, 4) seen by ``K``, ``size`` (H, W)."""
    K, h, w = _check_camera(K, size)
    verts, faces, face_mesh, face_start = pack_meshes(meshes, poses)
    coef, box = _triangles(verts, faces, K, h, w, near, cull_backfaces)
    depth, tri = _draw(coef, box, np.arange(len(faces), dtype=np.int32), h, w)
    mesh_id = np.empty((h, w), np.int32)
    face_id = np.empty((h, w), np.int32)
    bary = np.empty((h, w, 3), np.float32)
    with launch(h * w, PARALLEL_PIXELS, 8):
        _resolve(tri, coef, face_mesh, face_start, mesh_id, face_id, bary)
    return Raster(depth, mesh_id, face_id, bary)


def render_silhouettes(meshes: Sequence, poses: np.ndarray, K: np.ndarray, size: tuple[int, int], *,
                       amodal: bool = False, cull_backfaces: bool = False, near: float = 1e-3) -> Silhouettes:
    """The fast path: depth and visible mesh id per pixel (and per-mesh unoccluded masks if ``amodal``)."""
    K, h, w = _check_camera(K, size)
    verts, faces, face_mesh, face_start = pack_meshes(meshes, poses)
    coef, box = _triangles(verts, faces, K, h, w, near, cull_backfaces)
    depth, mesh_id = _draw(coef, box, face_mesh, h, w)
    masks = None
    if amodal:
        masks = np.zeros((len(meshes), h, w), bool)
        for m in range(len(meshes)):
            sl = slice(face_start[m], face_start[m + 1])
            masks[m] = _draw(coef[sl], box[sl], face_mesh[sl], h, w)[1] >= 0
    return Silhouettes(depth, mesh_id, masks)


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _setup(verts, faces, K, h, w, near, cull, coef, box):
    """Per triangle: screen barycentric planes l_i = A_i x + (B_i y + C_i), 1/z_i, and the pixel box (empty: x0 > x1)."""
    fx, s, cx, fy, cy = K[0, 0], K[0, 1], K[0, 2], K[1, 1], K[1, 2]
    for f in prange(faces.shape[0]):
        ia, ib, ic = faces[f, 0], faces[f, 1], faces[f, 2]
        ax, ay, az = verts[ia, 0], verts[ia, 1], verts[ia, 2]
        bx, by, bz = verts[ib, 0], verts[ib, 1], verts[ib, 2]
        cx_, cy_, cz = verts[ic, 0], verts[ic, 1], verts[ic, 2]
        box[f, 0], box[f, 1], box[f, 2], box[f, 3] = 1, 0, 1, 0
        if not (az >= near and bz >= near and cz >= near):
            continue
        if cull:  # front-facing iff the normal points towards the camera
            nx = (by - ay) * (cz - az) - (bz - az) * (cy_ - ay)
            ny = (bz - az) * (cx_ - ax) - (bx - ax) * (cz - az)
            nz = (bx - ax) * (cy_ - ay) - (by - ay) * (cx_ - ax)
            if nx * ax + ny * ay + nz * az >= 0.0:
                continue
        x0, y0 = (fx * ax + s * ay + cx * az) / az, (fy * ay + cy * az) / az
        x1, y1 = (fx * bx + s * by + cx * bz) / bz, (fy * by + cy * bz) / bz
        x2, y2 = (fx * cx_ + s * cy_ + cx * cz) / cz, (fy * cy_ + cy * cz) / cz
        area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        if not (area != 0.0):
            continue
        bx0 = max(np.ceil(min(x0, x1, x2)), 0.0)
        bx1 = min(np.floor(max(x0, x1, x2)), w - 1.0)
        by0 = max(np.ceil(min(y0, y1, y2)), 0.0)
        by1 = min(np.floor(max(y0, y1, y2)), h - 1.0)
        if not (bx0 <= bx1 and by0 <= by1):
            continue
        inv = 1.0 / area
        # l0 = E(v1, v2, p), l1 = E(v2, v0, p), l2 = E(v0, v1, p); E(a, b, p) = (bx-ax)(py-ay) - (by-ay)(px-ax)
        coef[f, 0], coef[f, 1], coef[f, 2] = -(y2 - y1) * inv, (x2 - x1) * inv, ((y2 - y1) * x1 - (x2 - x1) * y1) * inv
        coef[f, 3], coef[f, 4], coef[f, 5] = -(y0 - y2) * inv, (x0 - x2) * inv, ((y0 - y2) * x2 - (x0 - x2) * y2) * inv
        coef[f, 6], coef[f, 7], coef[f, 8] = -(y1 - y0) * inv, (x1 - x0) * inv, ((y1 - y0) * x0 - (x1 - x0) * y0) * inv
        coef[f, 9], coef[f, 10], coef[f, 11] = 1.0 / az, 1.0 / bz, 1.0 / cz
        box[f, 0], box[f, 1], box[f, 2], box[f, 3] = int(bx0), int(bx1), int(by0), int(by1)


@njit(cache=True, nogil=True, error_model="numpy")
def _bin(box, nb):
    """Triangles per band of BAND rows, in triangle order: items[start[b]:start[b + 1]]."""
    cnt = np.zeros(nb + 1, np.int64)
    for f in range(box.shape[0]):
        if box[f, 0] <= box[f, 1]:
            for b in range(box[f, 2] // BAND, box[f, 3] // BAND + 1):
                cnt[b + 1] += 1
    start = np.cumsum(cnt)
    items = np.empty(start[-1], np.int32)
    fill = start[:-1].copy()
    for f in range(box.shape[0]):
        if box[f, 0] <= box[f, 1]:
            for b in range(box[f, 2] // BAND, box[f, 3] // BAND + 1):
                items[fill[b]] = f
                fill[b] += 1
    return start, items


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _raster(coef, box, start, items, labels, depth, label):
    """Z-buffer: for each band (scheduled dynamically over threads) draw its triangles in order."""
    h, w = depth.shape
    nb = start.shape[0] - 1
    for b in prange(nb):
        r0, r1 = b * BAND, min(h, (b + 1) * BAND)
        for y in range(r0, r1):
            for x in range(w):
                depth[y, x] = np.inf
                label[y, x] = -1
        for it in range(start[b], start[b + 1]):
            f = items[it]
            A0, B0, C0, A1, B1, C1 = coef[f, 0], coef[f, 1], coef[f, 2], coef[f, 3], coef[f, 4], coef[f, 5]
            A2, B2, C2, iz0, iz1, iz2 = coef[f, 6], coef[f, 7], coef[f, 8], coef[f, 9], coef[f, 10], coef[f, 11]
            x0, x1, lab = box[f, 0], box[f, 1] + 1, labels[f]
            for y in range(max(box[f, 2], r0), min(box[f, 3] + 1, r1)):
                py = float(y)
                for x in range(x0, x1):
                    px = float(x)
                    l0 = A0 * px + (B0 * py + C0)
                    l1 = A1 * px + (B1 * py + C1)
                    l2 = A2 * px + (B2 * py + C2)
                    if l0 >= 0.0 and l1 >= 0.0 and l2 >= 0.0:
                        z = np.float32(1.0 / (l0 * iz0 + l1 * iz1 + l2 * iz2))
                        if z < depth[y, x]:
                            depth[y, x] = z
                            label[y, x] = lab


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _resolve(tri, coef, face_mesh, face_start, mesh_id, face_id, bary):
    """Mesh id, per-mesh face id and perspective-correct barycentrics of the winning triangles."""
    h, w = tri.shape
    for y in prange(h):
        py = float(y)
        for x in range(w):
            f = tri[y, x]
            if f < 0:
                mesh_id[y, x] = face_id[y, x] = -1
                bary[y, x, 0] = bary[y, x, 1] = bary[y, x, 2] = 0.0
                continue
            m = face_mesh[f]
            mesh_id[y, x] = m
            face_id[y, x] = f - face_start[m]
            px = float(x)
            q0 = (coef[f, 0] * px + (coef[f, 1] * py + coef[f, 2])) * coef[f, 9]
            q1 = (coef[f, 3] * px + (coef[f, 4] * py + coef[f, 5])) * coef[f, 10]
            q2 = (coef[f, 6] * px + (coef[f, 7] * py + coef[f, 8])) * coef[f, 11]
            s = q0 + q1 + q2
            bary[y, x, 0], bary[y, x, 1], bary[y, x, 2] = q0 / s, q1 / s, q2 / s
