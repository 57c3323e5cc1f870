"""Tracking mode on the real clip (04_coffee.mp4, 1280x720, 287 frames).

The person faces the camera; their left hand holds the blue mug (image right)
through the whole clip, their right hand lifts the kettle and pours, leaving the
top of the frame for most of it. Figures measured here (2-core CPU): the mug hand
is tracked in all 287 frames, palm detection runs on ~8 % of the frames, and the
mug hand's keypoints jitter by ~0.6 px (white-noise equivalent, see
:func:`jitter_px`).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_data
from detector_fixtures import hand_networks, hand_weights  # noqa: F401 - fixtures


def jitter_px(track: np.ndarray) -> float:
    """White-noise-equivalent keypoint jitter of a track ``(T, 21, 2)``, pixels per axis.

    The second temporal difference removes smooth (constant-velocity) motion;
    for independent noise of standard deviation s per axis its mean square is 6 s^2.
    """
    acc = track[2:] - 2 * track[1:-1] + track[:-2]
    return float(np.sqrt((acc ** 2).mean() / 6))


@pytest.fixture(scope="module")
def tracked(hand_networks):
    from inscene.engine.sources import open_source
    from inscene.models.detector import DetectorConfig, HandDetector

    src = open_source(str(shared_data("clips/04_coffee.mp4")))
    info = src.open()
    det = HandDetector(DetectorConfig(), networks=hand_networks)
    frames = []
    try:
        for f in src.frames():
            frames.append(det.track(f.image))
    finally:
        src.close()
    return info, frames


def test_the_mug_hand_is_tracked_throughout(tracked):
    info, frames = tracked
    assert len(frames) == 287
    mug = []  # the left hand on the image's right half (the mug side)
    for fr in frames:
        hand = fr.by_side().get("left")
        mug.append(hand if hand is not None and hand.keypoints[0, 0] > info.width / 2 else None)
    rate = sum(h is not None for h in mug) / len(mug)
    ids = {h.track_id for h in mug if h is not None}
    print(f"mug hand tracked in {rate:.1%} of frames, track ids {ids}")
    assert rate >= 0.95
    assert len(ids) == 1, "the mug hand kept one track (no loss and re-detection)"


def test_palm_detection_runs_on_a_small_fraction(tracked):
    _, frames = tracked
    frac = sum(f.palm_ran for f in frames) / len(frames)
    print(f"palm detection on {frac:.1%} of frames")
    assert frames[0].palm_ran
    assert frac <= 0.15


def test_both_hands_at_the_start_with_distinct_sides(tracked):
    info, frames = tracked
    first = frames[0].by_side()
    assert set(first) == {"left", "right"}
    assert first["right"].keypoints[0, 0] < info.width / 2 < first["left"].keypoints[0, 0]


def test_mug_hand_keypoints_are_temporally_stable(tracked):
    info, frames = tracked
    track = np.stack([f.by_side()["left"].keypoints[:, :2] for f in frames if "left" in f.by_side()])
    diag = float(np.median(np.linalg.norm(track.max(1) - track.min(1), axis=-1)))
    j = jitter_px(track)
    print(f"mug hand jitter {j:.2f} px per axis ({j / diag:.2%} of its {diag:.0f} px box diagonal)")
    assert j < 1.5
