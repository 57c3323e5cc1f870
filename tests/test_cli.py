"""The CLI on good and bad input: one line naming the input, non-zero exit, no traceback."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from inscene.bench.clips import write_clip
from inscene.engine.store import open_result


def write_video(path: Path, n: int = 60, size=(64, 48), fps: int = 30) -> Path:
    """A small MPEG-4 clip of ``n`` frames (the project's own clip writer)."""
    return write_clip(path, n=n, size=size, fps=fps, codec="mpeg4")


def assert_one_line_error(r, subject: str) -> str:
    assert r.returncode != 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert subject in lines[0], lines[0]
    return lines[0]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_then_info(tmp_path, cli):
    video = write_video(tmp_path / "v.mp4")
    out = tmp_path / "out.zarr"
    r = cli("run", str(video), "-o", str(out), "--no-progress", "--no-hands")
    assert r.returncode == 0, r.stderr
    assert "complete" in r.stdout and "60 frames" in r.stdout
    res = open_result(out)
    assert res.complete and res.finalized_frames == 60
    assert res.attrs["source"]["size"] == [64, 48]
    assert res.attrs["config"]["source"]["stride"] == 1
    r = cli("info", str(out))
    assert r.returncode == 0 and "60 final" in r.stdout and "complete" in r.stdout
    r = cli("info", str(out), "--json")
    assert json.loads(r.stdout)["finalized_frames"] == 60


def test_missing_video(tmp_path, cli):
    out = tmp_path / "o.zarr"
    assert_one_line_error(cli("run", str(tmp_path / "nope.mp4"), "-o", str(out)), "nope.mp4")
    assert not out.exists()


def test_not_a_video(tmp_path, cli):
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(os.urandom(20_000))
    out = tmp_path / "o.zarr"
    assert_one_line_error(cli("run", str(bad), "-o", str(out)), "corrupt.mp4")
    assert not out.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_unreadable_video(tmp_path, cli):
    v = write_video(tmp_path / "locked.mp4")
    v.chmod(0)
    assert_one_line_error(cli("run", str(v), "-o", str(tmp_path / "o.zarr")), "locked.mp4")


def test_truncated_video_keeps_what_was_decoded_and_is_not_complete(tmp_path, cli):
    v = write_video(tmp_path / "full.mp4", n=120, size=(160, 120))
    data = v.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "o.zarr"
    r = cli("run", str(cut), "-o", str(out), "--no-progress", "--no-hands")
    line = assert_one_line_error(r, "cut.mp4")
    if out.exists():  # the container opened: frames before the cut are kept, the store says it failed
        res = open_result(out)
        assert res.state == "failed" and res.finalized_frames < 120
        assert "frames final" in line


def test_unsupported_scheme(tmp_path, cli):
    line = assert_one_line_error(cli("run", "ftp://127.0.0.1/x.mp4", "-o", str(tmp_path / "o.zarr")), "ftp://")
    assert "rtsp" in line  # says what is supported


def test_unreachable_stream_fails_fast(tmp_path, cli):
    url = f"rtsp://127.0.0.1:{closed_port()}/live"
    r = cli("run", url, "-o", str(tmp_path / "o.zarr"), "--set", "source.timeout_s=2",
            "--set", "source.reconnect_attempts=0", timeout=60)
    assert_one_line_error(r, url)


def test_existing_output(tmp_path, cli):
    video = write_video(tmp_path / "v.mp4", n=10)
    out = tmp_path / "o.zarr"
    assert cli("run", str(video), "-o", str(out), "--no-progress", "--no-hands").returncode == 0
    line = assert_one_line_error(cli("run", str(video), "-o", str(out)), "o.zarr")
    assert "--resume" in line and "--overwrite" in line
    r = cli("run", str(video), "-o", str(out), "--overwrite", "--no-progress", "--no-hands")
    assert r.returncode == 0
    r = cli("run", str(video), "-o", str(out), "--resume", "--no-progress", "--no-hands")
    assert r.returncode == 0 and "nothing to resume" in r.stdout


@pytest.mark.parametrize("args, subject", [
    (["--set", "source.stride=0"], "source.stride"),
    (["--set", "store.nope=1"], "store.nope"),
    (["--stride", "-2"], "source.stride"),
    (["--fov", "500"], "camera.fov_deg"),
    (["--intrinsics", "1,2,3"], "--intrinsics"),
])
def test_invalid_config_values(tmp_path, cli, args, subject):
    video = write_video(tmp_path / "v.mp4", n=5)
    out = tmp_path / "o.zarr"
    assert_one_line_error(cli("run", str(video), "-o", str(out), *args), subject)
    assert not out.exists()


def test_invalid_config_file(tmp_path, cli):
    video = write_video(tmp_path / "v.mp4", n=5)
    cfg = tmp_path / "broken.toml"
    cfg.write_text("[store]\nchunk_frames = 'many'\n")
    assert_one_line_error(cli("run", str(video), "-o", str(tmp_path / "o.zarr"), "--config", str(cfg)),
                          "store.chunk_frames")


def test_store_of_another_schema_version(tmp_path, cli):
    video = write_video(tmp_path / "v.mp4", n=5)
    out = tmp_path / "o.zarr"
    assert cli("run", str(video), "-o", str(out), "--no-progress", "--no-hands").returncode == 0
    meta = json.loads((out / "zarr.json").read_text())
    meta["attributes"]["schema_version"] = 7
    meta["attributes"]["state"] = "running"
    (out / "zarr.json").write_text(json.dumps(meta))
    assert "schema version 7" in assert_one_line_error(cli("info", str(out)), "o.zarr")
    assert_one_line_error(cli("run", str(video), "-o", str(out), "--resume"), "o.zarr")


def test_usage_errors_are_one_line(cli):
    r = cli("run")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
