"""Object meshes from any file trimesh reads, in metres, with their units detected.

Scans come in metres, centimetres or millimetres with nothing in the file to say
which. Hand-held objects are between about 2 cm and 1 m across, so the largest
extent decides: below 1.5 the file is in metres, up to 40 in centimetres, above
in millimetres (BOP models are in millimetres, YCB scans in metres or centimetres).
Objects under 4 cm stored in millimetres are read as centimetres: the choice is
reported and can be forced (``units=``, ``--object-units``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inscene.engine.errors import InputError

UNIT_SCALE = {"m": 1.0, "cm": 0.01, "mm": 0.001}
UNIT_NAMES = {"m": "metres", "cm": "centimetres", "mm": "millimetres"}


@dataclass(frozen=True)
class ObjectMesh:
    """A rigid object's mesh in its own frame, in metres.

    Attributes:
        vertices: ``(V, 3)`` float64, metres.
        faces: ``(F, 3)`` int32.
        vertex_normals: ``(V, 3)`` float64, unit length.
        uv: ``(V, 2)`` float32 texture coordinates, or None.
        texture: ``(H, W, 3)`` uint8 texture image, or None.
        vertex_colors: ``(V, 3)`` uint8, or None.
        units: the units the file was read in (``m``, ``cm``, ``mm``).
        detected: True when the units were detected rather than given.
        path: the file it came from.
    """

    vertices: np.ndarray
    faces: np.ndarray
    vertex_normals: np.ndarray
    uv: np.ndarray | None
    texture: np.ndarray | None
    vertex_colors: np.ndarray | None
    units: str
    detected: bool
    path: str
    extra: dict = field(default_factory=dict)

    @property
    def extents(self) -> np.ndarray:
        """Axis-aligned size, ``(3,)`` metres."""
        return self.vertices.max(0) - self.vertices.min(0)

    def describe(self) -> str:
        e = self.extents * 100
        how = "detected" if self.detected else "given"
        return (f"{self.path}: {len(self.vertices)} vertices, {len(self.faces)} faces, units {UNIT_NAMES[self.units]} "
                f"({how}), size {e[0]:.1f} x {e[1]:.1f} x {e[2]:.1f} cm")


def detect_units(max_extent: float) -> str:
    """Units of a file whose largest extent is ``max_extent`` (in file units)."""
    if max_extent < 1.5:
        return "m"
    if max_extent <= 40.0:
        return "cm"
    return "mm"


def load_object_mesh(path: str | Path, units: str = "auto") -> ObjectMesh:
    """Read a mesh file, convert it to metres and check it is usable.

    Raises :class:`InputError` (one line naming the file) when the file is
    missing, unreadable, not a mesh, empty or holds non-finite vertices.
    """
    import trimesh

    p = Path(path)
    if units != "auto" and units not in UNIT_SCALE:
        raise InputError(f"--object-units {units}", "unknown units", "use auto, m, cm or mm")
    if not p.is_file():
        raise InputError(str(p), "object mesh not found", "check the --object path")
    try:
        loaded = trimesh.load(str(p), force="mesh", process=False)
    except Exception as e:  # noqa: BLE001 - trimesh raises many types for broken files
        raise InputError(str(p), f"cannot read the mesh ({type(e).__name__}: {' '.join(str(e).split())[:120]})",
                         "give an OBJ, PLY, STL, GLB or OFF file") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(getattr(loaded, "faces", [])) == 0:
        raise InputError(str(p), "the file holds no triangles (empty mesh or a point cloud)",
                         "give a triangle mesh of the object")
    v = np.asarray(loaded.vertices, dtype=np.float64)
    f = np.asarray(loaded.faces, dtype=np.int64)
    if not np.isfinite(v).all():
        raise InputError(str(p), "the mesh has non-finite vertex coordinates", "repair or re-export the mesh")
    if f.min() < 0 or f.max() >= len(v):
        raise InputError(str(p), "faces refer to vertices that do not exist", "repair or re-export the mesh")
    extent = float((v.max(0) - v.min(0)).max())
    if extent <= 0:
        raise InputError(str(p), "the mesh is degenerate (zero size)", "give the object's real mesh")
    detected = units == "auto"
    u = detect_units(extent) if detected else units
    v = v * UNIT_SCALE[u]
    mesh = trimesh.Trimesh(v, f, process=False)
    uv = texture = colors = None
    visual = loaded.visual
    if getattr(visual, "kind", None) == "texture" and getattr(visual, "uv", None) is not None:
        uv = np.asarray(visual.uv, dtype=np.float32)
        img = getattr(getattr(visual, "material", None), "image", None)
        if img is None:
            img = getattr(getattr(visual, "material", None), "baseColorTexture", None)
        if img is not None:
            texture = np.asarray(img.convert("RGB"), dtype=np.uint8)
    elif getattr(visual, "kind", None) == "vertex":
        colors = np.asarray(visual.vertex_colors, dtype=np.uint8)[:, :3]
    return ObjectMesh(vertices=v, faces=f.astype(np.int32), vertex_normals=np.asarray(mesh.vertex_normals),
                      uv=uv, texture=texture, vertex_colors=colors, units=u, detected=detected, path=str(p))
