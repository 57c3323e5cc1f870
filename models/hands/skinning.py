"""The differentiable core shared by every hand model: shape, forward kinematics, skinning.

Pure functions over tensors (no state), so that the full model, the fixed-shape
model exported to ONNX and the fitter run the same code.

Kinematics (smplx convention): joint ``c`` of parent ``p`` has rest position
``j_c`` and local rotation ``R_c`` (world-aligned axes); its posed frame is
``G_c = G_p [R_c | j_c - j_p]`` with ``G_0 = [R_0 | j_0]``; a rest point ``x``
moved by joint ``c`` goes to ``G_c (x - j_c)``; linear blend skinning mixes these
per vertex with the skinning weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .rotations import axis_angle_to_matrix


@dataclass(frozen=True)
class KinematicTree:
    """Joints regrouped by depth so that forward kinematics takes one product per level.

    ``order`` lists the joints by depth (root first); level ``i`` is the slice
    ``levels[i]`` of that order, and ``parent_pos[k]`` is the position, within the
    previous level, of the parent of the ``k``-th joint of the order.
    """

    parents: tuple[int, ...]
    order: tuple[int, ...]
    inverse: tuple[int, ...]
    levels: tuple[tuple[int, int], ...]
    parent_pos: tuple[int, ...]

    @staticmethod
    def from_parents(parents: tuple[int, ...] | list[int]) -> KinematicTree:
        parents = tuple(int(p) for p in parents)
        if parents[0] >= 0 or any(p < 0 for p in parents[1:]):
            raise ValueError("expected one root joint, at index 0")
        children: list[list[int]] = [[] for _ in parents]
        for j, p in enumerate(parents[1:], start=1):
            children[p].append(j)
        order, parent_pos, levels = [0], [0], []
        first = 0
        while first < len(order):
            last = len(order)
            levels.append((first, last))
            for pos in range(first, last):
                for child in children[order[pos]]:
                    order.append(child)
                    parent_pos.append(pos - first)
            first = last
        if len(order) != len(parents):
            raise ValueError("every joint must descend from the root")
        inverse = [0] * len(order)
        for pos, j in enumerate(order):
            inverse[j] = pos
        return KinematicTree(parents, tuple(order), tuple(inverse), tuple(levels), tuple(parent_pos))

    def index_tensors(self) -> dict:
        """The index lists as (cached) long tensors: parent (root: itself), order, inverse, and
        per level after the root the parents' positions in the previous level."""
        cached = _INDEX_CACHE.get(self)
        if cached is None:
            def t(v):
                return torch.tensor(v, dtype=torch.long)

            cached = {"parent": t([0] + list(self.parents[1:])), "order": t(self.order), "inverse": t(self.inverse),
                      "levels": [t(self.parent_pos[a:b]) for a, b in self.levels[1:]]}
            _INDEX_CACHE[self] = cached
        return cached


_INDEX_CACHE: dict[KinematicTree, dict] = {}


def shape_rest(template: torch.Tensor, dirs: torch.Tensor, betas: torch.Tensor, log_scale: bool) -> torch.Tensor:
    """Rest positions for shape parameters.

    Args:
        template: (N, 3) mean rest points.
        dirs: (N, 3, S_lin) linear shape directions.
        betas: (B, S) shape parameters; if ``log_scale``, ``betas[:, 0]`` is the log of a
            uniform scale about the origin and ``betas[:, 1:]`` weight ``dirs``.
    Returns:
        (B, N, 3) rest points.
    """
    lin = betas[:, 1:] if log_scale else betas
    points = template + torch.einsum("nds,bs->bnd", dirs, lin)
    if log_scale:
        points = points * torch.exp(betas[:, :1])[:, :, None]
    return points


def joint_rotations(global_orient: torch.Tensor, hand_pose: torch.Tensor,
                    pose_frames: torch.Tensor | None) -> torch.Tensor:
    """Local joint rotations in world-aligned axes.

    Args:
        global_orient: (B, 3) axis-angle of the root.
        hand_pose: (B, P, 3) axis-angle per joint, in the axes of ``pose_frames``.
        pose_frames: (P, 3, 3) frame of each joint's parameters (columns in world
            axes), or None for world-aligned parameters.
    Returns:
        (B, P + 1, 3, 3) rotation matrices, root first.
    """
    if pose_frames is not None:
        hand_pose = torch.einsum("pij,bpj->bpi", pose_frames, hand_pose)
    rotvecs = torch.cat([global_orient[:, None, :], hand_pose], dim=1)
    return axis_angle_to_matrix(rotvecs)


def forward_kinematics(tree: KinematicTree, rotations: torch.Tensor,
                       rest_joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Posed joint frames.

    Args:
        rotations: (B, J, 3, 3) local rotations (world-aligned axes).
        rest_joints: (B, J, 3) or (1, J, 3) rest joint positions.
    Returns:
        global rotations (B, J, 3, 3) and posed joint positions (B, J, 3).
    """
    batch = rotations.shape[0]
    rest_joints = rest_joints.expand(batch, -1, -1)
    idx = tree.index_tensors()
    offsets = rest_joints - rest_joints[:, idx["parent"]]
    rot_o = rotations[:, idx["order"]]
    off_o = offsets[:, idx["order"]]
    g_rot = [rot_o[:, 0:1]]
    g_pos = [rest_joints[:, 0:1]]
    for level, (first, last) in enumerate(tree.levels[1:]):
        pos = idx["levels"][level]
        prev_rot, prev_pos = g_rot[-1][:, pos], g_pos[-1][:, pos]
        g_rot.append(prev_rot @ rot_o[:, first:last])
        g_pos.append(prev_pos + (prev_rot @ off_o[:, first:last, :, None])[..., 0])
    return torch.cat(g_rot, dim=1)[:, idx["inverse"]], torch.cat(g_pos, dim=1)[:, idx["inverse"]]


def skin(points: torch.Tensor, weights: torch.Tensor, g_rot: torch.Tensor, g_pos: torch.Tensor,
         rest_joints: torch.Tensor) -> torch.Tensor:
    """Linear blend skinning.

    Args:
        points: (B, N, 3) or (1, N, 3) rest points (shaped, pose-corrected).
        weights: (N, J) skinning weights.
        g_rot, g_pos: (B, J, 3, 3), (B, J, 3) posed joint frames.
        rest_joints: (B, J, 3) or (1, J, 3) rest joint positions.
    Returns:
        (B, N, 3) posed points.
    """
    batch, n_joints = g_rot.shape[:2]
    trans = g_pos - (g_rot @ rest_joints.expand(batch, -1, -1)[..., None])[..., 0]
    packed = torch.cat([g_rot.reshape(batch, n_joints, 9), trans], dim=-1)  # (B, J, 12)
    blended = torch.matmul(weights, packed)  # (B, N, 12)
    rot = blended[..., :9].reshape(batch, -1, 3, 3)
    return (rot @ points.expand(batch, -1, -1)[..., None])[..., 0] + blended[..., 9:]


def pose_offsets(rotations: torch.Tensor, posedirs: torch.Tensor) -> torch.Tensor:
    """Pose-corrective offsets (MANO): linear in the non-root rotations minus identity.

    Args:
        rotations: (B, J, 3, 3) local rotations.
        posedirs: (9 (J - 1), N * 3).
    Returns:
        (B, N, 3).
    """
    batch = rotations.shape[0]
    eye = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
    feature = (rotations[:, 1:] - eye).reshape(batch, -1)
    return (feature @ posedirs).reshape(batch, -1, 3)


def gather_keypoints(joints: torch.Tensor, tips: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """The 21 keypoints from joints and tip points.

    Args:
        joints: (B, J, 3); tips: (B, 5, 3).
        sources: (21,) long, index into ``cat([joints, tips], 1)``.
    Returns:
        (B, 21, 3).
    """
    return torch.cat([joints, tips], dim=1)[:, sources]
