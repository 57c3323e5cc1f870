"""Weights: fetched from the mediapipe wheel once per machine, verified, or a clear error with instructions."""

from __future__ import annotations

import zipfile

import pytest

from detector_fixtures import hand_weights  # noqa: F401 - fixture

from inscene.engine.errors import InputError


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """A fresh, empty ``$INSCENE_CACHE`` and no ``$INSCENE_WEIGHTS_FROM``."""
    monkeypatch.setenv("INSCENE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("INSCENE_WEIGHTS_FROM", raising=False)
    return tmp_path / "cache"


def test_the_cached_weights_have_the_recorded_digests(hand_weights):
    from inscene.models.detector.weights import WEIGHTS, sha256_file

    for w in WEIGHTS.values():
        path = hand_weights[w.name]
        assert path.stat().st_size == w.size and sha256_file(path) == w.sha256


def test_missing_weights_say_which_command_to_run(empty_cache):
    from inscene.models.detector.networks import PALM_NET, converted_onnx
    from inscene.models.detector.weights import PALM, missing, weights_path

    assert len(missing()) == 2
    for call in (lambda: weights_path(PALM), lambda: converted_onnx(PALM_NET)):
        with pytest.raises(InputError) as e:
            call()
        msg = str(e.value)
        assert "palm_detection_full.tflite: hand detector weights is missing" in msg
        assert "inscene models fetch" in msg and "--from PATH" in msg and "\n" not in msg


def test_fetch_from_a_folder_of_tflite_files_then_from_the_cache(hand_weights, empty_cache, tmp_path):
    from inscene.models.detector.weights import fetch, missing

    folder = tmp_path / "offline"
    folder.mkdir()
    for name, path in hand_weights.items():
        (folder / path.name).write_bytes(path.read_bytes())
    got = fetch(folder)
    assert missing() == []
    assert all(p.parent == empty_cache / "mediapipe-0.10.21" for p in got.values())
    assert not list(got["palm_detection_full"].parent.glob("*.tmp"))  # atomic: no leftovers
    for p in folder.iterdir():
        p.unlink()
    assert fetch(folder) == got  # already cached: the source is not read again


def test_fetch_from_a_wheel_and_reject_wrong_files(hand_weights, empty_cache, tmp_path):
    from inscene.models.detector.weights import LANDMARK, PALM, fetch, missing

    good = tmp_path / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr(PALM.member, hand_weights[PALM.name].read_bytes())
        z.writestr(LANDMARK.member, hand_weights[LANDMARK.name].read_bytes())
    bad = tmp_path / "bad.whl"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr(PALM.member, b"TFL3 but not the right network")
        z.writestr(LANDMARK.member, b"")
    with pytest.raises(InputError, match=r"bad.whl: palm_detection_full.tflite has sha256 .* expected 1b14e9422c6a"):
        fetch(bad)
    assert len(missing()) == 2
    fetch(tmp_path)  # a folder holding the wheel
    assert missing() == []
    with pytest.raises(InputError, match="not a wheel"):
        (tmp_path / "x.whl").write_bytes(b"junk")
        from inscene.models.detector.weights import _from_wheel

        _from_wheel(tmp_path / "x.whl", [PALM])


def test_offline_download_fails_with_instructions(empty_cache, monkeypatch):
    from inscene.models.detector.weights import fetch

    monkeypatch.setenv("PIP_NO_INDEX", "1")  # what pip sees on a machine without PyPI
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    with pytest.raises(InputError) as e:
        fetch()
    msg = str(e.value)
    assert msg.startswith("mediapipe==0.10.21: cannot download the hand detector weights")
    assert "inscene models fetch --from PATH" in msg and "\n" not in msg


def test_models_cli_fetch_and_info(hand_weights, empty_cache, tmp_path, capsys):
    from inscene.engine.cli.main import _Parser
    from inscene.models.detector import cli

    parser = _Parser(prog="inscene models")
    cli.add_arguments(parser)
    with pytest.raises(InputError, match="not fetched"):
        cli.main(parser.parse_args(["info"]))
    folder = tmp_path / "files"
    folder.mkdir()
    for path in hand_weights.values():
        (folder / path.name).write_bytes(path.read_bytes())
    assert cli.main(parser.parse_args(["fetch", "--from", str(folder)])) == 0
    out = capsys.readouterr().out
    assert "hand_landmark_full (ONNX):" in out and str(empty_cache) in out
    assert cli.main(parser.parse_args(["info"])) == 0
    out = capsys.readouterr().out
    assert "ok (sha256 verified)" in out and "runtime (auto): onnxruntime:" in out
