"""MANO: chumpy-free reading of MANO-format pickles, equality with smplx, `inscene mano import`,
model selection from flags and environment. Only synthetic MANO-format files, generated here."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hand_fixtures import MANO_TIPS, sample_hands, synthetic_mano_arrays, write_mano_pickle
from inscene.engine.cli.main import main as cli_main
from inscene.engine.errors import InputError
from inscene.models.hands import load_hand_model, resolve_hand_model
from inscene.models.hands.mano_hand import load_mano_hand, read_mano_file
from inscene.models.hands.mano_pickle import PickleFormatError, load_mano_pickle

F64 = torch.float64
STEM = {"right": "MANO_RIGHT", "left": "MANO_LEFT"}
# smplx joint order -> MediaPipe keypoints (tips are vertices)
SMPLX_KEYPOINTS = (0, 13, 14, 15, None, 1, 2, 3, None, 4, 5, 6, None, 10, 11, 12, None, 7, 8, 9, None)


def _write_dir(folder: Path, chumpy_like: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for side in ("right", "left"):
        write_mano_pickle(folder / f"{STEM[side]}.pkl", synthetic_mano_arrays(side), chumpy_like=chumpy_like)
    return folder


@pytest.fixture(scope="module")
def mano_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("mano")
    return {"plain": _write_dir(root / "plain", False), "chumpy": _write_dir(root / "chumpy", True)}


def test_chumpy_like_pickle_needs_chumpy_for_plain_pickle(mano_dirs):
    with pytest.raises(ModuleNotFoundError, match="chumpy"):
        pickle.loads((mano_dirs["chumpy"] / "MANO_RIGHT.pkl").read_bytes(), encoding="latin1")


@pytest.mark.parametrize("kind", ["plain", "chumpy"])
def test_reader_gives_the_arrays(mano_dirs, kind):
    source = synthetic_mano_arrays("right")
    arrays = load_mano_pickle(mano_dirs[kind] / "MANO_RIGHT.pkl")
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "J", "hands_mean"):
        assert isinstance(arrays[key], np.ndarray), key
        np.testing.assert_array_equal(arrays[key], source[key], err_msg=key)
    np.testing.assert_array_equal(arrays["f"], source["f"])
    assert arrays["bs_style"] == "lbs"


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("kind", ["plain", "chumpy"])
def test_same_keypoints_as_smplx(mano_dirs, side, kind):
    import smplx

    ours = load_mano_hand(mano_dirs[kind], side, dtype=F64)
    # smplx reads the chumpy-free file itself
    layer = smplx.MANO(model_path=str(mano_dirs["plain"]), is_rhand=side == "right", use_pca=False,
                       flat_hand_mean=True, num_betas=10, dtype=F64)
    p = sample_hands(ours, 4, seed=1)
    p.betas = torch.randn(4, 10, generator=torch.Generator().manual_seed(0), dtype=F64)
    theirs = layer(betas=p.betas, global_orient=p.global_orient, hand_pose=p.hand_pose.reshape(4, -1),
                   transl=p.transl)
    mine = ours.pose(p)
    expected = torch.stack([theirs.joints[:, j] if j is not None else theirs.vertices[:, MANO_TIPS[(k - 4) // 4]]
                            for k, j in enumerate(SMPLX_KEYPOINTS)], dim=1)
    assert (mine.keypoints - expected).abs().max() < 1e-6
    assert (mine.vertices - theirs.vertices).abs().max() < 1e-6
    assert (mine.joints - theirs.joints).abs().max() < 1e-6


def test_mano_import_round_trips(mano_dirs, tmp_path, capsys):
    out = tmp_path / "imported"
    assert cli_main(["mano", "import", str(mano_dirs["chumpy"]), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    for side in ("right", "left"):
        npz = out / f"{STEM[side]}.npz"
        with np.load(npz, allow_pickle=False) as z:  # no unpickling needed
            assert all(z[k].dtype != object for k in z.files)
        from_npz = read_mano_file(npz)
        from_pkl = read_mano_file(mano_dirs["chumpy"] / f"{STEM[side]}.pkl")
        assert from_npz.keys() == from_pkl.keys()
        for key in from_pkl:
            np.testing.assert_array_equal(from_npz[key], from_pkl[key], err_msg=key)
        a, b = load_mano_hand(out, side, dtype=F64), load_mano_hand(mano_dirs["chumpy"], side, dtype=F64)
        p = sample_hands(a, 2, seed=3)
        assert torch.equal(a.pose(p).vertices, b.pose(p).vertices)
    # later runs find the npz first
    assert load_hand_model("mano", str(out)).data.meta["source"].endswith(".npz")


def test_import_defaults_to_the_source_folder(tmp_path):
    src = _write_dir(tmp_path / "m", chumpy_like=True)
    assert cli_main(["mano", "import", str(src)]) == 0
    assert (src / "MANO_RIGHT.npz").is_file() and (src / "MANO_LEFT.npz").is_file()


def _one_line_error(capsys, argv: list[str], needle: str) -> None:
    code = cli_main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err


def test_bad_mano_inputs(tmp_path, capsys):
    _one_line_error(capsys, ["mano", "import", str(tmp_path / "nope")], "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error(capsys, ["mano", "import", str(empty)], "MANO_RIGHT.pkl")
    broken = tmp_path / "broken"
    broken.mkdir()
    good = pickle.dumps({"v_template": np.zeros((3, 3))}, protocol=2)
    (broken / "MANO_RIGHT.pkl").write_bytes(good[: len(good) // 2])
    _one_line_error(capsys, ["mano", "import", str(broken)], "MANO_RIGHT.pkl")
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "MANO_LEFT.pkl").write_bytes(good)
    _one_line_error(capsys, ["mano", "import", str(wrong)], "missing")


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_reader_refuses_to_run_code(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(pickle.dumps({"v_template": _Exploit(marker)}, protocol=2))
    with pytest.raises(PickleFormatError, match="system"):
        load_mano_pickle(path)
    assert not marker.exists()
    with pytest.raises(InputError, match="MANO_RIGHT.pkl"):
        read_mano_file(path)


def test_model_selection(monkeypatch, mano_dirs):
    monkeypatch.delenv("INSCENE_MANO_DIR", raising=False)
    assert resolve_hand_model("auto") == ("anny", None)
    assert resolve_hand_model("anny", "/somewhere") == ("anny", None)
    assert resolve_hand_model("mano", "/somewhere") == ("mano", "/somewhere")
    with pytest.raises(InputError, match="INSCENE_MANO_DIR"):
        resolve_hand_model("mano")
    with pytest.raises(InputError, match="unknown hand model"):
        resolve_hand_model("smpl")
    with pytest.raises(InputError, match="side"):
        load_hand_model("anny", side="middle")
    monkeypatch.setenv("INSCENE_MANO_DIR", str(mano_dirs["plain"]))
    assert resolve_hand_model("auto") == ("mano", str(mano_dirs["plain"]))
    model = load_hand_model(side="left")
    assert model.name == "mano" and model.side == "left" and model.num_vertices == 778
    with pytest.raises(InputError, match="no MANO_RIGHT"):
        load_hand_model("mano", str(mano_dirs["plain"].parent))
