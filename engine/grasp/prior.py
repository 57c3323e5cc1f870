"""Human-motion priors of a reach: what the image does not pin down during an approach.

A monocular view pins a hand's position across the viewing ray and its outline,
not its depth; while the hand is still away from the object there is no object
to anchor it either. A motion prior fills the gap: given the frames' times, the
hand's state at the fixed end of the movement (the optimized first contact frame
for an approach, the last contact frame for a retreat) and the current per-frame
estimates, it returns *target trajectories with per-frame weights* for the wrist
position, the hand's orientation and its finger pose. The backward solve
(``completion.py``) adds ``(value - target) / sigma`` residuals for them.

:class:`MinimumJerkPrior` is the default. Flash and Hogan (1985, "The coordination
of arm movements: an experimentally confirmed mathematical model", J. Neurosci.)
observed that unconstrained point-to-point reaches follow nearly straight hand
paths with bell-shaped speed profiles, and that these are the paths that minimize
the integrated squared jerk (third derivative of position) over the movement. With
the hand at rest at both ends, the optimum moves along the straight segment with
progress ``s(tau) = 10 tau^3 - 15 tau^4 + 6 tau^5`` of normalized time ``tau`` in
[0, 1]: zero velocity and acceleration at both ends, symmetric about mid-movement.
The hand's orientation is slerped on the same profile; the fingers open during
the reach and close into the grasp over its last part (the grasp-aperture
profile), a minimum-jerk closure from the approach pose to the grasp pose.

The free end (the start of an approach) is estimated from the current estimates:
given the profile, every trajectory is linear in the free end's state, so it is a
weighted least-squares fit; the movement's duration (reaches need not begin at the
buffer's first frame) is picked from a few candidates by the same fit's residual.
A learned prior implements :class:`MotionPrior` the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation


@dataclass(frozen=True)
class HandState:
    """One hand's state at one instant (camera frame, metres, radians)."""

    wrist: np.ndarray
    """(3,) wrist position (keypoint 0)."""
    orient: np.ndarray
    """(3,) axis-angle of the hand's global rotation."""
    fingers: np.ndarray
    """(P, 3) the hand model's joint rotations (axis-angle)."""


@dataclass(frozen=True)
class PriorTargets:
    """Per-frame targets and their standard deviations (T frames)."""

    wrist: np.ndarray
    """(T, 3) wrist positions."""
    orient: np.ndarray
    """(T, 3) global orientations, axis-angle (the same chart as the estimates)."""
    fingers: np.ndarray
    """(T, P, 3) finger poses."""
    sigma_wrist: np.ndarray
    """(T,) metres."""
    sigma_orient: np.ndarray
    """(T,) radians."""
    sigma_fingers: np.ndarray
    """(T,) radians."""
    progress: np.ndarray
    """(T,) movement progress s in [0, 1] towards the fixed end (1 at the fixed end)."""
    free: HandState
    """The estimated state at the free end."""


class MotionPrior(ABC):
    """A prior over a hand's movement towards (or away from) a fixed state."""

    @abstractmethod
    def targets(self, times: np.ndarray, t_fixed: float, fixed: HandState, current: list[HandState],
                free: HandState | None = None) -> PriorTargets:
        """Targets for frames at ``times`` (T,) of a movement that ends (approach: ``times < t_fixed``)
        or starts (retreat: ``times > t_fixed``) in ``fixed`` at ``t_fixed``.

        ``current`` (T) are the current per-frame estimates (they inform the free end);
        ``free`` fixes the other end instead of estimating it.
        """


def min_jerk(tau: np.ndarray | float) -> np.ndarray:
    """Minimum-jerk progress ``10 tau^3 - 15 tau^4 + 6 tau^5`` of ``tau`` clipped to [0, 1]."""
    t = np.clip(np.asarray(tau, np.float64), 0.0, 1.0)
    return t ** 3 * (10.0 - 15.0 * t + 6.0 * t * t)


def min_jerk_derivatives(tau: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First, second and third derivatives of :func:`min_jerk` with respect to tau (0 outside [0, 1])."""
    t = np.asarray(tau, np.float64)
    inside = (t >= 0.0) & (t <= 1.0)
    d1 = 30.0 * t ** 2 * (1.0 - t) ** 2
    d2 = 60.0 * t * (1.0 - t) * (1.0 - 2.0 * t)
    d3 = 60.0 * (1.0 - 6.0 * t + 6.0 * t * t)
    return np.where(inside, d1, 0.0), np.where(inside, d2, 0.0), np.where(inside, d3, 0.0)


def fit_free_end(values: np.ndarray, fixed: np.ndarray, progress: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The free end ``a`` minimizing ``sum_t w_t |values_t - (fixed + (1 - s_t)(a - fixed))|^2``.

    values (T, D), fixed (D,), progress s (T,), weights (T,) -> (D,). Falls back to the
    weighted mean of the values where the profile carries no information.
    """
    g = 1.0 - progress
    den = float((weights * g * g).sum())
    if den < 1e-9:
        return values.mean(0) if len(values) else fixed.copy()
    return fixed + (weights * g) @ (values - fixed) / den


@dataclass(frozen=True)
class MinimumJerkPrior(MotionPrior):
    """Minimum-jerk wrist path, orientation slerped on its profile, grasp-aperture closure."""

    sigma_wrist: tuple[float, float] = (0.004, 0.03)
    """Wrist std at the fixed end and far from it, metres (grows linearly with 1 - s)."""
    sigma_orient: tuple[float, float] = (0.05, 0.35)
    """Orientation std near / far, radians."""
    sigma_fingers: tuple[float, float] = (0.08, 0.4)
    """Finger pose std near / far, radians."""
    closing_start: float = 0.3
    """Fraction of the movement after which the fingers close into the grasp (Jeannerod's
    peak aperture comes at ~60-70 % of a reach; closure spans the rest)."""
    durations: tuple[float, ...] = (0.4, 0.6, 0.8, 1.0, 1.3, 1.7, 2.2, 3.0)
    """Candidate movement durations, seconds (also the buffer's span); the best fit wins. A reach
    longer than the buffer began before its first frame."""

    def profile(self, times: np.ndarray, t_fixed: float, duration: float) -> np.ndarray:
        """(T,) progress towards the fixed end: 0 before the movement, 1 at ``t_fixed``."""
        tau = 1.0 - np.abs(np.asarray(times, np.float64) - t_fixed) / max(duration, 1e-6)
        return min_jerk(tau)

    def aperture(self, progress_tau: np.ndarray) -> np.ndarray:
        """(T,) finger closure in [0, 1] at normalized time tau (not progress)."""
        c = self.closing_start
        return min_jerk((progress_tau - c) / max(1.0 - c, 1e-6))

    def targets(self, times: np.ndarray, t_fixed: float, fixed: HandState, current: list[HandState],
                free: HandState | None = None) -> PriorTargets:
        times = np.asarray(times, np.float64)
        T = len(times)
        wrists = np.stack([c.wrist for c in current]) if T else np.zeros((0, 3))
        # orientations as rotation vectors relative to the fixed end: R_t = R_fixed exp(w_t)
        R_fix = Rotation.from_rotvec(fixed.orient)
        rel = (R_fix.inv() * Rotation.from_rotvec(np.stack([c.orient for c in current]))).as_rotvec() if T else \
            np.zeros((0, 3))
        fingers = np.stack([c.fingers for c in current]) if T else np.zeros((0, *fixed.fingers.shape))
        span = float(np.abs(times - t_fixed).max()) if T else 0.0
        cands = sorted(set(self.durations) | {max(span, 1e-3)})
        if free is not None:
            cands = [max(span, 1e-3)]
        weights = np.ones(T)
        best = None
        for d in cands:
            s = self.profile(times, t_fixed, d)
            a = free.wrist if free is not None else fit_free_end(wrists, fixed.wrist, s, weights)
            pred = fixed.wrist + (1.0 - s)[:, None] * (a - fixed.wrist)
            err = float((weights * ((wrists - pred) ** 2).sum(-1)).sum())
            if best is None or err < best[0] - 1e-12:
                best = (err, d, s, a)
        _, duration, s, a_wrist = best
        tau = np.clip(1.0 - np.abs(times - t_fixed) / duration, 0.0, 1.0)
        closure = self.aperture(tau)
        if free is not None:
            a_rel = (R_fix.inv() * Rotation.from_rotvec(free.orient)).as_rotvec()
            a_fingers = free.fingers
        else:
            a_rel = fit_free_end(rel, np.zeros(3), s, weights)
            a_fingers = fit_free_end(fingers.reshape(T, -1), fixed.fingers.reshape(-1), closure,
                                     weights).reshape(fixed.fingers.shape)
        wrist_t = fixed.wrist + (1.0 - s)[:, None] * (a_wrist - fixed.wrist)
        orient_t = (R_fix * Rotation.from_rotvec((1.0 - s)[:, None] * a_rel)).as_rotvec() if T else np.zeros((0, 3))
        # keep each target in the estimate's axis-angle chart (a rotation has two vectors near angle pi)
        if T:
            orient_t = _nearest_chart(orient_t, np.stack([c.orient for c in current]))
        fingers_t = fixed.fingers + (1.0 - closure)[:, None, None] * (a_fingers - fixed.fingers)
        far = 1.0 - s

        def sig(pair: tuple[float, float]) -> np.ndarray:
            return pair[0] + (pair[1] - pair[0]) * far

        a_orient = (R_fix * Rotation.from_rotvec(a_rel)).as_rotvec()
        return PriorTargets(wrist_t, orient_t, fingers_t, sig(self.sigma_wrist), sig(self.sigma_orient),
                            sig(self.sigma_fingers), s, HandState(a_wrist, a_orient, a_fingers))


def _nearest_chart(target: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Rotation vectors equal to ``target`` as rotations, chosen nearest to ``ref`` (both (T, 3))."""
    angle = np.linalg.norm(target, axis=-1, keepdims=True)
    axis = target / np.maximum(angle, 1e-12)
    alt = target - 2.0 * np.pi * axis  # the same rotation, the other way round
    use_alt = np.linalg.norm(alt - ref, axis=-1) < np.linalg.norm(target - ref, axis=-1)
    return np.where(use_alt[:, None] & (angle > 1e-6), alt, target)


def make_prior(name: str) -> MotionPrior:
    """The prior named in ``GraspConfig.prior``."""
    if name == "minimum_jerk":
        return MinimumJerkPrior()
    raise ValueError(f"unknown grasp prior '{name}' (choose minimum_jerk)")
