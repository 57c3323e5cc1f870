"""The hand detector: palm detection, landmarks, and tracking by re-cropping.

Per frame, hands already tracked are cropped where the previous frame's
landmarks put them (:func:`~.rects.rect_from_landmarks`) and go through the
landmark network only; a hand whose presence drops below the threshold is lost.
Palm detection runs only when needed:

- no hand is tracked, or a track was lost in this frame (re-detect at once);
- fewer than ``max_hands`` are tracked and ``search_interval`` frames have passed
  since the last palm detection (a second hand may have appeared);
- always, in static mode (:meth:`HandDetector.detect`).

Palms that fall on a tracked hand are ignored; the others start new tracks
(landmarks from the palm's rectangle in the same frame). Two tracks that end up
on the same hand are merged (the older one stays). Handedness is voted over
time per track (:mod:`.handedness`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from inscene.models.runtime import RuntimeConfig

from .handedness import HandednessVote, assign_sides
from .imaging import check_image
from .inference import HandNetworks
from .landmarks import HandLandmarks
from .nms import iou
from .palm import PalmConfig
from .rects import HandRect, rect_from_landmarks, rect_from_palm


@dataclass(frozen=True)
class DetectorConfig:
    """Settings of the hand detector and tracker."""

    max_hands: int = 2
    """Hands tracked at most."""
    presence_threshold: float = 0.5
    """Landmark crops below this hand-presence probability are dropped (track lost)."""
    search_interval: int = 10
    """While fewer than ``max_hands`` are tracked, palm detection runs every this many frames."""
    palm: PalmConfig = field(default_factory=PalmConfig)
    """Palm decoding (score threshold, NMS)."""
    distinct_sides: bool = True
    """Two tracked hands get different handedness labels (one person's hands)."""
    handedness_decay: float = 0.95
    """Per-frame forgetting of the handedness evidence."""
    duplicate_iou: float = 0.5
    """Two tracks whose landmark boxes overlap more than this are one hand."""
    covered_fraction: float = 0.5
    """A palm whose box lies more than this much inside a tracked hand is that hand."""
    outside_confidence: float = 0.25
    """Confidence factor of keypoints predicted outside the frame."""
    refine_static: bool = True
    """In static mode, run the landmarks a second time on the crop their first pass gives."""
    mirrored: bool = False
    """Frames are mirrored (selfie view): flips handedness."""
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    """Backend preference for both networks."""


@dataclass
class Hand:
    """One detected hand in one frame.

    Attributes:
        track_id: stable id while the hand is tracked.
        side: ``right`` or ``left`` (temporal vote).
        p_right: probability of a right hand from the vote.
        keypoints: (21, 3) image pixels x, y and relative depth z (pixels, wrist ~0, smaller nearer).
        confidence: (21,) per-keypoint confidence in [0, 1].
        world: (21, 3) metres, hand-centred, camera axes.
        presence: hand-presence probability of the crop.
        rect: the crop the landmarks came from.
        from_palm: the crop came from a palm detection in this frame (not from tracking).
    """

    track_id: int
    side: str
    p_right: float
    keypoints: np.ndarray
    confidence: np.ndarray
    world: np.ndarray
    presence: float
    rect: HandRect
    from_palm: bool

    def keypoints2d(self) -> np.ndarray:
        """(21, 3) as stored: x, y pixels and confidence, in the project's pixel convention
        (pixel centres at integer coordinates, as ``K`` and the rasterizer use); ``keypoints``
        keeps the detector's continuous coordinates (centres at +0.5)."""
        xy = self.keypoints[:, :2] - 0.5
        return np.concatenate([xy, self.confidence[:, None]], axis=1).astype(np.float32)

    def bbox(self) -> np.ndarray:
        """(4,) bounds of the keypoints (x0, y0, x1, y1)."""
        return _bbox(self.keypoints)


@dataclass
class HandFrame:
    """The detector's result for one frame.

    Attributes:
        hands: hands found (at most ``max_hands``), by track id.
        palm_ran: palm detection ran on this frame.
        palms: palms found when it ran.
        ms: milliseconds per step (``palm_*``, ``landmark_*``, ``total``).
    """

    hands: list[Hand]
    palm_ran: bool
    palms: int = 0
    ms: dict[str, float] = field(default_factory=dict)

    def by_side(self) -> dict[str, Hand]:
        """``{"right": hand, "left": hand}`` for the sides present (the more present hand per side)."""
        out: dict[str, Hand] = {}
        for h in sorted(self.hands, key=lambda h: -h.presence):
            out.setdefault(h.side, h)
        return out


def _bbox(points: np.ndarray) -> np.ndarray:
    return np.array([points[:, 0].min(), points[:, 1].min(), points[:, 0].max(), points[:, 1].max()],
                    dtype=np.float32)


@dataclass
class _Track:
    id: int
    rect: HandRect
    vote: HandednessVote
    hand: Hand | None = None


class HandDetector:
    """Hands in images (:meth:`detect`) and video (:meth:`track`); see the module doc.

    Args:
        config: detector settings.
        networks: loaded networks to share (default: loaded from the cache per ``config.runtime``).
    """

    def __init__(self, config: DetectorConfig | None = None, networks: HandNetworks | None = None) -> None:
        self.config = config or DetectorConfig()
        self.networks = networks or HandNetworks(self.config.runtime, self.config.palm, self.config.mirrored)
        self.reset()

    def reset(self) -> None:
        """Forget all tracks (next :meth:`track` starts with palm detection)."""
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._frame = -1
        self._last_palm = -10**9

    def detect(self, image: np.ndarray) -> HandFrame:
        """Hands in a single image (static mode: palm detection, no memory of earlier calls)."""
        self.reset()
        frame = self._step(image, static=True)
        self.reset()
        return frame

    def track(self, image: np.ndarray) -> HandFrame:
        """Hands in the next frame of a video (tracking mode)."""
        return self._step(image, static=False)

    # -- one frame -------------------------------------------------------------

    def _step(self, image: np.ndarray, static: bool) -> HandFrame:
        t0 = time.perf_counter()
        cfg = self.config
        image = check_image(image)
        self._frame += 1
        self.networks.times.ms.clear()
        lost = False
        if self._tracks:
            lm = self.networks.landmarks(image, [t.rect for t in self._tracks])
            kept = []
            for i, t in enumerate(self._tracks):
                if lm.presence[i] >= cfg.presence_threshold:
                    self._observe(t, image, lm, i, from_palm=False)
                    kept.append(t)
                else:
                    lost = True
            self._tracks = self._dedupe(kept)
        n_palms = 0
        run_palm = static or not self._tracks or lost or (
            len(self._tracks) < cfg.max_hands and self._frame - self._last_palm >= cfg.search_interval)
        if run_palm:
            self._last_palm = self._frame
            palms = self.networks.palms(image)
            n_palms = len(palms)
            boxes = [t.hand.bbox() for t in self._tracks if t.hand is not None]
            rects = [rect_from_palm(p.box, p.keypoints) for p in palms if not self._covered(p.box, boxes)]
            rects = rects[:max(0, cfg.max_hands - len(self._tracks))]
            lm = self.networks.landmarks(image, rects)
            for i, r in enumerate(rects):
                if lm.presence[i] >= cfg.presence_threshold:
                    t = _Track(self._next_id, r, HandednessVote())
                    self._next_id += 1
                    self._observe(t, image, lm, i, from_palm=True)
                    self._tracks.append(t)
            self._tracks = self._dedupe(self._tracks)
            if static and cfg.refine_static and self._tracks:
                lm = self.networks.landmarks(image, [t.rect for t in self._tracks])
                for i, t in enumerate(self._tracks):
                    if lm.presence[i] >= cfg.presence_threshold:
                        t.vote = HandednessVote()
                        self._observe(t, image, lm, i, from_palm=True)
        sides = assign_sides([t.vote for t in self._tracks], cfg.distinct_sides)
        hands = []
        for t, side in zip(self._tracks, sides):
            assert t.hand is not None
            t.hand.side = side
            t.hand.p_right = t.vote.p_right
            hands.append(t.hand)
        ms = dict(self.networks.times.ms)
        ms["total"] = (time.perf_counter() - t0) * 1e3
        return HandFrame(hands, run_palm, n_palms, ms)

    def _observe(self, t: _Track, image: np.ndarray, lm: HandLandmarks, i: int, from_palm: bool) -> None:
        """Record landmarks ``i`` of ``lm`` on track ``t`` and aim its next crop."""
        cfg = self.config
        pts = lm.points[i]
        h, w = image.shape[:2]
        inside = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
        conf = np.where(inside, 1.0, cfg.outside_confidence).astype(np.float32) * float(lm.presence[i])
        t.vote.update(float(lm.right[i]), cfg.handedness_decay)
        t.hand = Hand(t.id, t.vote.side, t.vote.p_right, pts.copy(), conf, lm.world[i].copy(),
                      float(lm.presence[i]), t.rect, from_palm)
        t.rect = rect_from_landmarks(pts)

    def _covered(self, palm_box: np.ndarray, hand_boxes: list[np.ndarray]) -> bool:
        area = max(float((palm_box[2] - palm_box[0]) * (palm_box[3] - palm_box[1])), 1e-6)
        for b in hand_boxes:
            iw = min(palm_box[2], b[2]) - max(palm_box[0], b[0])
            ih = min(palm_box[3], b[3]) - max(palm_box[1], b[1])
            if iw > 0 and ih > 0 and iw * ih / area > self.config.covered_fraction:
                return True
        return False

    def _dedupe(self, tracks: list[_Track]) -> list[_Track]:
        kept: list[_Track] = []
        for t in sorted(tracks, key=lambda t: t.id):
            assert t.hand is not None
            b = t.hand.bbox()
            if all(iou(b, k.hand.bbox()[None])[0] <= self.config.duplicate_iou for k in kept if k.hand is not None):
                kept.append(t)
        return kept

    def close(self) -> None:
        self.networks.close()
