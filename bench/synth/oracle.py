"""Oracle perception for synthetic scenes: the ground truth seen through a realistic, seeded noise model.

When the optimizer (window, contact, grasp completion) is measured on synthetic
scenes, this module stands in for the detectors: it turns a ground-truth store
into what perception would have delivered, with the errors perception makes,
each configurable (:class:`OracleConfig`) and drawn from one seed:

* **2D keypoints**: i.i.d. jitter (pixels plus a fraction of the hand's size), a
  temporally correlated bias per keypoint (Ornstein-Uhlenbeck), more noise and
  lower confidence for keypoints hidden by the object or the hand itself, and
  outliers (a keypoint thrown a large distance, often with a confident score);
* **missed detections**: bursts of frames without a hand (a Markov chain), and
  always when too little of the hand is visible;
* **hand depth**: a multiplicative scale error correlated over time (a log-normal
  Ornstein-Uhlenbeck process) applied about the camera centre to the hand's 3D
  estimate -- the monocular scale ambiguity: the 2D projection is unchanged, the
  hand is larger and further (or smaller and nearer);
* **handedness**: rare bursts in which a hand is reported as the other side;
* **object pose**: correlated rotation noise and translation noise larger along
  the viewing ray than across it, missed frames when the object is hidden.

Outputs use the engine's field names (``hand/{side}/keypoints2d``,
``keypoints3d_rel``, ``presence``, ``valid``, ``pose``, ``betas``, ``transl``,
``joints``; ``object/valid``, ``T_cam_obj``, ``score``), per frame
(:meth:`Oracle.frame_fields`), as a store (:meth:`Oracle.write_store`), as the
hand detector's ``HandFrame`` (:meth:`Oracle.hand_frame`, :class:`OracleHandStage`
replaces the detector stage) and as an object-pose file for ``--object-poses``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inscene.engine.errors import InputError

SIDES = ("right", "left")


@dataclass(frozen=True)
class OracleConfig:
    """The noise model; all standard deviations, rates per frame, times in seconds."""

    kp_noise_px: float = 1.0
    """i.i.d. 2D keypoint jitter, pixels."""
    kp_noise_rel: float = 0.01
    """Extra jitter as a fraction of the hand's 2D size (bounding-box diagonal)."""
    kp_bias_px: float = 1.0
    """Temporally correlated 2D bias per keypoint, pixels."""
    kp_bias_rel: float = 0.01
    """Extra bias as a fraction of the hand's 2D size."""
    kp_bias_tau: float = 0.4
    """Correlation time of that bias."""
    occluded_factor: float = 2.5
    """Noise multiplier of keypoints hidden in the ground truth."""
    outlier_rate: float = 0.02
    """Probability that a keypoint is an outlier."""
    outlier_size: tuple[float, float] = (0.25, 0.8)
    """Outlier displacement as a fraction of the hand's 2D size."""
    miss_rate: float = 0.02
    """Probability per frame that a missed-detection burst starts."""
    miss_burst: float = 3.0
    """Mean length of a burst, frames."""
    min_visible: float = 0.2
    """A hand less visible than this (share of its pixels) is not detected."""
    depth_sigma: float = 0.08
    """Std of the log depth-scale error of the hand's 3D estimate."""
    depth_tau: float = 1.5
    """Correlation time of that error."""
    swap_rate: float = 0.004
    """Probability per frame that a handedness-swap burst starts."""
    swap_burst: float = 4.0
    """Mean length of a swap burst, frames."""
    rel3d_noise_m: float = 0.004
    """Noise of the relative 3D keypoints, metres."""
    rot_noise: float = 0.06
    """Noise of the hand's global rotation, radians per axis."""
    pose_noise: float = 0.10
    """Noise of each joint rotation, radians per axis."""
    obj_rot_deg: float = 2.0
    """Object rotation noise, degrees per axis (correlated)."""
    obj_trans_m: float = 0.003
    """Object translation noise across the viewing ray, metres (correlated)."""
    obj_depth_m: float = 0.008
    """Object translation noise along the viewing ray, metres (correlated)."""
    obj_tau: float = 0.3
    """Correlation time of the object noise."""
    obj_miss_rate: float = 0.01
    """Probability per frame that the object tracker misses (bursts of ``miss_burst``)."""
    obj_min_visible: float = 0.15
    """The object is not tracked when less of it is visible."""

    def scaled(self, factor: float) -> OracleConfig:
        """Every noise and rate multiplied by ``factor`` (0: perfect perception; visibility thresholds kept)."""
        keep = {"kp_bias_tau", "depth_tau", "obj_tau", "miss_burst", "swap_burst", "min_visible",
                "obj_min_visible", "outlier_size", "occluded_factor"}
        return dataclasses.replace(self, **{f.name: getattr(self, f.name) * factor
                                            for f in dataclasses.fields(self) if f.name not in keep})


ORACLE_LEVELS = {"clean": OracleConfig().scaled(0.0), "realistic": OracleConfig(), "hard": OracleConfig().scaled(2.0)}
"""Named noise levels."""


def oracle_config(level: str) -> OracleConfig:
    if level not in ORACLE_LEVELS:
        raise InputError(f"oracle level '{level}'", "unknown noise level", f"use one of {', '.join(ORACLE_LEVELS)}")
    return ORACLE_LEVELS[level]


def ou_process(rng: np.random.Generator, n: int, shape: tuple[int, ...], sigma: float, tau: float,
               dt: float) -> np.ndarray:
    """(n, *shape) stationary Ornstein-Uhlenbeck samples of std ``sigma`` and correlation time ``tau``."""
    rho = float(np.exp(-dt / max(tau, 1e-9)))
    eps = rng.standard_normal((n, *shape))
    out = np.empty((n, *shape))
    out[0] = sigma * eps[0]
    for i in range(1, n):
        out[i] = rho * out[i - 1] + sigma * np.sqrt(1 - rho * rho) * eps[i]
    return out


def bursts(rng: np.random.Generator, n: int, rate: float, mean_length: float) -> np.ndarray:
    """(n,) bool: a two-state Markov chain entering bursts at ``rate`` per frame, of mean length ``mean_length``."""
    out = np.zeros(n, bool)
    stay = 1.0 - 1.0 / max(mean_length, 1.0)
    on = False
    u = rng.random((n, 2))
    for i in range(n):
        on = u[i, 0] < stay if on else u[i, 1] < rate
        out[i] = on
    return out


@dataclass
class Truth:
    """What the oracle reads from a ground-truth store (T frames)."""

    K: np.ndarray
    fps: float
    size: tuple[int, int]
    hands: dict[str, dict[str, np.ndarray]]
    """side -> {joints (T,21,3), pose (T,J,3), betas (T,S), transl (T,3), kp_visible (T,21), visible (T,)}."""
    T_cam_obj: np.ndarray
    obj_visible: np.ndarray
    hand_model: str

    @classmethod
    def from_store(cls, path: str | Path) -> Truth:
        from inscene.engine import open_result

        r = open_result(path)
        if "synth" not in r.attrs:
            raise InputError(str(path), "not a synthetic ground-truth store", "make one with 'inscene synth'")
        hands = {}
        for side in SIDES:
            if f"hand/{side}/joints" not in r.fields:
                continue
            g = f"gt/hand/{side}/"
            hands[side] = {"joints": r.array(f"hand/{side}/joints").astype(np.float64),
                           "pose": r.array(f"hand/{side}/pose").astype(np.float64),
                           "betas": r.array(f"hand/{side}/betas").astype(np.float64),
                           "transl": r.array(f"hand/{side}/transl").astype(np.float64),
                           "kp_visible": r.array(g + "keypoints_visible"),
                           "visible": np.nan_to_num(r.array(g + "visible_fraction"))}
        src = r.attrs["source"]
        return cls(r.K, float(src["fps"]), tuple(src["size"]), hands, r.array("object/T_cam_obj"),
                   np.nan_to_num(r.array("gt/object/visible_fraction")), r.attrs["hand_model"]["kind"])


class Oracle:
    """Noisy perception of one ground-truth scene: ``Oracle.from_store(gt.zarr, config, seed)``.

    Everything is drawn once at construction (the correlated processes run over
    the whole clip), so frames can be read in any order and repeat exactly.
    """

    def __init__(self, truth: Truth, config: OracleConfig | None = None, seed: int = 0,
                 models: dict | None = None) -> None:
        self.truth = truth
        self.config = config or OracleConfig()
        self.seed = int(seed)
        self._models = models
        self.n_frames = len(truth.T_cam_obj)
        self.hands: dict[str, dict[str, np.ndarray]] = {}
        """reported side -> fields (T, ...) under the engine's names (without the ``hand/side/`` prefix)."""
        self.flags: dict[str, dict[str, np.ndarray]] = {}
        """true side -> {missed, swapped (T,) bool, depth_scale (T,)}."""
        self._observe_hands()
        self.object = self._observe_object()

    @classmethod
    def from_store(cls, path: str | Path, config: OracleConfig | None = None, seed: int = 0,
                   models: dict | None = None) -> Oracle:
        return cls(Truth.from_store(path), config, seed, models)

    # ---------------------------------------------------------------- hands
    def _model(self, side: str):
        """The hand model of ``side`` (the store's kind), loaded on first use unless given."""
        if self._models is None:
            self._models = {}
        if side not in self._models:
            from inscene.models.hands import load_hand_model

            self._models[side] = load_hand_model(self.truth.hand_model, side=side)
        return self._models[side]

    def _observe_one(self, side: str, gt: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        c, K, T = self.config, self.truth.K, self.n_frames
        dt = 1.0 / self.truth.fps
        rs = np.random.default_rng([self.seed, 11, SIDES.index(side)])
        joints = gt["joints"]
        uv = (joints @ K.T)[..., :2] / joints[..., 2:3]
        size = np.linalg.norm(uv.max(1) - uv.min(1), axis=1)
        vis = gt["kp_visible"].astype(bool)
        factor = np.where(vis, 1.0, c.occluded_factor)[..., None]
        jitter = rs.standard_normal((T, 21, 2)) * (c.kp_noise_px + c.kp_noise_rel * size)[:, None, None]
        bias = ou_process(rs, T, (21, 2), 1.0, c.kp_bias_tau, dt) * (c.kp_bias_px + c.kp_bias_rel * size)[:, None, None]
        out_mask = rs.random((T, 21)) < c.outlier_rate
        ang = rs.uniform(0, 2 * np.pi, (T, 21))
        mag = rs.uniform(*c.outlier_size, (T, 21)) * size[:, None]
        noisy = uv + (jitter + bias) * factor
        noisy += (out_mask * mag)[..., None] * np.stack([np.cos(ang), np.sin(ang)], -1)
        conf = np.where(vis, rs.uniform(0.75, 1.0, (T, 21)), rs.uniform(0.25, 0.6, (T, 21)))
        conf = np.where(out_mask, rs.uniform(0.3, 0.9, (T, 21)), conf)
        log_s = ou_process(rs, T, (), c.depth_sigma, c.depth_tau, dt)
        scale = np.exp(log_s)
        rel = (joints - joints[:, :1]) * scale[:, None, None] + rs.standard_normal((T, 21, 3)) * c.rel3d_noise_m
        pose = gt["pose"].copy()
        pose[:, 0] += rs.standard_normal((T, 3)) * c.rot_noise
        pose[:, 1:] += rs.standard_normal(pose[:, 1:].shape) * c.pose_noise
        model = self._model(side)
        dtp = model.dtype
        betas = gt["betas"].copy()
        with torch.no_grad():
            _, rest_j = model.rest(torch.as_tensor(betas, dtype=dtp))
        j0 = rest_j[:, 0].double().numpy()
        transl = scale[:, None] * (gt["transl"] + j0) - j0  # the hand scaled about the camera centre
        if model.log_scale:
            betas[:, 0] += log_s
        with torch.no_grad():
            est = model(torch.as_tensor(pose[:, 0], dtype=dtp), torch.as_tensor(pose[:, 1:], dtype=dtp),
                        torch.as_tensor(betas, dtype=dtp),
                        torch.as_tensor(transl if model.log_scale else gt["transl"], dtype=dtp), with_vertices=False)
        est_kp = est.keypoints.double().numpy()
        if not model.log_scale:  # no size parameter (MANO): scale the keypoints about the camera centre
            est_kp = scale[:, None, None] * est_kp
        missed = bursts(rs, T, c.miss_rate, c.miss_burst) | (gt["visible"] < c.min_visible)
        swapped = bursts(rs, T, c.swap_rate, c.swap_burst)
        self.flags[side] = {"missed": missed, "swapped": swapped, "depth_scale": scale}
        return {"keypoints2d": np.concatenate([noisy, conf[..., None]], -1).astype(np.float32),
                "keypoints3d_rel": rel.astype(np.float32), "presence": rs.uniform(0.8, 1.0, T).astype(np.float32),
                "valid": ~missed, "pose": pose.astype(np.float32), "betas": betas.astype(np.float32),
                "transl": transl.astype(np.float32), "joints": est_kp.astype(np.float32), "_size": size,
                "_visible": gt["visible"]}

    def _observe_hands(self) -> None:
        T = self.n_frames
        raw = {side: self._observe_one(side, gt) for side, gt in self.truth.hands.items()}
        some = next(iter(raw.values()))
        blank = {k: np.full_like(v, np.nan, dtype=np.float32) for k, v in some.items()
                 if k not in ("valid", "_size", "_visible")}
        for side in SIDES:
            self.hands[side] = {**{k: v.copy() for k, v in blank.items()}, "valid": np.zeros(T, bool)}
        best = {side: np.full(T, -1.0) for side in SIDES}
        for side, obs in raw.items():
            fl = self.flags[side]
            for i in np.flatnonzero(~fl["missed"]):
                out = SIDES[1 - SIDES.index(side)] if fl["swapped"][i] else side
                if obs["_visible"][i] <= best[out][i]:
                    continue  # two detections claim one side: the more visible wins
                best[out][i] = obs["_visible"][i]
                dst = self.hands[out]
                for k in ("keypoints2d", "keypoints3d_rel", "presence"):
                    dst[k][i] = obs[k][i]
                fitted = not fl["swapped"][i]  # a swapped detection's model fit is the engine's business
                dst["valid"][i] = fitted
                for k in ("pose", "betas", "transl", "joints"):
                    dst[k][i] = obs[k][i] if fitted else np.nan

    # ---------------------------------------------------------------- object
    def _observe_object(self) -> dict[str, np.ndarray]:
        from scipy.spatial.transform import Rotation

        c, T = self.config, self.n_frames
        dt = 1.0 / self.truth.fps
        ro = np.random.default_rng([self.seed, 12])
        rot = ou_process(ro, T, (3,), np.radians(c.obj_rot_deg), c.obj_tau, dt)
        lat = ou_process(ro, T, (2,), c.obj_trans_m, c.obj_tau, dt)
        dep = ou_process(ro, T, (), c.obj_depth_m, c.obj_tau, dt)
        Tt = self.truth.T_cam_obj
        ray = Tt[:, :3, 3] / np.linalg.norm(Tt[:, :3, 3], axis=1, keepdims=True)
        e1 = np.cross(ray, [0.0, 1.0, 0.0])
        e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
        e2 = np.cross(ray, e1)
        out = Tt.copy()
        out[:, :3, :3] = Rotation.from_rotvec(rot).as_matrix() @ Tt[:, :3, :3]
        out[:, :3, 3] += e1 * lat[:, :1] + e2 * lat[:, 1:] + ray * dep[:, None]
        missed = bursts(ro, T, c.obj_miss_rate, c.miss_burst) | (self.truth.obj_visible < c.obj_min_visible)
        err = np.degrees(np.linalg.norm(rot, axis=1)) / 5.0 + np.linalg.norm(out[:, :3, 3] - Tt[:, :3, 3], axis=1) / 0.02
        score = np.where(missed, np.nan, np.exp(-err) * ro.uniform(0.85, 1.0, T)).astype(np.float32)
        out[missed] = np.nan
        return {"valid": ~missed, "T_cam_obj": out, "score": score}

    # ---------------------------------------------------------------- outputs
    def frame_fields(self, i: int) -> dict[str, np.ndarray]:
        """Store path -> value of frame ``i`` (the engine's perception fields)."""
        out: dict[str, Any] = {}
        for side, f in self.hands.items():
            for k, v in f.items():
                out[f"hand/{side}/{k}"] = v[i]
        for k, v in self.object.items():
            out[f"object/{k}"] = v[i]
        return out
