"""The sparse viewpoint model of a rigid object: contour points with normals seen from many directions.

Region-based trackers of the SRT3D family never render during tracking. Instead the
object is rendered once from ``N`` directions spread evenly over a sphere (the
vertices of a subdivided icosahedron); each silhouette's contour is sampled at
``P`` points, spread evenly along the contour (farthest-point sampling), and kept
as 3D points on the object's rim with the outward contour normal, both in the object
frame. While tracking, the view closest to the current viewing direction gives the
contour points to project.

Per point the model also keeps how far the silhouette stays foreground inward and
background outward along the normal ("continuous distances", metres at the
rendering distance): lines across thin parts (a handle) or narrow gaps only use
the part of the line that is really foreground or background.

The model is cached on disk (``$INSCENE_CACHE/viewpoints``), keyed by the mesh and
the parameters; building 2562 views takes ~30 s per mesh here.
"""

from __future__ import annotations

import io
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit

VIEWPOINTS_VERSION = 1


@dataclass(frozen=True)
class ViewpointModel:
    """Contour points of an object over ``N`` viewpoints (object frame, metres).

    Attributes:
        directions: ``(N, 3)`` float64 unit vectors from ``center`` towards the camera.
        points: ``(N, P, 3)`` float64 rim points.
        normals: ``(N, P, 3)`` float64 unit outward contour normals (perpendicular to the view).
        fg_dist: ``(N, P)`` float64 foreground extent inward along the normal, metres.
        bg_dist: ``(N, P)`` float64 background extent outward along the normal, metres.
        center: ``(3,)`` the point the views look at (bounding-box centre).
        radius: bounding-sphere radius about ``center``, metres.
        distance: camera distance the views were rendered from, metres.
    """

    directions: np.ndarray
    points: np.ndarray
    normals: np.ndarray
    fg_dist: np.ndarray
    bg_dist: np.ndarray
    center: np.ndarray
    radius: float
    distance: float

    @property
    def n_views(self) -> int:
        return int(self.directions.shape[0])

    @property
    def n_points(self) -> int:
        return int(self.points.shape[1])

    def view_direction(self, T_cam_obj: np.ndarray) -> np.ndarray:
        """Unit vector ``(3,)`` from the model's centre to the camera, in the object frame."""
        R, t = T_cam_obj[:3, :3], T_cam_obj[:3, 3]
        c = -R.T @ t - self.center
        return c / max(float(np.linalg.norm(c)), 1e-12)

    def nearest(self, T_cam_obj: np.ndarray) -> int:
        """Index of the view closest to the direction the camera sees the object from."""
        return int(np.argmax(self.directions @ self.view_direction(T_cam_obj)))

    def save(self, path: str | Path) -> None:
        buf = io.BytesIO()
        np.savez(buf, version=VIEWPOINTS_VERSION, directions=self.directions, points=self.points,
                 normals=self.normals, fg_dist=self.fg_dist, bg_dist=self.bg_dist, center=self.center,
                 radius=self.radius, distance=self.distance)
        Path(path).write_bytes(buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> ViewpointModel:
        with np.load(path) as z:
            if int(z["version"]) != VIEWPOINTS_VERSION:
                raise ValueError(f"{path}: viewpoint model version {int(z['version'])}, expected {VIEWPOINTS_VERSION}")
            return cls(z["directions"], z["points"], z["normals"], z["fg_dist"], z["bg_dist"], z["center"],
                       float(z["radius"]), float(z["distance"]))


def sphere_directions(subdivisions: int) -> np.ndarray:
    """Unit vectors ``(N, 3)`` on a subdivided icosahedron: N = 10 * 4**s + 2 (642 for 3, 2562 for 4)."""
    import trimesh

    return np.asarray(trimesh.creation.icosphere(subdivisions=subdivisions, radius=1.0).vertices, dtype=np.float64)


def look_at(direction: np.ndarray, center: np.ndarray, distance: float) -> np.ndarray:
    """``T_cam_obj`` (4, 4) of a camera at ``center + distance * direction`` looking at ``center``."""
    z = -np.asarray(direction, dtype=np.float64)
    z = z / np.linalg.norm(z)
    up = np.array([0.0, 0.0, 1.0]) if abs(z[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = -R @ (np.asarray(center) - distance * z)
    return T


@njit(cache=True, nogil=True)
def _farthest_points(xy: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` of the points ``xy`` (M, 2) spread by greedy farthest-point sampling."""
    m = xy.shape[0]
    idx = np.empty(n, np.int64)
    if m <= n:
        for k in range(n):
            idx[k] = k % m
        return idx
    first = 0
    for i in range(m):  # start at the topmost (then leftmost) point: deterministic
        if xy[i, 1] < xy[first, 1] or (xy[i, 1] == xy[first, 1] and xy[i, 0] < xy[first, 0]):
            first = i
    idx[0] = first
    d = np.empty(m)
    for i in range(m):
        d[i] = (xy[i, 0] - xy[first, 0]) ** 2 + (xy[i, 1] - xy[first, 1]) ** 2
    for k in range(1, n):
        best = 0
        for i in range(m):
            if d[i] > d[best]:
                best = i
        idx[k] = best
        bx, by = xy[best, 0], xy[best, 1]
        for i in range(m):
            e = (xy[i, 0] - bx) ** 2 + (xy[i, 1] - by) ** 2
            if e < d[i]:
                d[i] = e
    return idx


@njit(cache=True, nogil=True)
def _march(mask: np.ndarray, u: np.ndarray, v: np.ndarray, nx: np.ndarray, ny: np.ndarray, want: bool,
           start: float, limit: int) -> np.ndarray:
    """Pixels walked from ``(u, v)`` along ``(nx, ny)`` while the mask equals ``want`` (at most ``limit``).

    Foreground ends where the mask does; background continues outside the image (to ``limit``)."""
    h, w = mask.shape
    out = np.full(u.shape[0], float(limit))
    for i in range(u.shape[0]):
        for k in range(limit):
            t = start + k
            x = int(np.floor(u[i] + t * nx[i] + 0.5))
            y = int(np.floor(v[i] + t * ny[i] + 0.5))
            inside = 0 <= x < w and 0 <= y < h
            if want:
                if not inside or not mask[y, x]:
                    out[i] = k
                    break
            else:
                if not inside:
                    break
                if mask[y, x]:
                    out[i] = k
                    break
    return out


def contour_samples(mask: np.ndarray, depth: np.ndarray, K: np.ndarray, n_points: int,
                    max_march: int = 400) -> dict[str, np.ndarray]:
    """Sample ``n_points`` contour points of a silhouette, camera frame.

    Args:
        mask: ``(H, W)`` bool silhouette; depth: ``(H, W)`` camera z; K: ``(3, 3)``.
    Returns:
        ``points (P, 3)``, ``normals (P, 3)`` (z = 0, outward), ``fg_dist (P,)`` and
        ``bg_dist (P,)`` in metres at each point's depth.
    """
    from scipy.ndimage import gaussian_filter

    m = np.pad(mask, 1)
    inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    boundary = mask & ~inner
    vs, us = np.nonzero(boundary)
    if len(us) < 3:
        raise ValueError("the silhouette is (almost) empty: the object is too small in the viewpoint renders")
    blur = gaussian_filter(mask.astype(np.float64), 1.5)
    gy, gx = np.gradient(blur)
    g = np.hypot(gx, gy)
    keep = g[vs, us] > 1e-6
    vs, us = vs[keep], us[keep]
    sel = _farthest_points(np.stack([us, vs], 1).astype(np.float64), n_points)
    u, v = us[sel].astype(np.float64), vs[sel].astype(np.float64)
    nx = -gx[vs[sel], us[sel]] / g[vs[sel], us[sel]]
    ny = -gy[vs[sel], us[sel]] / g[vs[sel], us[sel]]
    z = depth[vs[sel], us[sel]].astype(np.float64)
    # the edge lies between the foreground pixel centre and the next pixel outward: half a pixel on average
    pu, pv = u + 0.5 * nx, v + 0.5 * ny
    Kinv = np.linalg.inv(K)
    rays = np.stack([pu, pv, np.ones_like(pu)], 1) @ Kinv.T
    pts = rays * z[:, None]
    fg_px = _march(mask, u, v, -nx, -ny, True, 0.0, max_march) + 0.5
    bg_px = _march(mask, u, v, nx, ny, False, 1.0, max_march) + 0.5
    scale = z / K[0, 0]
    return {"points": pts, "normals": np.stack([nx, ny, np.zeros_like(nx)], 1),
            "fg_dist": fg_px * scale, "bg_dist": bg_px * scale}


def build_viewpoints(vertices: np.ndarray, faces: np.ndarray, subdivisions: int = 4, n_points: int = 200,
                     image_size: int = 320, distance: float | None = None) -> ViewpointModel:
    """Render the mesh from every icosphere direction and sample its contours.

    Args:
        vertices: ``(V, 3)`` metres; faces: ``(F, 3)``.
        subdivisions: icosphere level (4: 2562 views, ~4 degrees apart).
        n_points: contour points per view.
        image_size: side of the square renders, pixels (the bounding sphere fills ~90 %).
        distance: camera distance, metres (default ``max(0.8, 4 * radius)``).
    """
    from inscene.kernels import render_silhouettes

    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int32)
    center = 0.5 * (v.min(0) + v.max(0))
    radius = float(np.linalg.norm(v - center, axis=1).max())
    d = float(distance) if distance else max(0.8, 4.0 * radius)
    half = np.arcsin(min(radius / d, 0.99))
    focal = 0.45 * image_size / np.tan(half)
    c = (image_size - 1) / 2.0
    K = np.array([[focal, 0.0, c], [0.0, focal, c], [0.0, 0.0, 1.0]])
    dirs = sphere_directions(subdivisions)
    n = len(dirs)
    P = np.empty((n, n_points, 3))
    N = np.empty((n, n_points, 3))
    FG = np.empty((n, n_points))
    BG = np.empty((n, n_points))
    for i, direction in enumerate(dirs):
        T = look_at(direction, center, d)
        sil = render_silhouettes([(v, f)], T[None], K, (image_size, image_size))
        s = contour_samples(sil.mesh_id == 0, sil.depth, K, n_points)
        R, t = T[:3, :3], T[:3, 3]
        P[i] = (s["points"] - t) @ R  # camera -> object: R^T (x - t)
        N[i] = s["normals"] @ R
        FG[i], BG[i] = s["fg_dist"], s["bg_dist"]
    return ViewpointModel(dirs, P, N, FG, BG, center, radius, d)


def viewpoint_model(vertices: np.ndarray, faces: np.ndarray, subdivisions: int = 4, n_points: int = 200,
                    image_size: int = 320, cache: bool = True) -> ViewpointModel:
    """The viewpoint model of a mesh from the on-disk cache, or built and stored there."""
    if not cache:
        return build_viewpoints(vertices, faces, subdivisions, n_points, image_size)
    from inscene.kernels._cache import array_hash, cache_dir, write_atomic

    key = array_hash(np.asarray(vertices, np.float64), np.asarray(faces, np.int64),
                     extra=f"v{VIEWPOINTS_VERSION}-{subdivisions}-{n_points}-{image_size}")
    path = cache_dir("viewpoints") / f"{key[:32]}.npz"
    if path.exists():
        try:
            return ViewpointModel.load(path)
        except (OSError, ValueError, KeyError):
            pass  # a broken or outdated entry is rebuilt
    n = 10 * 4 ** subdivisions + 2
    print(f"inscene: building the object's viewpoint model ({n} views, once per mesh; ~{n // 120} s) ...",
          file=sys.stderr, flush=True)
    t0 = time.monotonic()
    model = build_viewpoints(vertices, faces, subdivisions, n_points, image_size)
    write_atomic(path, model.save)
    print(f"inscene: viewpoint model built in {time.monotonic() - t0:.0f} s, cached in {path}", file=sys.stderr,
          flush=True)
    return model
