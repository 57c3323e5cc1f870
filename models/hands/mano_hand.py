"""MANO, from the user's own MANO_RIGHT.pkl / MANO_LEFT.pkl (never shipped: MANO's license).

The pickles are read without chumpy (``mano_pickle``); ``inscene mano import DIR``
converts them once into plain ``MANO_RIGHT.npz`` / ``MANO_LEFT.npz`` that later runs
load with ``numpy.load(allow_pickle=False)``. The forward is smplx's MANO (same
arrays, same linear blend skinning with pose correctives; the tests check equality
with ``smplx.MANO``), pose parameters in smplx's layout and convention with
``flat_hand_mean=True`` and no PCA: 15 joint rotations in world-aligned axes, zero
being the flat hand. The five fingertip vertices 744, 320, 443, 554, 671 complete
the 21 keypoints.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from ...engine.errors import InputError
from .cache import write_atomic
from .mano_pickle import PickleFormatError, load_mano_pickle
from .model import HandModel, HandModelData

FILE_STEM = {"right": "MANO_RIGHT", "left": "MANO_LEFT"}
NPZ_FORMAT = 1
TIP_VERTICES = (744, 320, 443, 554, 671)
JOINT_NAMES = ("wrist", "index1", "index2", "index3", "middle1", "middle2", "middle3", "little1", "little2",
               "little3", "ring1", "ring2", "ring3", "thumb1", "thumb2", "thumb3")
_KINDS = ("mcp", "pip", "dip") * 4 + ("thumb_cmc", "thumb_mcp", "thumb_ip")
_KEYPOINT_JOINTS = (0, 13, 14, 15, -1, 1, 2, 3, -2, 4, 5, 6, -3, 10, 11, 12, -4, 7, 8, 9, -5)  # -k: tip k
REQUIRED = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
OPTIONAL = ("hands_components", "hands_mean")


def check_mano_arrays(arrays: dict, subject: str) -> dict[str, np.ndarray]:
    """Plain float64/int64 arrays with MANO's shapes, or an InputError naming ``subject``."""
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise InputError(subject, f"not a MANO model file: missing {', '.join(missing)}",
                         "point at the official MANO_RIGHT.pkl / MANO_LEFT.pkl")
    out = {k: np.asarray(arrays[k]) for k in (*REQUIRED, *OPTIONAL) if k in arrays}
    n_verts = out["v_template"].shape[0]
    n_joints = out["J_regressor"].shape[0]
    expected = {"v_template": (n_verts, 3), "weights": (n_verts, n_joints), "J_regressor": (n_joints, n_verts),
                "kintree_table": (2, n_joints)}
    for key, shape in expected.items():
        if out[key].shape != shape:
            raise InputError(subject, f"'{key}' has shape {out[key].shape}, expected {shape}",
                             "the file is damaged or not a MANO model")
    if out["shapedirs"].ndim != 3 or out["shapedirs"].shape[:2] != (n_verts, 3):
        raise InputError(subject, f"'shapedirs' has shape {out['shapedirs'].shape}", "expected (V, 3, S)")
    if out["posedirs"].shape != (n_verts, 3, 9 * (n_joints - 1)):
        raise InputError(subject, f"'posedirs' has shape {out['posedirs'].shape}", "expected (V, 3, 9 (J - 1))")
    if n_joints != len(JOINT_NAMES) or n_verts <= max(TIP_VERTICES):
        raise InputError(subject, f"{n_joints} joints and {n_verts} vertices", "MANO has 16 joints and 778 vertices")
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", *OPTIONAL):
        if key in out:
            out[key] = out[key].astype(np.float64)
    out["kintree_table"] = out["kintree_table"].astype(np.int64)
    out["f"] = out["f"].astype(np.int64)
    return out


def read_mano_file(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a MANO model file (official ``.pkl`` read without chumpy, or imported ``.npz``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file", "point --mano-dir at the folder holding MANO_RIGHT.pkl / MANO_LEFT.pkl")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except Exception as e:  # noqa: BLE001 - any damage to the archive
            raise InputError(path, f"cannot read the npz ({type(e).__name__})",
                             "re-run 'inscene mano import'") from None
    else:
        try:
            arrays = load_mano_pickle(path)
        except PickleFormatError as e:
            raise InputError(path, f"cannot read the MANO pickle: {e}",
                             "use the unmodified MANO_RIGHT.pkl / MANO_LEFT.pkl from the MANO website") from None
    return check_mano_arrays(arrays, str(path))


def find_mano_file(mano_dir: str | Path, side: str) -> Path:
    """``MANO_<SIDE>.npz`` in ``mano_dir`` if imported, else ``MANO_<SIDE>.pkl``."""
    folder = Path(mano_dir).expanduser()
    if not folder.is_dir():
        raise InputError(folder, "is not a folder", "point --mano-dir / INSCENE_MANO_DIR at the folder with MANO_*.pkl")
    for ext in (".npz", ".pkl"):
        candidate = folder / (FILE_STEM[side] + ext)
        if candidate.is_file():
            return candidate
    raise InputError(folder, f"holds no {FILE_STEM[side]}.pkl nor {FILE_STEM[side]}.npz",
                     "download the MANO models from mano.is.tue.mpg.de and point at their folder")


def import_mano_dir(src: str | Path, out: str | Path | None = None) -> list[Path]:
    """Convert the MANO pickles of ``src`` into plain npz files in ``out`` (default: ``src``)."""
    src = Path(src).expanduser()
    if not src.is_dir():
        raise InputError(src, "is not a folder", "give the folder holding MANO_RIGHT.pkl / MANO_LEFT.pkl")
    found = {side: src / f"{stem}.pkl" for side, stem in FILE_STEM.items() if (src / f"{stem}.pkl").is_file()}
    if not found:
        raise InputError(src, "holds neither MANO_RIGHT.pkl nor MANO_LEFT.pkl",
                         "download the MANO models from mano.is.tue.mpg.de")
    dest = Path(out).expanduser() if out is not None else src
    written = []
    for side, pkl in found.items():
        arrays = read_mano_file(pkl)
        digest = hashlib.sha256(pkl.read_bytes()).hexdigest()
        meta = {"inscene_format": np.asarray(NPZ_FORMAT), "side": np.asarray(side), "source_sha256": np.asarray(digest)}
        target = dest / f"{FILE_STEM[side]}.npz"

        def write(tmp: Path, arrays: dict = arrays, meta: dict = meta) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays, **meta)

        try:
            write_atomic(target, write)
        except OSError as e:
            raise InputError(dest, f"cannot write {target.name} ({e.strerror})",
                             "choose another folder with -o") from None
        written.append(target)
    return written


def mano_hand_data(arrays: dict[str, np.ndarray], side: str, num_betas: int = 10, source: str = "") -> HandModelData:
    """:class:`HandModelData` of MANO arrays (as :func:`read_mano_file` returns)."""
    v = arrays["v_template"]
    n_betas = min(num_betas, arrays["shapedirs"].shape[2])
    shapedirs = arrays["shapedirs"][:, :, :n_betas]
    regressor = arrays["J_regressor"]
    n_joints = regressor.shape[0]
    parents = tuple([-1] + [int(p) for p in arrays["kintree_table"][0, 1:]])
    faces = arrays["f"]
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    if np.einsum("ij,ij->", a, np.cross(b, c)) < 0:  # wind outwards
        faces = faces[:, [0, 2, 1]]
    sources = tuple(j if j >= 0 else n_joints - j - 1 for j in _KEYPOINT_JOINTS)
    return HandModelData(
        name="mano", side=side, joint_names=JOINT_NAMES, parents=parents, joint_kinds=_KINDS,
        v_template=v, shapedirs=shapedirs, j_template=regressor @ v,
        j_shapedirs=np.einsum("jv,vds->jds", regressor, shapedirs), weights=arrays["weights"], faces=faces,
        tip_vertices=TIP_VERTICES, keypoint_sources=sources, beta_names=tuple(f"beta{i}" for i in range(n_betas)),
        beta_std=np.ones(n_betas), posedirs=arrays["posedirs"].reshape(-1, arrays["posedirs"].shape[2]).T.copy(),
        meta={"source": source})


def load_mano_hand(mano_dir: str | Path, side: str = "right", dtype: torch.dtype = torch.float32,
                   num_betas: int = 10) -> HandModel:
    """MANO of ``side`` from the folder ``mano_dir`` (imported npz preferred)."""
    path = find_mano_file(mano_dir, side)
    return HandModel(mano_hand_data(read_mano_file(path), side, num_betas, str(path)), dtype=dtype)


def smplx_mano_layer(arrays: dict[str, np.ndarray], side: str, num_betas: int = 10,
                     dtype: torch.dtype = torch.float32):
    """smplx's own ``MANO`` layer on the same arrays (no chumpy needed), full-pose, flat-hand mean."""
    import smplx
    from smplx.utils import Struct

    n_pose = 9 * (arrays["J_regressor"].shape[0] - 1) // 3
    fields = {"hands_components": np.eye(n_pose), "hands_mean": np.zeros(n_pose), **arrays}
    return smplx.MANO(model_path="", data_struct=Struct(**fields), is_rhand=side == "right", use_pca=False,
                      flat_hand_mean=True, num_betas=num_betas, dtype=dtype)
