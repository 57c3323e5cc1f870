"""The torch emitter: a lowered network (:class:`~.lowering.NetIR`) as an ``nn.Module``.

This is the eager reference of the converted networks. Each lowered node maps to
one torch call; weights are registered buffers (float32). ``forward`` takes the
tflite input layout, ``(B, H, W, C)`` float32, and returns the outputs in the
tflite order and shapes (batch ``B`` first).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .lowering import NetIR, Node


def _act(x: torch.Tensor, act: str) -> torch.Tensor:
    if act == "RELU":
        return F.relu(x)
    if act == "RELU6":
        return F.relu6(x)
    return x


class TFLiteNet(nn.Module):
    """A converted tflite network in torch (see module doc).

    Args:
        ir: the lowered network.
    """

    def __init__(self, ir: NetIR) -> None:
        super().__init__()
        self.ir = ir
        self._nodes: list[Node] = ir.nodes
        for k, n in enumerate(self._nodes):
            for key in ("weight", "bias", "alpha"):
                if key in n.attrs:
                    self.register_buffer(f"n{k}_{key}", torch.as_tensor(n.attrs[key], dtype=torch.float32).clone())

    def _buf(self, k: int, key: str) -> torch.Tensor:
        return getattr(self, f"n{k}_{key}")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """x ``(B, H, W, C)`` float32 -> the network's outputs (tflite order, ``B`` first)."""
        env: dict[str, torch.Tensor] = {self.ir.input_name: x}
        for k, n in enumerate(self._nodes):
            a = n.attrs
            xs = [env[i] for i in n.inputs]
            if n.kind == "to_nchw":
                y = xs[0].permute(0, 3, 1, 2)
            elif n.kind == "to_nhwc":
                y = xs[0].permute(0, 2, 3, 1)
            elif n.kind == "conv":
                pt, pl, pb, pr = a["pads"]
                inp = xs[0]
                if pt == pb and pl == pr:
                    pad: tuple[int, int] | int = (pt, pl)
                else:
                    inp = F.pad(inp, (pl, pr, pt, pb))
                    pad = 0
                y = F.conv2d(inp, self._buf(k, "weight"), self._buf(k, "bias"), stride=a["stride"], padding=pad,
                             dilation=a["dilation"], groups=a["groups"])
            elif n.kind == "maxpool":
                pt, pl, pb, pr = a["pads"]
                inp = xs[0]
                if pt or pl or pb or pr:
                    inp = F.pad(inp, (pl, pr, pt, pb), value=float("-inf"))
                y = F.max_pool2d(inp, a["kernel"], a["stride"])
            elif n.kind == "pad":
                flat: list[int] = []
                for before, after in reversed(a["pads"]):
                    flat += [int(before), int(after)]
                y = F.pad(xs[0], tuple(flat))
            elif n.kind == "prelu":
                y = F.prelu(xs[0], self._buf(k, "alpha"))
            elif n.kind == "add":
                y = xs[0] + xs[1]
            elif n.kind == "resize":
                mode = a["mode"]
                if mode == "asymmetric":
                    raise NotImplementedError("bilinear resize without half-pixel centers is not supported in torch")
                y = F.interpolate(xs[0], size=a["size"], mode="bilinear", align_corners=mode == "align_corners")
            elif n.kind == "reshape":
                shape = [xs[0].shape[0] if (i == 0 and s == 0) else s for i, s in enumerate(a["shape"])]
                y = xs[0].reshape(shape)
            elif n.kind == "concat":
                y = torch.cat(xs, dim=a["axis"])
            elif n.kind == "mean":
                y = xs[0].mean(dim=a["axes"], keepdim=a["keepdims"])
            elif n.kind == "fc":
                y = F.linear(xs[0].reshape(xs[0].shape[0], -1), self._buf(k, "weight"), self._buf(k, "bias"))
            elif n.kind == "sigmoid":
                y = torch.sigmoid(xs[0])
            elif n.kind == "identity":
                y = xs[0].contiguous()
            else:  # pragma: no cover
                raise ValueError(f"unknown lowered node {n.kind}")
            env[n.output] = _act(y, n.act)
        return tuple(env[o] for o in self.ir.output_names)
