"""The manipulated object of a scene: a YCB scan (when present) or a procedural shape, sized by the seed.

Whatever its source, the object is returned in the synthetic scenes' object frame:
z up, standing on z = 0, the vertical axis of its base through x = y = 0, metres,
with its texture. YCB scans are found in ``$INSCENE_YCB_DIR`` or
``../shared/data/ycb`` beside the checkout; when a scan is absent the closest
procedural shape stands in and the scene records that it did.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import shapes, textures

YCB_FILES = {"025_mug": "025_mug/textured.obj", "006_mustard_bottle": "006_mustard_bottle/006_mustard_bottle.obj"}
YCB_STAND_IN = {"025_mug": "mug", "006_mustard_bottle": "bottle"}


@dataclass(frozen=True)
class SceneObject:
    """The object and what the grasp synthesis needs to know about it.

    Attributes:
        mesh: the textured mesh in the object frame (z up, base on z = 0).
        kind: ``box``, ``cylinder``, ``cup``, ``mug``, ``bottle`` or ``ycb:NAME``.
        source: ``procedural``, the scan's path, or ``procedural stand-in (...)``.
        handle_dir: (3,) horizontal unit direction of a handle, or None.
        top_graspable: a grasp from above is natural (boxes, bottles).
    """

    mesh: shapes.Mesh
    kind: str
    source: str
    handle_dir: np.ndarray | None
    top_graspable: bool

    @property
    def height(self) -> float:
        return float(self.mesh.vertices[:, 2].max())


def ycb_dir() -> Path:
    """Where YCB scans are looked for: ``$INSCENE_YCB_DIR`` or ``../shared/data/ycb`` beside the checkout."""
    env = os.environ.get("INSCENE_YCB_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "ycb"


def make_object(kind: str, rng: np.random.Generator) -> SceneObject:
    """The object ``kind`` (see :data:`config.OBJECTS`), sized and textured from ``rng``."""
    if kind.startswith("ycb:"):
        name = kind[4:]
        path = ycb_dir() / YCB_FILES.get(name, f"{name}/textured.obj")
        if path.is_file():
            return _ycb(kind, path)
        stand_in = _procedural(YCB_STAND_IN.get(name, "cylinder"), rng)
        return SceneObject(stand_in.mesh, kind, f"procedural stand-in ({path} not found)", stand_in.handle_dir,
                           stand_in.top_graspable)
    return _procedural(kind, rng)


def _procedural(kind: str, rng: np.random.Generator) -> SceneObject:
    u = rng.uniform
    handle = None
    top = False
    if kind == "box":
        m = shapes.box(u(0.05, 0.075), u(0.05, 0.075), u(0.09, 0.14))
        top = True
    elif kind == "cylinder":
        m = shapes.cylinder(u(0.028, 0.038), u(0.10, 0.15))
    elif kind == "bottle":
        m = shapes.cylinder(u(0.029, 0.034), u(0.17, 0.21))
        top = True
    elif kind == "cup":
        m = shapes.cup(u(0.026, 0.031), u(0.036, 0.042), u(0.08, 0.105))
    elif kind == "mug":
        m = shapes.mug(u(0.036, 0.043), u(0.085, 0.105))
        handle = np.array([1.0, 0.0, 0.0])
    else:
        raise ValueError(f"unknown procedural object {kind!r}")
    m.texture = textures.object_texture(rng)
    m.name = kind
    return SceneObject(m, kind, "procedural", handle, top)


def _ycb(kind: str, path: Path) -> SceneObject:
    from inscene.models.objects import load_object_mesh

    obj = load_object_mesh(path)
    v = obj.vertices.copy()
    base = v[v[:, 2] < v[:, 2].min() + 0.01]
    centre = 0.5 * (base[:, :2].min(0) + base[:, :2].max(0))
    v[:, :2] -= centre
    v[:, 2] -= v[:, 2].min()
    radial = np.linalg.norm(v[:, :2], axis=1)
    handle = None
    if "mug" in kind:  # the handle is the part reaching furthest from the axis
        far = v[radial > np.percentile(radial, 99.5), :2].mean(0)
        handle = np.array([*far / np.linalg.norm(far), 0.0])
    texture = obj.texture
    uv = None if obj.uv is None else obj.uv.astype(np.float64)
    colors = obj.vertex_colors
    mesh = shapes.Mesh(v, obj.faces.astype(np.int32), uv, texture, colors, name=kind)
    return SceneObject(mesh, kind, str(path), handle, top_graspable="mustard" in kind)
