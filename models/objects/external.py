"""Object poses from another tracker (FoundationPose-style files, npz, BOP JSON).

Formats, chosen by what the path is:

* a folder of per-frame text files, each a 4×4 ``T_cam_obj`` (FoundationPose's
  ``ob_in_cam/*.txt``); a file's number in its name is its frame index, else the
  k-th file (natural order) is frame k;
* one ``.txt`` holding N 4×4 matrices (N·4 rows of 4, or N rows of 16);
* ``.npz`` with ``T_cam_obj`` (N, 4, 4) and optionally ``frame`` (N,) indices or
  ``time`` (N,) seconds;
* BOP-style ``scene_gt.json``: ``{frame: [{"cam_R_m2c": 9, "cam_t_m2c": 3, "obj_id": k}]}``
  with translations in millimetres (``obj_id`` picks the object when there are several).

Translations in metres are expected; a file whose median distance from the camera
exceeds 20 is taken to be in millimetres and converted (reported). Poses are
matched to frames by source frame index, or by time when the file has times
(nearest within half a frame period).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inscene.engine.errors import InputError


@dataclass(frozen=True)
class ExternalTracks:
    """Poses keyed by source frame index or by time.

    Attributes:
        T_cam_obj: ``(N, 4, 4)`` float64, metres.
        frame: ``(N,)`` int64 source frame indices, or None when keyed by time.
        time: ``(N,)`` float64 seconds, or None when keyed by frame.
        path: where they came from; ``note`` says what was converted.
    """

    T_cam_obj: np.ndarray
    frame: np.ndarray | None
    time: np.ndarray | None
    path: str
    note: str = ""

    def pose_at(self, index: int, t: float, period: float | None = None) -> np.ndarray | None:
        """The pose for source frame ``index`` at time ``t``, or None when the file has none."""
        if self.frame is not None:
            k = np.searchsorted(self.frame, index)
            if k < len(self.frame) and self.frame[k] == index:
                return self.T_cam_obj[k]
            return None
        k = int(np.argmin(np.abs(self.time - t)))
        tol = 0.5 * period if period else 1e-3
        return self.T_cam_obj[k] if abs(self.time[k] - t) <= tol + 1e-9 else None


def load_external_tracks(path: str | Path, obj_id: int | None = None) -> ExternalTracks:
    """Read poses from ``path`` (see the module docstring for formats)."""
    p = Path(path)
    if not p.exists():
        raise InputError(str(p), "object pose file not found", "check the --object-poses path")
    try:
        if p.is_dir():
            T, frame = _from_folder(p)
            tracks = ExternalTracks(T, frame, None, str(p))
        elif p.suffix.lower() == ".npz":
            tracks = _from_npz(p)
        elif p.suffix.lower() == ".json":
            T, frame = _from_bop(p, obj_id)
            tracks = ExternalTracks(T, frame, None, str(p), "BOP millimetres converted to metres")
        else:
            T = _matrices(np.loadtxt(p, dtype=np.float64, ndmin=2), p)
            tracks = ExternalTracks(T, np.arange(len(T)), None, str(p))
    except InputError:
        raise
    except (ValueError, KeyError, OSError, json.JSONDecodeError, TypeError) as e:
        raise InputError(str(p), f"cannot read object poses ({type(e).__name__}: {' '.join(str(e).split())[:100]})",
                         "give 4x4 matrices as text, npz with T_cam_obj, or BOP scene_gt.json") from None
    return _check(tracks)


def _matrices(a: np.ndarray, p: Path) -> np.ndarray:
    if a.shape[1] == 16:
        return a.reshape(-1, 4, 4)
    if a.shape[1] == 4 and a.shape[0] % 4 == 0:
        return a.reshape(-1, 4, 4)
    raise InputError(str(p), f"expected rows of 16 values or blocks of 4x4, got shape {a.shape}")


def _from_folder(p: Path) -> tuple[np.ndarray, np.ndarray]:
    files = sorted((f for f in p.iterdir() if f.suffix.lower() == ".txt"), key=_natural)
    if not files:
        raise InputError(str(p), "the folder holds no .txt pose files", "one 4x4 matrix per frame, e.g. 000123.txt")
    numbers = [re.findall(r"\d+", f.stem) for f in files]
    if all(numbers) and len({int(n[-1]) for n in numbers}) == len(files):
        frame = np.array([int(n[-1]) for n in numbers])
    else:
        frame = np.arange(len(files))
    T = np.stack([_matrices(np.loadtxt(f, dtype=np.float64, ndmin=2), f)[0] for f in files])
    order = np.argsort(frame)
    return T[order], frame[order]


def _from_npz(p: Path) -> ExternalTracks:
    d = np.load(p)
    if "T_cam_obj" not in d:
        raise InputError(str(p), f"npz has no 'T_cam_obj' array (has {', '.join(d.files)})")
    T = np.asarray(d["T_cam_obj"], dtype=np.float64).reshape(-1, 4, 4)
    if "frame" in d:
        frame = np.asarray(d["frame"], dtype=np.int64)
        order = np.argsort(frame)
        return ExternalTracks(T[order], frame[order], None, str(p))
    if "time" in d:
        t = np.asarray(d["time"], dtype=np.float64)
        order = np.argsort(t)
        return ExternalTracks(T[order], None, t[order], str(p))
    return ExternalTracks(T, np.arange(len(T)), None, str(p))


def _from_bop(p: Path, obj_id: int | None) -> tuple[np.ndarray, np.ndarray]:
    doc = json.loads(p.read_text())
    frames, poses = [], []
    for key, entries in doc.items():
        chosen = [e for e in entries if obj_id is None or e.get("obj_id") == obj_id]
        if obj_id is None and len({e.get("obj_id") for e in entries}) > 1:
            raise InputError(str(p), "several objects per frame", "choose one with --object-id")
        if not chosen:
            continue
        e = chosen[0]
        T = np.eye(4)
        T[:3, :3] = np.asarray(e["cam_R_m2c"], dtype=np.float64).reshape(3, 3)
        T[:3, 3] = np.asarray(e["cam_t_m2c"], dtype=np.float64) / 1000.0
        frames.append(int(key))
        poses.append(T)
    if not poses:
        raise InputError(str(p), "no poses for the object in the file")
    order = np.argsort(frames)
    return np.stack(poses)[order], np.asarray(frames)[order]


def _check(tr: ExternalTracks) -> ExternalTracks:
    T = tr.T_cam_obj
    if len(T) == 0:
        raise InputError(tr.path, "no poses in the file")
    if not np.isfinite(T).all():
        raise InputError(tr.path, "poses hold non-finite values", "mark missing frames by leaving them out")
    R = T[:, :3, :3]
    err = np.abs(R @ R.transpose(0, 2, 1) - np.eye(3)).max()
    if err > 1e-3:
        raise InputError(tr.path, f"rotation parts are not orthonormal (max error {err:.3g})")
    dist = float(np.median(np.linalg.norm(T[:, :3, 3], axis=1)))
    if dist > 20.0 and "millimetres" not in tr.note:
        T = T.copy()
        T[:, :3, 3] /= 1000.0
        tr = ExternalTracks(T, tr.frame, tr.time, tr.path, "translations read as millimetres (median distance "
                                                         f"{dist:.0f}) and converted to metres")
    return tr


def _natural(f: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", f.name)]
