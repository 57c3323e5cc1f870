"""The object as the window sees it: mesh ray caster, SDF grid, the hand's contact candidates and sampled vertices."""

from __future__ import annotations

import numpy as np

from ..config import ContactConfig
from ..contact.detection import Evidence, contact_evidence, depth_correction
from ..contact.lifting import candidate_regions, contact_candidates, lift_contacts

CONTACT_TOL = 0.003
"""A hand vertex this close to the surface (or inside) is a contact point, metres."""
NEAREST_CONTACTS = 16
"""Lifted contacts kept per frame: the candidates nearest to their target."""
EXTRA_VERTICES = 160
"""Vertices sampled over the rest of the hand for the penetration term."""


class ObjectScene:
    """Everything the window needs of one object mesh (object frame), for one hand model."""

    def __init__(self, mesh, model, contact: ContactConfig, sdf=None) -> None:
        from inscene.kernels import RayCaster, sdf_grid

        self.mesh = mesh
        self.caster = RayCaster(mesh)
        self.sdf = sdf if sdf is not None else sdf_grid(mesh)
        self.config = contact
        self.candidates = contact_candidates(model)
        self.regions = candidate_regions(model, self.candidates)
        """(C,) region (finger pad, palm) of each candidate."""
        others = np.setdiff1d(np.arange(model.num_vertices), self.candidates)
        step = max(1, len(others) // EXTRA_VERTICES)
        self.vertex_ids = np.concatenate([self.candidates, others[::step]]).astype(np.int64)
        """Vertices of the contact and penetration terms: the candidates first, then a spread of the rest."""

    def warmup(self, model, K: np.ndarray) -> None:
        """Run the scene's kernels once (evidence, lifting, penetration) on the model's rest hand held in front of
        the object: numba loads each compiled kernel on its first call in a process (~0.1-0.3 s in all), which
        belongs in the stage's setup, not in the first contact frame of a stream."""
        import torch

        with torch.no_grad():
            out = model.pose(model.zero_params(1))
            v = out.vertices[0].double().numpy()
            normals = model.vertex_normals(out.vertices)[0].double().numpy()
        lo, hi = self.sdf.bounds
        T = np.eye(4)
        T[:3, 3] = (0.0, 0.0, 0.5) - 0.5 * (lo + hi)  # the object's box centred 0.5 m ahead
        v = v - v[self.candidates].mean(0) + (0.0, 0.0, 0.5 - 0.5 * float(hi[2] - lo[2]) - 0.005)
        for in_contact in (False, True):
            self.evidence(v, K, T, self.config, was_in_contact=in_contact)
        self.lift(v, normals, K, T, self.config)
        self.penetration_and_contacts(v, T)
        self.sdf.lookup(v[:4], gradient=True)

    def evidence(self, vertices: np.ndarray, K: np.ndarray, T_cam_obj: np.ndarray, config: ContactConfig,
                 was_in_contact: bool = False, mask: np.ndarray | None = None) -> Evidence:
        """Contact evidence of a hand mesh (V, 3), camera frame."""
        return contact_evidence(vertices, self.candidates, K, T_cam_obj, self.sdf, self.caster, config, mask,
                                was_in_contact, regions=self.regions)

    def lift(self, vertices: np.ndarray, normals: np.ndarray, K: np.ndarray, T_cam_obj: np.ndarray,
             config: ContactConfig, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """Lifted contacts: positions in :attr:`vertex_ids` (M,) and targets (M, 3), camera frame.

        The hand is first moved along its viewing rays to the depth at which its contact
        regions touch the object best (the contact evidence's depth correction, within the
        in-contact tolerance): lifting from there pulls a hand that stands off the object,
        or sinks into it, to the depth the object says, not just its nearest vertices.
        """
        scale, _, _ = depth_correction(vertices, self.candidates, T_cam_obj, self.sdf, config, was_in_contact=True,
                                       regions=self.regions)
        vertices = vertices * scale
        lifted = lift_contacts(vertices, normals, self.candidates, K, T_cam_obj, self.caster, mask,
                               config.lift_radius)
        if len(lifted) == 0:
            return None
        # only the nearest few are taken for contacts: candidates that overlap the object but
        # stand off its surface (the palm beside a mug) would pull the hand into it
        gap = np.linalg.norm(lifted.target - vertices[lifted.vertex], axis=1)
        keep = np.argsort(gap, kind="stable")[:NEAREST_CONTACTS]
        return lifted.index[keep], lifted.target[keep]  # candidates come first in vertex_ids

    def penetration_and_contacts(self, vertices: np.ndarray, T_cam_obj: np.ndarray) -> tuple[float, np.ndarray]:
        """Deepest vertex inside the object (m, 0 if none) and contact points (K, 3) in the object frame."""
        R, t = T_cam_obj[:3, :3], T_cam_obj[:3, 3]
        local = (vertices - t) @ R
        d, _ = self.sdf.lookup(local, gradient=False)
        d = np.asarray(d)
        pen = float(max(0.0, -d.min())) if len(d) else 0.0
        near = self.candidates[d[self.candidates] < CONTACT_TOL]
        return pen, local[near]
