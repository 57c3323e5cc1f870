"""Rendered test sequences for the object tracker: a textured object moved by a hand over clutter.

Static camera (640 x 480, 60 degree field of view by default). The object is
rendered with its texture (:func:`inscene.kernels.render`) over a procedural
cluttered background; a hand-like occluder (a palm and five capsule fingers, skin
coloured) holds the object: it is anchored to a point of the object, follows it,
and is drawn over it so that it hides a chosen fraction of the object's silhouette
per frame. Ground truth: poses, the hand mask, the visible object mask, coverage.

Used by the tests and by ``inscene bench object`` (the bench/synth scene generator
writes full stores; this is the tracker's own focused factory).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from .mesh import ObjectMesh

SKIN = np.array([214.0, 160.0, 128.0])


@dataclass
class Sequence:
    """A rendered sequence of N frames."""

    images: np.ndarray
    """(N, H, W, 3) uint8."""
    T_cam_obj: np.ndarray
    """(N, 4, 4) float64 ground-truth poses."""
    hand: np.ndarray
    """(N, H, W) bool hand (occluder) pixels."""
    visible: np.ndarray
    """(N, H, W) bool visible object pixels."""
    coverage: np.ndarray
    """(N,) fraction of the object's silhouette hidden by the hand."""
    K: np.ndarray
    """(3, 3) intrinsics."""


def default_K(width: int = 640, height: int = 480, fov_deg: float = 60.0) -> np.ndarray:
    f = 0.5 * width / np.tan(np.radians(fov_deg) / 2)
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


def background(size: tuple[int, int], seed: int) -> np.ndarray:
    """A cluttered RGB background ``(H, W, 3)`` uint8: smooth colour fields, patches, fine noise."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = np.zeros((h, w, 3))
    for sigma, amp in ((60, 70.0), (15, 35.0), (3, 12.0)):
        img += amp * gaussian_filter(rng.standard_normal((h, w, 3)), (sigma, sigma, 0)) * sigma / 3
    img = 120 + 60 * img / max(np.abs(img).max(), 1e-9)
    yy, xx = np.mgrid[:h, :w]
    for _ in range(28):  # rectangles and discs of random colours (some like any object's)
        col = rng.uniform(20, 235, 3)
        cx, cy, rx, ry = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(10, 90), rng.uniform(10, 70)
        m = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1 if rng.random() < 0.5 else \
            (np.abs(xx - cx) < rx) & (np.abs(yy - cy) < ry)
        img[m] = 0.7 * col + 0.3 * img[m]
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _rot(axis: np.ndarray, angle: float) -> np.ndarray:
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def upright_pose(distance: float, elevation_deg: float = 25.0, yaw_deg: float = 0.0,
                 center: np.ndarray | None = None) -> np.ndarray:
    """``T_cam_obj`` of an object standing upright (its z up) seen from ``elevation`` above, ``yaw`` about z."""
    e = np.radians(elevation_deg)
    up = np.array([0.0, -np.cos(e), -np.sin(e)])  # object z in the camera frame
    x = np.array([1.0, 0.0, 0.0])
    x = _rot(up, np.radians(yaw_deg)) @ (x - up * (x @ up))
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(up, x), up], axis=1)
    T = np.eye(4)
    T[:3, :3] = R
    c = np.zeros(3) if center is None else np.asarray(center)
    T[:3, 3] = np.array([0.0, 0.0, distance]) - R @ c
    return T


def handheld_trajectory(n: int, seed: int, base: np.ndarray, *, translation: float = 0.06, rotation_deg: float = 30.0,
                        leave_at: tuple[int, int] | None = None, leave_shift: float = 0.45) -> np.ndarray:
    """Smooth random motion ``(n, 4, 4)`` about ``base``: sums of sinusoids (periods 1.5-4 s at 30 fps).

    ``leave_at = (i0, i1)``: between frames ``i0`` and ``i1`` the object is carried out of the view
    sideways by ``leave_shift`` metres and back (a smooth bump)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 30.0
    out = np.empty((n, 4, 4))
    freq = rng.uniform(1 / 4.0, 1 / 1.5, (6, 2))
    phase = rng.uniform(0, 2 * np.pi, (6, 2))
    amp = rng.uniform(0.4, 1.0, (6, 2))
    sig = np.sum(amp[None] * np.sin(2 * np.pi * freq[None] * t[:, None, None] + phase[None]), axis=2) / 1.4
    sig -= sig[0]
    for i in range(n):
        w = np.radians(rotation_deg) * sig[i, :3]
        d = translation * sig[i, 3:] * np.array([1.0, 0.7, 0.8])
        if leave_at is not None and leave_at[0] <= i < leave_at[1]:
            u = (i - leave_at[0]) / max(leave_at[1] - leave_at[0], 1)
            d = d + np.array([leave_shift * np.sin(np.pi * u) ** 2, 0.0, 0.0])
        T = base.copy()
        a = np.linalg.norm(w)
        R = _rot(w, a) if a > 1e-12 else np.eye(3)
        c = base[:3, 3]
        T[:3, :3] = R @ base[:3, :3]
        T[:3, 3] = c + d
        out[i] = T
    return out


def _capsule_reach(xx: np.ndarray, yy: np.ndarray, base: np.ndarray, u: np.ndarray, r: float) -> np.ndarray:
    """Shortest length of a capsule (radius ``r``) from ``base`` along unit ``u`` that covers each pixel (inf: none)."""
    dx, dy = xx - base[0], yy - base[1]
    s = dx * u[0] + dy * u[1]
    perp2 = dx * dx + dy * dy - s * s
    half = np.sqrt(np.maximum(r * r - perp2, 0.0))
    out = np.maximum(s - half, 0.0)
    out[(perp2 >= r * r) | (s < -half)] = np.inf
    return out


def hand_reach(shape: tuple[int, int], anchor: np.ndarray, inward: np.ndarray, size: float,
               window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """A hand holding an object at ``anchor`` (pixels): palm outside, fingers towards ``inward``.

    Returns ``(H, W)`` the finger reach (in units of ``size``) at which each pixel is covered: 0 for
    the palm, inf where the hand never reaches; ``reach_map <= reach`` is the hand's mask. Only pixels in
    ``window = (y0, y1, x0, x1)`` are computed (inf elsewhere)."""
    h, w = shape
    y0, y1, x0, x1 = window or (0, h, 0, w)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    u = inward / max(np.linalg.norm(inward), 1e-9)
    p = np.array([-u[1], u[0]])
    palm_c = anchor - 0.55 * size * u
    palm = ((((xx - palm_c[0]) * u[0] + (yy - palm_c[1]) * u[1]) / (0.5 * size)) ** 2
            + (((xx - palm_c[0]) * p[0] + (yy - palm_c[1]) * p[1]) / (0.42 * size)) ** 2) < 1
    r = 0.085 * size
    reach = np.where(palm, 0.0, np.inf)
    for k, off in enumerate((-0.27, -0.09, 0.09, 0.27)):
        base = anchor - 0.15 * size * u + off * size * p
        reach = np.minimum(reach, _capsule_reach(xx, yy, base, u, r) / (size * (0.85 if k in (0, 3) else 1.0)))
    thumb = anchor - 0.35 * size * u - 0.42 * size * p
    reach = np.minimum(reach, _capsule_reach(xx, yy, thumb, u, 1.15 * r) / (0.5 * size))
    out = np.full(shape, np.inf)
    out[y0:y1, x0:x1] = reach
    return out


def render_sequence(mesh: ObjectMesh, poses: np.ndarray, *, K: np.ndarray | None = None,
                    size: tuple[int, int] = (480, 640), seed: int = 0, coverage: np.ndarray | float | None = 0.2,
                    grasp_point: np.ndarray | None = None, noise: float = 3.0) -> Sequence:
    """Render ``poses`` (N, 4, 4) of ``mesh`` with a hand covering ``coverage`` (per frame or constant) of it.

    ``grasp_point``: object-frame point the hand holds (default: the side opposite a handle, -x, mid height).
    """
    from inscene.kernels import Appearance, render

    n = len(poses)
    K = default_K(size[1], size[0]) if K is None else np.asarray(K, dtype=np.float64)
    bg = background(size, seed)
    rng = np.random.default_rng(seed + 1)
    cov = np.broadcast_to(np.asarray(0.0 if coverage is None else coverage, float), (n,))
    lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
    mid = 0.5 * (lo + hi)
    gp = np.array([lo[0], mid[1], mid[2]]) if grasp_point is None else np.asarray(grasp_point, float)
    app = [Appearance(uv=mesh.uv, texture=mesh.texture, vertex_colors=mesh.vertex_colors)]
    images = np.empty((n, *size, 3), np.uint8)
    hands = np.zeros((n, *size), bool)
    vis = np.zeros((n, *size), bool)
    achieved = np.zeros(n)
    skin_tex = gaussian_filter(rng.standard_normal((*size, 3)), (4, 4, 0)) * 25
    for i, T in enumerate(poses):
        rgb, raster = render([(mesh.vertices, mesh.faces)], T[None], K, size, app, ambient=0.45)
        obj = raster.mesh_id == 0
        img = bg.copy()
        img[obj] = rgb[obj]
        hm = np.zeros(size, bool)
        if cov[i] > 0 and obj.sum() > 50:
            hm = _fit_hand(obj, T, K, gp, mid, cov[i])
            shade = np.clip(SKIN + skin_tex[hm], 0, 255)
            img[hm] = shade.astype(np.uint8)
        img = gaussian_filter(img.astype(np.float64), (0.6, 0.6, 0)) + rng.normal(0, noise, img.shape)
        images[i] = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        hands[i] = hm
        vis[i] = obj & ~hm
        achieved[i] = (obj & hm).sum() / max(obj.sum(), 1)
    return Sequence(images, np.asarray(poses, float), hands, vis, achieved, K)


def _fit_hand(obj: np.ndarray, T: np.ndarray, K: np.ndarray, grasp: np.ndarray, mid: np.ndarray,
              target: float) -> np.ndarray:
    """The hand mask whose finger reach hides ``target`` of ``obj`` (the reach at that quantile)."""
    def proj(p: np.ndarray) -> np.ndarray:
        x = T[:3, :3] @ p + T[:3, 3]
        return (K @ x)[:2] / x[2]

    anchor, centre = proj(grasp), proj(mid)
    inward = centre - anchor
    ys, xs = np.nonzero(obj)
    size = 0.9 * max(xs.max() - xs.min(), ys.max() - ys.min(), 20)
    h, w = obj.shape
    pad = 1.3 * size
    win = (int(max(0, min(ys.min(), anchor[1]) - pad)), int(min(h, max(ys.max(), anchor[1]) + pad)),
           int(max(0, min(xs.min(), anchor[0]) - pad)), int(min(w, max(xs.max(), anchor[0]) + pad)))
    reach = hand_reach(obj.shape, anchor, inward, size, win)
    levels = np.sort(reach[obj])
    k = int(np.clip(round(target * len(levels)), 0, len(levels) - 1))
    limit = levels[k] if np.isfinite(levels[k]) else 2.5
    return reach <= min(max(limit, 0.0), 2.5)


def mug_mesh(top_diameter: float = 0.085, bottom_diameter: float = 0.078, height: float = 0.085,
             handle_reach: float = 0.025, handle_thickness: float = 0.011, sections: int = 64):
    """A plain mug (metres, z up, base at z = 0, handle towards +x): a closed frustum and a handle of
    three capsules (upper arm, grip, lower arm). Returns a ``trimesh.Trimesh`` (not watertight where the
    parts meet; fine for silhouettes and rendering)."""
    import trimesh

    a = np.linspace(0, 2 * np.pi, sections, endpoint=False)
    rb, rt = bottom_diameter / 2, top_diameter / 2
    ring_b = np.stack([rb * np.cos(a), rb * np.sin(a), np.zeros_like(a)], 1)
    ring_t = np.stack([rt * np.cos(a), rt * np.sin(a), np.full_like(a, height)], 1)
    v = np.concatenate([ring_b, ring_t, [[0, 0, 0], [0, 0, height]]])
    n = sections
    f = []
    for i in range(n):
        j = (i + 1) % n
        f += [[i, j, n + j], [i, n + j, n + i], [2 * n, j, i], [2 * n + 1, n + i, n + j]]
    body = trimesh.Trimesh(v, np.asarray(f), process=False)
    r_at = lambda z: rb + (rt - rb) * z / height  # noqa: E731
    z1, z0 = 0.78 * height, 0.22 * height
    x_out = rt + handle_reach
    parts = [body]
    corners = [(r_at(z1) - 0.004, 0, z1), (x_out, 0, z1 - 0.006), (x_out - 0.004, 0, z0 + 0.006),
               (r_at(z0) - 0.004, 0, z0)]
    for p, q in zip(corners[:-1], corners[1:], strict=True):
        p, q = np.asarray(p, float), np.asarray(q, float)
        d = q - p
        cap = trimesh.creation.capsule(height=float(np.linalg.norm(d)), radius=handle_thickness / 2, count=[12, 12])
        z = np.array([0.0, 0.0, 1.0])
        axis = np.cross(z, d / np.linalg.norm(d))
        ang = np.arccos(np.clip(d @ z / np.linalg.norm(d), -1, 1))
        R = _rot(axis, ang) if np.linalg.norm(axis) > 1e-9 else np.eye(3)
        cap.vertices = cap.vertices @ R.T + (p + q) / 2
        parts.append(cap)
    return trimesh.util.concatenate(parts)


YCB = {"mug": "025_mug/textured.obj", "mustard": "006_mustard_bottle/006_mustard_bottle.obj"}
"""The presets' YCB meshes, relative to ``../shared/data/ycb``."""

PRESETS: dict[str, dict] = {
    # static camera, the object lifted and moved by a hand (rotations up to ~35 degrees, ~10 cm)
    "mug": {"object": "mug", "distance": 0.45, "yaw": -10.0, "rotation_deg": 20.0, "translation": 0.06},
    "mustard": {"object": "mustard", "distance": 0.55, "yaw": 15.0, "rotation_deg": 20.0, "translation": 0.06},
}


def coverage_schedule(n: int, low: float, high: float, period: int = 60) -> np.ndarray:
    """Hand coverage per frame ``(n,)``: rising from ``low`` to ``high`` and back every ``period`` frames."""
    t = np.arange(n)
    return low + (high - low) * (0.5 - 0.5 * np.cos(2 * np.pi * t / period))


def preset_sequence(mesh: ObjectMesh, preset: str, n: int, seed: int, *, max_coverage: float = 0.2,
                    size: tuple[int, int] = (480, 640), leave_at: tuple[int, int] | None = None) -> Sequence:
    """A preset scene (:data:`PRESETS`) of ``n`` frames: the hand covers 5 % .. ``max_coverage`` of the object."""
    p = PRESETS[preset]
    K = default_K(size[1], size[0])
    center = 0.5 * (mesh.vertices.min(0) + mesh.vertices.max(0))
    base = upright_pose(p["distance"], 25.0, p["yaw"], center=center)
    # leaving: carried sideways far enough to be out of the 60 degree view for a third of the excursion
    poses = handheld_trajectory(n, seed, base, translation=p["translation"], rotation_deg=p["rotation_deg"],
                                leave_at=leave_at, leave_shift=1.15 * p["distance"])
    cov = coverage_schedule(n, min(0.05, max_coverage), max_coverage)
    return render_sequence(mesh, poses, K=K, size=size, seed=seed, coverage=cov)
