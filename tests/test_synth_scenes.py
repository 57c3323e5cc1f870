"""Every kind of synthetic scene keeps its ground truth consistent: egocentric camera, two hands, YCB scans."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_data
from synth_fixtures import out_and_back
from inscene.bench.synth import build_scene, preset
from inscene.bench.synth.clearance import CLOSING, SOFT_TOL
from inscene.bench.synth.render import LABELS, Renderer
from inscene.kernels import BVH, winding_number


def check_truth(scene) -> dict[str, float]:
    """Recompute penetration and contact distances from each hand's vertices; assert the requirements."""
    bvh = BVH.build(scene.object.mesh.vertices, scene.object.mesh.faces)
    T_obj_cam = np.linalg.inv(scene.T_cam_obj)
    figures = {}
    for side, h in scene.hands.items():
        pen, contact = 0.0, 0.0
        for i in range(scene.n_frames):
            v = h.vertices[i] @ T_obj_cam[i, :3, :3].T + T_obj_cam[i, :3, 3]
            d, _ = bvh.nearest_distance(v)
            sd = np.where(np.abs(winding_number(bvh, v)) > 0.5, -d, d)
            if h.phase[i] in CLOSING:  # fingers pressing in while they close or open: up to SOFT_TOL
                assert -sd.min() <= SOFT_TOL + 1e-4, f"{side} frame {i}: {-sd.min() * 1e3:.2f} mm while closing"
            else:
                pen = max(pen, -sd.min())
            k = h.contact_vertex[i] >= 0
            assert k.any() == h.in_contact[i]
            if k.any():
                contact = max(contact, np.abs(sd[h.contact_vertex[i][k]]).max())
        assert pen <= 1e-3, f"{side}: penetration {pen * 1e3:.2f} mm"
        T_table_cam = np.linalg.inv(scene.T_world_table) @ scene.T_world_cam
        z = np.einsum("tj,tvj->tv", T_table_cam[:, 2, :3], h.vertices) + T_table_cam[:, None, 2, 3]
        assert z.min() >= -1e-3, f"{side}: {-z.min() * 1e3:.2f} mm below the table"
        assert contact <= 2e-3, f"{side}: contact distance {contact * 1e3:.2f} mm"
        # no frame jumps out and back (generator version 1 backed single frames off the object by centimetres at
        # the grasp's onset and release; moving a frame out along the surface takes about its fingers' depth)
        w = np.einsum("tij,tj->ti", scene.T_world_cam[:, :3, :3], h.keypoints[:, 0]) + scene.T_world_cam[:, :3, 3]
        jump = out_and_back(w)
        assert jump <= 0.015, f"{side}: a {jump * 1e3:.1f} mm step out and back"
        g = h.grasp
        assert "thumb" in g.contact_fingers and len(g.contact_fingers) >= 2, g.contact_fingers
        assert h.onset is not None and h.release is not None and h.onset < h.release
        assert h.in_contact[h.phase == 3].all()
        figures[side] = pen
    return figures


@pytest.fixture(scope="module")
def models(anny_right, anny_left):
    return {"right": anny_right, "left": anny_left}


def test_egocentric_scene(models):
    scene = build_scene(preset("tiny_ego"), 3, models)
    check_truth(scene)
    eye = scene.T_world_cam[:, :3, 3]
    assert np.linalg.norm(eye - eye[0], axis=1).max() > 0.01  # the head moves
    fwd = scene.T_world_cam[:, :3, 2]
    assert np.degrees(np.arccos(np.clip(fwd @ fwd[0], -1, 1))).max() > 1.0  # and turns
    frame = Renderer(scene).frame(int(np.flatnonzero(scene.hands["right"].phase == 3)[5]))
    assert (frame.labels == LABELS["object"]).sum() > 50 and (frame.labels == LABELS["right"]).sum() > 50


def test_handover_scene(models):
    scene = build_scene(preset("tiny_handover"), 1, models)
    check_truth(scene)
    r, l = scene.hands["right"], scene.hands["left"]
    assert r.onset < l.onset < r.release < l.release  # a hand-over: both hold for a while
    both = r.in_contact & l.in_contact
    assert both.sum() >= 2
    gap = min(np.min(np.linalg.norm(r.vertices[i][::4, None] - l.vertices[i][None, ::4], axis=-1))
              for i in np.flatnonzero(both))
    assert gap > 0.003  # the two hands do not run into each other
    T = scene.T_cam_obj[:, :3, 3]
    left_only = l.in_contact & ~r.in_contact
    assert np.linalg.norm(T[left_only] - T[left_only][0], axis=1).max() > 0.03  # the left hand moves it on
    frame = Renderer(scene).frame(int(np.flatnonzero(both)[0]))
    for name in ("object", "right", "left"):
        assert (frame.labels == LABELS[name]).sum() > 30, name


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ycb_mug_ego", "ycb_mustard_static"])
def test_ycb_scenes(models, name):
    scan = {"ycb_mug_ego": "ycb/025_mug/textured.obj",
            "ycb_mustard_static": "ycb/006_mustard_bottle/006_mustard_bottle.obj"}[name]
    shared_data(scan)
    scene = build_scene(preset(name, n_frames=48, size=(320, 240)), 0, models)
    assert scene.object.source.endswith(scan.split("/")[-1])
    check_truth(scene)
    frame = Renderer(scene).frame(int(np.flatnonzero(scene.hands["right"].phase == 3)[3]))
    obj = frame.labels == LABELS["object"]
    assert obj.sum() > 100 and frame.rgb[obj].std() > 5  # the scan's texture


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mug_static", "cup_ego", "box_ego", "handover_static"])
def test_procedural_presets(models, name):
    scene = build_scene(preset(name, n_frames=60, size=(320, 240)), 2, models)
    check_truth(scene)


@pytest.mark.slow
def test_cli_generates_a_scene(cli, tmp_path):
    out = tmp_path / "s"
    done = cli("synth", "--preset", "tiny", "--seed", "2", "-o", str(out), "--frames", "30", "--oracle", "realistic",
               timeout=300)
    assert done.returncode == 0, done.stderr
    assert "contact frames" in done.stdout
    for f in ("gt.zarr", "video.mp4", "object.obj", "intrinsics.json", "scene.json", "oracle.zarr",
              "oracle_object_poses.npz"):
        assert (out / f).exists(), f
    again = cli("synth", "--preset", "tiny", "--seed", "2", "-o", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_ycb_scan_absent_falls_back_to_a_procedural_stand_in(monkeypatch, tmp_path):
    from inscene.bench.synth.objects import make_object

    monkeypatch.setenv("INSCENE_YCB_DIR", str(tmp_path))
    obj = make_object("ycb:025_mug", np.random.default_rng(0))
    assert obj.kind == "ycb:025_mug" and obj.source.startswith("procedural stand-in")
    assert obj.handle_dir is not None and obj.mesh.texture is not None
    assert abs(obj.mesh.vertices[:, 2].min()) < 1e-12  # standing on z = 0


def test_bench_scene_caches_regenerate_scenes_of_another_generator_version(tmp_path, monkeypatch):
    import importlib
    import json

    from inscene.bench import synth
    from inscene.bench.accuracy import runner

    gen = importlib.import_module("inscene.bench.synth.generate")  # the module (the package's name is the function)
    made = []
    monkeypatch.setattr(synth, "generate", lambda cfg, seed, out, overwrite=False, **k: made.append((cfg.name, seed)))
    out = tmp_path / "scenes" / "tiny-s4"
    out.mkdir(parents=True)
    (out / "object.obj").write_text("")
    for version, regenerated in ((gen.GENERATOR_VERSION - 1, True), (gen.GENERATOR_VERSION, False)):
        (out / "scene.json").write_text(json.dumps({"generator": version}))
        made.clear()
        assert gen.is_current(out) is not regenerated
        assert runner.scene_dir("tiny", 4, 0, tmp_path) == out
        assert made == ([("tiny", 4)] if regenerated else [])
    (out / "scene.json").write_text("{not json")
    assert not gen.is_current(out)
