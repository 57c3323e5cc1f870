"""The fixed-shape forward exported to ONNX runs in ONNX Runtime and matches torch to <= 1e-5 m."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from hand_fixtures import sample_hands
from inscene.models.hands.onnx_export import OnnxHand, export_onnx


@pytest.mark.parametrize("which", ["anny", "mano"])
def test_onnx_matches_torch(which, anny_right32, mano_synthetic, tmp_path):
    from inscene.models.hands.model import HandModel

    model = anny_right32 if which == "anny" else HandModel(mano_synthetic["right"].data, dtype=torch.float32)
    betas = torch.linspace(-0.2, 0.2, model.num_betas)
    path = tmp_path / "hand.onnx"
    export_onnx(model, path, betas=betas)
    onnx.checker.check_model(onnx.load(path))
    session = OnnxHand(path, threads=1)
    for batch in (1, 7):  # the batch axis is dynamic
        p = sample_hands(model, batch, seed=batch)
        p.betas = betas.expand(batch, -1).clone()
        vertices, keypoints = session(p.global_orient.numpy(), p.hand_pose.numpy(), p.transl.numpy())
        with torch.no_grad():
            ref = model.pose(p)
        assert vertices.shape == (batch, model.num_vertices, 3) and keypoints.shape == (batch, 21, 3)
        assert np.abs(vertices - ref.vertices.numpy()).max() <= 1e-5
        assert np.abs(keypoints - ref.keypoints.numpy()).max() <= 1e-5


def test_fixed_shape_equals_full_forward(anny_right):
    betas = torch.tensor([0.05, -0.1], dtype=torch.float64)
    fixed = anny_right.fixed_shape(betas)
    p = sample_hands(anny_right, 3, seed=0)
    p.betas = betas.expand(3, -1).clone()
    vertices, keypoints = fixed(p.global_orient, p.hand_pose, p.transl)
    ref = anny_right.pose(p)
    torch.testing.assert_close(vertices, ref.vertices, rtol=0, atol=1e-12)
    torch.testing.assert_close(keypoints, ref.keypoints, rtol=0, atol=1e-12)
