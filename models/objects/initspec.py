"""How the user says where the object is at the start: a box flag or a small JSON file.

* ``--object-box x,y,w,h``: pixels of the first processed frame (x, y: top-left corner).
* ``--object-init FILE.json``: one of
  ``{"box": [x, y, w, h]}``, ``{"mask": "mask.png"}`` (a binary image the size of the
  frame, relative paths from the JSON's folder), ``{"T_cam_obj": [[...4x4...]]}``
  (metres), optionally with ``"frame": N`` (the source frame index it refers to;
  default: the first processed frame; earlier frames are written as not valid).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inscene.engine.errors import InputError


@dataclass(frozen=True)
class ObjectInit:
    """Where tracking starts: exactly one of ``box``, ``mask``, ``T_cam_obj``."""

    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = None
    """(H, W) bool."""
    T_cam_obj: np.ndarray | None = None
    """(4, 4) float64."""
    frame: int | None = None
    """Source frame index it refers to; None: the first frame the stage sees."""
    source: str = ""
    """The flag or file it came from (for messages)."""

    def check_size(self, width: int, height: int) -> None:
        """One-line errors when a box or mask does not fit a ``width`` x ``height`` frame."""
        if self.box is not None:
            x, y, w, h = self.box
            if x >= width or y >= height or x + w <= 0 or y + h <= 0:
                raise InputError(self.source, f"the box {x:g},{y:g},{w:g},{h:g} lies outside the "
                                 f"{width}x{height} frame", "give x,y,w,h in pixels of the video")
        if self.mask is not None and self.mask.shape != (height, width):
            raise InputError(self.source, f"the mask is {self.mask.shape[1]}x{self.mask.shape[0]}, the video "
                             f"{width}x{height}", "give a mask the size of the frames")


def parse_box(text: str, subject: str = "--object-box") -> tuple[float, float, float, float]:
    """``"x,y,w,h"`` -> a box; one-line error when malformed."""
    try:
        vals = tuple(float(v) for v in str(text).replace(" ", "").split(","))
    except ValueError:
        vals = ()
    if len(vals) != 4 or not all(np.isfinite(vals)):
        raise InputError(f"{subject} {text}", "expected four numbers x,y,w,h", "e.g. --object-box 810,415,180,200")
    if vals[2] < 4 or vals[3] < 4:
        raise InputError(f"{subject} {text}", "the box is smaller than 4 pixels", "give width and height in pixels")
    return vals  # type: ignore[return-value]


def load_init(path: str | Path) -> ObjectInit:
    """Read an ``--object-init`` JSON file (see the module docstring)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), "object init file not found", "check the --object-init path")
    try:
        doc = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(str(p), f"not valid JSON ({type(e).__name__})", 'write e.g. {"box": [x, y, w, h]}') from None
    if not isinstance(doc, dict):
        raise InputError(str(p), "expected a JSON object", 'write e.g. {"box": [x, y, w, h]}')
    keys = [k for k in ("box", "mask", "T_cam_obj") if k in doc]
    if len(keys) != 1:
        raise InputError(str(p), f"needs exactly one of box, mask, T_cam_obj (found {keys or 'none'})",
                         'write e.g. {"box": [x, y, w, h]}')
    frame = doc.get("frame")
    if frame is not None and (not isinstance(frame, int) or frame < 0):
        raise InputError(str(p), f"'frame' must be a source frame index >= 0, got {frame!r}", "")
    if keys[0] == "box":
        box = doc["box"]
        if not isinstance(box, list):
            raise InputError(str(p), "'box' must be a list [x, y, w, h]", "")
        return ObjectInit(box=parse_box(",".join(str(v) for v in box), f"{p} box"), frame=frame, source=str(p))
    if keys[0] == "mask":
        return ObjectInit(mask=_read_mask(p.parent / str(doc["mask"]), p), frame=frame, source=str(p))
    try:
        T = np.asarray(doc["T_cam_obj"], dtype=np.float64)
    except (TypeError, ValueError):
        T = np.zeros(0)
    if T.shape != (4, 4) or not np.isfinite(T).all() or not np.allclose(T[3], [0, 0, 0, 1]):
        raise InputError(str(p), "'T_cam_obj' must be a 4x4 rigid transform (last row 0 0 0 1), metres", "")
    R = T[:3, :3]
    if not np.allclose(R.T @ R, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
        raise InputError(str(p), "the rotation part of 'T_cam_obj' is not a rotation", "give an orthonormal R")
    return ObjectInit(T_cam_obj=T, frame=frame, source=str(p))


def _read_mask(path: Path, spec: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise InputError(str(spec), f"mask image {path} not found", "give the mask path relative to the JSON file")
    try:
        img = np.asarray(Image.open(path).convert("L"))
    except (OSError, UnidentifiedImageError):
        raise InputError(str(path), "cannot read the mask image", "give a PNG with the object white") from None
    m = img > 127
    if not m.any():
        raise InputError(str(path), "the mask is empty", "paint the object's pixels white")
    return m
