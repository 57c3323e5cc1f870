"""The window objective's terms, built once per hand model from the config."""

from __future__ import annotations

from ..config import WindowConfig
from ..costs.base import CostTerm
from ..costs.contact import Contact
from ..costs.landmarks import Landmarks
from ..costs.penetration import Penetration
from ..costs.priors import PosePrior, ShapePrior
from ..costs.reprojection import Reprojection
from ..costs.rigidity import Rigidity
from ..costs.smoothness import Acceleration, Velocity


def build_terms(model, cfg: WindowConfig, with_object: bool) -> list[CostTerm]:
    """Every term with its weight (a zero weight drops the term: the ablations)."""
    terms: list[CostTerm] = [
        Reprojection(1.0, cfg.sigma_px, cfg.robust_px),
        Landmarks(1.0, cfg.sigma_3d),
        PosePrior(model, cfg.prior_weight),
        ShapePrior(model, 1.0, cfg.shape_sigma),
        Acceleration(cfg.smooth_weight, cfg.sigma_accel),
        Velocity(cfg.smooth_weight, cfg.sigma_velocity),
    ]
    if with_object:
        terms += [Contact(cfg.contact_weight, cfg.sigma_contact), Penetration(cfg.sdf_weight, cfg.sigma_penetration),
                  Rigidity(cfg.rigidity_weight, cfg.sigma_rigid)]
    return terms
