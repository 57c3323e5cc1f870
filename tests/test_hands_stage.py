"""The hand stages in the engine: source -> detect -> fit -> store, on the real clip and a synthetic one;
which detections the per-frame fit starts warm."""

from __future__ import annotations

import numpy as np
import torch
import pytest

from conftest import run_cli, shared_data
from detector_fixtures import hand_weights  # noqa: F401 - fixture
from hand_fixtures import default_camera, observe, sample_hands

from inscene.engine.app import JobRequest, compose, run_job
from inscene.engine.config import RunConfig
from inscene.engine.errors import InputError
from inscene.engine.pipeline import Pipeline
from inscene.engine.stage import RunContext
from inscene.engine.stages.hands import WARM_GAP, HandFitStage
from inscene.engine.store.reader import open_result
from inscene.models.detector.rects import HandRect
from inscene.models.detector.tracker import Hand, HandFrame


@pytest.fixture(scope="module")
def stages_factory(hand_weights):
    from inscene.engine.stages.hands import HandStageConfig, hand_stages

    cfg = HandStageConfig(threads=1)
    return lambda run, ctx: hand_stages(run, ctx, cfg)


def _cfg(frames: int) -> RunConfig:
    """The hand stages alone: the window is off, so the per-frame fit writes ``hand/{side}/...``."""
    return RunConfig().replace("source", end=frames).replace("engine", progress=False).replace("window", enabled=False)


def test_clip_hands_are_detected_fitted_and_stored(stages_factory, tmp_path):
    clip = shared_data("clips/04_coffee.mp4")
    out = tmp_path / "coffee.zarr"
    o = run_job(JobRequest(str(clip), out, _cfg(24), stage_factory=stages_factory), progress=False)
    assert o.state == "complete" and o.finalized == 24, o.error
    r = open_result(out)
    K = r.K
    left, right = r.hand("left"), r.hand("right")
    assert left.valid.all() and right.valid[:10].all()  # both hands at the start, the mug hand throughout
    for h in (left, right):
        v = h.valid
        assert h.keypoints2d.shape == (24, 21, 3) and np.isfinite(h.keypoints2d[v]).all()
        assert h.pose.shape[:2] == (24, h.pose.shape[1]) and h.pose.shape[2] == 3
        assert h.joints.shape == (24, 21, 3) and h.transl.shape == (24, 3) and h.betas.shape[0] == 24
        # the fitted joints project onto the detected keypoints
        proj = h.joints[v] @ K.T
        uv = proj[..., :2] / proj[..., 2:3]
        err = np.linalg.norm(uv - h.keypoints2d[v][..., :2], axis=-1)
        assert np.median(err) < 5.0, f"{h.side}: median reprojection {np.median(err):.1f} px"
        assert np.nanmedian(h.fit_error_px[v]) < 5.0
        z = h.transl[v][:, 2]
        assert np.all((z > 0.2) & (z < 2.0)), "hands at a plausible distance"
    # the holding (left) hand is on the image's right, the other on its left
    assert np.median(left.keypoints2d[:, 0, 0]) > 640 > np.median(right.keypoints2d[:10, 0, 0])
    timing = r.timing()
    assert np.isfinite(timing["hands2d"]).all() and np.isfinite(timing["hands_fit"]).all()
    assert set(r.attrs["stages"]) == {"hands2d", "hands_fit"}


def test_frames_without_hands_are_invalid_and_nan(stages_factory, tmp_path):
    out = tmp_path / "gen.zarr"
    o = run_job(JobRequest("gen:?frames=6&size=320x240", out, _cfg(6), stage_factory=stages_factory), progress=False)
    assert o.state == "complete", o.error
    r = open_result(out)
    for side in ("right", "left"):
        h = r.hand(side)
        assert not h.valid.any()
        assert np.isnan(h.keypoints2d).all() and np.isnan(h.transl).all() and np.isnan(h.presence).all()


def test_stage_chain_validates_and_declares_named_dimensions(stages_factory):
    stages = stages_factory(RunConfig().replace("window", enabled=False), None)
    Pipeline.validate(stages)
    specs = {s.path: s for st in stages for s in st.fields()}
    for side in ("right", "left"):
        assert specs[f"hand/{side}/keypoints2d"].dims == ("time", "joint", "uv_conf")
        assert specs[f"hand/{side}/joints"].dims == ("time", "joint", "xyz")
        assert specs[f"hand/{side}/pose"].dims == ("time", "pose_joint", "axis_angle")
        assert specs[f"hand/{side}/valid"].dtype == "bool"
    assert stages[0].backend == "onnxruntime:CPUExecutionProvider" or "cuda" in stages[0].backend.lower()


def test_missing_weights_stop_the_run_before_the_first_frame(tmp_path, monkeypatch):
    from inscene.engine.stages.hands import hand_stages

    monkeypatch.setenv("INSCENE_CACHE", str(tmp_path / "empty"))
    with pytest.raises(InputError, match="hand detector weights is missing.*inscene models fetch"):
        run_job(JobRequest("gen:?frames=3&size=64x48", tmp_path / "x.zarr", _cfg(3),
                           stage_factory=lambda run, ctx: hand_stages(run, ctx)), progress=False)
    assert not (tmp_path / "x.zarr").exists()


def test_inscene_run_finds_and_fits_hands(hand_weights, tmp_path):
    names = [type(s).__name__ for s in compose(RunConfig(), RunContext(RunConfig(), np.eye(3), None))]
    if "HandDetectStage" not in names:
        pytest.skip("compose() does not include the hand stages yet (wiring: engine/app.py)")
    clip = shared_data("clips/04_coffee.mp4")
    out = tmp_path / "run.zarr"
    r = run_cli("run", str(clip), "-o", str(out), "--end", "10", "--no-progress", timeout=300)
    assert r.returncode == 0, r.stderr
    res = open_result(out)
    assert res.hand("left").valid.all()  # the window's result (no object: no contact)
    assert res.array("hand/left/init/valid").all()  # and the per-frame fit it started from


@pytest.fixture(scope="module")
def fit_stage(anny_data):
    return HandFitStage(RunConfig())


def _frame(uv: np.ndarray, track_id: int, shift: float = 0.0) -> HandFrame:
    kp = np.concatenate([uv + shift + 0.5, np.zeros((21, 1))], 1).astype(np.float32)
    rect = HandRect(float(kp[:, 0].mean()), float(kp[:, 1].mean()), 200.0, 0.0)
    hand = Hand(track_id, "right", 1.0, kp, np.ones(21, np.float32), np.zeros((21, 3), np.float32), 0.9, rect,
                from_palm=True)
    return HandFrame([hand], palm_ran=True)


def test_a_new_track_where_the_last_fit_was_starts_warm(fit_stage, monkeypatch):
    import inscene.models.hands as H

    model = fit_stage.models["right"]
    K = default_camera(torch.float32)
    truth = sample_hands(model, 1, seed=3)
    uv = observe(model, truth, K, noise_px=0.5, seed=3)[0][0].numpy()
    starts = []
    fit = H.fit_frames

    def recording(*a, **k):
        starts.append(k.get("init") is not None)
        return fit(*a, **k)

    monkeypatch.setattr(H, "fit_frames", recording)
    fit_stage.reset()
    fit_stage._frame = -1
    run = [(_frame(uv, 0), False),  # the first fit is cold
           (_frame(uv, 0, 2.0), True),  # the same track
           (_frame(uv, 1, 4.0), True),  # a new track (re-found by the palm search) in the same place
           (_frame(uv, 2, 400.0), False)]  # a new track elsewhere: another hand
    for frame, warm in run:
        fit_stage.fit_frame(frame, K.numpy())
    assert starts == [w for _, w in run]

    # a gap of WARM_GAP frames without the hand keeps the last fit; one more frame forgets it
    for gap, warm in ((WARM_GAP, True), (WARM_GAP + 1, False)):
        fit_stage.fit_frame(_frame(uv, 5, 400.0), K.numpy())
        for _ in range(gap):
            fit_stage.fit_frame(HandFrame([], palm_ran=True), K.numpy())
        starts.clear()
        fit_stage.fit_frame(_frame(uv, 6, 401.0), K.numpy())
        assert starts == [warm], gap
