"""Fit many hands at once: frames x hands, grouped by side into one batched fit per model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields

import torch

from .fitting import FitConfig, FitResult, fit_keypoints
from .model import HandModel
from .params import HandParams


def _split(result: FitResult, n_frames: int, n_hands: int) -> list[FitResult]:
    """A fit over (T * n) hands, frame-major, into n fits over T frames."""
    def part(t: torch.Tensor, h: int) -> torch.Tensor:
        return t.reshape(n_frames, n_hands, *t.shape[1:])[:, h]

    out = []
    for h in range(n_hands):
        params = HandParams(*(part(getattr(result.params, f.name), h) for f in fields(HandParams)))
        out.append(FitResult(params, part(result.keypoints, h), part(result.reprojection_px, h),
                             part(result.inlier_weight, h), part(result.cost, h)))
    return out


def fit_frames(models: Mapping[str, HandModel], keypoints2d: torch.Tensor, confidence: torch.Tensor,
               K: torch.Tensor, sides: Sequence[str], landmarks3d: torch.Tensor | None = None,
               init: Sequence[HandParams | None] | None = None,
               config: FitConfig | None = None) -> list[FitResult]:
    """Fit T frames of H hands; hands of the same side share one batched fit.

    Args:
        models: side -> model ("right", "left").
        keypoints2d: (T, H, 21, 2) pixels; confidence: (T, H, 21).
        K: (3, 3) or (T, 3, 3) intrinsics.
        sides: (H,) side of each hand.
        landmarks3d: optional (T, H, 21, 3) relative 3D keypoints.
        init: optional per hand a warm start over the T frames (all hands of a side
            warm-started together only if all of them have one).
    Returns:
        H results, each over T frames.
    """
    T, H = keypoints2d.shape[:2]
    if len(sides) != H:
        raise ValueError(f"sides has {len(sides)} entries for {H} hands")
    K = K.expand(T, 3, 3) if K.dim() == 2 else K
    results: list[FitResult | None] = [None] * H
    for side in dict.fromkeys(sides):
        hands = [h for h in range(H) if sides[h] == side]
        n = len(hands)

        def flat(t: torch.Tensor, hands: list[int] = hands, n: int = n) -> torch.Tensor:  # frame-major
            return t[:, hands].reshape(T * n, *t.shape[2:])

        starts = [init[h] for h in hands] if init is not None else []
        warm = None
        if starts and all(s is not None for s in starts):
            warm = HandParams(*(torch.stack([getattr(s, f.name) for s in starts], dim=1).flatten(0, 1)
                                for f in fields(HandParams)))
        fit = fit_keypoints(models[side], flat(keypoints2d), flat(confidence), K.repeat_interleave(n, dim=0),
                            flat(landmarks3d) if landmarks3d is not None else None, warm, config)
        for h, res in zip(hands, _split(fit, T, n)):
            results[h] = res
    return [r for r in results if r is not None]
