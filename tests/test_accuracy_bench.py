"""``inscene bench accuracy`` end to end on the ``tiny`` scene: oracle perception -> engine -> scores, and the CLI.

The scene is the synth tests' shared ``tiny`` scene (generated once per session).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from inscene.bench.accuracy import metrics as M
from inscene.bench.accuracy import runner as R
from inscene.engine.config import RunConfig
from synth_fixtures import tiny_scene

# ~20 s with the shared scene (its generation: ~30 s, more on a cold numba cache)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, anny_right):
    res, _ = tiny_scene(tmp_path_factory, anny_right)
    wd = tmp_path_factory.mktemp("accuracy")
    (wd / "scenes").mkdir()
    (wd / "scenes" / "tiny-s0").symlink_to(res.out_dir, target_is_directory=True)
    return wd


@pytest.fixture(scope="module")
def perframe(workdir):
    return R.evaluate("tiny", 0, "perframe", workdir=workdir)


def test_perframe_run_is_scored(perframe):
    r = perframe
    assert r["frames"] == 48 and r["method"] == "perframe" and r["overrides"] == ["window.enabled=false"]
    assert list(r["sides"]) == ["right"]  # the tiny scene has one hand
    side = r["sides"]["right"]
    assert side["init"] == side["method"]  # no window: the per-frame fit is its own initialization
    m = side["method"]
    assert m["coverage"] > 0.8 and m["frames"] <= m["in_view"] <= 48
    assert 0 < m["mrpe_mm"]["mean"] < 200 and 0 < m["mpjpe_mm"]["mean"] < 50
    assert m["penetration_mm"]["all"]["n"] == m["frames"]
    assert m["contact"]["source"] == "geometric"
    assert m["contact"]["tp"] + m["contact"]["fp"] + m["contact"]["fn"] + m["contact"]["tn"] == m["frames"]
    assert m["jitter"]["n"] > 0 and m["jitter"]["ratio"] > 0
    assert "window" not in r["timing"] and r["timing"]["hands_fit"]["mean"] > 0
    assert r["pooled"]["method"]["mrpe_mm"]["mean"] == pytest.approx(m["mrpe_mm"]["mean"])
    json.dumps(r)  # JSON-friendly


def test_ground_truth_scores_perfectly_against_itself(workdir):
    """GT as the estimate: zero position errors, F1 = 1 (the geometric rule reproduces the labels), jitter 1x,
    penetration as the generator measured it (exact distances vs the SDF grid)."""
    from inscene.engine import open_result
    from inscene.kernels import sdf_grid

    scene = workdir / "scenes" / "tiny-s0"
    truth = R.Truth.load(scene / "gt.zarr")
    gt = open_result(scene / "gt.zarr")
    g = truth.hands["right"]
    est = R.estimate(gt, "hand/right/")
    model = R._models(scene)["right"]
    mask, in_view = M.scored_frames(g["valid"], g["visible"], est["valid"])
    # model vertices from the parameters equal the stored (float16) mesh
    v = R.vertices(model, est, mask)
    np.testing.assert_allclose(v[mask], est["vertices"][mask].astype(np.float64), atol=5e-4)
    grid = sdf_grid((truth.object_vertices, truth.object_faces))
    T = gt.array("object/T_cam_obj")
    labelled = {k: val for k, val in est.items() if k != "in_contact"}
    s = R.score_estimate(g, labelled, mask, in_view, model, grid, T, truth.fps, truth.contact_tol)
    assert s["mrpe_mm"]["max"] == 0 and s["mpjpe_mm"]["max"] == 0
    assert s["contact"]["f1"] == 1.0 and s["contact"]["tp"] > 0
    assert s["jitter"]["ratio"] == 1.0
    depth = M.penetration_depth(M.signed_distances(grid, M.to_object_frame(v, T)))
    np.testing.assert_allclose(depth[mask], gt.array("gt/hand/right/penetration")[mask], atol=3e-4)
    assert s["penetration_volume_cm3"]["all"]["max"] < 0.05  # the generator allows ~0.2 mm


def test_amortized_timing():
    ms = np.array([0, 0, 0, 40, 0, 0, 0, 40, 0, 0], float)
    hands = np.array([1, 1, 1, 1, 2, 2, 2, 2, 0, 0], float)
    t = R.amortized_ms(ms, hands, 4)
    assert t["mean"] == pytest.approx(80 / 12)
    assert t["blocks"] == 2 and t["median"] == pytest.approx((10 + 5) / 2)
    assert R.amortized_ms(ms, np.zeros(10), 4) is None


def test_cli_writes_tables(workdir, perframe, tmp_path, capsys):
    from inscene.bench.accuracy import cli

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    args = p.parse_args(["--presets", "tiny", "--seeds", "0", "--methods", "perframe", "--no-warmup",
                         "--workdir", str(workdir), "--json", str(tmp_path / "acc.json")])
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "per-frame init" in out and "MRPE mm" in out and "FAIL (per-frame" in out
    doc = json.loads((tmp_path / "acc.json").read_text())
    assert doc["benchmark"] == "accuracy" and "commit" in doc["machine"]
    tables = doc["figures"]["tables"]
    assert set(tables) == {"tiny", "all"} and [r["method"] for r in tables["tiny"]] == ["init", "truth", "perframe"]
    truth = tables["tiny"][1]  # the ground truth scored as an estimate: exact, its penetration is the reference
    assert truth["mrpe_mm"] == 0 and truth["mpjpe_mm"] == 0 and truth["contact_f1"] == 1
    assert np.isfinite(truth["penetration_mm"])
    assert tables["tiny"][2]["mrpe_mm"] == pytest.approx(perframe["pooled"]["method"]["mrpe_mm"]["mean"])
    assert set(tables["tiny"][2]["mrpe_phase_mm"]) == {"before_contact", "contact", "after_contact"}
    assert "MRPE by phase" in out
    assert "| method |" in (tmp_path / "acc.md").read_text()


def test_window_run_when_built(workdir):
    r = R.evaluate("tiny", 0, "window", workdir=workdir)
    assert r["init_source"].startswith("hand/{side}/init/")
    m = r["sides"]["right"]["method"]
    assert m["contact"]["source"] == "estimate" and m["coverage"] > 0.8
    assert r["timing"]["window"]["mean"] > 0


def test_window_path_with_a_stand_in_stage(workdir, perframe, monkeypatch):
    """A stand-in 'window' that moves the per-frame fit to ``hand/{side}/init/`` and answers the ground truth:
    the method scores perfectly, its initialization as the per-frame run, contact labels are the stage's."""
    from inscene.engine import open_result
    from inscene.engine.stage import Stage
    from inscene.engine.store.schema import ArraySpec

    gt = open_result(workdir / "scenes" / "tiny-s0" / "gt.zarr")
    truth = {k: gt.array(f"hand/right/{k}") for k in ("valid", "pose", "betas", "transl", "joints", "in_contact")}

    class PerfectWindow(Stage):
        name = "window"
        consumes = ("hands_fit", "object_pose")
        produces = ("window",)

        def fields(self):
            out = []
            for s in ("right", "left"):
                for k in ("valid", "pose", "betas", "transl", "joints"):
                    v = truth[k][0]
                    out.append(ArraySpec(f"hand/{s}/init/{k}", v.dtype.name, v.shape, ("time",) + ("d",) * v.ndim,
                                         False if k == "valid" else np.nan))
                out.append(ArraySpec(f"hand/{s}/in_contact", "bool", (), ("time",), False))
            return out

        def process(self, packet):
            i = packet.frame.index
            for s in ("right", "left"):
                for k in ("valid", "pose", "betas", "transl", "joints"):
                    packet.fields[f"hand/{s}/init/{k}"] = packet.fields[f"hand/{s}/{k}"]
                    if s == "right":
                        packet.fields[f"hand/{s}/{k}"] = truth[k][i]
                packet.fields[f"hand/{s}/in_contact"] = bool(truth["in_contact"][i]) if s == "right" else False
            packet.data["window"] = {}
            return [packet]

    def stages(oracle):
        def factory(cfg, ctx):
            from inscene.bench.synth.oracle_stage import OracleHandStage
            from inscene.engine.stages.hands import HandFitStage
            from inscene.engine.stages.objects import object_stage

            return [OracleHandStage(oracle), HandFitStage(cfg), object_stage(cfg), PerfectWindow()]

        return factory

    monkeypatch.setattr(R, "oracle_stages", stages)
    r = R.evaluate("tiny", 0, "window", workdir=workdir)
    assert r["init_source"].startswith("hand/{side}/init/")
    side = r["sides"]["right"]
    assert side["method"]["mrpe_mm"]["max"] == 0 and side["method"]["mpjpe_mm"]["max"] == 0
    assert side["method"]["contact"]["source"] == "estimate" and side["method"]["contact"]["f1"] == 1.0
    assert side["method"]["jitter"]["ratio"] == pytest.approx(1.0)
    assert side["init"]["mrpe_mm"] == perframe["sides"]["right"]["method"]["mrpe_mm"]
    assert side["init"]["contact"]["source"] == "geometric"
    assert r["timing"]["window"]["mean"] >= 0
    assert r["timing"]["window"]["block_frames"] == RunConfig().window.stride


def test_grasp_bench_onsets_skip_missed_detections():
    """A frame without the hand inside a contact is no onset; a contact after frames out of contact is."""
    from inscene.bench.grasp import contact_onsets

    contact = np.array([0, 0, 1, 1, 0, 1, 1, 0, 0, 1], bool)
    valid = np.array([1, 1, 1, 1, 0, 1, 1, 1, 0, 1], bool)  # row 4: missed inside a contact; row 8: missed outside
    assert contact_onsets(contact & valid, valid).tolist() == [2, 9]
    assert contact_onsets(np.zeros(0, bool), np.zeros(0, bool)).tolist() == []


def test_grasp_bench_onset_ratio_is_the_peak_next_to_the_onset_over_the_median():
    from inscene.bench.grasp import onset_ratios

    acc = np.full(20, 2.0)
    acc[10] = 7.0  # a spike on the row after the onset at 9
    acc[0] = acc[-1] = np.nan  # the ends have no acceleration
    ratios, median = onset_ratios(acc, np.array([9, 15]))
    assert median == 2.0 and ratios == [3.5, 1.0]
    assert onset_ratios(np.full(5, np.nan), np.array([2]))[0] == [None]
