"""The hand-model interface: one torch module, whatever model (anny, MANO) is behind it.

A backend fills a :class:`HandModelData` (plain arrays); :class:`HandModel` turns it
into a batched, differentiable forward from (global rotation, per-joint rotations,
shape, translation) to the 21 keypoints, the joints and the mesh, with vertex
normals, named contact regions, joint limits and a pose prior.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from . import skinning
from .geometry import anatomical_frames, contact_regions, vertex_normals
from .keypoints import NUM_KEYPOINTS
from .params import MIRROR_ROTVEC, HandOutput, HandParams
from .priors import JointLimits, PosePrior


@dataclass(frozen=True)
class HandModelData:
    """Everything a backend provides (float64 numpy arrays, rest pose in metres)."""

    name: str
    """Model family: "anny" or "mano"."""
    side: str
    """"right" or "left"."""
    joint_names: tuple[str, ...]
    """(J,) joint names; joint 0 is the root (wrist), rotated by the global rotation."""
    parents: tuple[int, ...]
    """(J,) parent joint, -1 for the root."""
    joint_kinds: tuple[str, ...]
    """(J - 1,) kind of each posed joint for limits and prior (``priors.JOINT_KINDS``)."""
    v_template: np.ndarray
    """(V, 3) rest vertices at zero shape."""
    shapedirs: np.ndarray
    """(V, 3, S_lin) linear vertex shape directions."""
    j_template: np.ndarray
    """(J, 3) rest joints at zero shape."""
    j_shapedirs: np.ndarray
    """(J, 3, S_lin) linear joint shape directions (MANO: regressor times ``shapedirs``)."""
    weights: np.ndarray
    """(V, J) skinning weights, rows summing to 1."""
    faces: np.ndarray
    """(F, 3) triangles, wound outwards."""
    tip_vertices: tuple[int, int, int, int, int]
    """Fingertip vertex of thumb, index, middle, ring, little."""
    keypoint_sources: tuple[int, ...]
    """(21,) source of each keypoint: a joint index, or J + k for the k-th tip vertex."""
    beta_names: tuple[str, ...]
    """(S,) shape parameter names."""
    beta_std: np.ndarray
    """(S,) prior standard deviation of each shape parameter."""
    log_scale: bool = False
    """If set, betas[0] is a log uniform scale about the origin; the others weight ``shapedirs``."""
    posedirs: np.ndarray | None = None
    """(9 (J - 1), 3 V) pose-corrective directions (MANO), or None."""
    pose_frames: np.ndarray | None = None
    """(J - 1, 3, 3) axes of each joint's pose parameters (columns, rest axes), None for world-aligned."""
    frame_hint: np.ndarray | None = None
    """(J, 3) flexion axis hint per joint for the anatomical frames (a rig's bone roll)."""
    palm_joints: tuple[int, ...] = (0,)
    """Joints whose vertices form the palm."""
    meta: dict = field(default_factory=dict)
    """Provenance: source files, versions, phenotype."""


class HandModel(torch.nn.Module):
    """A hand model of one side: parameters -> keypoints, joints, vertices.

    Attributes: ``name``, ``side``, ``joint_names`` (J), ``beta_names`` (S),
    ``num_pose_joints`` (P = J - 1), ``faces`` (F, 3), ``regions`` (name -> (K,)
    vertex indices), ``joint_limits``, ``pose_prior``, ``beta_std`` (S,).
    """

    def __init__(self, data: HandModelData, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if data.side not in ("right", "left"):
            raise ValueError(f"side must be 'right' or 'left', got {data.side!r}")
        if len(data.keypoint_sources) != NUM_KEYPOINTS:
            raise ValueError("keypoint_sources must have 21 entries")
        self.data = data
        self.name, self.side = data.name, data.side
        self.joint_names, self.beta_names = tuple(data.joint_names), tuple(data.beta_names)
        self.tree = skinning.KinematicTree.from_parents(data.parents)
        self.log_scale = data.log_scale
        n_joints = len(data.parents)

        def buf(name: str, array: np.ndarray | None, kind: torch.dtype | None = None) -> None:
            value = None if array is None else torch.as_tensor(np.asarray(array), dtype=kind or dtype)
            self.register_buffer(name, value)

        buf("v_template", data.v_template)
        buf("shapedirs", data.shapedirs)
        buf("j_template", data.j_template)
        buf("j_shapedirs", data.j_shapedirs)
        buf("weights", data.weights)
        buf("posedirs", data.posedirs)
        buf("pose_frames", data.pose_frames)
        buf("beta_std", data.beta_std)
        buf("faces", data.faces, torch.long)
        tips = list(data.tip_vertices)
        buf("tip_vertices", np.asarray(tips), torch.long)
        buf("keypoint_sources", np.asarray(data.keypoint_sources), torch.long)
        buf("tip_weights", data.weights[tips])
        buf("tip_template", data.v_template[tips])
        buf("tip_shapedirs", data.shapedirs[tips])
        if data.posedirs is not None:
            cols = np.stack([3 * np.asarray(tips) + k for k in range(3)], axis=1).reshape(-1)
            buf("tip_posedirs", data.posedirs[:, cols])
        else:
            self.register_buffer("tip_posedirs", None)

        rest_kp = self._rest_keypoints_np()
        frames = anatomical_frames(data.j_template, data.parents, rest_kp, data.keypoint_sources, data.side,
                                   data.frame_hint)
        self.anatomical_frames = frames  # (P, 3, 3) numpy, rest axes
        side_flip = np.diag([1.0, *MIRROR_ROTVEC[1:]]) if data.side == "left" else np.eye(3)
        pose_frames = data.pose_frames if data.pose_frames is not None else np.broadcast_to(np.eye(3), frames.shape)
        to_anat = torch.as_tensor(side_flip @ np.transpose(frames, (0, 2, 1)) @ pose_frames)
        self.joint_limits = JointLimits(data.joint_kinds, to_anat).to(dtype)
        self.pose_prior = PosePrior(data.joint_kinds, to_anat).to(dtype)

        normals = vertex_normals(torch.as_tensor(data.v_template)[None], torch.as_tensor(data.faces).long())[0]
        regions = contact_regions(data.v_template, normals.numpy(), data.weights, data.j_template, frames, rest_kp,
                                  data.keypoint_sources, data.palm_joints, data.side)
        self.regions = {k: torch.as_tensor(v) for k, v in regions.items()}
        assert self.j_template.shape[0] == n_joints

    # ------------------------------------------------------------------ sizes
    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def num_pose_joints(self) -> int:
        return len(self.joint_names) - 1

    @property
    def num_betas(self) -> int:
        return len(self.beta_names)

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def dtype(self) -> torch.dtype:
        return self.v_template.dtype

    @property
    def device(self) -> torch.device:
        return self.v_template.device

    # ---------------------------------------------------------------- forward
    def zero_params(self, batch: int = 1) -> HandParams:
        """Flat hand, default shape, at the origin."""
        z = dict(dtype=self.dtype, device=self.device)
        return HandParams(torch.zeros(batch, 3, **z), torch.zeros(batch, self.num_pose_joints, 3, **z),
                          torch.zeros(batch, self.num_betas, **z), torch.zeros(batch, 3, **z))

    def rest(self, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rest vertices (B, V, 3) and joints (B, J, 3) for betas (B, S)."""
        return (skinning.shape_rest(self.v_template, self.shapedirs, betas, self.log_scale),
                skinning.shape_rest(self.j_template, self.j_shapedirs, betas, self.log_scale))

    def forward(self, global_orient: torch.Tensor, hand_pose: torch.Tensor, betas: torch.Tensor | None = None,
                transl: torch.Tensor | None = None, with_vertices: bool = True) -> HandOutput:
        """Pose a batch of hands.

        Args:
            global_orient: (B, 3); hand_pose: (B, P, 3) or (B, 3 P); betas: (B, S) or
                None (default shape); transl: (B, 3) or None.
            with_vertices: compute the (B, V, 3) mesh; otherwise only the joints and the
                five tip vertices the keypoints need (much cheaper).
        Returns:
            :class:`HandOutput` with keypoints (B, 21, 3), joints (B, J, 3), vertices.
        """
        batch = global_orient.shape[0]
        self._check_shapes(global_orient, hand_pose, betas, transl)
        hand_pose = hand_pose.reshape(batch, self.num_pose_joints, 3)
        if betas is None:
            betas = global_orient.new_zeros(batch, self.num_betas)
        rest_joints = skinning.shape_rest(self.j_template, self.j_shapedirs, betas, self.log_scale)
        rot = skinning.joint_rotations(global_orient, hand_pose, self.pose_frames)
        g_rot, g_pos = skinning.forward_kinematics(self.tree, rot, rest_joints)
        tips = skinning.shape_rest(self.tip_template, self.tip_shapedirs, betas, self.log_scale)
        if self.tip_posedirs is not None:
            tips = tips + skinning.pose_offsets(rot, self.tip_posedirs)
        tips = skinning.skin(tips, self.tip_weights, g_rot, g_pos, rest_joints)
        vertices = None
        if with_vertices:
            verts = skinning.shape_rest(self.v_template, self.shapedirs, betas, self.log_scale)
            if self.posedirs is not None:
                verts = verts + skinning.pose_offsets(rot, self.posedirs)
            vertices = skinning.skin(verts, self.weights, g_rot, g_pos, rest_joints)
        keypoints = skinning.gather_keypoints(g_pos, tips, self.keypoint_sources)
        if transl is not None:
            shift = transl[:, None, :]
            keypoints, g_pos = keypoints + shift, g_pos + shift
            vertices = vertices + shift if vertices is not None else None
        return HandOutput(keypoints=keypoints, joints=g_pos, vertices=vertices)

    def _check_shapes(self, global_orient, hand_pose, betas, transl) -> None:
        batch, P, S = global_orient.shape[0], self.num_pose_joints, self.num_betas
        ok = (global_orient.shape == (batch, 3) and hand_pose.shape in ((batch, P, 3), (batch, 3 * P))
              and (betas is None or betas.shape == (batch, S)) and (transl is None or transl.shape == (batch, 3)))
        if not ok:
            got = [tuple(t.shape) if t is not None else None for t in (global_orient, hand_pose, betas, transl)]
            raise ValueError(f"{self.name} hand: expected global_orient (B, 3), hand_pose (B, {P}, 3), "
                             f"betas (B, {S}), transl (B, 3); got {got}")

    def pose(self, params: HandParams, with_vertices: bool = True) -> HandOutput:
        """:meth:`forward` on a :class:`HandParams`."""
        return self(params.global_orient, params.hand_pose, params.betas, params.transl, with_vertices)

    def vertex_normals(self, vertices: torch.Tensor) -> torch.Tensor:
        """(B, V, 3) unit outward normals of posed vertices (B, V, 3)."""
        return vertex_normals(vertices, self.faces)

    def fixed_shape(self, betas: torch.Tensor | None = None) -> FixedShapeHand:
        """The forward with the shape baked in (for ONNX export and fast posing)."""
        return FixedShapeHand(self, betas)

    def extra_repr(self) -> str:
        return (f"name={self.name}, side={self.side}, joints={self.num_joints}, vertices={self.num_vertices}, "
                f"betas={self.beta_names}")

    def _rest_keypoints_np(self) -> np.ndarray:
        d = self.data
        points = np.concatenate([d.j_template, d.v_template[list(d.tip_vertices)]], axis=0)
        return points[list(d.keypoint_sources)]


class FixedShapeHand(torch.nn.Module):
    """(global_orient, hand_pose, transl) -> (vertices, keypoints) for one fixed shape.

    Shapes: global_orient (B, 3), hand_pose (B, P, 3), transl (B, 3) ->
    vertices (B, V, 3), keypoints (B, 21, 3). Exportable to ONNX (dynamic B).
    """

    def __init__(self, model: HandModel, betas: torch.Tensor | None = None) -> None:
        super().__init__()
        if betas is None:
            betas = torch.zeros(1, model.num_betas, dtype=model.dtype, device=model.device)
        betas = betas.reshape(1, -1).to(model.dtype)
        with torch.no_grad():
            verts, joints = model.rest(betas)
        self.tree = model.tree
        self.register_buffer("rest_vertices", verts)
        self.register_buffer("rest_joints", joints)
        self.register_buffer("weights", model.weights.clone())
        self.register_buffer("posedirs", None if model.posedirs is None else model.posedirs.clone())
        self.register_buffer("pose_frames", None if model.pose_frames is None else model.pose_frames.clone())
        self.register_buffer("tip_vertices", model.tip_vertices.clone())
        self.register_buffer("keypoint_sources", model.keypoint_sources.clone())

    def forward(self, global_orient: torch.Tensor, hand_pose: torch.Tensor,
                transl: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rot = skinning.joint_rotations(global_orient, hand_pose, self.pose_frames)
        g_rot, g_pos = skinning.forward_kinematics(self.tree, rot, self.rest_joints)
        verts = self.rest_vertices
        if self.posedirs is not None:
            verts = verts + skinning.pose_offsets(rot, self.posedirs)
        vertices = skinning.skin(verts, self.weights, g_rot, g_pos, self.rest_joints)
        keypoints = skinning.gather_keypoints(g_pos, vertices[:, self.tip_vertices], self.keypoint_sources)
        shift = transl[:, None, :]
        return vertices + shift, keypoints + shift
