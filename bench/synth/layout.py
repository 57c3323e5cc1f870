"""Scenario planning in the table frame: where things start, which grasps, when each phase happens.

``plan_scene`` turns a config, a seed-driven ``Generator``, the object and the
hands into per-frame trajectories in the table frame (z up, surface z = 0): the
object's poses and, per hand, its rest-frame poses, finger poses and phase codes.

Timelines (fractions of the clip):

* ``pick_place``: right hand idle, travels to its pre-grasp, closes in (grasp
  onset), the object is lifted, moved while turning about the vertical and tilting
  (back upright before it lands), placed; the hand opens, backs off and retreats.
* ``handover``: the right hand picks the object up (from above when the object
  allows, else high on its side) and brings it to a hand-over point in mid-air;
  the left hand grasps it low on its side; the right releases and retreats; the
  left turns and tilts it, places it, releases and retreats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import SceneConfig
from .clearance import clear_path
from .geometry import ObjectGeometry
from .grasp import Grasp, GraspTarget, best_grasp
from .handkit import HandKit
from .motion import Attachment, HandKey, ObjectKey, hand_path, make_T, object_path, rot_z
from .objects import SceneObject


@dataclass
class HandPlan:
    """One hand's trajectory in the table frame."""

    side: str
    grasp: Grasp
    T_table_hand: np.ndarray
    """(T, 4, 4)."""
    hand_pose: np.ndarray
    """(T, P, 3)."""
    phase: np.ndarray
    """(T,) int8 codes, see ``motion.PHASES``."""
    grasp_time: float
    release_time: float
    moved_frames: int = 0
    """Frames moved out of the object or the table (``clearance.clear_path``)."""


@dataclass
class Plan:
    """The scenario's trajectories in the table frame."""

    T_table_obj: np.ndarray
    """(T, 4, 4)."""
    hands: dict[str, HandPlan]
    workspace: np.ndarray
    """(3,) centre of the action (between pick and place, at mid-height)."""


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _horizontal(v: np.ndarray) -> np.ndarray:
    return _unit(np.array([v[0], v[1], 0.0]))


def _turn(v: np.ndarray, angle: float) -> np.ndarray:
    return rot_z(angle) @ v


def rest_orientation(kit: HandKit, forward: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(3, 3) a relaxed hand: palm down, fingers along ``forward``, slightly rolled at random."""
    sign = 1.0 if kit.model.side == "right" else -1.0
    palm = np.array([0.0, 0.0, -1.0])
    d = _horizontal(forward)
    r = sign * np.cross(d, palm)
    roll = rng.normal(0.0, 0.25)
    c, s = math.cos(roll), math.sin(roll)
    r2 = c * r + s * palm
    d2 = _unit(d + np.array([0.0, 0.0, -0.25]))
    return kit.rotation_for(d2, r2)


def side_target(obj: SceneObject, approach_obj: np.ndarray, height: float, fingers: tuple[str, ...],
                keep_out: tuple, gap: float = 0.018) -> GraspTarget:
    """A grasp from the side at ``height``: palm towards the axis along ``approach_obj``, thumb up."""
    up = np.array([0.0, 0.0, 1.0])
    return GraspTarget(_horizontal(approach_obj), up, np.array([0.0, 0.0, height]), fingers, keep_out, gap)


def top_target(kit: HandKit, obj: SceneObject, distal_obj: np.ndarray, depth: float, keep_out: tuple,
               gap: float = 0.02) -> GraspTarget:
    """A grasp from above ``depth`` below the top, fingers pointing along ``distal_obj``."""
    sign = 1.0 if kit.model.side == "right" else -1.0
    a = np.array([0.0, 0.0, -1.0])
    d = _horizontal(distal_obj)
    r = sign * np.cross(d, a)
    return GraspTarget(a, r, np.array([0.0, 0.0, obj.height - depth]), ("thumb", "index", "middle"), keep_out, gap)


def _side_variants(obj: SceneObject, a: np.ndarray, lo: float, hi: float, keep_out: tuple,
                   rng: np.random.Generator) -> list[GraspTarget]:
    """Side grasps at a few heights in [lo, hi] with the approach jittered (the first one preferred)."""
    fingers = ("thumb", "index", "middle", "ring") if hi - lo > 0.06 else ("thumb", "index", "middle")
    side = rng.choice([-1.0, 1.0])
    tries = [(rng.uniform(0.45, 0.65), 0.0), (0.6, rng.normal(0.0, 0.12)), (0.45, 0.6 * side), (0.75, -0.6 * side),
             (0.55, 1.0 * side)]  # later ones turn the approach further (flat objects: grasp across)
    return [side_target(obj, _turn(a, jitter), lo + frac * (hi - lo), fingers if k < 2 else fingers[:3], keep_out)
            for k, (frac, jitter) in enumerate(tries)]


def plan_scene(cfg: SceneConfig, rng: np.random.Generator, obj: SceneObject, geom: ObjectGeometry,
               kits: dict[str, HandKit], times: np.ndarray) -> Plan:
    """Trajectories of the scenario ``cfg.scenario`` (see the module docstring)."""
    m = cfg.motion
    D = float(times[-1] + (times[1] - times[0]))
    h = obj.height
    table = (((0.0, 0.0, 1.0), 0.0),)
    p0 = np.array([rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03), 0.0])
    right_start = p0 + np.array([rng.uniform(0.16, 0.24), -rng.uniform(0.14, 0.22), rng.uniform(0.06, 0.12)])
    a_r = _turn(_horizontal(p0 - right_start), rng.normal(0.0, 0.2))
    # the object's starting yaw: a handle faces away from the right hand, turned a little for visibility
    if obj.handle_dir is not None:
        want = _turn(a_r, rng.choice([-1.0, 1.0]) * rng.uniform(0.35, 0.9))
        yaw0 = math.atan2(want[1], want[0]) - math.atan2(obj.handle_dir[1], obj.handle_dir[0])
    else:
        yaw0 = rng.uniform(-math.pi, math.pi)
    lift = rng.uniform(*m.lift_height)
    yaw_turn = rng.choice([-1.0, 1.0]) * math.radians(rng.uniform(*m.yaw_deg))
    tilt = math.radians(rng.uniform(*m.tilt_deg))
    move_dir = rng.uniform(-math.pi, math.pi)
    move = rng.uniform(*m.move_distance) * np.array([math.cos(move_dir), 0.6 * math.sin(move_dir), 0.0])
    R0 = rot_z(yaw0)

    if cfg.scenario == "pick_place":
        keys = [ObjectKey(0.37 * D, p0, yaw0), ObjectKey(0.49 * D, p0 + [0, 0, lift], yaw0),
                ObjectKey(0.66 * D, p0 + move + [0, 0, lift], yaw0 + yaw_turn, _horizontal(_turn(move, 1.3)) if
                          np.linalg.norm(move) > 0 else np.array([1.0, 0, 0]), tilt),
                ObjectKey(0.76 * D, p0 + move, yaw0 + yaw_turn)]
        T_obj = object_path(keys, times, 0.5 * h)
        box_top = obj.top_graspable and obj.kind == "box" and rng.random() < 0.5
        kit = kits["right"]
        if box_top:
            targets = [top_target(kit, obj, R0.T @ _horizontal(p0 - right_start), rng.uniform(0.015, 0.03), table)]
            targets += _side_variants(obj, R0.T @ a_r, 0.0, h, table, rng)
        else:
            targets = _side_variants(obj, R0.T @ a_r, 0.0, h, table, rng)
        grasp = best_grasp(kit, geom, targets)
        end = p0 + move + np.array([rng.uniform(0.15, 0.25), -rng.uniform(0.15, 0.25), rng.uniform(0.06, 0.12)])
        hands = {"right": _hand(kit, geom, grasp, rng, times, T_obj, right_start, end, 0.04 * D, 0.26 * D, 0.34 * D,
                                0.79 * D, 0.86 * D, 0.98 * D, m.pregrasp_distance)}
        return Plan(T_obj, hands, p0 + 0.5 * move + np.array([0, 0, 0.5 * h]))

    # handover
    left_start = p0 + np.array([-rng.uniform(0.20, 0.28), -rng.uniform(0.12, 0.2), rng.uniform(0.06, 0.12)])
    p_hand = 0.5 * (p0 + left_start) + np.array([0.0, 0.06, 0.0])
    p_hand[2] = lift + 0.03
    yaw1 = yaw0 + rng.normal(0.0, 0.3)
    place = p_hand + np.array([-rng.uniform(0.04, 0.1), rng.uniform(0.0, 0.06), 0.0])
    place[2] = 0.0
    keys = [ObjectKey(0.26 * D, p0, yaw0), ObjectKey(0.35 * D, p0 + [0, 0, lift], yaw0),
            ObjectKey(0.47 * D, p_hand, yaw1), ObjectKey(0.62 * D, p_hand, yaw1),
            ObjectKey(0.72 * D, 0.5 * (p_hand + place) + [0, 0, 0.02], yaw1 + yaw_turn, np.array([0.0, 1.0, 0.0]),
                      tilt),
            ObjectKey(0.82 * D, place, yaw1 + yaw_turn)]
    T_obj = object_path(keys, times, 0.5 * h)
    kr, kl = kits["right"], kits["left"]
    g_right = None
    fingers_fwd = R0.T @ _horizontal(p0 - right_start)
    if obj.top_graspable:  # from above, ever deeper; the right hand keeps to the top 6-7.5 cm
        for depth, jitter in ((rng.uniform(0.015, 0.025), 0.0), (0.035, 0.4), (0.045, -0.4)):
            split = h - max(0.06, depth + 0.035)
            g_right = best_grasp(kr, geom, [top_target(kr, obj, _turn(fingers_fwd, jitter), depth,
                                                       (((0.0, 0.0, 1.0), split + 0.004),))])
            if g_right.ok:
                break
    if g_right is None or not g_right.ok:  # high on the side; the right hand keeps to the upper half
        split = 0.5 * h
        g_right = best_grasp(kr, geom, _side_variants(obj, R0.T @ a_r, split + 0.01, h,
                                                      (((0.0, 0.0, 1.0), split + 0.004),), rng))
    R1 = rot_z(yaw1)
    a_l = _turn(_horizontal(p_hand - left_start), rng.normal(0.0, 0.2))
    keep = (((0.0, 0.0, 1.0), 0.0), ((0.0, 0.0, -1.0), -(split - 0.004)))
    g_left = best_grasp(kl, geom, _side_variants(obj, R1.T @ a_l, 0.0, split - 0.01, keep, rng))
    end_r = p_hand + np.array([rng.uniform(0.18, 0.26), -rng.uniform(0.12, 0.2), 0.0])
    end_r[2] = rng.uniform(0.06, 0.12)
    end_l = place + np.array([-rng.uniform(0.15, 0.22), -rng.uniform(0.15, 0.22), rng.uniform(0.06, 0.12)])
    hands = {
        "right": _hand(kr, geom, g_right, rng, times, T_obj, right_start, end_r, 0.03 * D, 0.17 * D, 0.24 * D,
                       0.55 * D, 0.61 * D, 0.78 * D, m.pregrasp_distance),
        "left": _hand(kl, geom, g_left, rng, times, T_obj, left_start, end_l, 0.30 * D, 0.47 * D, 0.53 * D,
                      0.86 * D, 0.91 * D, 0.99 * D, m.pregrasp_distance),
    }
    return Plan(T_obj, hands, 0.5 * (p0 + place) + np.array([0, 0.03, 0.5 * h + 0.03]))


def _hand(kit: HandKit, geom: ObjectGeometry, grasp: Grasp, rng: np.random.Generator, times: np.ndarray,
          T_obj: np.ndarray,
          start: np.ndarray, end: np.ndarray, t_move: float, t_pre: float, t_on: float, t_off: float,
          t_open: float, t_end: float, pregrasp: float) -> HandPlan:
    """A hand's plan: rest at ``start``, travel, close, hold, open, retreat to ``end`` (times in seconds)."""
    relaxed = kit.model.pose_prior.mean_pose().double().numpy()
    open_pose = 0.15 * grasp.hand_pose
    fwd_start = T_obj[0, :3, 3] - start
    fwd_end = end - T_obj[-1, :3, 3]
    T_start = make_T(rest_orientation(kit, fwd_start, rng), start) @ make_T(None, -kit.palm_centre)
    T_end = make_T(rest_orientation(kit, -fwd_end, rng), end) @ make_T(None, -kit.palm_centre)
    i_on = min(int(np.searchsorted(times, t_on)), len(times) - 1)
    i_off = min(int(np.searchsorted(times, t_off)), len(times) - 1)
    away_on = -T_obj[i_on, :3, :3] @ grasp.target.approach  # table frame, from the object towards the hand
    away_off = -T_obj[i_off, :3, :3] @ grasp.target.approach
    up = np.array([0.0, 0.0, 1.0])
    arc_in = (0.04 + 0.03 * max(away_on[2], 0.0)) * up + 0.02 * away_on
    arc_out = (0.04 + 0.03 * max(away_off[2], 0.0)) * up + 0.02 * away_off
    att = Attachment(t_on, t_off, grasp.T_obj_hand, grasp.hand_pose, open_pose, grasp.target.approach,
                     pregrasp, t_on - t_pre, t_open - t_off, arc_in)
    Ts, poses, codes = hand_path(times, [HandKey(t_move, T_start, relaxed)], att,
                                 [HandKey(t_end, T_end, relaxed, arc_out)], T_obj)
    moved = clear_path(kit, geom, Ts, poses, codes, T_obj, grasp.target.approach)
    return HandPlan(kit.model.side, grasp, Ts, poses, codes, t_on, t_off, moved)
