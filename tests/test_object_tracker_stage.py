"""The region tracker as an engine stage: a rendered clip in, poses in the store; init input; hand occlusion."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest

from inscene.engine.errors import InputError
from inscene.engine.frame import Packet
from inscene.engine.stage import Stage
from inscene.models.objects.initspec import ObjectInit, load_init, parse_box
from inscene.models.objects.occlusion import hand_occlusion_mask, occlusion_from_packet

YCB = Path(__file__).resolve().parents[1].parent / "shared/data/ycb"


def ycb(name: str):
    from inscene.models.objects import load_object_mesh

    path = YCB / {"mug": "025_mug/textured.obj", "mustard": "006_mustard_bottle/006_mustard_bottle.obj"}[name]
    if not path.exists():
        pytest.skip(f"shared test data {path} is not present")
    return load_object_mesh(path)


class HandMaskStage(Stage):
    """Test source of hand masks: puts the rendered hand mask of each frame into ``packet.data``."""

    name = "hand_mask"
    consumes = ("frame",)
    produces = ("hand_mask",)
    timed = False

    def __init__(self, masks: np.ndarray) -> None:
        self.masks = masks

    def process(self, packet: Packet) -> list[Packet]:
        packet.data["hand_mask"] = self.masks[packet.frame.index]
        return [packet]


def test_tracker_stage_writes_poses(tmp_path):
    """Source (PNG folder) -> hand masks -> tracker stage (started from a box) -> store; poses near the truth."""
    from PIL import Image

    from inscene.engine.app import JobRequest, run_job
    from inscene.engine.config import RunConfig
    from inscene.engine.stages.objects import RegionObjectTracker
    from inscene.engine.store import open_result
    from inscene.kernels import render_silhouettes
    from inscene.models.objects.init import box_from_mask
    from inscene.models.objects.session import SessionConfig
    from inscene.models.objects.synthetic import preset_sequence

    mesh = ycb("mug")
    seq = preset_sequence(mesh, "mug", 24, seed=4, max_coverage=0.3, size=(360, 480))
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, img in enumerate(seq.images):
        Image.fromarray(img).save(folder / f"{i}.png")
    sil = render_silhouettes([(mesh.vertices, mesh.faces)], seq.T_cam_obj[:1], seq.K, (360, 480)).mesh_id == 0
    box = box_from_mask(sil)
    K = seq.K
    cfg = RunConfig().replace("camera", intrinsics=(K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    stage = RegionObjectTracker(mesh, ObjectInit(box=box, source="test box"), SessionConfig(subdivisions=3))

    def factory(config, ctx):
        return [HandMaskStage(seq.hand), stage]

    out = run_job(JobRequest(str(folder), tmp_path / "o.zarr", cfg, stage_factory=factory), progress=False)
    assert out.error is None and out.state == "complete"
    res = open_result(tmp_path / "o.zarr")
    valid = res.array("object/valid")
    T = res.array("object/T_cam_obj")
    score = res.array("object/score")
    assert valid.all() and len(T) == 24
    rot = [np.degrees(np.arccos(np.clip((np.trace(a[:3, :3] @ b[:3, :3].T) - 1) / 2, -1, 1)))
           for a, b in zip(T, seq.T_cam_obj, strict=True)]
    tra = np.linalg.norm(T[:, :3, 3] - seq.T_cam_obj[:, :3, 3], axis=1)
    assert np.median(rot) < 3.0 and np.median(tra) < 0.01, (np.median(rot), np.median(tra))
    assert (score > 0.5).all()
    assert stage.states.get("lost", 0) == 0
    assert res.array("object/mesh/faces").shape == mesh.faces.shape
    assert "timing/object" in res.attrs["per_frame_arrays"]


def test_init_input_errors_are_one_line(tmp_path):
    assert parse_box("10, 20,30,40") == (10.0, 20.0, 30.0, 40.0)
    for bad in ("10,20,30", "a,b,c,d", "1,2,0,5"):
        with pytest.raises(InputError) as e:
            parse_box(bad)
        assert "\n" not in str(e.value) and "--object-box" in str(e.value)
    p = tmp_path / "init.json"
    for doc, words in (("{", "JSON"), ('{"frame": 3}', "exactly one"), ('{"box": [1, 2, 3]}', "four numbers"),
                       ('{"mask": "nope.png"}', "not found"), ('{"T_cam_obj": [[1, 0], [0, 1]]}', "4x4"),
                       ('{"box": [1, 2, 30, 40], "frame": -1}', "frame")):
        p.write_text(doc)
        with pytest.raises(InputError) as e:
            load_init(p)
        assert words in str(e.value) and "\n" not in str(e.value), str(e.value)
    with pytest.raises(InputError, match="not found"):
        load_init(tmp_path / "missing.json")
    p.write_text(json.dumps({"T_cam_obj": np.eye(4).tolist(), "frame": 5}))
    init = load_init(p)
    assert init.frame == 5 and np.allclose(init.T_cam_obj, np.eye(4))
    from PIL import Image

    m = np.zeros((48, 64), np.uint8)
    m[10:20, 5:30] = 255
    Image.fromarray(m).save(tmp_path / "m.png")
    p.write_text('{"mask": "m.png"}')
    init = load_init(p)
    assert init.mask.sum() == 250
    with pytest.raises(InputError, match="size of the frames"):
        init.check_size(80, 48)
    with pytest.raises(InputError, match="outside"):
        ObjectInit(box=(700, 10, 20, 20), source="--object-box").check_size(640, 480)


def test_object_stage_needs_to_know_where_the_object_is(tmp_path):
    import trimesh

    from inscene.engine.stages.objects import ExternalObjectPoses, object_stage

    mesh = tmp_path / "box.ply"
    trimesh.creation.box(extents=(0.05, 0.05, 0.05)).export(mesh)

    def cfg(**kw):
        base = {"mesh": str(mesh), "units": "auto", "poses": None, "obj_id": None}
        return types.SimpleNamespace(object=types.SimpleNamespace(**{**base, **kw}))

    with pytest.raises(InputError, match="--object-box") as e:
        object_stage(cfg())
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="only one"):
        object_stage(cfg(box="1,2,30,40", init=str(tmp_path / "x.json")))
    np.savez(tmp_path / "p.npz", T_cam_obj=np.eye(4)[None])
    assert isinstance(object_stage(cfg(poses=str(tmp_path / "p.npz"))), ExternalObjectPoses)


def test_hand_occlusion_from_keypoints():
    rng = np.random.default_rng(0)
    # a hand: wrist at (100, 200), fingers pointing up
    kp = np.zeros((21, 3))
    kp[0, :2] = (100, 200)
    for f, x in enumerate((60, 85, 100, 115, 130)):
        for j in range(4):
            kp[1 + 4 * f + j, :2] = (x + (0 if f else -10 * j), 160 - 25 * j)
    m = hand_occlusion_mask([kp], (240, 320))
    ij = np.rint(kp[:, :2]).astype(int)
    assert m[ij[:, 1], ij[:, 0]].all()  # every keypoint is covered
    assert m[180, 100] and not m[10, 300] and not m[230, 20]
    assert 0.02 < m.mean() < 0.25
    assert not hand_occlusion_mask([np.full((21, 3), np.nan)], (240, 320)).any()
    given = rng.uniform(size=(240, 320)) < 0.1
    assert occlusion_from_packet({"hand_mask": given}, (240, 320)) is given or \
        np.array_equal(occlusion_from_packet({"hand_mask": given}, (240, 320)), given)
    frame = types.SimpleNamespace(hands=[types.SimpleNamespace(keypoints=kp)])
    np.testing.assert_array_equal(occlusion_from_packet({"hands2d": frame}, (240, 320)), m)
    assert occlusion_from_packet({}, (240, 320)) is None
    assert occlusion_from_packet({"hands2d": types.SimpleNamespace(hands=[])}, (240, 320)) is None


def test_fitted_hands_mask_is_the_whole_frame_rendering_in_each_hands_box(anny_right):
    """The fitted hands' occlusion mask rasterizes each hand in its own box: the same pixels as the whole frame
    rendered and grown by the same amount (a hand partly outside the image too); and the object stage prefers it
    to the keypoint mask when the per-frame fit ran."""
    import torch
    from scipy.ndimage import binary_dilation

    from inscene.kernels import render_silhouettes
    from inscene.models.hands.jacobian import pose_fast
    from inscene.models.hands.params import HandParams
    from inscene.models.objects.occlusion import fitted_hands_mask

    m = anny_right
    K = np.array([[300.0, 0.0, 159.5], [0.0, 300.0, 119.5], [0.0, 0.0, 1.0]])
    faces = np.asarray(m.faces)
    rng = np.random.default_rng(3)
    hands = []
    for t in ([0.0, 0.0, 0.45], [-0.28, 0.05, 0.5]):  # in view; across the left border
        p = HandParams(torch.as_tensor(rng.normal(0, 0.5, (1, 3)), dtype=m.dtype),
                       torch.as_tensor(rng.normal(0, 0.2, (1, m.num_pose_joints, 3)), dtype=m.dtype),
                       torch.zeros(1, m.num_betas, dtype=m.dtype), torch.tensor([t], dtype=m.dtype))
        hands.append((pose_fast(m, p, with_vertices=True)[1][0], faces))
    for dilate in (0, 3):
        mask = fitted_hands_mask(hands, K, (240, 320), dilate=dilate)
        full = render_silhouettes(hands, np.repeat(np.eye(4)[None], 2, 0), K, (240, 320)).mesh_id >= 0
        if dilate:
            full = binary_dilation(full, iterations=dilate)
        np.testing.assert_array_equal(mask, full)
        assert mask[:, 0].any() and 0.01 < mask.mean() < 0.5
    behind = hands[0][0] * np.array([1.0, 1.0, -1.0])
    assert not fitted_hands_mask([(behind, faces)], K, (240, 320)).any()
    # the object stage's choice: the fitted hands when the fit gave any, else the keypoints
    kp = np.zeros((21, 3))
    kp[:, :2] = rng.uniform(20, 60, (21, 2))
    frame = types.SimpleNamespace(hands=[types.SimpleNamespace(keypoints=kp)])
    data = {"hands2d": frame}
    got = occlusion_from_packet(data, (240, 320), lambda d: hands, K)
    np.testing.assert_array_equal(got, fitted_hands_mask(hands, K, (240, 320)))
    np.testing.assert_array_equal(occlusion_from_packet(data, (240, 320), lambda d: [], K),
                                  hand_occlusion_mask([kp], (240, 320)))
