"""Must-show on short synthetic clips: the window against its own per-frame initialization (oracle "realistic").

Two clips with a grasp, run through the engine with oracle perception and scored
by ``bench/accuracy`` (``runner.evaluate``, ``metrics``) on the same frames
(ground-truth hand valid and visible, both estimates valid):

* ``tiny``: the shared 48-frame box scene (320 x 240) of the synth tests;
* ``mug60``: the ``mug_static`` preset cut to 60 frames (640 x 480).

Thresholds (the issue's targets, slightly looser than the benchmark's): wrist
error (MRPE) over ground-truth contact frames at most half the initialization's;
root-relative MPJPE <= 10 mm; mean penetration depth over contact frames <= 2 mm;
contact F1 >= 0.9; jitter <= 1.5 x the ground truth's. A clip the current code
misses a threshold on is an ``xfail(strict=True)`` with the measured figure in its
reason (``MISSES``): the threshold stays honest and the mark must go once it passes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from inscene.bench.accuracy import metrics as M
from inscene.bench.accuracy import runner as R
from inscene.engine import open_result
from synth_fixtures import tiny_scene

# ~40 s: tiny (shared scene, ~10 s to run and score), mug60 (~20 s to generate, ~6 s to run and score)

CLIPS = ("tiny", "mug60")
MISSES = {
    ("mug60", "penetration"): "mean penetration over contact frames 2.22 mm on generator version 3's scene (2.32 on "
                              "version 2's, where the palm lay ~2.8 mm inside the estimated mug, which the finger "
                              "push-out cannot move; 2.69 before the contact targets were lifted from the window's "
                              "estimate; 2.53 on version 1's)",
}
"""(clip, metric) -> what the current window gives where it misses the threshold (measured, seed 0)."""


def clips(metric: str) -> list:
    return [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=MISSES[(c, metric)]))
            if (c, metric) in MISSES else c for c in CLIPS]


@pytest.fixture(scope="module")
def scores(tmp_path_factory, anny_right):
    """clip -> {"init": ..., "window": ...} figures, computed on first use (printed: ``pytest -s``)."""
    wd = tmp_path_factory.mktemp("window_accuracy")
    (wd / "scenes").mkdir()
    cache: dict[str, dict] = {}

    def get(clip: str) -> dict:
        if clip not in cache:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # small problems on shared cores
            try:
                if clip == "tiny":
                    res, _ = tiny_scene(tmp_path_factory, anny_right)
                    (wd / "scenes" / "tiny-s0").symlink_to(res.out_dir, target_is_directory=True)
                    cache[clip] = measure(R.evaluate("tiny", 0, "window", workdir=wd), wd / "scenes" / "tiny-s0")
                else:
                    r = R.evaluate("mug_static", 0, "window", frames=60, workdir=wd)
                    cache[clip] = measure(r, R.scene_dir("mug_static", 0, 60, wd))
            finally:
                torch.set_num_threads(threads)
            print(f"\n{clip}: " + "; ".join(f"{k} " + ", ".join(f"{m} {v:.3g}" for m, v in s.items())
                                             for k, s in cache[clip].items()))
        return cache[clip]

    return get


def measure(r: dict, scene) -> dict[str, dict[str, float]]:
    """The figures of the thresholds, for the window and its initialization, from an ``evaluate`` result."""
    truth = R.Truth.load(scene / "gt.zarr")
    g = {k: v[:r["frames"]] for k, v in truth.hands["right"].items()}
    res = open_result(r["store"])
    est, init = R.estimate(res, "hand/right/"), R.estimate(res, "hand/right/init/")
    mask, _ = M.scored_frames(g["valid"], g["visible"], est["valid"], init["valid"])
    contact = mask & g["in_contact"].astype(bool)
    out = {}
    for name, e, key in (("init", init, "init"), ("window", est, "method")):
        s = r["sides"]["right"][key]
        out[name] = {"mrpe_contact_mm": float(M.mrpe(e["joints"][contact], g["joints"][contact]).mean() * 1e3),
                     "mpjpe_mm": s["mpjpe_mm"]["mean"], "penetration_contact_mm": s["penetration_mm"]["contact"]["mean"],
                     "f1": s["contact"]["f1"], **{k: s["contact"][k] for k in ("tp", "fp", "fn")},
                     "jitter_ratio": s["jitter"]["ratio"], "frames": s["frames"],
                     "contact_frames": int(contact.sum()), "coverage": s["coverage"]}
    return out


@pytest.mark.parametrize("clip", CLIPS)
def test_the_clip_is_scored(scores, clip):
    w = scores(clip)["window"]
    assert w["coverage"] > 0.8 and w["frames"] >= 40 and w["contact_frames"] >= 15


@pytest.mark.parametrize("clip", clips("mrpe"))
def test_wrist_error_over_contact_frames_is_halved(scores, clip):
    s = scores(clip)
    assert s["window"]["mrpe_contact_mm"] <= 0.5 * s["init"]["mrpe_contact_mm"]


@pytest.mark.parametrize("clip", clips("mpjpe"))
def test_root_relative_mpjpe(scores, clip):
    assert scores(clip)["window"]["mpjpe_mm"] <= 10.0


@pytest.mark.parametrize("clip", clips("penetration"))
def test_penetration_over_contact_frames(scores, clip):
    assert scores(clip)["window"]["penetration_contact_mm"] <= 2.0


@pytest.mark.parametrize("clip", clips("f1"))
def test_contact_f1(scores, clip):
    assert scores(clip)["window"]["f1"] >= 0.9


@pytest.mark.parametrize("clip", clips("jitter"))
def test_jitter(scores, clip):
    assert np.isfinite(scores(clip)["window"]["jitter_ratio"])
    assert scores(clip)["window"]["jitter_ratio"] <= 1.5
