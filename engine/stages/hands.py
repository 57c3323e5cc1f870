"""The hand stages: detect and track hands (2D keypoints), then fit the hand model per frame.

Two stages, so the pipeline overlaps them (each runs in its own thread):

- :class:`HandDetectStage` (``hands2d``): the hand detector in tracking mode
  (:class:`~inscene.models.detector.HandDetector`); writes per side the 2D
  keypoints with confidence, the detector's relative 3D keypoints and the hand
  presence.
- :class:`HandFitStage` (``hands_fit``): the per-frame fit of the hand model
  (:func:`inscene.models.hands.fit_frames`) to those keypoints, warm-started from
  the side's last fit while the same hand continues (the detector's track, or a new
  track where that fit was); writes per side ``valid``,
  ``pose``, ``betas``, ``transl``, ``joints`` and the fit's reprojection error.

:func:`hand_stages` builds both from the run config (wire it in ``compose``).
A side without a hand in a frame is written as ``valid = False`` and NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from inscene.models.detector.nms import iou

from ..config import HandsConfig, RunConfig
from ..frame import Packet
from ..stage import RunContext, Stage
from ..store.schema import ArraySpec

if TYPE_CHECKING:
    from inscene.models.detector import HandFrame
    from inscene.models.hands import FitResult

SIDES = ("right", "left")
_NAN21 = np.full((21, 3), np.nan, np.float32)


HandStageConfig = HandsConfig
"""The hand stages read ``RunConfig.hands`` (kept under this name for callers)."""


def _spec(side: str, name: str, shape: tuple[int, ...], dims: tuple[str, ...], doc: str, dtype: str = "float32",
          fill: float | bool = np.nan) -> ArraySpec:
    return ArraySpec(f"hand/{side}/{name}", dtype, shape, ("time", *dims), fill, doc=f"{side} hand: {doc}")


class HandDetectStage(Stage):
    """Hand detection and tracking: frame -> ``hands2d`` (a ``HandFrame``) and per-side keypoint fields."""

    name = "hands2d"
    consumes = ("frame",)
    produces = ("hands2d",)

    def __init__(self, config: HandStageConfig | None = None) -> None:
        from inscene.models.detector import DetectorConfig, HandDetector
        from inscene.models.runtime import RuntimeConfig

        self.config = config or HandStageConfig()
        c = self.config
        self.history = c.detector_history
        det = DetectorConfig(max_hands=c.max_hands, search_interval=c.search_interval, mirrored=c.mirrored,
                             runtime=RuntimeConfig(provider=c.provider, threads=c.threads))
        # Loaded here, not in setup: missing weights or an unavailable provider stop the
        # run before the first frame with one line saying what to do.
        self.detector = HandDetector(det)
        self.backend = self.detector.networks.label
        """What runs the networks, e.g. ``onnxruntime:CPUExecutionProvider``."""
        self.palm_frames = 0
        self.frames = 0

    def fields(self) -> list[ArraySpec]:
        out = []
        for s in SIDES:
            out += [
                _spec(s, "keypoints2d", (21, 3), ("joint", "uv_conf"), "detected keypoints: x, y pixels, confidence"),
                _spec(s, "keypoints3d_rel", (21, 3), ("joint", "xyz"),
                      "detector's relative 3D keypoints, metres, hand-centred, camera axes"),
                _spec(s, "presence", (), (), "detector's hand-presence probability (NaN: no hand)"),
            ]
        return out

    def process(self, packet: Packet) -> list[Packet]:
        frame = self.detector.track(packet.frame.image)
        self.frames += 1
        self.palm_frames += int(frame.palm_ran)
        packet.data["hands2d"] = frame
        found = frame.by_side()
        for s in SIDES:
            h = found.get(s)
            packet.fields[f"hand/{s}/keypoints2d"] = h.keypoints2d() if h is not None else _NAN21
            packet.fields[f"hand/{s}/keypoints3d_rel"] = h.world.astype(np.float32) if h is not None else _NAN21
            packet.fields[f"hand/{s}/presence"] = np.float32(h.presence if h is not None else np.nan)
        return [packet]

    def close(self) -> None:
        self.detector.close()


WARM_IOU = 0.3
"""Keypoint-box overlap at which a new detection continues a side's last fit."""
WARM_GAP = 2
"""Frames without that side's hand after which its last fit no longer starts the next."""


@dataclass(frozen=True)
class _LastFit:
    frame: int
    track_id: int
    bbox: np.ndarray
    params: Any


class HandFitStage(Stage):
    """Per-frame hand-model fit: ``hands2d`` -> ``hands_fit`` and per-side parameter fields.

    The hand models (anny's hand, or MANO when configured) are loaded at
    construction, so the store's shapes (pose joints, shape parameters) are known.
    """

    name = "hands_fit"
    consumes = ("hands2d",)
    produces = ("hands_fit",)
    history = 1
    needs_image = False

    def __init__(self, run: RunConfig, config: HandStageConfig | None = None, prefix: str = "") -> None:
        from inscene.models.hands import FitConfig, load_hand_models

        self.config = config or run.hands
        self.prefix = prefix
        """Written under ``hand/{side}/{prefix}``: ``"init/"`` when the window refines the fit."""
        self.models = load_hand_models(run.hands.model, run.hands.mano_dir)
        m = self.models["right"]
        self.num_pose = 1 + int(m.num_pose_joints)
        self.num_betas = int(m.num_betas)
        self.fit_config = FitConfig()
        self._K: Any = None
        self._frame = -1
        self._last: dict[str, _LastFit] = {}  # side -> that side's most recent fit

    def fields(self) -> list[ArraySpec]:
        out = []
        m = self.models["right"]
        pre = self.prefix
        for s in SIDES:
            out += [
                _spec(s, pre + "valid", (), (), "a hand was detected and fitted", "bool", False),
                _spec(s, pre + "pose", (self.num_pose, 3), ("pose_joint", "axis_angle"),
                      f"{m.name} pose, axis-angle: global rotation then {self.num_pose - 1} joints"),
                _spec(s, pre + "betas", (self.num_betas,), ("beta",), f"{m.name} shape parameters, per-frame estimate"),
                _spec(s, pre + "transl", (3,), ("xyz",), "hand model translation, camera frame, metres"),
                _spec(s, pre + "joints", (21, 3), ("joint", "xyz"), "fitted 21 keypoints, camera frame, metres"),
                _spec(s, pre + "fit_error_px", (), (), "median reprojection error of the fit, pixels"),
            ]
        return out

    def setup(self, ctx: RunContext) -> None:
        import torch

        from inscene.models.hands.fitting import warmup

        if self.config.fit_threads > 0:
            torch.set_num_threads(self.config.fit_threads)
        self._K = torch.as_tensor(np.asarray(ctx.K), dtype=torch.float32)
        for m in self.models.values():  # the first fits' one-off costs here, not in the stream's first frame
            warmup(m, self._K, self.fit_config, self.config.use_landmarks3d)

    def reset(self) -> None:
        """Forget the previous frame (the next fit starts cold)."""
        self._last = {}

    def fit_frame(self, frame: HandFrame, K: np.ndarray | None = None) -> dict[str, FitResult]:
        """Fit the hands of one ``HandFrame``; returns side -> ``FitResult`` (batch 1).

        Warm-starts a side from its most recent fit when that is the same hand (see
        :meth:`_continues`), else starts cold (a cold fit costs ~6x a warm one).
        """
        import torch

        from inscene.models.hands import fit_frames

        K = self._K if K is None else torch.as_tensor(np.asarray(K), dtype=torch.float32)
        self._frame += 1
        self._last = {s: f for s, f in self._last.items() if self._frame - f.frame <= WARM_GAP + 1}
        hands = frame.by_side()
        if not hands:
            return {}
        sides = list(hands)
        kp = torch.from_numpy(np.stack([hands[s].keypoints2d()[:, :2] for s in sides])[None]).float()
        conf = torch.from_numpy(np.stack([hands[s].confidence for s in sides])[None]).float()
        lm = None
        if self.config.use_landmarks3d:
            lm = torch.from_numpy(np.stack([hands[s].world for s in sides])[None]).float()
        init = [self._last[s].params if self._continues(s, hands[s]) else None for s in sides]
        results = fit_frames(self.models, kp, conf, K, sides, landmarks3d=lm,
                             init=init if any(i is not None for i in init) else None, config=self.fit_config)
        out = dict(zip(sides, results))
        for s in sides:
            self._last[s] = _LastFit(self._frame, hands[s].track_id, hands[s].bbox(), out[s].params)
        return out

    def _continues(self, side: str, hand: Any) -> bool:
        """Is ``hand`` the hand of ``side``'s most recent fit (so that fit can start this one)?

        Yes when the detector's track continues, or -- the detector starts a new track
        whenever it re-finds a hand with its palm search (a frame or two of low landmark
        presence, a hand entering the image) -- when the new detection's keypoint box
        overlaps that fit's box (IoU >= ``WARM_IOU``) no more than ``WARM_GAP`` frames later.
        """
        last = self._last.get(side)
        if last is None:
            return False
        if last.track_id == hand.track_id and last.frame == self._frame - 1:
            return True
        return bool(iou(hand.bbox(), last.bbox[None])[0] >= WARM_IOU)

    def process(self, packet: Packet) -> list[Packet]:
        fits = self.fit_frame(packet.data["hands2d"])
        packet.data["hands_fit"] = fits
        for s in SIDES:
            r = fits.get(s)
            h = f"hand/{s}/{self.prefix}"
            if r is None:
                packet.fields[h + "valid"] = np.bool_(False)
                packet.fields[h + "pose"] = np.full((self.num_pose, 3), np.nan, np.float32)
                packet.fields[h + "betas"] = np.full(self.num_betas, np.nan, np.float32)
                packet.fields[h + "transl"] = np.full(3, np.nan, np.float32)
                packet.fields[h + "joints"] = _NAN21
                packet.fields[h + "fit_error_px"] = np.float32(np.nan)
                continue
            p = r.params
            pose = np.concatenate([p.global_orient[0:1].numpy(), p.hand_pose[0].numpy()], axis=0)
            ok = bool(np.isfinite(pose).all() and np.isfinite(r.keypoints[0].numpy()).all())
            packet.fields[h + "valid"] = np.bool_(ok)
            packet.fields[h + "pose"] = pose.astype(np.float32)
            packet.fields[h + "betas"] = p.betas[0].numpy().astype(np.float32)
            packet.fields[h + "transl"] = p.transl[0].numpy().astype(np.float32)
            packet.fields[h + "joints"] = r.keypoints[0].numpy().astype(np.float32)
            packet.fields[h + "fit_error_px"] = np.float32(r.reprojection_px[0].median().item())
        return [packet]


def hand_stages(run: RunConfig, ctx: RunContext | None = None, config: HandStageConfig | None = None) -> list[Stage]:
    """The detector and fit stages for ``compose`` (``ctx`` is unused; the fit reads K at setup).

    With the window on, the per-frame fit writes its values under ``hand/{side}/init/``.
    """
    config = config or run.hands
    prefix = "init/" if run.window.enabled else ""
    fit: Stage = HandFitStage(run, config, prefix=prefix)
    if run.engine.workers:
        from ..worker import WorkerStage

        fit = WorkerStage(fit, HandFitStage, run, config, prefix)
    return [HandDetectStage(config), fit]
