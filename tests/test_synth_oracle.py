"""Oracle perception: seeded, configurable, and each noise term does what it says."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from inscene.bench.synth.oracle import ORACLE_LEVELS, Oracle, OracleConfig, bursts, ou_process
from inscene.bench.synth.oracle_stage import OracleHandStage, hand_frame, write_object_poses, write_oracle_store
from inscene.engine import open_result
from synth_fixtures import tiny_scene

CLEAN = ORACLE_LEVELS["clean"]


@pytest.fixture(scope="module")
def gt(tmp_path_factory, anny_right):
    res, r = tiny_scene(tmp_path_factory, anny_right)
    return res.store, r, {"right": anny_right}


def only(**kw) -> OracleConfig:
    """A noise-free oracle except for the terms given."""
    return dataclasses.replace(CLEAN, **kw)


def test_processes_have_the_stated_statistics():
    rng = np.random.default_rng(0)
    x = ou_process(rng, 20000, (), 0.1, 1.0, 1 / 30)
    assert abs(x.std() - 0.1) < 0.02
    lag = np.corrcoef(x[:-30], x[30:])[0, 1]  # one correlation time
    assert abs(lag - np.exp(-1)) < 0.1
    b = bursts(rng, 200000, 0.01, 4.0)
    starts = np.flatnonzero(np.diff(b.astype(int)) == 1)
    assert abs(len(starts) / 200000 - 0.01 * (1 - b.mean())) < 0.002
    assert abs(b.sum() / len(starts) - 4.0) < 0.3


def test_clean_oracle_is_the_ground_truth(gt):
    path, r, models = gt
    o = Oracle.from_store(path, CLEAN, seed=3, models=models)
    ok = o.hands["right"]["valid"]
    vis = np.nan_to_num(r.array("gt/hand/right/visible_fraction"))
    np.testing.assert_array_equal(ok, vis >= CLEAN.min_visible)
    np.testing.assert_allclose(o.hands["right"]["keypoints2d"][ok, :, :2], r.array("hand/right/keypoints2d")[ok, :, :2],
                               atol=1e-3)
    np.testing.assert_allclose(o.hands["right"]["joints"][ok], r.array("hand/right/joints")[ok], atol=1e-5)
    np.testing.assert_allclose(o.object["T_cam_obj"], r.array("object/T_cam_obj"), atol=1e-12)
    assert not o.hands["left"]["valid"].any()


def test_oracle_is_deterministic_per_seed(gt):
    path, _, models = gt
    a, b = (Oracle.from_store(path, OracleConfig(), seed=5, models=models) for _ in range(2))
    c = Oracle.from_store(path, OracleConfig(), seed=6, models=models)
    for i in (0, 20, 40):
        fa, fb = a.frame_fields(i), b.frame_fields(i)
        for k in fa:
            np.testing.assert_array_equal(fa[k], fb[k])
    ka, kc = a.hands["right"]["keypoints2d"], c.hands["right"]["keypoints2d"]
    both = np.isfinite(ka[..., 0]) & np.isfinite(kc[..., 0])
    assert not np.allclose(ka[both], kc[both])


def test_keypoint_noise_and_outliers(gt):
    path, r, models = gt
    truth = r.array("hand/right/keypoints2d")[..., :2]
    vis = r.array("gt/hand/right/keypoints_visible")
    o = Oracle.from_store(path, only(kp_noise_px=2.0), seed=1, models=models)
    kp = o.hands["right"]["keypoints2d"]
    ok = o.hands["right"]["valid"]
    err = (kp[ok, :, :2] - truth[ok])[vis[ok]]
    assert abs(err.std() - 2.0) < 0.3  # per axis, visible keypoints
    hidden = (kp[ok, :, :2] - truth[ok])[~vis[ok]]
    if len(hidden) > 50:
        assert hidden.std() > 1.8 * err.std()  # occluded keypoints are noisier
    o = Oracle.from_store(path, only(outlier_rate=0.2), seed=1, models=models)
    d = np.linalg.norm(o.hands["right"]["keypoints2d"][ok, :, :2] - truth[ok], axis=-1)
    assert 0.12 < (d > 3.0).mean() < 0.28
    assert np.all((d < 1e-3) | (d > 3.0))


def test_depth_error_is_a_correlated_scale_ambiguity(gt):
    path, r, models = gt
    o = Oracle.from_store(path, only(depth_sigma=0.1, depth_tau=1.0), seed=2, models=models)
    ok = o.hands["right"]["valid"]
    scale = o.flags["right"]["depth_scale"]
    assert np.abs(np.log(scale)).max() > 0.01
    assert np.diff(np.log(scale)).std() < 0.4 * 0.1  # correlated in time (i.i.d. would give 0.14)
    est, true = o.hands["right"]["joints"][ok].astype(float), r.array("hand/right/joints")[ok].astype(float)
    np.testing.assert_allclose(est, true * scale[ok, None, None], rtol=2e-4, atol=2e-5)  # scaled about the camera
    uv_est = (est @ r.K.T)[..., :2] / est[..., 2:]
    uv_true = (true @ r.K.T)[..., :2] / true[..., 2:]
    np.testing.assert_allclose(uv_est, uv_true, atol=0.05)  # ... so the 2D projection does not change


def test_missed_detections_and_handedness_swaps(gt):
    path, r, models = gt
    o = Oracle.from_store(path, only(miss_rate=0.2, miss_burst=3.0), seed=4, models=models)
    missed = o.flags["right"]["missed"]
    assert 0.2 < missed.mean() < 0.9
    assert np.isnan(o.hands["right"]["keypoints2d"][missed]).all()
    o = Oracle.from_store(path, only(swap_rate=0.3, swap_burst=3.0), seed=4, models=models)
    sw = o.flags["right"]["swapped"] & ~o.flags["right"]["missed"]
    assert sw.any() and (~sw & ~o.flags["right"]["missed"]).any()
    assert np.isfinite(o.hands["left"]["keypoints2d"][sw]).all()  # the right hand reported as the left one
    assert np.isnan(o.hands["right"]["keypoints2d"][sw]).all()
    assert not o.hands["left"]["valid"][sw].any()  # no model fit for a swapped detection
    frame = hand_frame(o, int(np.flatnonzero(sw)[0]))
    assert list(frame.by_side()) == ["left"]


def test_object_pose_noise(gt):
    path, r, models = gt
    o = Oracle.from_store(path, only(obj_trans_m=0.002, obj_depth_m=0.01, obj_rot_deg=2.0, obj_tau=0.2), seed=7,
                          models=models)
    T, est = r.array("object/T_cam_obj"), o.object["T_cam_obj"]
    d = est[:, :3, 3] - T[:, :3, 3]
    ray = T[:, :3, 3] / np.linalg.norm(T[:, :3, 3], axis=1, keepdims=True)
    along = (d * ray).sum(1)
    across = np.linalg.norm(d - along[:, None] * ray, axis=1)
    assert np.abs(along).mean() > 2 * across.mean()  # depth is the uncertain direction
    R_err = np.einsum("tji,tjk->tik", T[:, :3, :3], est[:, :3, :3])
    angle = np.degrees(np.arccos(np.clip((np.trace(R_err, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert 0.3 < np.median(angle) < 8.0
    assert np.isfinite(o.object["score"]).all() and (o.object["score"] <= 1).all()


def test_oracle_outputs_in_the_engines_forms(gt, tmp_path):
    from inscene.engine.frame import Frame, Packet
    from inscene.models.objects import load_external_tracks

    path, r, models = gt
    o = Oracle.from_store(path, OracleConfig(), seed=0, models=models)
    store = write_oracle_store(o, tmp_path / "oracle.zarr", "synth:tiny?seed=0")
    res = open_result(store)
    assert res.complete and res.finalized_frames == r.finalized_frames
    np.testing.assert_array_equal(res.array("hand/right/keypoints2d"), o.hands["right"]["keypoints2d"])
    assert "oracle/right/depth_scale" in res.fields and res.attrs["oracle"]["seed"] == 0
    tracks = load_external_tracks(write_object_poses(o, tmp_path / "poses.npz"))
    assert len(tracks.T_cam_obj) == int(o.object["valid"].sum())
    stage = OracleHandStage(o)
    i = int(np.flatnonzero(o.hands["right"]["valid"])[0])
    pkt = stage.process(Packet(row=0, frame=Frame(i, i / 30, np.zeros((240, 320, 3), np.uint8), 0.0)))[0]
    hand = pkt.data["hands2d"].by_side()["right"]
    np.testing.assert_allclose(hand.keypoints2d()[:, :2], o.hands["right"]["keypoints2d"][i, :, :2], atol=1e-4)
    assert {s.path for s in stage.fields()} >= {"hand/right/keypoints2d", "hand/left/presence"}
