"""The detector on the five test photos: hand count, handedness, keypoints where the hands are.

Ground truth is marked by hand in ``detector_fixtures.MARKED`` (sides judged from
the photos: which arm the hand is on, palm or back towards the camera).
"""

from __future__ import annotations

import numpy as np
import pytest

from detector_fixtures import MARKED, hand_networks, hand_weights, load_image  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def detector(hand_networks):
    from inscene.models.detector import DetectorConfig, HandDetector

    return HandDetector(DetectorConfig(), networks=hand_networks)


@pytest.mark.parametrize("name", sorted(MARKED))
def test_photo_hands_count_side_and_keypoints(detector, name):
    img = load_image(name)
    frame = detector.detect(img)
    marked = MARKED[name]
    assert frame.palm_ran
    assert len(frame.hands) == len(marked), f"{name}: {len(frame.hands)} hands, expected {len(marked)}"
    found = frame.by_side()
    assert sorted(found) == sorted(m.side for m in marked), f"{name}: sides {sorted(found)}"
    for m in marked:
        hand = found[m.side]
        assert hand.presence > 0.9
        assert (hand.p_right > 0.8) if m.side == "right" else (hand.p_right < 0.2), (name, m.side, hand.p_right)
        x0, y0, x1, y1 = m.box
        size = max(x1 - x0, y1 - y0)
        margin = 0.05 * size
        kp = hand.keypoints[:, :2]
        inside = (kp[:, 0] >= x0 - margin) & (kp[:, 0] <= x1 + margin) & (kp[:, 1] >= y0 - margin) & \
                 (kp[:, 1] <= y1 + margin)
        assert inside.all(), f"{name} {m.side}: keypoints {np.flatnonzero(~inside).tolist()} outside the hand"
        for idx, xy in m.points.items():
            err = float(np.linalg.norm(kp[idx] - np.asarray(xy)))
            assert err < 0.1 * size, f"{name} {m.side}: keypoint {idx} is {err:.0f} px from the marked point"
        k2 = hand.keypoints2d()
        assert k2.shape == (21, 3) and np.all((k2[:, 2] > 0) & (k2[:, 2] <= 1))
        assert hand.world.shape == (21, 3)
        # world landmarks are metric: wrist to middle-finger base is a few centimetres
        assert 0.04 < float(np.linalg.norm(hand.world[9] - hand.world[0])) < 0.15


def test_world_landmarks_follow_the_image_orientation(detector):
    """Pointing up: the index tip is above (smaller y) the wrist in camera axes too."""
    hand = detector.detect(load_image("pointing_up.jpg")).hands[0]
    assert hand.world[8, 1] - hand.world[0, 1] < -0.05
    assert hand.keypoints[8, 1] < hand.keypoints[0, 1]


def test_an_image_without_hands_gives_none(detector):
    rng = np.random.default_rng(0)
    img = np.repeat(np.repeat(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8), 20, 0), 20, 1)
    frame = detector.detect(img)
    assert frame.hands == []
