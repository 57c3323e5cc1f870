"""The object stage in the engine: external poses land in the store, bad input is one line."""

from __future__ import annotations

import numpy as np
import trimesh

from inscene.engine.store import open_result
from test_cli import assert_one_line_error
from test_objects_io import poses


def test_external_poses_are_written_per_frame(tmp_path, cli):
    mesh = tmp_path / "cup.ply"
    trimesh.creation.cylinder(radius=4.0, height=9.5).export(mesh)  # centimetres
    T = poses(30)
    frames = np.array([i for i in range(30) if i % 7 != 3])  # some frames have no pose
    np.savez(tmp_path / "poses.npz", T_cam_obj=T[frames], frame=frames)
    out = tmp_path / "o.zarr"
    r = cli("run", "gen:?frames=30&size=64x48", "-o", str(out), "--object", str(mesh), "--object-poses",
            str(tmp_path / "poses.npz"), "--no-progress", "--no-hands")
    assert r.returncode == 0, r.stderr
    res = open_result(out)
    valid = res.array("object/valid")
    np.testing.assert_array_equal(valid, [i % 7 != 3 for i in range(30)])
    np.testing.assert_allclose(res.array("object/T_cam_obj")[valid], T[frames])
    assert np.isnan(res.array("object/T_cam_obj")[~valid]).all()
    v = res.array("object/mesh/vertices")
    assert abs(float(v[:, 2].max() - v[:, 2].min()) - 0.095) < 1e-4  # converted to metres
    assert res.attrs["config"]["object"]["units"] == "auto"


def test_object_flags_bad_input(tmp_path, cli):
    mesh = tmp_path / "box.ply"
    trimesh.creation.box(extents=(0.1, 0.1, 0.1)).export(mesh)
    out = tmp_path / "o.zarr"
    assert_one_line_error(cli("run", "gen:?frames=5&size=64x48", "-o", str(out), "--object", str(mesh)),
                          "--object-poses")
    (tmp_path / "broken.obj").write_text("v 0 0\nf 1 2 9\n")
    assert_one_line_error(cli("run", "gen:?frames=5&size=64x48", "-o", str(out), "--object",
                              str(tmp_path / "broken.obj"), "--object-poses", "x.npz"), "broken.obj")
    assert not out.exists()
