"""Hand geometry shared by the backends: normals, anatomical joint frames, contact regions.

Anatomical frame of a finger joint (columns, in the model's rest axes):
x the flexion axis, y along the bone (head to child), z = x cross y the direction
the bone's end moves when it flexes (palmar for fingers). A positive rotation about
x flexes, about y twists, about z deviates the bone towards the little finger on a
right hand. The left hand's frames are the mirror images with x flipped, so the
same parameters give the mirror-image pose (see ``params.MIRROR_ROTVEC``).
"""

from __future__ import annotations

import numpy as np
import torch

from .keypoints import FINGERS, finger_keypoints


def transl_for_shape(model, transl: np.ndarray, betas_from: np.ndarray, betas_to: np.ndarray) -> np.ndarray:
    """Translations (T, 3) that give hands of shape ``betas_to`` the projections hands of ``betas_from`` had.

    The monocular scale ambiguity: a hand of another size is the same hand scaled about
    the camera centre, so its wrist moves along its viewing ray by the ratio of the two
    sizes (mean distance of the rest joints from their centroid; exact for a model whose
    shape has a log-scale parameter, close otherwise). The rotation is about the wrist,
    so the pose is unchanged.

    Args:
        model: the hand model. transl: (T, 3) translations at ``betas_from``.
        betas_from: (T, S) or (S,). betas_to: (T, S) or (S,).
    """
    transl = np.asarray(transl, np.float64).reshape(-1, 3)
    T, S = len(transl), model.num_betas
    b = np.concatenate([np.broadcast_to(betas_from, (T, S)), np.broadcast_to(betas_to, (T, S))])
    with torch.no_grad():
        _, joints = model.rest(torch.as_tensor(b, dtype=model.dtype))
    j = joints.double().numpy()
    size = np.linalg.norm(j - j.mean(1, keepdims=True), axis=2).mean(1)
    ratio = size[T:] / np.maximum(size[:T], 1e-9)
    return (transl + j[:T, 0]) * ratio[:, None] - j[T:, 0]


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals (outward for outward-wound faces).

    Args:
        vertices: (B, V, 3); faces: (F, 3) long.
    Returns:
        (B, V, 3).
    """
    a, b, c = vertices[:, faces[:, 0]], vertices[:, faces[:, 1]], vertices[:, faces[:, 2]]
    face_n = torch.linalg.cross(b - a, c - a)  # (B, F, 3), length = 2 area
    normals = torch.zeros_like(vertices)
    for k in range(3):
        normals = normals.index_add(1, faces[:, k], face_n)
    return normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def palm_axes(keypoints: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit axes of the rest palm: distal (wrist to middle MCP), radial (little to index
    MCP, towards the thumb) and palmar (out of the palm), from (21, 3) keypoints."""
    distal = keypoints[9] - keypoints[0]
    distal /= np.linalg.norm(distal)
    radial = keypoints[5] - keypoints[17]
    radial -= radial.dot(distal) * distal
    radial /= np.linalg.norm(radial)
    sign = 1.0 if side == "right" else -1.0
    palmar = -sign * np.cross(distal, radial)
    return distal, radial, palmar


def anatomical_frames(rest_joints: np.ndarray, parents: tuple[int, ...], keypoints: np.ndarray,
                      keypoint_sources: tuple[int, ...], side: str,
                      x_hint: np.ndarray | None = None) -> np.ndarray:
    """Anatomical frames of the non-root joints.

    Args:
        rest_joints: (J, 3) rest joint positions; parents: (J,) with parents[0] = -1.
        keypoints: (21, 3) rest keypoints; keypoint_sources: (21,) joint index of each
            keypoint (>= J for tips).
        x_hint: (J, 3) a flexion axis per joint to keep (projected orthogonal to the
            bone), e.g. a rig's authored bone roll; None derives it from the palm
            (fingers) and a palmar-ulnar direction (thumb).
    Returns:
        (J - 1, 3, 3) frames of joints 1..J-1, columns (x, y, z).
    """
    n_joints = len(parents)
    children: list[list[int]] = [[] for _ in range(n_joints)]
    for j, p in enumerate(parents[1:], start=1):
        children[p].append(j)
    joint_kp = {int(s): k for k, s in enumerate(keypoint_sources) if s < n_joints}
    _, radial, palmar = palm_axes(keypoints, side)
    thumb = set(int(keypoint_sources[k]) for k in finger_keypoints("thumb")[:3])
    thumb_dir = palmar - radial
    thumb_dir /= np.linalg.norm(thumb_dir)
    frames = np.zeros((n_joints - 1, 3, 3))
    for j in range(1, n_joints):
        if len(children[j]) == 1:
            child = rest_joints[children[j][0]]
        elif j in joint_kp:
            child = keypoints[joint_kp[j] + 1]
        else:
            raise ValueError(f"joint {j} has {len(children[j])} children and no keypoint")
        y = child - rest_joints[j]
        y /= np.linalg.norm(y)
        if x_hint is not None:
            x = x_hint[j] - x_hint[j].dot(y) * y
        else:
            x = np.cross(y, thumb_dir if j in thumb else palmar)
        x /= np.linalg.norm(x)
        frames[j - 1] = np.stack([x, y, np.cross(x, y)], axis=1)
    return frames


def contact_regions(rest_vertices: np.ndarray, normals: np.ndarray, weights: np.ndarray,
                    rest_joints: np.ndarray, frames: np.ndarray, keypoints: np.ndarray,
                    keypoint_sources: tuple[int, ...], palm_joints: tuple[int, ...],
                    side: str) -> dict[str, np.ndarray]:
    """Named vertex sets that later stages use as contact candidates.

    ``<finger>_pad``: vertices skinned mostly to the finger's distal bone, on its
    flexor side, over its distal two thirds. ``palm``: vertices skinned mostly to the
    palm joints, facing palmar, between a fifth of the way from the wrist and the MCPs.

    Args:
        rest_vertices, normals: (V, 3); weights: (V, J); rest_joints: (J, 3);
        frames: (J - 1, 3, 3) anatomical frames; keypoints: (21, 3) rest keypoints;
        palm_joints: joints that carry the palm (root, metacarpals).
    Returns:
        name -> sorted (K,) int64 vertex indices.
    """
    dominant = weights.argmax(axis=1)
    regions: dict[str, np.ndarray] = {}
    for finger in FINGERS:
        kp_distal, kp_tip = finger_keypoints(finger)[2:]
        j = int(keypoint_sources[kp_distal])
        x_axis, y_axis, z_axis = frames[j - 1].T
        length = np.linalg.norm(keypoints[kp_tip] - rest_joints[j])
        along = (rest_vertices - rest_joints[j]) @ y_axis / length
        pad = (dominant == j) & (normals @ z_axis > 0.3) & (along > 0.33)
        regions[f"{finger}_pad"] = np.flatnonzero(pad)
    distal, _, palmar = palm_axes(keypoints, side)
    reach = (keypoints[[5, 9, 13, 17]] - keypoints[0]) @ distal
    along = (rest_vertices - keypoints[0]) @ distal / reach.mean()
    palm = np.isin(dominant, palm_joints) & (normals @ palmar > 0.5) & (along > 0.2) & (along < 1.05)
    regions["palm"] = np.flatnonzero(palm)
    return {k: v.astype(np.int64) for k, v in regions.items()}
