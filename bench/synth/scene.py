"""A synthetic scene with its ground truth: ``build_scene(config, seed) -> Scene``.

Everything is drawn from ``seed`` through independent streams (object, hands,
grasp and motion, camera, backdrop), so a scene is the same on every run. The
world frame is the first camera's (as in the engine's stores); the table frame
(z up, surface z = 0) is recorded as ``T_world_table``.

Hands are stored and rendered from their float32 parameters (what the store
holds), so that re-posing the model from the store reproduces the rendered meshes.
Contact labels come from the geometry: a hand is in contact when one of its
vertices lies within ``CONTACT_TOL`` (2 mm) of the object's surface (exact
distances); its contact points are the nearest surface points of the closest such
vertices (at most ``MAX_CONTACTS``), in the object's frame.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from . import shapes, textures
from .camera import ego_camera, intrinsics, static_camera
from .config import SceneConfig
from .geometry import ObjectGeometry
from .grasp import CONTACT_TOL, Grasp
from .handkit import HandKit, pose_hands
from .layout import plan_scene
from .motion import inv_T, make_T, rot_z
from .objects import SceneObject, make_object

MAX_CONTACTS = 32
"""Contact points stored per hand and frame."""
SDF_RESOLUTION = 96
"""Samples along the longest side of the object's SDF grid (grasp optimization)."""

_STREAMS = {"object": 1, "hands": 2, "plan": 3, "camera": 4, "backdrop": 5, "render": 6}


def stream(seed: int, name: str) -> np.random.Generator:
    """The independent random stream ``name`` of a scene's seed."""
    return np.random.default_rng([int(seed), _STREAMS[name]])


@dataclass
class HandTrack:
    """One hand's ground truth over the clip (camera frame unless said otherwise)."""

    side: str
    kit: HandKit
    grasp: Grasp
    colors: np.ndarray
    """(V, 3) uint8 skin colours."""
    pose: np.ndarray
    """(T, J, 3) float32 axis-angle: the global rotation, then the model's joints."""
    betas: np.ndarray
    """(T, S) float32."""
    transl: np.ndarray
    """(T, 3) float32, metres."""
    vertices: np.ndarray
    """(T, V, 3) float64 from the float32 parameters."""
    keypoints: np.ndarray
    """(T, 21, 3) float64."""
    phase: np.ndarray
    """(T,) int8 scripted phase (``motion.PHASES``)."""
    in_contact: np.ndarray = field(default=None)  # type: ignore[assignment]
    """(T,) bool."""
    contact_points: np.ndarray = field(default=None)  # type: ignore[assignment]
    """(T, K, 3) float32 object frame, NaN-padded."""
    contact_vertex: np.ndarray = field(default=None)  # type: ignore[assignment]
    """(T, K) int32 the hand vertex of each contact point, -1 padded."""
    contact_distance: np.ndarray = field(default=None)  # type: ignore[assignment]
    """(T, K) float32 signed distance of that vertex to the surface, metres, NaN padded."""
    penetration: np.ndarray = field(default=None)  # type: ignore[assignment]
    """(T,) float32 depth of the deepest vertex inside the object, metres (0: none)."""
    min_distance: np.ndarray = field(default=None)  # type: ignore[assignment]
    """(T,) float32 smallest signed vertex distance to the object, metres."""

    @property
    def intervals(self) -> list[tuple[int, int]]:
        """Contact runs ``[start, end)`` in frames."""
        x = np.concatenate([[False], self.in_contact, [False]]).astype(np.int8)
        d = np.diff(x)
        return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))

    @property
    def onset(self) -> int | None:
        """First frame in contact, or None."""
        iv = self.intervals
        return iv[0][0] if iv else None

    @property
    def release(self) -> int | None:
        """First frame no longer in contact after the first contact run, or None (contact to the end / never)."""
        iv = self.intervals
        return iv[0][1] if iv and iv[0][1] < len(self.in_contact) else None


@dataclass
class Scene:
    """A synthetic scene: camera, object, hands, backdrop and their ground truth over T frames."""

    config: SceneConfig
    seed: int
    K: np.ndarray
    """(3, 3)."""
    times: np.ndarray
    """(T,) seconds."""
    T_world_cam: np.ndarray
    """(T, 4, 4) world = first camera."""
    T_cam_obj: np.ndarray
    """(T, 4, 4)."""
    T_world_table: np.ndarray
    """(4, 4) the table frame (z up, surface z = 0) in the world."""
    object: SceneObject
    geom: ObjectGeometry
    hands: dict[str, HandTrack]
    backdrop: list[tuple[shapes.Mesh, np.ndarray]]
    """(mesh, T_world_mesh) of the table, wall and floor."""
    light_world: np.ndarray
    """(3,) unit light direction, world frame."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent building: object, grasps and motion, ground truth."""

    @property
    def n_frames(self) -> int:
        return len(self.times)

    @property
    def size(self) -> tuple[int, int]:
        return self.config.size


def load_models(sides: tuple[str, ...]) -> dict:
    """The default hand models of ``sides`` in float64 (the grasp optimization's precision)."""
    from inscene.models.hands import load_hand_model

    return {s: load_hand_model(side=s, dtype=torch.float64) for s in sides}


@contextmanager
def torch_threads(n: int = 1):
    """Run torch with ``n`` intra-op threads inside the block (its small ops are much faster on one thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_scene(config: SceneConfig, seed: int = 0, models: dict | None = None) -> Scene:
    """Build the scene of ``config`` and ``seed`` with its ground truth (not yet rendered).

    Args:
        models: ``{side: HandModel}`` to use (float64 recommended); default: the default hand models.
    """
    with torch_threads(1):
        return _build(config, seed, models)


def _build(config: SceneConfig, seed: int, models: dict | None) -> Scene:
    t0 = time.perf_counter()
    models = models or load_models(config.hands)
    times = np.arange(config.n_frames) / config.fps
    obj = make_object(config.object, stream(seed, "object"))
    geom = ObjectGeometry(obj.mesh.vertices, obj.mesh.faces, SDF_RESOLUTION, cache=obj.source != "procedural"
                          and "stand-in" not in obj.source)
    t1 = time.perf_counter()
    rng_h = stream(seed, "hands")
    tone = rng_h.uniform()  # one person: both hands share the skin tone
    std = models[config.hands[0]].beta_std.double().numpy()
    betas = np.clip(rng_h.normal(0.0, 0.6, len(std)), -1.5, 1.5) * std  # one person: one hand shape
    kits, colors = {}, {}
    for side in config.hands:
        model = models[side]
        kits[side] = HandKit.build(model, betas)
        colors[side] = textures.skin_colors(rng_h, kits[side].rest_normals, kits[side].palm_axes[:, 2],
                                            kits[side].nails, tone=tone)
    plan = plan_scene(config, stream(seed, "plan"), obj, geom, kits, times)
    t2 = time.perf_counter()

    rng_c = stream(seed, "camera")
    if config.camera == "static":
        az, dist = ((30.0, 70.0), (0.45, 0.62)) if config.scenario == "pick_place" else ((-30.0, 30.0), (0.6, 0.8))
        T_table_cam = np.repeat(static_camera(rng_c, plan.workspace, az, distance=dist)[None], len(times), axis=0)
    else:
        palms = [p.T_table_hand[:, :3, :3] @ kits[s].palm_centre + p.T_table_hand[:, :3, 3]
                 for s, p in plan.hands.items()]
        focus = 0.6 * (plan.T_table_obj[:, :3, 3] + [0, 0, 0.5 * obj.height]) + 0.4 * np.mean(palms, axis=0)
        T_table_cam = ego_camera(rng_c, times, focus)
    T_world_table = inv_T(T_table_cam[0])
    T_world_cam = T_world_table @ T_table_cam
    T_cam_table = inv_T(T_table_cam)
    T_cam_obj = T_cam_table @ plan.T_table_obj

    hands = {}
    for side, hp in plan.hands.items():
        kit = kits[side]
        go, tr = kit.from_T(T_cam_table @ hp.T_table_hand)
        T = len(times)
        pose = np.concatenate([go[:, None], hp.hand_pose], axis=1).astype(np.float32)
        betas = np.repeat(kit.betas[None], T, 0).astype(np.float32)
        transl = tr.astype(np.float32)
        verts, kps = pose_hands(kit.model, pose[:, 0].astype(np.float64), pose[:, 1:].astype(np.float64),
                                betas.astype(np.float64), transl.astype(np.float64))
        hands[side] = HandTrack(side, kit, hp.grasp, colors[side], pose, betas, transl, verts, kps, hp.phase)
        _contacts(hands[side], geom, T_cam_obj)

    backdrop = _backdrop(stream(seed, "backdrop"), T_world_table, T_table_cam[0], plan.workspace)
    light_table = _light(stream(seed, "backdrop"))
    scene = Scene(config, int(seed), intrinsics(config.size, config.fov_deg), times, T_world_cam, T_cam_obj,
                  T_world_table, obj, geom, hands, backdrop, T_world_table[:3, :3] @ light_table)
    scene.timings = {"object_s": t1 - t0, "plan_s": t2 - t1, "truth_s": time.perf_counter() - t2}
    return scene


def _contacts(track: HandTrack, geom: ObjectGeometry, T_cam_obj: np.ndarray) -> None:
    """Fill the contact fields of ``track`` from exact hand-object distances."""
    T = len(track.vertices)
    K = MAX_CONTACTS
    track.in_contact = np.zeros(T, bool)
    track.contact_points = np.full((T, K, 3), np.nan, np.float32)
    track.contact_vertex = np.full((T, K), -1, np.int32)
    track.contact_distance = np.full((T, K), np.nan, np.float32)
    track.penetration = np.zeros(T, np.float32)
    track.min_distance = np.zeros(T, np.float32)
    T_obj_cam = inv_T(T_cam_obj)
    for i in range(T):
        v = track.vertices[i] @ T_obj_cam[i, :3, :3].T + T_obj_cam[i, :3, 3]
        sd = geom.signed_distance(v)
        track.min_distance[i] = sd.min()
        track.penetration[i] = max(0.0, -sd.min())
        close = np.flatnonzero(sd <= CONTACT_TOL)
        if len(close):
            track.in_contact[i] = True
            close = close[np.argsort(sd[close])][:K]
            track.contact_points[i, :len(close)] = geom.closest_points(v[close])
            track.contact_vertex[i, :len(close)] = close
            track.contact_distance[i, :len(close)] = sd[close]


def _light(rng: np.random.Generator) -> np.ndarray:
    """(3,) a light from above and in front, table frame (towards the light)."""
    d = np.array([rng.uniform(-0.4, 0.4), rng.uniform(-0.6, -0.2), 1.0])
    return d / np.linalg.norm(d)


def _backdrop(rng: np.random.Generator, T_world_table: np.ndarray, T_table_cam0: np.ndarray,
              centre: np.ndarray) -> list[tuple[shapes.Mesh, np.ndarray]]:
    """Table (wood), a wall beyond the workspace facing the first camera, and a floor; world poses."""
    table = shapes.table_top()
    table.texture = textures.wood_texture(rng)
    T_table = make_T(rot_z(rng.normal(0.0, 0.05)), np.array([centre[0], centre[1] + 0.15, 0.0]))
    view = T_table_cam0[:3, 2].copy()
    view[2] = 0.0
    view /= max(np.linalg.norm(view), 1e-9)
    wall = shapes.wall()
    wall.texture = textures.wall_texture(rng)
    yaw = np.arctan2(view[1], view[0]) - np.pi / 2  # the wall's +y (its back) along the view
    T_wall = make_T(rot_z(yaw), np.array([centre[0], centre[1], 0.0]) + view * rng.uniform(0.7, 1.0))
    floor = shapes.table_top((6.0, 6.0), 0.0, 0.8)
    floor.texture = (textures.wall_texture(rng) * 0.45).astype(np.uint8)
    T_floor = make_T(None, np.array([0.0, 0.0, -0.74]))
    return [(table, T_world_table @ T_table), (wall, T_world_table @ T_wall), (floor, T_world_table @ T_floor)]
