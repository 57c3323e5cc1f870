"""What the generator needs to know about a hand model beyond its forward pass.

Per model (any :class:`~inscene.models.hands.HandModel`): the pad anchor vertex of
each finger (the pad vertex nearest the pad's centroid), nail vertices (for skin
colours), the palm frame at rest, and the conversion between a hand's parameters
(global rotation, translation) and a rigid pose ``T_frame_hand`` of its rest
frame, so that moving a hand rigidly (into the object's or the camera's frame) is
one matrix product. The model's global rotation turns the hand about its root
joint ``j0`` (anny: the origin; MANO: the wrist), so
``x = R (x_local - j0) + j0 + transl`` and ``T_frame_hand = [R | j0 + transl - R j0]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from inscene.models.hands import FINGERS, HandModel
from inscene.models.hands.fit_init import palm_frame
from inscene.models.hands.rotations import axis_angle_to_matrix, matrix_to_axis_angle

PAD_FINGERS = tuple(FINGERS)
"""thumb, index, middle, ring, little."""


@dataclass(frozen=True)
class HandKit:
    """Fixed facts about one hand model of one side at one shape (numpy, float64, metres)."""

    model: HandModel
    betas: np.ndarray
    """(S,) the shape these facts are for."""
    pad_anchor: dict[str, int]
    """finger -> vertex index of its pad's anchor."""
    pad_vertices: dict[str, np.ndarray]
    """finger (and ``palm``) -> (K,) vertex indices of the contact region."""
    nails: np.ndarray
    """(V,) bool nail vertices."""
    j0: np.ndarray
    """(3,) root joint at rest (the global rotation's centre)."""
    palm_axes: np.ndarray
    """(3, 3) columns distal, radial, palmar of the rest hand, model axes."""
    palm_centre: np.ndarray
    """(3,) centre of the palm's surface at rest, model axes."""
    rest_normals: np.ndarray
    """(V, 3) vertex normals at rest."""

    @classmethod
    def build(cls, model: HandModel, betas: np.ndarray | None = None) -> HandKit:
        dtype = model.dtype
        b = torch.zeros(1, model.num_betas, dtype=dtype) if betas is None else torch.as_tensor(
            np.asarray(betas), dtype=dtype).reshape(1, -1)
        with torch.no_grad():
            zero = model.zero_params(1)
            out = model(zero.global_orient, zero.hand_pose, b, zero.transl)
            verts = out.vertices[0].double().numpy()
            kp = out.keypoints[0].double().numpy()
            normals = model.vertex_normals(out.vertices)[0].double().numpy()
            _, rest_joints = model.rest(b)
        axes = palm_frame(torch.as_tensor(kp), model.side).numpy()
        regions = {k: v.numpy().astype(np.int64) for k, v in model.regions.items()}
        anchors = {}
        pads = {}
        for f in PAD_FINGERS:
            idx = regions[f"{f}_pad"]
            c = verts[idx].mean(0)
            anchors[f] = int(idx[np.argmin(np.linalg.norm(verts[idx] - c, axis=1))])
            pads[f] = idx
        pads["palm"] = regions["palm"]
        # nails: dorsal vertices of the distal phalanges near the tips
        tips = kp[[4, 8, 12, 16, 20]]
        dorsal = normals @ -axes[:, 2]
        near_tip = np.min(np.linalg.norm(verts[:, None] - tips[None], axis=2), axis=1) < 0.011
        nails = near_tip & (dorsal > 0.55)
        palm_idx = [0, 5, 9, 13, 17]
        palm_centre = verts[regions["palm"]].mean(0) if len(regions["palm"]) else kp[palm_idx].mean(0)
        return cls(model, b[0].double().numpy(), anchors, pads, nails, rest_joints[0, 0].double().numpy(), axes,
                   palm_centre, normals)

    # ------------------------------------------------------------- rigid poses
    def to_T(self, global_orient: np.ndarray, transl: np.ndarray) -> np.ndarray:
        """(..., 4, 4) pose of the hand's rest frame from (..., 3) global rotations and translations."""
        R = axis_angle_to_matrix(torch.as_tensor(np.asarray(global_orient, np.float64))).numpy()
        T = np.zeros(R.shape[:-2] + (4, 4))
        T[..., :3, :3] = R
        T[..., :3, 3] = np.asarray(transl) + self.j0 - R @ self.j0
        T[..., 3, 3] = 1.0
        return T

    def from_T(self, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inverse of :meth:`to_T`: (..., 3) global rotations and (..., 3) translations."""
        R = T[..., :3, :3]
        go = matrix_to_axis_angle(torch.as_tensor(np.ascontiguousarray(R))).numpy()
        transl = T[..., :3, 3] - self.j0 + R @ self.j0
        return go, transl

    def rotation_for(self, distal: np.ndarray, radial: np.ndarray) -> np.ndarray:
        """(3, 3) hand rotation putting the rest palm's distal and radial axes on the given directions."""
        d = distal / np.linalg.norm(distal)
        r = radial - radial.dot(d) * d
        r /= np.linalg.norm(r)
        sign = 1.0 if self.model.side == "right" else -1.0
        target = np.stack([d, r, -sign * np.cross(d, r)], axis=1)
        return target @ self.palm_axes.T

    def palmar_of(self, distal: np.ndarray, radial: np.ndarray) -> np.ndarray:
        """The palm's outward normal for a hand whose distal and radial axes are given."""
        return self.rotation_for(distal, radial) @ self.palm_axes[:, 2]


def pose_hands(model: HandModel, global_orient: np.ndarray, hand_pose: np.ndarray, betas: np.ndarray,
               transl: np.ndarray, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (T, V, 3) and keypoints (T, 21, 3), float64, of T hands given as numpy arrays."""
    verts, kps = [], []
    dt = model.dtype
    with torch.no_grad():
        for s in range(0, len(global_orient), chunk):
            sl = slice(s, s + chunk)
            out = model(torch.as_tensor(global_orient[sl], dtype=dt), torch.as_tensor(hand_pose[sl], dtype=dt),
                        torch.as_tensor(betas[sl], dtype=dt), torch.as_tensor(transl[sl], dtype=dt))
            verts.append(out.vertices.double().numpy())
            kps.append(out.keypoints.double().numpy())
    return np.concatenate(verts), np.concatenate(kps)
