"""Object meshes (units, bad files) and external pose tracks (formats, alignment)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from conftest import shared_data
from inscene.engine.errors import InputError
from inscene.models.objects import load_external_tracks, load_object_mesh


@pytest.mark.parametrize("scale, units", [(1.0, "m"), (100.0, "cm"), (1000.0, "mm")])
def test_units_are_detected_and_converted(tmp_path, scale, units):
    box = trimesh.creation.box(extents=(0.08, 0.06, 0.12))
    box.apply_scale(scale)
    f = tmp_path / "box.ply"
    box.export(f)
    m = load_object_mesh(f)
    assert m.units == units and m.detected
    np.testing.assert_allclose(m.extents, [0.08, 0.06, 0.12], rtol=1e-6)
    assert "detected" in m.describe()
    forced = load_object_mesh(f, units="m")
    assert not forced.detected and forced.extents.max() == pytest.approx(0.12 * scale)


def test_ycb_scans_in_metres():
    mug = load_object_mesh(shared_data("ycb/025_mug/textured.obj"))
    assert mug.units == "cm" and 0.11 < mug.extents.max() < 0.12
    assert mug.texture is not None and mug.uv is not None and mug.uv.shape == (len(mug.vertices), 2)
    bottle = load_object_mesh(shared_data("ycb/006_mustard_bottle/006_mustard_bottle.obj"))
    assert bottle.units == "m" and 0.18 < bottle.extents.max() < 0.2


def test_bad_meshes_give_one_line(tmp_path):
    cases = {}
    cases["missing.obj"] = None
    (tmp_path / "garbage.stl").write_bytes(b"\x00\x01 not a mesh" * 10)
    cases["garbage.stl"] = 1
    (tmp_path / "points.ply").write_text("ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\n"
                                         "property float y\nproperty float z\nend_header\n0 0 0\n1 1 1\n")
    cases["points.ply"] = 1
    (tmp_path / "empty.obj").write_text("# nothing\n")
    cases["empty.obj"] = 1
    for name in cases:
        with pytest.raises(InputError) as e:
            load_object_mesh(tmp_path / name)
        assert name in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(InputError, match="units"):
        load_object_mesh(tmp_path / "garbage.stl", units="inch")


def poses(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    T = np.tile(np.eye(4), (n, 1, 1))
    T[:, :3, :3] = Rotation.random(n, random_state=seed).as_matrix()
    T[:, :3, 3] = rng.uniform(-0.2, 0.2, (n, 3)) + [0, 0, 0.6]
    return T


def test_foundationpose_folder_text_npz_and_bop(tmp_path):
    T = poses(6)
    d = tmp_path / "ob_in_cam"
    d.mkdir()
    for i, t in enumerate(T):
        np.savetxt(d / f"{i * 2:06d}.txt", t)  # every other frame has a pose
    tr = load_external_tracks(d)
    np.testing.assert_allclose(tr.pose_at(4, 0.0), T[2])
    assert tr.pose_at(5, 0.0) is None
    np.savetxt(tmp_path / "all.txt", T.reshape(-1, 16))
    np.testing.assert_allclose(load_external_tracks(tmp_path / "all.txt").pose_at(3, 0.0), T[3])
    np.savez(tmp_path / "timed.npz", T_cam_obj=T, time=np.arange(6) / 10)
    tr = load_external_tracks(tmp_path / "timed.npz")
    np.testing.assert_allclose(tr.pose_at(99, 0.31, period=0.1), T[3])
    assert tr.pose_at(99, 0.36, period=0.05) is None
    bop = {str(i): [{"obj_id": 5, "cam_R_m2c": t[:3, :3].ravel().tolist(), "cam_t_m2c": (t[:3, 3] * 1000).tolist()},
                    {"obj_id": 7, "cam_R_m2c": np.eye(3).ravel().tolist(), "cam_t_m2c": [0, 0, 500]}]
           for i, t in enumerate(T)}
    (tmp_path / "scene_gt.json").write_text(json.dumps(bop))
    with pytest.raises(InputError, match="several objects"):
        load_external_tracks(tmp_path / "scene_gt.json")
    np.testing.assert_allclose(load_external_tracks(tmp_path / "scene_gt.json", obj_id=5).pose_at(1, 0), T[1])


def test_millimetre_poses_are_converted_and_bad_files_rejected(tmp_path):
    T = poses(4)
    mm = T.copy()
    mm[:, :3, 3] *= 1000
    np.savez(tmp_path / "mm.npz", T_cam_obj=mm)
    tr = load_external_tracks(tmp_path / "mm.npz")
    assert "millimetres" in tr.note
    np.testing.assert_allclose(tr.T_cam_obj, T)
    bad = T.copy()
    bad[0, :3, :3] *= 2
    np.savez(tmp_path / "skew.npz", T_cam_obj=bad)
    with pytest.raises(InputError, match="orthonormal"):
        load_external_tracks(tmp_path / "skew.npz")
    (tmp_path / "odd.txt").write_text("1 2 3\n")
    with pytest.raises(InputError, match="odd.txt"):
        load_external_tracks(tmp_path / "odd.txt")
    with pytest.raises(InputError, match="nope"):
        load_external_tracks(tmp_path / "nope.npz")
