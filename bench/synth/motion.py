"""Trajectories: minimum-jerk interpolation of rigid poses and finger poses, object paths, hand plans.

All poses here are 4x4 float64 in the table frame (z up, the table's surface at
z = 0). A hand's plan is a list of timed keyframes between which its rest frame
moves on a minimum-jerk path (position) with a slerp (rotation) on the same
profile, and its finger pose is interpolated linearly in the model's parameters
(which keeps it inside the joint limits: they are a box in a linear map of them).
While attached, a hand moves rigidly with the object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from inscene.engine.grasp.prior import min_jerk  # the profile 10 s^3 - 15 s^4 + 6 s^5 of s clipped to [0, 1]


def phase(t: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """(T,) progress of times t through [t0, t1], in [0, 1]."""
    return np.clip((np.asarray(t) - t0) / max(t1 - t0, 1e-9), 0.0, 1.0)


def interp_pose(A: np.ndarray, B: np.ndarray, s: np.ndarray) -> np.ndarray:
    """(T, 4, 4) poses between A and B (4, 4) at fractions s (T,): linear position, slerped rotation.

    ``s`` is clipped to [0, 1]: the minimum-jerk profile evaluates to 1 + 2e-16 just below 1, which the slerp
    refuses."""
    s = np.clip(np.asarray(s, np.float64), 0.0, 1.0)
    rots = Rotation.from_matrix(np.stack([A[:3, :3], B[:3, :3]]))
    out = np.zeros((len(s), 4, 4))
    out[:, :3, :3] = Slerp([0.0, 1.0], rots)(s).as_matrix()
    out[:, :3, 3] = A[:3, 3] * (1 - s[:, None]) + B[:3, 3] * s[:, None]
    out[:, 3, 3] = 1.0
    return out


def make_T(R: np.ndarray | None = None, t: np.ndarray | None = None) -> np.ndarray:
    """A (4, 4) pose from a rotation (3, 3) and a translation (3,)."""
    T = np.eye(4)
    if R is not None:
        T[:3, :3] = R
    if t is not None:
        T[:3, 3] = t
    return T


def inv_T(T: np.ndarray) -> np.ndarray:
    """Inverse of (..., 4, 4) rigid poses."""
    R = T[..., :3, :3]
    out = np.zeros_like(T)
    out[..., :3, :3] = np.swapaxes(R, -1, -2)
    out[..., :3, 3] = -np.einsum("...ji,...j->...i", R, T[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class ObjectKey:
    """A keyframe of the object's path: time, base position (x, y, z), yaw, and the tilt's axis and peak."""

    time: float
    position: np.ndarray
    yaw: float
    tilt_axis: np.ndarray | None = None
    """Horizontal axis (3,) of a tilt that rises and falls back (sin profile) on the way to this key."""
    tilt: float = 0.0
    """Peak tilt, radians."""


def object_path(keys: list[ObjectKey], times: np.ndarray, centre_height: float) -> np.ndarray:
    """(T, 4, 4) object poses along minimum-jerk segments between keys; constant before the first and after the last.

    A segment's tilt turns the object about its centre (``centre_height`` above its base).
    """
    out = np.zeros((len(times), 4, 4))
    for i, t in enumerate(times):
        k = int(np.searchsorted([kk.time for kk in keys], t, side="right"))
        if k == 0 or k == len(keys):
            key = keys[0] if k == 0 else keys[-1]
            out[i] = make_T(rot_z(key.yaw), key.position)
            continue
        a, b = keys[k - 1], keys[k]
        s = float(min_jerk(phase(t, a.time, b.time)))
        pos = a.position * (1 - s) + b.position * s
        R = rot_z(a.yaw * (1 - s) + b.yaw * s)
        T = make_T(R, pos)
        if b.tilt_axis is not None and b.tilt:
            c = np.array([0.0, 0.0, centre_height])
            tilt = Rotation.from_rotvec(b.tilt_axis * b.tilt * np.sin(np.pi * s)).as_matrix()
            centre = pos + R @ c
            T = make_T(tilt @ R, centre - tilt @ R @ c)
        out[i] = T
    return out


@dataclass(frozen=True)
class HandKey:
    """A hand keyframe: time, the hand's rest frame pose (4, 4, table frame), finger pose (P, 3)."""

    time: float
    T: np.ndarray
    pose: np.ndarray
    arc: np.ndarray | None = None
    """(3,) peak sideways offset of the segment that ends at this key (a reach that arcs over things)."""


@dataclass(frozen=True)
class Attachment:
    """The hand holds the object from ``grasp_time`` (fingers closed) to ``release_time``.

    Before it the hand's reach ends along the approach (its last ``pregrasp_distance``
    straight in) and the fingers close, over ``close_duration`` (at least ``CLOSE_MIN_S``;
    the object must be still then); after it, it opens and backs off ``pregrasp_distance``
    over ``open_duration``.
    """

    grasp_time: float
    release_time: float
    T_obj_hand: np.ndarray
    grasp_pose: np.ndarray
    open_pose: np.ndarray
    approach_obj: np.ndarray
    """(3,) approach direction in the object's frame."""
    pregrasp_distance: float
    close_duration: float
    open_duration: float
    arc_in: np.ndarray | None = None
    """(3,) peak offset of the reach (table frame)."""


SLIDE_SHARE = 0.7
"""The hand arrives at the grasp this share of the way through the closing (``close_duration``). In a release
(:func:`closing` backwards) the fingers open over the first ``SLIDE_SHARE`` and the hand backs off over the last."""


CLOSE_SHARE = 0.5
"""The fingers close over the closing's last ``CLOSE_SHARE``: as the hand arrives (it is within millimetres of the
grasp by then), not before (half-closed fingers still travelling in sweep into the object)."""
CLOSE_MIN_S = 0.4
"""The closing lasts at least this long, seconds (the fingers close over at least 0.2 s; a plan's shorter
``close_duration`` is lengthened by starting it earlier)."""


def closing(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(offset fraction, finger closure) along a closing motion at progress s (T,) in [0, 1]: the hand slides
    over the first ``SLIDE_SHARE`` (minimum jerk), the fingers close over the last ``SLIDE_SHARE``. The release
    runs it backwards."""
    s = np.asarray(s, np.float64)
    return 1.0 - min_jerk(s / SLIDE_SHARE), min_jerk((s - (1.0 - SLIDE_SHARE)) / SLIDE_SHARE)


def _bump(u: np.ndarray) -> np.ndarray:
    """16 u^2 (1 - u)^2: 0 with zero slope at both ends, 1 at u = 1/2."""
    return 16.0 * u * u * (1.0 - u) ** 2


def _path(p0: np.ndarray, p1: np.ndarray, lead: np.ndarray, straight: float, arc: np.ndarray | None,
          samples: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Points (S, 3) and their arc lengths (S,) of a path from p0 to p1 whose last ``straight`` metres run
    straight along ``lead`` (unit): a cubic Hermite curve to the start of that stretch, tangent to it, its
    middle lifted by ``arc`` (zero with zero slope at both ends)."""
    q = p1 - straight * lead
    d = q - p0
    L = float(np.linalg.norm(d))
    u = np.linspace(0.0, 1.0, samples)
    h00, h10 = 2 * u ** 3 - 3 * u ** 2 + 1, u ** 3 - 2 * u ** 2 + u
    h01, h11 = -2 * u ** 3 + 3 * u ** 2, u ** 3 - u ** 2
    curve = h00[:, None] * p0 + h10[:, None] * d + h01[:, None] * q + h11[:, None] * (L * lead)[None]
    if arc is not None:
        curve = curve + _bump(u)[:, None] * np.asarray(arc, np.float64)[None]
    v = np.linspace(0.0, 1.0, max(2, samples // 4))[1:]
    pts = np.concatenate([curve, q + (v * straight)[:, None] * lead[None]])
    length = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    return pts, length


def reach(times: np.ndarray, t0: float, t1: float, T0: np.ndarray, T1: np.ndarray, lead: np.ndarray,
          straight: float, arc: np.ndarray | None = None) -> np.ndarray:
    """Poses (T, 4, 4) of one reach at ``times``: from rest at ``T0`` (time t0) to rest at ``T1`` (t1).

    One movement, as a person reaches for an object: the distance travelled along the path
    follows a single minimum-jerk profile, so the hand decelerates all the way into the
    grasp instead of stopping short of it and starting again. The path's last ``straight``
    metres run straight in along ``lead`` (unit, table frame: the approach direction), the
    rest is a curve tangent to that stretch (:func:`_path`), over which the hand turns to
    its end orientation.
    """
    lead = np.asarray(lead, np.float64) / max(float(np.linalg.norm(lead)), 1e-12)
    u = min_jerk(phase(times, t0, t1))
    pts, length = _path(T0[:3, 3], T1[:3, 3], lead, straight, arc)
    at = u * length[-1]
    Ts = interp_pose(T0, T1, min_jerk(at / max(length[-1] - straight, 1e-9)))
    Ts[:, :3, 3] = np.stack([np.interp(at, length, pts[:, k]) for k in range(3)], axis=1)
    return Ts


def hand_path(times: np.ndarray, before: list[HandKey], att: Attachment, after: list[HandKey],
              T_table_obj: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poses (T, 4, 4), finger poses (T, P, 3) and phase codes (T,) of one hand.

    ``before``: keys up to the start of the reach (the hand rests at the last one until its
    time); ``after``: keys of the retreat. The hand reaches from the last key
    of ``before`` into the grasp in one movement (:func:`reach`), arriving ``SLIDE_SHARE`` of
    the way through the closing (its last ``pregrasp_distance`` straight along the approach);
    the fingers open on the way and close over the closing's last ``SLIDE_SHARE``. After the
    release the hand opens and backs off along the approach (:func:`closing` backwards), stops
    there and moves on through the keys of ``after``. Phase codes (:data:`PHASES`) by the
    attachment's times.
    """
    n = len(times)
    P = att.grasp_pose.shape[0]
    Ts = np.zeros((n, 4, 4))
    poses = np.zeros((n, P, 3))
    codes = np.zeros(n, np.int8)
    start = before[-1]
    close_duration = min(max(att.close_duration, CLOSE_MIN_S), att.grasp_time - start.time)
    t_pre = att.grasp_time - close_duration
    t_post = att.release_time + att.open_duration
    t_arrive = t_pre + SLIDE_SHARE * close_duration
    i_on = int(np.searchsorted(times, att.grasp_time))
    i_off = int(np.searchsorted(times, att.release_time))
    T_obj_on = T_table_obj[min(i_on, n - 1)]
    T_obj_off = T_table_obj[min(max(i_off - 1, 0), n - 1)]
    on = T_obj_on @ att.T_obj_hand
    back = make_T(None, -att.approach_obj * att.pregrasp_distance)
    post = HandKey(t_post, T_obj_off @ back @ att.T_obj_hand, att.open_pose)
    keys_out = [post, *after]
    going = (times >= start.time) & (times < t_arrive)
    if going.any():
        Ts[going] = reach(times[going], start.time, t_arrive, start.T, on, T_obj_on[:3, :3] @ att.approach_obj,
                          att.pregrasp_distance, att.arc_in)
    for i, t in enumerate(times):  # t_pre >= start.time: the closing never starts before the reach
        if t < start.time:
            Ts[i], poses[i] = _along(before, t)
            codes[i] = PHASES["idle"]
        elif t < t_pre:  # Ts from the reach
            poses[i] = start.pose + (att.open_pose - start.pose) * min_jerk(phase(t, start.time, t_pre))
            codes[i] = PHASES["approach"]
        elif t < att.grasp_time:  # Ts from the reach until the hand arrives
            close = min_jerk((phase(t, t_pre, att.grasp_time) - (1 - CLOSE_SHARE)) / CLOSE_SHARE)
            poses[i] = att.open_pose + (att.grasp_pose - att.open_pose) * close
            if t >= t_arrive:
                Ts[i] = on
            codes[i] = PHASES["grasp"]
        elif t < att.release_time:
            Ts[i] = T_table_obj[i] @ att.T_obj_hand
            poses[i] = att.grasp_pose
            codes[i] = PHASES["hold"]
        elif t < t_post:  # opening and backing off along the approach (a stop at the post-grasp pose)
            off, close = closing(1.0 - phase(t, att.release_time, t_post))
            Ts[i] = T_obj_off @ make_T(None, -att.approach_obj * att.pregrasp_distance * off) @ att.T_obj_hand
            poses[i] = att.open_pose + (att.grasp_pose - att.open_pose) * close
            codes[i] = PHASES["release"]
        else:
            Ts[i], poses[i] = _along(keys_out, t)
            codes[i] = PHASES["retreat"]
    return Ts, poses, codes


PHASES = {"idle": 0, "approach": 1, "grasp": 2, "hold": 3, "release": 4, "retreat": 5}
"""Scripted phase codes of a hand (``gt/hand/{side}/phase``): before moving, travelling to the pre-grasp,
closing in, holding, opening and backing off, retreating."""


def _along(keys: list[HandKey], t: float) -> tuple[np.ndarray, np.ndarray]:
    """Pose and finger pose at time t along minimum-jerk segments between keys."""
    times = [k.time for k in keys]
    k = int(np.searchsorted(times, t, side="right"))
    if k == 0:
        return keys[0].T, keys[0].pose
    if k == len(keys):
        return keys[-1].T, keys[-1].pose
    a, b = keys[k - 1], keys[k]
    s = float(min_jerk(phase(t, a.time, b.time)))
    T = interp_pose(a.T, b.T, np.array([s]))[0]
    if b.arc is not None:
        T[:3, 3] += 4.0 * s * (1.0 - s) * b.arc
    return T, a.pose + (b.pose - a.pose) * s
