"""The open default hand: the hand of ``anny`` (Apache-2.0 code, CC0 assets), no download.

``anny.Anny(rig="anny-hand.R", topology="hand.R")`` (``.L`` for the left) takes a
minute or two and a ~560 MB intermediate cache to build. We build both sides once
per machine into a temporary anny cache, keep only their ``to_model_data()``
(~4 MB each, safetensors) in the inscene cache, delete the rest, and afterwards
reload with ``Anny.from_model_data()`` in milliseconds.

What this module adds to anny's hand: the rig's root and wrist merged into one
root (the global rotation), a default adult size (hand length, wrist to middle
fingertip), the finger MCP joints moved proximally to their anatomical place,
pose parameters in anatomical bone frames, and two shape parameters an optimizer
may fit: ``log_size`` (uniform scale about the wrist) and ``finger_length``
(relative lengthening of the phalanges along their bones).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from .cache import Progress, cache_dir, file_lock, write_atomic
from .geometry import anatomical_frames
from .model import HandModel, HandModelData

SIDES = {"right": "R", "left": "L"}
TIP_VERTICES = (782, 29, 221, 413, 605)
"""Fingertip vertices of thumb, index, middle, ring, little (same on both sides)."""
DEFAULT_PHENOTYPE: dict[str, float] = {"gender": 0.5, "age": 2.0 / 3.0, "muscle": 0.5, "weight": 0.5,
                                       "height": 0.5, "proportions": 0.5}
"""anny phenotype of the default hand: a young adult (age anchor "young"), neutral otherwise."""
DEFAULT_HAND_LENGTH = 0.185
"""Default wrist-to-middle-fingertip length, metres (adult mean, both sexes)."""
MCP_SHIFT = 0.01
"""How far, metres, the finger MCP joints move proximally along their metacarpals."""
BETA_NAMES = ("log_size", "finger_length")
BETA_STD = (0.08, 0.10)

# rig bone order after dropping anny's "root": wrist, thumb (3), then per finger metacarpal + 3
_FINGER_BONES = {"thumb": (1, 2, 3), "index": (5, 6, 7), "middle": (9, 10, 11), "ring": (13, 14, 15),
                 "little": (17, 18, 19)}
_METACARPALS = (4, 8, 12, 16)
_KINDS = ("thumb_cmc", "thumb_mcp", "thumb_ip",
          "metacarpal_index", "mcp", "pip", "dip", "metacarpal_middle", "mcp", "pip", "dip",
          "metacarpal_ring", "mcp", "pip", "dip", "metacarpal_little", "mcp", "pip", "dip")


def _anny_version() -> str:
    import anny

    return str(getattr(anny, "__version__", "unknown"))


def model_data_path(side: str) -> Path:
    """Cache file of the built anny hand model data of ``side``."""
    return cache_dir() / f"anny-{_anny_version()}-hand.{SIDES[side]}.safetensors"


def _quiet_warp() -> None:
    try:  # anny may import NVIDIA warp while building; keep its banner out of our output
        import warp

        warp.config.quiet = True
    except Exception:  # noqa: BLE001 - warp is optional
        pass


def ensure_model_data(sides: tuple[str, ...] = ("right", "left")) -> list[str]:
    """Build the anny hand model data of ``sides`` that are not cached yet; returns the sides built.

    Safe against concurrent builders (lock file, atomic rename). Prints progress on stderr.
    """
    if all(model_data_path(s).exists() for s in sides):
        return []
    import anny
    import anny.paths

    with file_lock(cache_dir() / "anny-hand.lock"):
        missing = [s for s in sides if not model_data_path(s).exists()]
        if not missing:
            return []
        _quiet_warp()
        for stale in cache_dir().glob("anny-build-*"):  # left by a killed build (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        previous = anny.paths.get_anny_cache_path()
        with Progress(f"building the anny hand model ({', '.join(missing)})", "about 1-2 minutes"), \
                tempfile.TemporaryDirectory(prefix="anny-build-", dir=cache_dir()) as tmp:
            anny.paths.set_anny_cache_path(tmp)
            try:
                for side in missing:
                    s = SIDES[side]
                    model = anny.Anny(rig=f"anny-hand.{s}", topology=f"hand.{s}", skinning_method="lbs")
                    data = model.to_model_data()
                    write_atomic(model_data_path(side), lambda p, d=data: d.save_safetensors(str(p)))
            finally:
                anny.paths.set_anny_cache_path(previous)
        return missing


def load_anny(side: str = "right"):
    """The anny hand model (``anny.Anny``) of ``side``, from the cache (built on first use)."""
    import anny
    from anny.models.model_data import ModelData

    if side not in SIDES:
        raise ValueError(f"side must be one of {tuple(SIDES)}, got {side!r}")
    ensure_model_data()
    path = model_data_path(side)
    try:
        data = ModelData.load_safetensors(str(path))
    except Exception:  # noqa: BLE001 - a stale or damaged cache file is rebuilt once
        with file_lock(cache_dir() / "anny-hand.lock"):
            path.unlink(missing_ok=True)
        ensure_model_data((side,))
        data = ModelData.load_safetensors(str(path))
    # the settings the "anny-hand" rig is built with (cached procrustes bone orientations)
    return anny.Anny.from_model_data(data, skinning_method="lbs", pose_parameterization="local-ref",
                                     bone_orientation="cached", root_identity_orientation=False)


def _finger_length_dirs(verts: np.ndarray, joints: np.ndarray, weights: np.ndarray,
                        tips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rest displacement of vertices (V, 3) and joints (J, 3) per unit relative finger lengthening."""
    dv, dj = np.zeros_like(verts), np.zeros_like(joints)
    for k, (finger, bones) in enumerate(_FINGER_BONES.items()):
        chain = bones[1:] if finger == "thumb" else bones  # the thumb's phalanges; the fingers' three
        base = joints[chain[0]]
        for i, j in enumerate(chain):
            child = joints[chain[i + 1]] if i + 1 < len(chain) else tips[k]
            axis = (child - joints[j]) / np.linalg.norm(child - joints[j])
            dj[j] = joints[j] - base
            along = ((verts - joints[j]) @ axis)[:, None] * axis
            dv += weights[:, j:j + 1] * (dj[j] + along)
    return dv, dj


def anny_hand_data(side: str = "right", phenotype: dict[str, float] | None = None,
                   hand_length: float | None = DEFAULT_HAND_LENGTH, mcp_shift: float = MCP_SHIFT) -> HandModelData:
    """The :class:`HandModelData` of anny's hand.

    Args:
        phenotype: anny phenotype values (0..1) overriding :data:`DEFAULT_PHENOTYPE`.
        hand_length: wrist-to-middle-fingertip length at zero shape, metres (None: anny's own).
        mcp_shift: proximal displacement of the finger MCP joints, metres.
    """
    model = load_anny(side)
    pheno = {**DEFAULT_PHENOTYPE, **(phenotype or {})}
    with torch.no_grad():
        out = model(None, phenotype_kwargs={k: v for k, v in pheno.items() if k in model.phenotype_labels})
    verts = out["rest_vertices"][0].double().numpy()
    poses = out["rest_bone_poses"][0].double().numpy()
    # express the hand in its wrist bone's rest frame (anny places it in body coordinates)
    wrist_rot, wrist_pos = poses[1, :3, :3], poses[1, :3, 3]
    verts = (verts - wrist_pos) @ wrist_rot
    heads = (poses[1:, :3, 3] - wrist_pos) @ wrist_rot  # drop anny's root bone
    x_axes = poses[1:, :3, 0] @ wrist_rot
    n_bones = poses.shape[0]
    dense = np.zeros((verts.shape[0], n_bones))
    np.add.at(dense, (np.arange(verts.shape[0])[:, None], model.vertex_bone_indices.numpy()),
              model.vertex_bone_weights.double().numpy())
    weights = dense[:, 1:].copy()
    weights[:, 0] += dense[:, 0]  # root and wrist move together: merge
    parents = tuple([-1] + [int(p) - 1 for p in model.bone_parents[2:]])
    scale = 1.0 if hand_length is None else hand_length / np.linalg.norm(verts[TIP_VERTICES[2]] - heads[0])
    verts, heads = verts * scale, heads * scale
    for meta in _METACARPALS:
        mcp = meta + 1
        direction = heads[mcp] - heads[meta]
        heads[mcp] -= mcp_shift * direction / np.linalg.norm(direction)
    tips = verts[list(TIP_VERTICES)]
    n_joints = heads.shape[0]
    sources = [0]
    for k, bones in enumerate(_FINGER_BONES.values()):
        sources += [*bones, n_joints + k]
    keypoints = np.concatenate([heads, tips])[sources]
    frames = anatomical_frames(heads, parents, keypoints, tuple(sources), side, x_hint=x_axes)
    dv, dj = _finger_length_dirs(verts, heads, weights, tips)
    faces = model.faces.numpy().astype(np.int64)
    return HandModelData(
        name="anny", side=side, joint_names=tuple(model.bone_labels[1:]), parents=parents, joint_kinds=_KINDS,
        v_template=verts, shapedirs=dv[:, :, None], j_template=heads, j_shapedirs=dj[:, :, None],
        weights=weights, faces=faces, tip_vertices=TIP_VERTICES, keypoint_sources=tuple(sources),
        beta_names=BETA_NAMES, beta_std=np.asarray(BETA_STD), log_scale=True, pose_frames=frames,
        frame_hint=x_axes, palm_joints=(0, *_METACARPALS),
        meta={"anny_version": _anny_version(), "phenotype": pheno, "hand_length": hand_length,
              "mcp_shift": mcp_shift})


def load_anny_hand(side: str = "right", dtype: torch.dtype = torch.float32, **options) -> HandModel:
    """The anny hand as a :class:`HandModel` (options: see :func:`anny_hand_data`)."""
    return HandModel(anny_hand_data(side, **options), dtype=dtype)
