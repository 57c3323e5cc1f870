"""Hand models: one differentiable interface over anny's open hand (default) and MANO.

``load_hand_model(kind, mano_dir, side)`` gives a :class:`HandModel`: a batched
torch forward from (global rotation, joint rotations, shape, translation) to the 21
keypoints (MediaPipe order), joints and mesh, with vertex normals, contact regions,
joint limits and a pose prior. ``fit_keypoints`` is the per-frame fit to 2D
keypoints; ``export_onnx`` exports the fixed-shape forward.
"""

from __future__ import annotations

from .fitting import FitConfig, FitResult, fit_keypoints, project
from .keypoints import FINGERS, KEYPOINT_NAMES, NUM_KEYPOINTS
from .loading import ENV_MANO_DIR, load_hand_model, load_hand_models, resolve_hand_model
from .model import FixedShapeHand, HandModel, HandModelData
from .multi import fit_frames
from .params import HandOutput, HandParams

__all__ = [
    "ENV_MANO_DIR", "FINGERS", "FitConfig", "FitResult", "FixedShapeHand", "HandModel", "HandModelData",
    "HandOutput", "HandParams", "KEYPOINT_NAMES", "NUM_KEYPOINTS", "fit_frames", "fit_keypoints",
    "load_hand_model", "load_hand_models", "project", "resolve_hand_model",
]
