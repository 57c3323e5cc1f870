"""The per-frame fit stage: which detections start from the side's last fit (warm) and which start cold."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hand_fixtures import default_camera, observe, sample_hands
from inscene.engine.config import RunConfig
from inscene.engine.stages.hands import WARM_GAP, HandFitStage
from inscene.models.detector.rects import HandRect
from inscene.models.detector.tracker import Hand, HandFrame


@pytest.fixture(scope="module")
def stage(anny_data):
    return HandFitStage(RunConfig())


def _frame(uv: np.ndarray, track_id: int, shift: float = 0.0) -> HandFrame:
    kp = np.concatenate([uv + shift + 0.5, np.zeros((21, 1))], 1).astype(np.float32)
    rect = HandRect(float(kp[:, 0].mean()), float(kp[:, 1].mean()), 200.0, 0.0)
    hand = Hand(track_id, "right", 1.0, kp, np.ones(21, np.float32), np.zeros((21, 3), np.float32), 0.9, rect,
                from_palm=True)
    return HandFrame([hand], palm_ran=True)


def test_a_new_track_where_the_last_fit_was_starts_warm(stage, monkeypatch):
    import inscene.models.hands as H

    model = stage.models["right"]
    K = default_camera(torch.float32)
    truth = sample_hands(model, 1, seed=3)
    uv = observe(model, truth, K, noise_px=0.5, seed=3)[0][0].numpy()
    starts = []
    fit = H.fit_frames

    def recording(*a, **k):
        starts.append(k.get("init") is not None)
        return fit(*a, **k)

    monkeypatch.setattr(H, "fit_frames", recording)
    stage.reset()
    stage._frame = -1
    run = [(_frame(uv, 0), False),  # the first fit is cold
           (_frame(uv, 0, 2.0), True),  # the same track
           (_frame(uv, 1, 4.0), True),  # a new track (re-found by the palm search) in the same place
           (_frame(uv, 2, 400.0), False)]  # a new track elsewhere: another hand
    for frame, warm in run:
        stage.fit_frame(frame, K.numpy())
    assert starts == [w for _, w in run]

    # a gap of WARM_GAP frames without the hand keeps the last fit; one more frame forgets it
    for gap, warm in ((WARM_GAP, True), (WARM_GAP + 1, False)):
        stage.fit_frame(_frame(uv, 5, 400.0), K.numpy())
        for _ in range(gap):
            stage.fit_frame(HandFrame([], palm_ran=True), K.numpy())
        starts.clear()
        stage.fit_frame(_frame(uv, 6, 401.0), K.numpy())
        assert starts == [warm], gap
