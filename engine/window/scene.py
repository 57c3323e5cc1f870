"""The object as the window sees it: mesh ray caster, SDF grid, the hand's contact candidates and sampled vertices."""

from __future__ import annotations

import numpy as np

from ..config import ContactConfig
from ..contact.detection import Evidence, contact_evidence
from ..contact.lifting import contact_candidates, lift_contacts

CONTACT_TOL = 0.003
"""A hand vertex this close to the surface (or inside) is a contact point, metres."""
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
        others = np.setdiff1d(np.arange(model.num_vertices), self.candidates)
        step = max(1, len(others) // EXTRA_VERTICES)
        self.vertex_ids = np.concatenate([self.candidates, others[::step]]).astype(np.int64)
        """Vertices of the contact and penetration terms: the candidates first, then a spread of the rest."""

    def evidence(self, vertices: np.ndarray, K: np.ndarray, T_cam_obj: np.ndarray, config: ContactConfig,
                 was_in_contact: bool = False, mask: np.ndarray | None = None) -> Evidence:
        """Contact evidence of a hand mesh (V, 3), camera frame."""
        return contact_evidence(vertices, self.candidates, K, T_cam_obj, self.sdf, self.caster, config, mask,
                                was_in_contact)

    def lift(self, vertices: np.ndarray, normals: np.ndarray, K: np.ndarray, T_cam_obj: np.ndarray,
             config: ContactConfig, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """Lifted contacts: positions in :attr:`vertex_ids` (M,) and targets (M, 3), camera frame."""
        lifted = lift_contacts(vertices, normals, self.candidates, K, T_cam_obj, self.caster, mask,
                               config.lift_radius)
        if len(lifted) == 0:
            return None
        return lifted.index, lifted.target  # candidates come first in vertex_ids

    def penetration_and_contacts(self, vertices: np.ndarray, T_cam_obj: np.ndarray) -> tuple[float, np.ndarray]:
        """Deepest vertex inside the object (m, 0 if none) and contact points (K, 3) in the object frame."""
        R, t = T_cam_obj[:3, :3], T_cam_obj[:3, 3]
        local = (vertices - t) @ R
        d, _ = self.sdf.lookup(local, gradient=False)
        d = np.asarray(d)
        pen = float(max(0.0, -d.min())) if len(d) else 0.0
        near = self.candidates[d[self.candidates] < CONTACT_TOL]
        return pen, local[near]
