"""Hand model: forward at batch 1 and 64 (keypoints only / with vertices), ONNX Runtime, per-frame fit.

Targets on a 2-core CPU: forward <= 2 ms at batch 1; fit <= 10 ms per hand per frame
warm-started. The fit is timed warm-started from a nearby estimate (the previous
frame's), at batch 1 (one hand), 2 (two hands of a frame) and 64 (a batch of
frames), and cold-started; its accuracy on synthetic hands is reported alongside.
Seeds are pinned; each timing is the median and spread of single calls after a
warm-up.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch

from .report import fmt, header, stats, write_json

TARGET_FORWARD_MS = 2.0
TARGET_FIT_MS = 10.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hand-model", choices=("anny", "mano"), default="anny", help="model to time (default anny)")
    p.add_argument("--mano-dir", help="folder with MANO_RIGHT/LEFT .pkl or .npz (for --hand-model mano)")
    p.add_argument("--side", choices=("right", "left"), default="right")
    p.add_argument("--repeats", type=int, default=30, help="timed calls per figure (after a warm-up)")
    p.add_argument("--threads", type=int, default=1, help="torch / ONNX Runtime threads (default 1)")
    p.add_argument("--json", type=Path, help="where to write the JSON (default bench/results/handmodel.json)")


def _time(fn: Callable[[], object], repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main(args: argparse.Namespace) -> int:
    from inscene.models.hands import FitConfig, fit_keypoints, load_hand_model
    from inscene.models.hands.jacobian import (
        keypoints_and_jacobian,
        keypoints_and_jacobian_fast,
        pose_fast,
        vertices_and_jacobian,
        vertices_and_jacobian_fast,
    )
    from inscene.models.hands.onnx_export import OnnxHand, export_onnx
    from inscene.models.hands.synthetic import default_camera, mpjpe_mm, observe, perturb, sample_hands

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    print(header("inscene bench handmodel"))
    t0 = time.perf_counter()
    model = load_hand_model(args.hand_model, args.mano_dir, args.side)
    load_ms = (time.perf_counter() - t0) * 1e3
    print(f"model: {model.name} {model.side}, {model.num_vertices} vertices, {model.num_joints} joints, "
          f"{model.num_betas} shape parameters; loaded in {load_ms:.0f} ms; threads {args.threads}")
    figures: dict = {"model": model.name, "side": model.side, "threads": args.threads, "load_ms": load_ms}
    n = args.repeats

    def show(key: str, label: str, samples: list[float], per: int = 1) -> dict:
        s = stats([v / per for v in samples])
        figures[key] = s
        print(f"{label:<40} {fmt(s, ' ms', 3)}")
        return s

    print("\n## forward (torch, no grad)")
    hands = sample_hands(model, 64, seed=0)
    for b in (1, 64):
        p = hands.index(slice(0, b))
        with torch.no_grad():
            show(f"forward_b{b}_keypoints_ms", f"batch {b}, keypoints only", _time(lambda: model.pose(p, False), n))
            show(f"forward_b{b}_vertices_ms", f"batch {b}, with vertices", _time(lambda: model.pose(p, True), n))
    p1 = hands.index(0)
    show("jacobian_b1_ms", "batch 1, keypoints + analytic Jacobian",
         _time(lambda: keypoints_and_jacobian(model, p1), n))

    print("\n## numba kernel (kernels/handkin.py) against its torch twin")
    p16 = hands.index(slice(0, 16))
    ids = torch.arange(0, model.num_vertices, max(1, model.num_vertices // 300))
    pairs = [("jacobian_b1", "batch 1, keypoints + Jacobian", lambda: keypoints_and_jacobian(model, p1),
              lambda: keypoints_and_jacobian_fast(model, p1)),
             ("vertex_jacobian_b16", f"batch 16, {len(ids)} vertices + Jacobian",
              lambda: vertices_and_jacobian(model, p16, ids), lambda: vertices_and_jacobian_fast(model, p16, ids))]
    with torch.no_grad():
        pairs.append(("forward_b1_vertices", "batch 1, keypoints + vertices", lambda: model.pose(p1, True),
                      lambda: pose_fast(model, p1)))
    for key, label, twin, fast in pairs:
        fast()  # numba loads the kernel on its first call
        a, b = _time(twin, n), _time(fast, n)  # one run, side by side
        show(f"{key}_torch_ms", f"{label}, torch", a)
        sb = show(f"{key}_numba_ms", f"{label}, numba", b)
        figures[f"{key}_speedup"] = stats(a)["median"] / max(sb["median"], 1e-9)
        print(f"{'':<40} numba {figures[f'{key}_speedup']:.1f}x faster (medians)")

    def fwd_bwd() -> None:
        q = p1.clone()
        q.hand_pose.requires_grad_(True)
        model.pose(q).vertices.sum().backward()

    show("forward_backward_b1_vertices_ms", "batch 1, vertices, forward + backward", _time(fwd_bwd, n))

    print("\n## forward (ONNX Runtime, fixed shape)")
    session = OnnxHand(export_onnx(model), threads=args.threads)
    for b in (1, 64):
        p = hands.index(slice(0, b))
        go, hp, tr = (t.detach().float().numpy() for t in (p.global_orient, p.hand_pose, p.transl))
        show(f"onnx_b{b}_ms", f"batch {b}, vertices + keypoints", _time(lambda: session(go, hp, tr), n))

    print("\n## per-frame fit (2 px noise, no 3D landmarks)")
    K = default_camera(model.dtype)
    cfg = FitConfig()
    figures["fit_config"] = {"warm_iterations": cfg.warm_iterations, "iterations": cfg.iterations}
    for b in (1, 2, 64):
        truth = hands.index(slice(0, b))
        uv, conf, _ = observe(model, truth, K, noise_px=2.0, seed=b)
        start = perturb(truth, seed=b)
        show(f"fit_warm_b{b}_ms_per_hand", f"warm start, batch {b}, per hand",
             _time(lambda: fit_keypoints(model, uv, conf, K, init=start, config=cfg), max(5, n // 2)), per=b)
        if b == 1:  # the numba warm start's twin, the torch solve, in the same run
            show("fit_warm_b1_torch_ms_per_hand", "warm start, batch 1, torch solve (twin)",
                 _time(lambda: fit_keypoints(model, uv, conf, K, init=start, config=cfg, fast=False),
                       max(5, n // 2)))
    for b in (1, 64):
        truth = hands.index(slice(0, b))
        uv, conf, _ = observe(model, truth, K, noise_px=2.0, seed=b)
        show(f"fit_cold_b{b}_ms_per_hand", f"cold start, batch {b}, per hand",
             _time(lambda: fit_keypoints(model, uv, conf, K, config=cfg), 5, warmup=1), per=b)

    print("\n## fit accuracy (64 synthetic hands, root-relative MPJPE, mm)")
    acc = {}
    for noise in (0.0, 2.0):
        uv, conf, kp = observe(model, hands, K, noise_px=noise, seed=11)
        for with_lm in (True, False):
            lm = kp - kp.mean(1, keepdim=True) if with_lm else None
            res = fit_keypoints(model, uv, conf, K, landmarks3d=lm, config=cfg)
            err = mpjpe_mm(res.keypoints, kp)
            viol = model.joint_limits.violation(res.params.hand_pose).amax(dim=(1, 2)) * 57.29578
            key = f"{'2d+3d' if with_lm else '2d'}_{noise:g}px"
            acc[key] = {"mpjpe_mean_mm": float(err.mean()), "mpjpe_median_mm": float(err.median()),
                        "mpjpe_p90_mm": float(err.quantile(0.9)), "max_limit_violation_deg": float(viol.max())}
            inputs = "2D + relative 3D" if with_lm else "2D only"
            print(f"{inputs:<17} {noise:.0f} px noise: mean {err.mean():6.2f}, median {err.median():6.2f}, "
                  f"p90 {err.quantile(0.9):6.2f}; max joint-limit violation {viol.max():.1f} deg")
    figures["accuracy"] = acc

    fwd = figures["forward_b1_vertices_ms"]["median"]
    fit = figures["fit_warm_b1_ms_per_hand"]["median"]
    print(f"\ntargets: forward batch 1 {fwd:.2f} ms (<= {TARGET_FORWARD_MS}) "
          f"{'ok' if fwd <= TARGET_FORWARD_MS else 'MISSED'}; warm fit batch 1 {fit:.2f} ms per hand "
          f"(<= {TARGET_FIT_MS}) {'ok' if fit <= TARGET_FIT_MS else 'MISSED'}")
    print(f"json: {write_json('handmodel', figures, args.json)}")
    return 0
