"""The torch eager reference behind the same :class:`~.model.Model` face."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .model import Model, ModelInfo


class TorchModel(Model):
    """An ``nn.Module`` taking one tensor and returning a tuple of tensors (``info.output_names`` order).

    Runs under ``torch.inference_mode`` on ``device``; inputs and outputs are numpy.
    """

    def __init__(self, module: nn.Module, info: ModelInfo, device: str = "cpu", max_batch: int = 8,
                 reason: str = "") -> None:
        super().__init__(info, max_batch)
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self.label = f"torch:{self.device.type}"
        self.reason = reason

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            out = self.module(torch.from_numpy(x).to(self.device))
        if isinstance(out, torch.Tensor):
            out = (out,)
        return [o.detach().cpu().numpy() for o in out]
