"""``inscene bench coffee`` on the first 30 frames of 04_coffee.mp4: the full default pipeline, the figures, the
overlay video. ~15 s warm here, plus ~20 s once per machine for the modelled mug's viewpoint model (not marked
slow: under a minute)."""

from __future__ import annotations

import json
import math

import pytest
from conftest import shared_data
from detector_fixtures import hand_weights  # noqa: F401 - fixture
from inscene.engine.store import open_result

FRAMES = 30
WINDOW_FIELDS = ("valid", "pose", "betas", "transl", "joints", "in_contact", "penetration", "vertices")


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


@pytest.mark.usefixtures("hand_weights")
def test_coffee_bench_short_run(tmp_path, cli):
    shared_data("clips/04_coffee.mp4")
    store, video, out = tmp_path / "coffee.zarr", tmp_path / "overlay.mp4", tmp_path / "coffee.json"
    r = cli("bench", "coffee", "--end", str(FRAMES), "--store", str(store), "--out", str(video), "--json", str(out),
            timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "real hand detector" in r.stdout

    res = open_result(store)
    assert res.complete and res.finalized_frames == FRAMES
    assert {"hands2d", "hands_fit", "object", "window"} <= set(res.attrs["stages"])
    for side in ("right", "left"):
        for name in WINDOW_FIELDS:
            assert f"hand/{side}/{name}" in res.fields
        assert f"contact/{side}/points" in res.fields
        assert f"hand/{side}/init/joints" in res.fields
    assert "timing/window" in res.fields

    import av

    with av.open(str(video)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == FRAMES and frames[0].shape == (720, 1280, 3)

    fig = json.loads(out.read_text())["figures"]
    assert out.with_suffix(".md").exists()
    assert fig["frames"] == FRAMES and fig["overlay"]["frames"] == FRAMES and fig["overlay"]["size"] == [1280, 720]
    h = fig["hands"][fig["holding_hand"]]
    assert h["frames_tracked"] > 0
    for key in ("median", "p90", "max"):
        assert _finite(h["penetration_tracked_mm"][key]) and h["penetration_tracked_mm"][key] >= 0
        if h["frames_in_contact"]:
            assert _finite(h["penetration_contact_mm"][key])
    if h["frames_in_contact"]:
        assert _finite(h["contact_points_per_frame"]["median"])
    for name, t in fig["timing"]["stages"].items():
        assert _finite(t["median_ms"]) and _finite(t["mean_ms"]), name
    assert _finite(fig["timing"]["fps"]) and fig["timing"]["fps"] > 0


def test_coffee_bench_missing_clip(tmp_path, cli):
    r = cli("bench", "coffee", "--clip", str(tmp_path / "nope.mp4"), "--store", str(tmp_path / "s.zarr"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "nope.mp4" in lines[0] and "Traceback" not in r.stderr
