"""`inscene run FRAMES --object MESH --object-box x,y,w,h`: the region tracker through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import shared_data
from inscene.engine.store import open_result


@pytest.mark.slow
def test_run_with_object_box_tracks_the_object(tmp_path, cli):
    from PIL import Image

    from inscene.kernels import render_silhouettes
    from inscene.models.objects import load_object_mesh
    from inscene.models.objects.init import box_from_mask
    from inscene.models.objects.synthetic import preset_sequence

    path = shared_data("ycb/025_mug/textured.obj")
    mesh = load_object_mesh(path)
    seq = preset_sequence(mesh, "mug", 16, seed=7, max_coverage=0.0, size=(360, 480))
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, img in enumerate(seq.images):
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    sil = render_silhouettes([(mesh.vertices, mesh.faces)], seq.T_cam_obj[:1], seq.K, (360, 480)).mesh_id == 0
    x, y, w, h = box_from_mask(sil)
    K = seq.K
    (tmp_path / "K.json").write_text(json.dumps({"K": K.tolist()}))
    out = tmp_path / "o.zarr"
    r = cli("run", str(folder), "-o", str(out), "--object", str(path), "--object-box", f"{x},{y},{w},{h}",
            "--intrinsics", str(tmp_path / "K.json"), "--no-hands", "--no-progress", timeout=600)
    assert r.returncode == 0, r.stderr
    res = open_result(out)
    assert res.array("object/valid").all()
    T = res.array("object/T_cam_obj")
    t_err = np.linalg.norm(T[:, :3, 3] - seq.T_cam_obj[:, :3, 3], axis=1)
    R = np.einsum("nij,nkj->nik", T[:, :3, :3], seq.T_cam_obj[:, :3, :3])
    r_err = np.degrees(np.arccos(np.clip((np.trace(R, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert np.median(t_err) < 0.01 and np.median(r_err) < 2.0, (np.median(t_err), np.median(r_err))
    assert np.isfinite(res.array("timing/object")).all()


def test_object_box_and_poses_together_is_one_line(tmp_path, cli):
    import trimesh

    mesh = tmp_path / "box.ply"
    trimesh.creation.box(extents=(0.1, 0.1, 0.1)).export(mesh)
    np.savez(tmp_path / "p.npz", T_cam_obj=np.eye(4)[None])
    r = cli("run", "gen:?frames=5&size=64x48", "-o", str(tmp_path / "o.zarr"), "--object", str(mesh),
            "--object-box", "1,2,3,4", "--object-poses", str(tmp_path / "p.npz"), "--no-hands")
    assert r.returncode != 0 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "--object-box" in r.stderr and "--object-poses" in r.stderr
