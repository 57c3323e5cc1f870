"""Rendering a scene's frames with the kernels' rasterizer and shader: RGB, depth, labels, amodal masks.

One z-buffer pass over every mesh (backdrop, object, hands) gives depth, the
visible mesh per pixel and barycentrics; the shader textures the object and the
backdrop, colours the hands with their skin vertex colours, and lights everything
with a world-fixed light (two-sided Lambert, ambient). Seeded Gaussian sensor
noise is added to the RGB only (a small bank of noise frames, randomly shifted per frame). Amodal masks (each of the object and the hands
alone) give the occlusion fractions.

Labels: 0 background (table, wall, floor), 1 object, 2 right hand, 3 left hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inscene.kernels import Appearance, rasterize, render_silhouettes, shade

from .scene import Scene

LABELS = {"background": 0, "object": 1, "right": 2, "left": 3}
NOISE_BANK = 4
"""Frames of pre-drawn sensor noise; each frame takes one, rolled by a random offset (cheap, still seeded)."""


@dataclass(frozen=True)
class RenderedFrame:
    """One rendered frame (H, W image)."""

    rgb: np.ndarray
    """(H, W, 3) uint8, with sensor noise."""
    depth: np.ndarray
    """(H, W) float32 camera z, metres; inf where nothing is drawn."""
    labels: np.ndarray
    """(H, W) uint8 visible label per pixel (see :data:`LABELS`)."""
    amodal: dict[str, np.ndarray]
    """name (``object``, ``right``, ``left``) -> (H, W) bool coverage ignoring occluders."""

    def visible_fraction(self, name: str) -> float:
        """Visible share of the amodal pixels of ``name`` (NaN when it is out of view)."""
        total = int(self.amodal[name].sum())
        return float((self.labels == LABELS[name]).sum() / total) if total else float("nan")


class Renderer:
    """Renders the frames of one scene: ``Renderer(scene).frame(i) -> RenderedFrame``."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        mesh = scene.object.mesh
        self.meshes: list = []
        self.appearances: list[Appearance] = []
        self.world_poses: list[np.ndarray | None] = []
        self.label_of: list[int] = []
        for m, T in scene.backdrop:
            self._add(m, Appearance(uv=m.uv, texture=m.texture, bilinear=False), T, 0)
        obj_app = (Appearance(uv=mesh.uv, texture=mesh.texture) if mesh.texture is not None and mesh.uv is not None
                   else Appearance(vertex_colors=mesh.vertex_colors) if mesh.vertex_colors is not None
                   else Appearance(color=(0.8, 0.3, 0.2)))
        self.object_index = self._add(mesh, obj_app, None, LABELS["object"])
        self.hand_index = {}
        for side, h in scene.hands.items():
            faces = h.kit.model.faces.numpy().astype(np.int32)
            self.hand_index[side] = self._add((h.vertices[0], faces), Appearance(vertex_colors=h.colors), None,
                                              LABELS[side])
        self.lut = np.zeros(len(self.meshes) + 1, np.uint8)  # mesh id -1 -> index -1 -> background
        self.lut[:len(self.label_of)] = self.label_of
        w, h = scene.size
        sigma = scene.config.image_noise
        bank = np.random.default_rng([scene.seed, 6]).normal(0.0, sigma, (NOISE_BANK, h, w, 3)) if sigma > 0 else None
        self._noise = None if bank is None else np.round(bank).astype(np.int16)

    def _add(self, mesh, app: Appearance, T_world: np.ndarray | None, label: int) -> int:
        self.meshes.append(mesh)
        self.appearances.append(app)
        self.world_poses.append(T_world)
        self.label_of.append(label)
        return len(self.meshes) - 1

    def frame_meshes(self, i: int) -> tuple[list, np.ndarray]:
        """The meshes of frame ``i`` (hands posed) and their camera poses (M, 4, 4)."""
        s = self.scene
        T_cam_world = np.linalg.inv(s.T_world_cam[i])
        meshes = list(self.meshes)
        poses = np.zeros((len(meshes), 4, 4))
        for k, T in enumerate(self.world_poses):
            poses[k] = T_cam_world @ T if T is not None else np.eye(4)
        poses[self.object_index] = s.T_cam_obj[i]
        for side, k in self.hand_index.items():
            meshes[k] = (s.hands[side].vertices[i], self.meshes[k][1])
        return meshes, poses

    def frame(self, i: int, amodal: bool = True) -> RenderedFrame:
        """Render frame ``i``."""
        s = self.scene
        w, h = s.size
        meshes, poses = self.frame_meshes(i)
        raster = rasterize(meshes, poses, s.K, (h, w))
        light = np.linalg.inv(s.T_world_cam[i])[:3, :3] @ s.light_world
        rgb = shade(raster, meshes, poses, self.appearances, light_dir=light, ambient=0.4)
        if self._noise is not None:  # a frame of the bank, shifted by a per-frame random offset
            rng = np.random.default_rng([s.seed, 6, i])
            noise = np.roll(self._noise[rng.integers(NOISE_BANK)], tuple(rng.integers(0, (h, w))), axis=(0, 1))
            rgb = np.clip(rgb.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        labels = self.lut[raster.mesh_id]
        masks = {}
        if amodal:
            for name, k in [("object", self.object_index), *self.hand_index.items()]:
                masks[name] = render_silhouettes([meshes[k]], poses[k:k + 1], s.K, (h, w)).mesh_id >= 0
        return RenderedFrame(rgb, raster.depth, labels, masks)


def render_labels(scene: Scene, i: int, hand_vertices: dict[str, np.ndarray] | None = None,
                  T_cam_obj: np.ndarray | None = None) -> np.ndarray:
    """(H, W) uint8 labels of frame ``i`` re-rendered from given hand vertices / object pose (default: the scene's)."""
    r = Renderer(scene)
    meshes, poses = r.frame_meshes(i)
    for side, v in (hand_vertices or {}).items():
        meshes[r.hand_index[side]] = (v, meshes[r.hand_index[side]][1])
    if T_cam_obj is not None:
        poses[r.object_index] = T_cam_obj
    w, h = scene.size
    sil = render_silhouettes(meshes, poses, scene.K, (h, w))
    return r.lut[sil.mesh_id]


__all__ = ["LABELS", "RenderedFrame", "Renderer", "render_labels"]
