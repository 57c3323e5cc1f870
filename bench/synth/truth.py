"""The ground truth in the engine's Zarr schema: field specs, per-frame rows, static arrays, root attributes.

Written with the engine's own :class:`~inscene.engine.store.StoreWriter`, so a
ground-truth store opens with ``inscene.engine.open_result`` and ``inscene info``
like any result store. Fields the engine also writes keep its names, types and
meaning (camera frame, metres, NaN padding); ground-truth extras live under
``gt/`` (see the README section for the full layout).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from inscene.engine import __version__
from inscene.engine.store.schema import ArraySpec, timing_spec

from .grasp import CONTACT_TOL
from .render import LABELS, RenderedFrame
from .scene import MAX_CONTACTS, Scene

DEPTH_UNIT = 1e-4
"""Metres per unit of ``gt/depth`` (uint16: 0.1 mm steps up to 6.55 m; 0 = nothing drawn or beyond)."""
SCHEMA = "inscene-synth-1"


def _spec(path: str, dtype: str, shape: tuple[int, ...], dims: tuple[str, ...], fill: Any, doc: str) -> ArraySpec:
    return ArraySpec(path, dtype, shape, ("time", *dims), fill, doc=doc)


def field_specs(scene: Scene) -> list[ArraySpec]:
    """Per-frame arrays of a ground-truth store of ``scene``."""
    w, h = scene.size
    out = [
        _spec("object/valid", "bool", (), (), False, "object in view"),
        _spec("object/T_cam_obj", "float64", (4, 4), ("row", "col"), np.nan, "object pose, camera frame"),
        _spec("object/score", "float32", (), (), np.nan, "pose confidence (1: ground truth)"),
        _spec("gt/labels", "uint8", (h, w), ("y", "x"), 0, "visible label: 0 background, 1 object, 2 right, 3 left"),
        _spec("gt/depth", "uint16", (h, w), ("y", "x"), 0, "camera z in 0.1 mm units; 0 = nothing"),
        _spec("gt/object/visible_fraction", "float32", (), (), np.nan, "visible share of the object's amodal mask"),
        _spec("gt/object/amodal_pixels", "int32", (), (), 0, "pixels of the object ignoring occluders"),
        timing_spec("synth"),
    ]
    if scene.config.store_rgb:
        out.append(_spec("gt/rgb", "uint8", (h, w, 3), ("y", "x", "rgb"), 0, "the exact rendered RGB frame"))
    for side, track in scene.hands.items():
        J, S, V = track.pose.shape[1], track.betas.shape[1], track.vertices.shape[1]
        p = f"hand/{side}/"
        g = f"gt/hand/{side}/"
        c = f"gt/contact/{side}/"
        out += [
            _spec(p + "valid", "bool", (), (), False, f"{side} hand in view"),
            _spec(p + "pose", "float32", (J, 3), ("pose_joint", "axis_angle"),
                  np.nan, "axis-angle: global rotation (camera frame) then the model's joints"),
            _spec(p + "betas", "float32", (S,), ("beta",), np.nan, "shape parameters"),
            _spec(p + "transl", "float32", (3,), ("xyz",), np.nan, "translation, camera frame, metres"),
            _spec(p + "joints", "float32", (21, 3), ("joint", "xyz"), np.nan, "21 keypoints, camera frame, metres"),
            _spec(p + "keypoints2d", "float32", (21, 3), ("joint", "uv_conf"), np.nan, "projected keypoints: x, y, 1"),
            _spec(p + "in_contact", "bool", (), (), False, f"a vertex within {CONTACT_TOL * 1e3:g} mm of the object"),
            _spec(f"contact/{side}/points", "float32", (MAX_CONTACTS, 3), ("contact", "xyz"), np.nan,
                  "contact points on the object's surface, object frame, NaN-padded"),
            _spec(g + "phase", "int8", (), (), -1, "scripted phase: 0 idle 1 approach 2 grasp 3 hold 4 release 5 retreat"),
            _spec(g + "visible_fraction", "float32", (), (), np.nan, "visible share of the hand's amodal mask"),
            _spec(g + "amodal_pixels", "int32", (), (), 0, "pixels of the hand ignoring occluders"),
            _spec(g + "keypoints_visible", "bool", (21,), ("joint",), False, "keypoint not hidden by another surface"),
            _spec(g + "penetration", "float32", (), (), np.nan, "depth of the deepest vertex inside the object, m"),
            _spec(g + "min_distance", "float32", (), (), np.nan, "smallest signed vertex-object distance, m"),
            _spec(c + "vertex", "int32", (MAX_CONTACTS,), ("contact",), -1, "hand vertex of each contact point"),
            _spec(c + "distance", "float32", (MAX_CONTACTS,), ("contact",), np.nan,
                  "signed distance of that vertex to the surface, m"),
        ]
        if scene.config.store_vertices:
            out.append(_spec(p + "vertices", "float16", (V, 3), ("vertex", "xyz"), np.nan, "mesh, camera frame, m"))
    return out


def static_arrays(scene: Scene) -> dict[str, np.ndarray]:
    """Static arrays: meshes (hands' faces and skin colours, the object, the backdrop in the world frame)."""
    m = scene.object.mesh
    out: dict[str, np.ndarray] = {"object/mesh/vertices": m.vertices.astype(np.float32),
                                  "object/mesh/faces": m.faces.astype(np.int32)}
    if m.uv is not None:
        out["gt/object/uv"] = m.uv.astype(np.float32)
    for side, t in scene.hands.items():
        out[f"hand/{side}/faces"] = t.kit.model.faces.numpy().astype(np.int32)
        out[f"gt/hand/{side}/colors"] = t.colors
    vs, fs, n = [], [], 0
    for mesh, T in scene.backdrop:
        vs.append(mesh.vertices @ T[:3, :3].T + T[:3, 3])
        fs.append(mesh.faces + n)
        n += len(mesh.vertices)
    out["gt/backdrop/vertices"] = np.concatenate(vs).astype(np.float64)
    out["gt/backdrop/faces"] = np.concatenate(fs).astype(np.int32)
    return out


def keypoint_visibility(keypoints: np.ndarray, uv: np.ndarray, frame: RenderedFrame, label: int,
                        tol: float = 0.02) -> np.ndarray:
    """(21,) True where a keypoint's pixel shows its own hand no more than ``tol`` m in front of it."""
    h, w = frame.labels.shape
    px = np.round(uv).astype(np.int64)
    inside = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h) & (keypoints[:, 2] > 0)
    out = np.zeros(len(uv), bool)
    x, y = px[inside, 0], px[inside, 1]
    out[inside] = (frame.labels[y, x] == label) & (frame.depth[y, x] >= keypoints[inside, 2] - tol)
    return out


def frame_row(scene: Scene, i: int, frame: RenderedFrame, ms: float) -> dict[str, Any]:
    """The store values of frame ``i``."""
    K = scene.K
    depth = np.where(np.isfinite(frame.depth), np.round(frame.depth / DEPTH_UNIT), 0)
    row: dict[str, Any] = {
        "frames/time": scene.times[i], "frames/source_index": i, "camera/T_world_cam": scene.T_world_cam[i],
        "object/valid": bool(frame.amodal["object"].any()), "object/T_cam_obj": scene.T_cam_obj[i],
        "object/score": 1.0, "gt/labels": frame.labels, "gt/depth": np.clip(depth, 0, 65535).astype(np.uint16),
        "gt/object/visible_fraction": frame.visible_fraction("object"),
        "gt/object/amodal_pixels": int(frame.amodal["object"].sum()), "timing/synth": ms,
    }
    if scene.config.store_rgb:
        row["gt/rgb"] = frame.rgb
    for side, t in scene.hands.items():
        p, g, c = f"hand/{side}/", f"gt/hand/{side}/", f"gt/contact/{side}/"
        kp = t.keypoints[i]
        uv = (kp @ K.T)[:, :2] / kp[:, 2:3]
        row.update({
            p + "valid": bool(frame.amodal[side].any()), p + "pose": t.pose[i], p + "betas": t.betas[i],
            p + "transl": t.transl[i], p + "joints": kp.astype(np.float32),
            p + "keypoints2d": np.concatenate([uv, np.ones((21, 1))], axis=1).astype(np.float32),
            p + "in_contact": bool(t.in_contact[i]), f"contact/{side}/points": t.contact_points[i],
            g + "phase": int(t.phase[i]), g + "visible_fraction": frame.visible_fraction(side),
            g + "amodal_pixels": int(frame.amodal[side].sum()),
            g + "keypoints_visible": keypoint_visibility(kp, uv, frame, LABELS[side]),
            g + "penetration": t.penetration[i], g + "min_distance": t.min_distance[i],
            c + "vertex": t.contact_vertex[i], c + "distance": t.contact_distance[i],
        })
        if scene.config.store_vertices:
            row[p + "vertices"] = t.vertices[i].astype(np.float16)
    return row


def root_attrs(scene: Scene) -> dict[str, Any]:
    """Root attributes: the engine's (source, config, camera, world frame, hand model) plus the synthetic truth's."""
    cfg = scene.config
    w, h = cfg.size
    hands_attr = {}
    contact = {}
    model_kind = "anny"
    for side, t in scene.hands.items():
        g = t.grasp
        model_kind = t.kit.model.name
        contact[side] = {"onset": t.onset, "release": t.release}
        hands_attr[side] = {
            "onset": t.onset, "release": t.release, "contact_intervals": [list(iv) for iv in t.intervals],
            "grasp": {"contact_fingers": list(g.contact_fingers),
                      "pad_distance_mm": {k: round(v * 1e3, 3) for k, v in g.pad_distance.items()},
                      "penetration_mm": round(g.penetration * 1e3, 3), "seconds": round(g.seconds, 2)},
            "max_penetration_mm": round(float(t.penetration.max()) * 1e3, 3),
            "betas": t.kit.betas.tolist(), "pose_joints": ["global", *t.kit.model.joint_names[1:]],
        }
    obj = scene.object
    return {
        "inscene_version": __version__,
        "source": {"uri": f"synth:{cfg.name}?seed={scene.seed}", "kind": "synthetic", "fps": cfg.fps,
                   "size": [w, h], "live": False, "n_frames": scene.n_frames},
        "config": {"synth": cfg.to_dict()},
        "camera": {"intrinsics": "synthetic (pixel centres at integer coordinates)", "motion": cfg.camera,
                   "fov_deg": cfg.fov_deg},
        "world_frame": "first camera",
        "hand_model": {"kind": model_kind, "mano_dir": None},
        "stages": ["synth"],
        "contact": contact,
        "synth": {
            "schema": SCHEMA, "preset": cfg.name, "seed": scene.seed, "scenario": cfg.scenario,
            "T_world_table": scene.T_world_table.tolist(),
            "table_frame": "z up, the table's surface at z = 0",
            "object": {"kind": obj.kind, "source": obj.source, "extents_m": obj.mesh.extents.round(4).tolist(),
                       "frame": "z up, base on z = 0, axis through x = y = 0"},
            "hands": hands_attr, "labels": dict(LABELS), "depth_unit_m": DEPTH_UNIT,
            "contact_tolerance_m": CONTACT_TOL, "max_contacts": MAX_CONTACTS,
            "light_world": scene.light_world.tolist(),
            "timings_s": {k: round(v, 3) for k, v in scene.timings.items()},
        },
    }
