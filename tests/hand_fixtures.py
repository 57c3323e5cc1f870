"""Test factories for the hand models: a synthetic MANO-format model, posed samples, cameras.

The synthetic MANO model has MANO's layout (778 vertices, 16 joints, 10 shape and
135 pose-corrective directions, a sparse joint regressor, fingertips at vertices
744, 320, 443, 554, 671) but made-up geometry: a tube per bone. It is generated
here, never read from a real MANO file (MANO may not be redistributed). The left
model is the exact mirror image (x -> -x) of the right one.
"""

from __future__ import annotations

import math
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import scipy.sparse
from inscene.models.hands.synthetic import default_camera, mpjpe_mm, observe, perturb, sample_hands

__all__ = ["MANO_TIPS", "default_camera", "mirror_mano_arrays", "mpjpe_mm", "observe", "perturb", "sample_hands",
           "synthetic_mano_arrays", "write_mano_pickle"]

MANO_TIPS = (744, 320, 443, 554, 671)
# MANO joint order: wrist, index 1-3, middle 1-3, little 1-3, ring 1-3, thumb 1-3
MANO_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
_FINGER_POINTS = {  # joint positions base..tip, right hand: fingers +y, thumb +z, palm facing -x
    "index": [(0, .095, .025), (-.002, .135, .027), (-.004, .16, .028), (-.006, .182, .029)],
    "middle": [(0, .097, .003), (-.002, .14, .003), (-.004, .168, .003), (-.006, .19, .003)],
    "little": [(0, .082, -.035), (-.002, .112, -.039), (-.004, .13, -.041), (-.006, .15, -.043)],
    "ring": [(0, .092, -.017), (-.002, .132, -.019), (-.004, .156, -.02), (-.006, .178, -.021)],
    "thumb": [(-.01, .03, .03), (-.02, .06, .055), (-.025, .085, .07), (-.03, .105, .08)],
}
_TIP_ORDER = ("thumb", "index", "middle", "ring", "little")


def _tube(a: np.ndarray, b: np.ndarray, radius: tuple[float, float], stations: int, ring: int,
          normal_hint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rings of vertices from a to b; returns vertices (stations * ring, 3) and station params (stations,)."""
    axis = (b - a) / np.linalg.norm(b - a)
    u = np.cross(axis, normal_hint)
    u /= np.linalg.norm(u)
    w = np.cross(axis, u)
    ts = np.linspace(0.0, 1.0, stations, endpoint=False)
    angles = np.linspace(0, 2 * math.pi, ring, endpoint=False)
    pts = [a + t * (b - a) + radius[0] * np.cos(q) * u + radius[1] * np.sin(q) * w for t in ts for q in angles]
    return np.asarray(pts), ts


def _faces_between(start: int, stations: int, ring: int) -> list[tuple[int, int, int]]:
    faces = []
    for s in range(stations - 1):
        for q in range(ring):
            a, b = start + s * ring + q, start + s * ring + (q + 1) % ring
            c, d = a + ring, b + ring
            faces += [(a, b, d), (a, d, c)]
    return faces


def synthetic_mano_arrays(side: str = "right", seed: int = 0) -> dict[str, np.ndarray]:
    """MANO-format arrays (the keys of the official pickles), plain numpy."""
    rng = np.random.default_rng(seed)
    joints = np.zeros((16, 3))
    tips: dict[str, np.ndarray] = {}
    mano_fingers = ("index", "middle", "little", "ring", "thumb")
    for f, name in enumerate(mano_fingers):
        pts = np.asarray(_FINGER_POINTS[name], dtype=float)
        joints[1 + 3 * f:4 + 3 * f] = pts[:3]
        tips[name] = pts[3]
    verts, weights, faces = [], [], []
    palmar = np.array([-1.0, 0.0, 0.0])

    def add(points: np.ndarray, w: np.ndarray) -> int:
        start = sum(len(v) for v in verts)
        verts.append(points)
        weights.append(w)
        return start

    # palm: an elliptic tube from the wrist to the MCP line, skinned to the wrist
    ring, stations = 16, 8
    pts, _ = _tube(np.zeros(3), np.array([0, .09, 0]), (0.015, 0.045), stations, ring, palmar)
    w = np.zeros((len(pts), 16))
    w[:, 0] = 1.0
    start = add(pts, w)
    faces += _faces_between(start, stations, ring)
    wrist_ring = list(range(start, start + ring))
    joint_rings = {0: wrist_ring}
    for f, name in enumerate(mano_fingers):
        chain = [1 + 3 * f, 2 + 3 * f, 3 + 3 * f]
        ends = [joints[chain[1]], joints[chain[2]], tips[name]]
        radius = 0.010 if name == "thumb" else 0.008
        for i, j in enumerate(chain):
            stations, ring = 5, 8
            pts, ts = _tube(joints[j], ends[i], (radius, radius), stations, ring, palmar)
            w = np.zeros((len(pts), 16))
            blend = np.clip(ts / 0.4, 0.0, 1.0).repeat(ring)  # near the joint, partly the parent
            w[:, j] = 0.5 + 0.5 * blend
            w[:, MANO_PARENTS[j]] += 0.5 - 0.5 * blend
            start = add(pts, w)
            faces += _faces_between(start, stations, ring)
            joint_rings[j] = list(range(start, start + ring))
    n_body = sum(len(v) for v in verts)
    v = np.concatenate(verts)
    w = np.concatenate(weights)
    tip_pts = np.stack([tips[n] for n in _TIP_ORDER])
    n_fill = 778 - n_body - 5
    fill = rng.uniform([-0.01, 0.02, -0.03], [0.0, 0.08, 0.03], size=(n_fill, 3))
    fill_w = np.zeros((n_fill, 16))
    fill_w[:, 0] = 1.0
    tip_w = np.zeros((5, 16))
    for t, name in enumerate(_TIP_ORDER):
        tip_w[t, 3 + 3 * mano_fingers.index(name)] = 1.0
    all_v = np.concatenate([v, tip_pts, fill])
    all_w = np.concatenate([w, tip_w, fill_w])
    # move the tips to MANO's fingertip indices
    order = [i for i in range(778) if i not in range(n_body, n_body + 5)]
    perm = np.empty(778, dtype=int)
    free = [i for i in range(778) if i not in MANO_TIPS]
    for t in range(5):
        perm[n_body + t] = MANO_TIPS[t]
    for old, new in zip(order, free):
        perm[old] = new
    v_template = np.empty_like(all_v)
    v_template[perm] = all_v
    lbs = np.empty_like(all_w)
    lbs[perm] = all_w
    f = perm[np.asarray(faces)]
    regressor = np.zeros((16, 778))
    for j, ring_ids in joint_rings.items():
        regressor[j, perm[ring_ids]] = 1.0 / len(ring_ids)
    shapedirs = np.zeros((778, 3, 10))
    shapedirs[:, :, 0] = 0.08 * v_template
    shapedirs[:, 1, 1] = 0.1 * np.clip(v_template[:, 1] - 0.09, 0.0, None)
    for k in range(2, 10):
        shapedirs[:, :, k] = 0.01 * v_template @ rng.normal(size=(3, 3))
    posedirs = 0.002 * rng.normal(size=(778, 3, 135))
    components = np.linalg.qr(rng.normal(size=(45, 45)))[0]
    arrays = {
        "v_template": v_template, "shapedirs": shapedirs, "posedirs": posedirs,
        "J_regressor": regressor, "weights": lbs,
        "kintree_table": np.array([[4294967295] + list(MANO_PARENTS[1:]), list(range(16))], dtype=np.uint32),
        "f": f.astype(np.uint32), "hands_components": components, "hands_mean": 0.1 * rng.normal(size=45),
        "J": regressor @ v_template, "bs_style": "lbs", "bs_type": "lrotmin",
    }
    return arrays if side == "right" else mirror_mano_arrays(arrays)


def mirror_mano_arrays(a: dict) -> dict:
    """The mirror image (x -> -x) of MANO arrays: what MANO_LEFT is to MANO_RIGHT."""
    s = np.array([-1.0, 1.0, 1.0])
    out = dict(a)
    out["v_template"] = a["v_template"] * s
    out["J"] = a["J"] * s
    out["shapedirs"] = a["shapedirs"] * s[None, :, None]
    # pose feature (R - I)_pq of the mirrored rotation S R S picks up s_p s_q; the offset s_x
    sign = (s[:, None] * s[None, :]).reshape(-1)
    out["posedirs"] = a["posedirs"] * s[None, :, None] * np.tile(sign, 15)[None, None, :]
    rv = np.tile([1.0, -1.0, -1.0], 15)
    out["hands_mean"] = a["hands_mean"] * rv
    out["hands_components"] = a["hands_components"] * rv[None, :]
    out["f"] = a["f"][:, [0, 2, 1]]
    return out


def write_mano_pickle(path: Path, arrays: dict, chumpy_like: bool = False) -> Path:
    """Write a MANO-format pickle; with ``chumpy_like`` the big arrays are wrapped in objects
    of class ``chumpy.ch.Ch`` (state ``{'x': array}``) and the regressor is a scipy
    csc matrix, as in the official files. Needs no chumpy: a stand-in module is
    registered only while pickling."""
    data = dict(arrays)
    data["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    try:
        if chumpy_like:
            pkg, mod = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

            class Ch:  # noqa: D401 - stand-in
                def __init__(self, x: np.ndarray) -> None:
                    self.x = x
                    self._dirty_vars = set()

            Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
            mod.Ch, pkg.ch = Ch, mod
            sys.modules["chumpy"], sys.modules["chumpy.ch"] = pkg, mod
            for key in ("v_template", "shapedirs", "posedirs", "J"):
                data[key] = Ch(np.asarray(arrays[key]))
        path.write_bytes(pickle.dumps(data, protocol=2))
    finally:
        for k, m in saved.items():
            if m is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = m
    return path
