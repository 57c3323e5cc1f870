"""Inputs and outputs of a hand model, as dataclasses of batched tensors."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

MIRROR_ROTVEC = (1.0, -1.0, -1.0)
"""Axis-angle of the other hand: mirroring about the camera's y-z plane flips y and z."""
MIRROR_POINT = (-1.0, 1.0, 1.0)
"""Points and translations of the other hand: x flips."""


@dataclass
class HandParams:
    """Parameters of a batch of hands of one model and side.

    Rotations are axis-angle vectors (radians) in the model's own convention: the
    global rotation about the wrist in camera/world axes, and one rotation per model
    joint (MANO: 15 joints in world-aligned axes as smplx; anny: 19 bones in
    anatomical bone axes, x flexion, y along the bone, z ab/adduction).
    """

    global_orient: torch.Tensor
    """(B, 3) rotation of the whole hand about its wrist."""
    hand_pose: torch.Tensor
    """(B, P, 3) per-joint rotations."""
    betas: torch.Tensor
    """(B, S) shape parameters (see the model's ``beta_names``)."""
    transl: torch.Tensor
    """(B, 3) translation, metres."""

    @property
    def batch_size(self) -> int:
        return int(self.global_orient.shape[0])

    def detach(self) -> HandParams:
        return HandParams(*(getattr(self, f.name).detach() for f in fields(self)))

    def clone(self) -> HandParams:
        return HandParams(*(getattr(self, f.name).clone() for f in fields(self)))

    def to(self, *args, **kwargs) -> HandParams:
        return HandParams(*(getattr(self, f.name).to(*args, **kwargs) for f in fields(self)))

    def index(self, idx: torch.Tensor | slice | int) -> HandParams:
        """The sub-batch ``idx`` (kept 2-D for an int)."""
        if isinstance(idx, int):
            idx = slice(idx, idx + 1)
        return HandParams(*(getattr(self, f.name)[idx] for f in fields(self)))

    def flat(self) -> torch.Tensor:
        """(B, 3 + 3 P + S + 3) one row per hand: global rotation, joint rotations, shape, translation (the
        order of the analytic Jacobians' columns)."""
        return torch.cat([self.global_orient, self.hand_pose.flatten(1), self.betas, self.transl], dim=1)

    @staticmethod
    def cat(items: list[HandParams]) -> HandParams:
        return HandParams(*(torch.cat([getattr(p, f.name) for p in items]) for f in fields(HandParams)))

    def mirrored(self) -> HandParams:
        """The parameters of the mirror-image hand of the other side (models whose left is
        the mirror image of their right about x = 0, as anny and MANO)."""
        rv = self.global_orient.new_tensor(MIRROR_ROTVEC)
        pt = self.global_orient.new_tensor(MIRROR_POINT)
        return replace(self, global_orient=self.global_orient * rv, hand_pose=self.hand_pose * rv,
                       transl=self.transl * pt)


@dataclass
class HandOutput:
    """The posed hand of a batch of parameters."""

    keypoints: torch.Tensor
    """(B, 21, 3) the 21 keypoints in MediaPipe order, metres."""
    joints: torch.Tensor
    """(B, J, 3) the model's own joints (rotation centres), metres."""
    vertices: torch.Tensor | None = None
    """(B, V, 3) mesh vertices, metres; None when not requested."""
