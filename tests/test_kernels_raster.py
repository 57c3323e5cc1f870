"""Rasterizer and shading: equal to the per-pixel naive twins; pixel-centre convention; silhouettes; overlay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from inscene.kernels.raster import project, rasterize, render_silhouettes
from inscene.kernels.shading import Appearance, blend, overlay, render, shade, vertex_normals
from naive import naive_rasterize, naive_shade

YCB = Path(__file__).resolve().parents[1].parent / "shared/data/ycb"


def camera(h: int, w: int, f: float | None = None) -> np.ndarray:
    f = f or 1.2 * w
    return np.array([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]])


def pose(rotvec: tuple[float, float, float], t: tuple[float, float, float]) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = trimesh.transformations.rotation_matrix(np.linalg.norm(rotvec), rotvec)[:3, :3] \
        if np.linalg.norm(rotvec) > 0 else np.eye(3)
    T[:3, 3] = t
    return T


def scene(seed: int) -> tuple[list, np.ndarray]:
    """Two overlapping meshes (a 'hand' capsule in front of an 'object' box) at slightly random poses."""
    rng = np.random.default_rng(seed)
    hand = trimesh.creation.capsule(height=0.06, radius=0.015, count=[8, 8])
    obj = trimesh.creation.box((0.08, 0.06, 0.05))
    poses = np.stack([pose(tuple(rng.normal(size=3)), (0.01 * rng.normal(), 0.01 * rng.normal(), 0.17)),
                      pose(tuple(rng.normal(size=3)), (0.01 * rng.normal(), 0.01 * rng.normal(), 0.24))])
    return [(hand.vertices, hand.faces), (obj.vertices, obj.faces)], poses


def compare(r, ref, covered_tol: float = 0.005):
    """Equal except for a few pixels on triangle edges (the twins compute barycentrics differently)."""
    same = (r.mesh_id == ref["mesh_id"]) & (r.face_id == ref["face_id"])
    cover = (ref["mesh_id"] >= 0) | (r.mesh_id >= 0)
    assert (~same).sum() <= max(2, covered_tol * cover.sum())
    both = same & (ref["mesh_id"] >= 0)
    np.testing.assert_allclose(r.depth[both], ref["depth"][both], rtol=1e-6)
    np.testing.assert_allclose(r.bary[both], ref["bary"][both], atol=2e-5)
    assert np.all(np.isinf(r.depth[r.mesh_id < 0])) and np.all(r.face_id[r.mesh_id < 0] == -1)


@pytest.mark.parametrize("size", [(6, 8), (24, 32), (48, 40)])
@pytest.mark.parametrize("seed", [0, 1])
def test_rasterize_equals_naive(size, seed):
    meshes, poses = scene(seed)
    K = camera(*size)
    r = rasterize(meshes, poses, K, size)
    ref = naive_rasterize(meshes, poses, K, size)
    assert r.depth.dtype == np.float32 and r.mesh_id.dtype == np.int32 and r.bary.shape == (*size, 3)
    compare(r, ref)
    if size[0] >= 24:
        assert {0, 1} <= set(np.unique(r.mesh_id))  # both meshes visible: the test covers occlusion


def test_silhouettes_equal_rasterize():
    meshes, poses = scene(3)
    K = camera(120, 160)
    r = rasterize(meshes, poses, K, (120, 160))
    s = render_silhouettes(meshes, poses, K, (120, 160), amodal=True)
    assert np.array_equal(s.mesh_id, r.mesh_id) and np.array_equal(s.depth, r.depth)
    for m in range(2):
        alone = rasterize([meshes[m]], poses[m:m + 1], K, (120, 160))
        assert np.array_equal(s.amodal[m], alone.mesh_id == 0)
        assert np.all(s.amodal[m][s.mask(m)])  # visible part within the unoccluded mask
    assert (s.amodal[1] & ~s.mask(1)).any()  # the hand occludes part of the object


def test_pixel_centre_convention():
    """A square whose corners project to pixel centres (2, 3) and (6, 8) covers exactly those pixels, inclusive."""
    h, w = 12, 10
    K = camera(h, w, f=100.0)
    z = 2.0
    corners = np.array([[2, 3], [6, 3], [6, 8], [2, 8]], float)
    X = np.column_stack([(corners[:, 0] - K[0, 2]) * z / K[0, 0], (corners[:, 1] - K[1, 2]) * z / K[1, 1],
                         np.full(4, z)])
    np.testing.assert_allclose(project(X, K), corners, atol=1e-12)
    r = rasterize([(X, np.array([[0, 1, 2], [0, 2, 3]]))], np.eye(4)[None], K, (h, w))
    expect = np.zeros((h, w), bool)
    expect[3:9, 2:7] = True
    assert np.array_equal(r.mesh_id == 0, expect)
    np.testing.assert_allclose(r.depth[expect], z, rtol=1e-6)
    # perspective-correct barycentrics reproduce the 3D point seen through each pixel
    v, u = np.nonzero(expect)
    f = r.face_id[v, u]
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    P = np.einsum("nk,nkj->nj", r.bary[v, u].astype(float), X[faces[f]])
    np.testing.assert_allclose(project(P, K), np.column_stack([u, v]), atol=1e-4)


def test_perspective_correct_depth_on_slanted_plane():
    h, w = 40, 50
    K = camera(h, w)
    quad = np.array([[-0.1, -0.1, 0.3], [0.1, -0.1, 0.3], [0.1, 0.1, 0.6], [-0.1, 0.1, 0.6]])
    r = rasterize([(quad, np.array([[0, 1, 2], [0, 2, 3]]))], np.eye(4)[None], K, (h, w))
    v, u = np.nonzero(r.mesh_id == 0)
    ray = np.column_stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones(len(u))])
    n = np.cross(quad[1] - quad[0], quad[3] - quad[0])
    z = (quad[0] @ n) / (ray @ n)  # ray-plane intersection depth
    np.testing.assert_allclose(r.depth[v, u], z, rtol=1e-6)


def test_culling_and_near_plane():
    K = camera(20, 20)
    sphere = trimesh.creation.icosphere(2, radius=0.05)
    T = pose((0, 0, 0), (0, 0, 0.5))
    a = rasterize([sphere], T[None], K, (20, 20))
    b = rasterize([sphere], T[None], K, (20, 20), cull_backfaces=True)
    assert np.array_equal(a.mesh_id, b.mesh_id) and np.array_equal(a.depth, b.depth)
    tri = (np.array([[0, 0, 1.0], [0.1, 0, 1.0], [0, 0.1, 1.0]]), np.array([[0, 1, 2]]))  # normal +z: back-facing
    assert (rasterize([tri], np.eye(4)[None], K, (20, 20)).mesh_id == 0).any()
    assert not (rasterize([tri], np.eye(4)[None], K, (20, 20), cull_backfaces=True).mesh_id == 0).any()
    behind = pose((0, 0, 0), (0, 0, 0.03))  # the sphere straddles the near plane: dropped triangles only
    c = rasterize([sphere], behind[None], K, (20, 20), near=0.05)
    assert np.all(c.depth[c.mesh_id >= 0] >= 0.05)


def test_rasterizer_errors():
    meshes, poses = scene(0)
    with pytest.raises(ValueError, match="poses"):
        rasterize(meshes, poses[:1], camera(8, 8), (8, 8))
    with pytest.raises(ValueError, match="K must be"):
        rasterize(meshes, poses, np.eye(4), (8, 8))
    with pytest.raises(ValueError, match="size"):
        rasterize(meshes, poses, camera(8, 8), (0, 8))
    empty = rasterize([], np.zeros((0, 4, 4)), camera(8, 8), (8, 8))
    assert np.all(empty.mesh_id == -1)


# --------------------------------------------------------------------------- shading


def _textured_box(seed: int):
    rng = np.random.default_rng(seed)
    box = trimesh.creation.box((0.08, 0.06, 0.05))
    uv = rng.uniform(-0.2, 1.2, size=(len(box.vertices), 2))  # outside [0, 1]: repeats
    tex = rng.integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    return box, uv, tex


@pytest.mark.parametrize("kind", ["color", "vertex", "nearest", "bilinear"])
def test_shade_equals_naive(kind):
    box, uv, tex = _textured_box(4)
    rng = np.random.default_rng(5)
    T = pose((0.4, 0.7, 0.2), (0.0, 0.0, 0.4))
    size = (30, 36)
    K = camera(*size)
    vcol = rng.integers(0, 256, size=(len(box.vertices), 3), dtype=np.uint8)
    app = {"color": Appearance(color=(0.2, 0.5, 0.9)), "vertex": Appearance(vertex_colors=vcol),
           "nearest": Appearance(uv=uv, texture=tex, bilinear=False),
           "bilinear": Appearance(uv=uv, texture=tex, bilinear=True)}[kind]
    albedo = {"color": {"color": (0.2, 0.5, 0.9)}, "vertex": {"vertex": vcol / 255.0},
              "nearest": {"uv": uv, "texture": tex, "bilinear": False},
              "bilinear": {"uv": uv, "texture": tex, "bilinear": True}}[kind]
    light = np.array([0.3, -0.2, 1.0]) / np.linalg.norm([0.3, -0.2, 1.0])
    r = rasterize([box], T[None], K, size)
    rgb = shade(r, [box], T[None], [app], light_dir=light, ambient=0.25, background=(1, 2, 3))
    ref = naive_shade(r.mesh_id, r.face_id, r.bary, box.faces, vertex_normals(box.vertices, box.faces) @ T[:3, :3].T,
                      albedo, light, 0.25)
    cover = r.mesh_id == 0
    assert cover.sum() > 50
    expect = (np.clip(ref[cover], 0, 1) * 255 + 0.5).astype(int)
    assert np.abs(rgb[cover].astype(int) - expect).max() <= 1
    assert np.all(rgb[~cover] == [1, 2, 3])


def test_render_and_overlay_ycb():
    path = YCB / "025_mug/textured.obj"
    if not path.exists():
        pytest.skip(f"YCB mesh {path} is not present (../shared/data/ycb)")
    mug = trimesh.load(path, force="mesh")
    mug.apply_scale(0.01)
    app = Appearance.from_trimesh(mug)
    assert app.texture is not None and app.texture.shape == (2048, 2048, 3) and app.uv.shape == (len(mug.vertices), 2)
    T = pose((1.9, 0, 0), tuple(-mug.bounds.mean(0) + [0, 0, 0.4]))
    K = camera(120, 160)
    rgb, r = render([mug], T[None], K, (120, 160))
    cover = r.mesh_id == 0
    assert 0.1 < cover.mean() < 0.9
    assert rgb[cover, 0].mean() > rgb[cover, 2].mean() + 20  # the YCB mug is red
    img = np.full((120, 160, 3), 100, np.uint8)
    out = overlay(img, [mug], T[None], K, opacity=0.5, outline=None)
    assert np.array_equal(out[~cover], img[~cover])
    expect = (img[cover].astype(np.float32) * 0.5 + rgb[cover].astype(np.float32) * 0.5 + 0.5).astype(np.uint8)
    assert np.abs(out[cover].astype(int) - expect.astype(int)).max() <= 1
    edged = blend(img, rgb, r.mesh_id, 0.5, outline=(0, 255, 0))
    assert (edged[cover] == [0, 255, 0]).all(axis=-1).sum() > 10
    with pytest.raises(ValueError, match="RGB uint8"):
        overlay(img[..., 0], [mug], T[None], K)


def test_parallel_and_serial_paths_agree():
    from inscene.kernels import set_parallel_scale

    meshes, poses = scene(5)
    K = camera(96, 128)
    box, uv, tex = _textured_box(6)
    out = []
    for scale in (0.0, np.inf):
        previous = set_parallel_scale(scale)
        try:
            r = rasterize(meshes, poses, K, (96, 128))
            s = render_silhouettes(meshes, poses, K, (96, 128))
            rgb = shade(r, meshes, poses, [Appearance(), Appearance(color=(1.0, 0.0, 0.0))])
            out.append((r, s, rgb))
        finally:
            set_parallel_scale(previous)
    (r0, s0, c0), (r1, s1, c1) = out
    for name in ("depth", "mesh_id", "face_id", "bary"):
        assert np.array_equal(getattr(r0, name), getattr(r1, name))
    assert np.array_equal(s0.mesh_id, s1.mesh_id) and np.array_equal(c0, c1)
