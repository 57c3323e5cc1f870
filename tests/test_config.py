from __future__ import annotations

import pytest

from inscene.engine.config import RunConfig
from inscene.engine.errors import ConfigError


def test_roundtrip_is_lossless():
    cfg = RunConfig().replace("source", start=3, end=40, stride=2, live=True).replace(
        "camera", intrinsics=(500.0, 501.0, 320.0, 240.0))
    d = cfg.to_dict()
    assert d["camera"]["intrinsics"] == [500.0, 501.0, 320.0, 240.0]
    assert RunConfig.from_dict(d) == cfg


def test_toml_and_overrides(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[source]\nstride = 3\n[store]\nchunk_frames = 64\n")
    cfg = RunConfig.from_toml(f)
    assert cfg.source.stride == 3 and cfg.store.chunk_frames == 64
    cfg = cfg.override(["store.flush_frames=7", "camera.fov_deg=70"])
    assert cfg.store.flush_frames == 7 and cfg.camera.fov_deg == 70.0
    assert cfg.source.stride == 3


@pytest.mark.parametrize("data, key", [
    ({"source": {"stride": 0}}, "source.stride"),
    ({"source": {"stride": "two"}}, "source.stride"),
    ({"store": {"chunk_frames": -1}}, "store.chunk_frames"),
    ({"store": {"bogus": 1}}, "store.bogus"),
    ({"nope": {}}, "nope"),
    ({"camera": {"fov_deg": 0.5}}, "camera.fov_deg"),
    ({"source": {"live": 1}}, "source.live"),
    ({"grasp": {"delay_s": -0.1}}, "grasp.delay_s"),
])
def test_invalid_values_name_the_key(data, key):
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict(data)
    assert key in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_toml_file(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[source\nstride=")
    with pytest.raises(ConfigError, match="bad.toml"):
        RunConfig.from_toml(f)
    with pytest.raises(ConfigError, match="missing.toml"):
        RunConfig.from_toml(tmp_path / "missing.toml")
