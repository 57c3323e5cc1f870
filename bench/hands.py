"""Hands: detector time per frame (tracking and detection modes, 640x480 and 1280x720), per backend, and the fit.

Method: frames of 04_coffee.mp4 (1280x720; 640x480 is its centre 4:3 crop scaled
by 2/3) are decoded outside the timed region. Each backend present (ONNX Runtime
with the providers this machine has, and the torch reference) runs one warm-up
pass, then ``--repeats`` timed passes over the frames:

- tracking mode: ``HandDetector.track`` on consecutive frames (palm detection only
  when needed); reported per frame, per hand (frames with hands), and for the
  frames where palm detection did not run;
- detection mode: palm detection + landmarks on every frame (static mode, no
  second landmark pass);
- fit: the engine's per-frame hand-model fit (warm-started) on the tracked hands,
  per hand and frame.

Target on a 2-core CPU: tracking-mode detection + fit <= 15 ms per hand per frame.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .report import fmt, header, stats, write_json

if TYPE_CHECKING:
    from inscene.engine.stages.hands import HandFitStage
    from inscene.models.detector import HandDetector

SHARED_CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "clips" / "04_coffee.mp4"
TARGET_MS_PER_HAND = 15.0
SIZES = {"640x480": (640, 480), "1280x720": (1280, 720)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clip", type=Path, help="video (default ../shared/data/clips/04_coffee.mp4)")
    p.add_argument("--frames", type=int, default=0, help="use the first N frames (0: all)")
    p.add_argument("--repeats", type=int, default=2, help="timed passes per figure (after one warm-up pass)")
    p.add_argument("--providers", default="present",
                   help="comma-separated runtime providers (cpu, cuda, tensorrt, trt-native, torch) or 'present'")
    p.add_argument("--threads", type=int, default=0, help="detector CPU threads (0: runtime default)")
    p.add_argument("--sizes", default=",".join(SIZES), help=f"frame sizes among {', '.join(SIZES)}")
    p.add_argument("--no-fit", action="store_true", help="skip the hand-model fit")
    p.add_argument("--json", type=Path, help="where to write the JSON (default bench/results/hands.json)")


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    w, h = size
    H, W = image.shape[:2]
    if (W, H) == (w, h):
        return image
    cw = min(W, round(H * w / h))  # centre crop to the target aspect, then resize
    x0 = (W - cw) // 2
    t = torch.from_numpy(np.ascontiguousarray(image[:, x0:x0 + cw])).permute(2, 0, 1)[None]
    out = F.interpolate(t, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return out[0].permute(1, 2, 0).numpy()


def _frames(clip: Path, n: int, size: tuple[int, int]) -> list[np.ndarray]:
    from inscene.engine.config import SourceConfig
    from inscene.engine.sources import open_source

    src = open_source(str(clip), SourceConfig(end=n or None))
    src.open()
    try:
        return [_resize(f.image, size) for f in src.frames()]
    finally:
        src.close()


def _present() -> list[str]:
    from inscene.models.runtime import probe

    env = probe()
    out = ["cpu"]
    if env.ort_cuda:
        out.append("cuda")
    if env.ort_trt or env.native_trt:
        out.append("tensorrt")
    return out + ["torch"]


def _pass(det: HandDetector, frames: list[np.ndarray], mode: str) -> dict[str, list[float]]:
    det.reset()
    rec: dict[str, list[float]] = {"frame": [], "hand": [], "tracked_only": [], "palm": [], "hands": []}
    for img in frames:
        t0 = time.perf_counter()
        fr = det.track(img) if mode == "tracking" else det.detect(img)
        ms = (time.perf_counter() - t0) * 1e3
        n = len(fr.hands)
        rec["frame"].append(ms)
        rec["palm"].append(float(fr.palm_ran))
        rec["hands"].append(float(n))
        if n:
            rec["hand"].append(ms / n)
            if not fr.palm_ran:
                rec["tracked_only"].append(ms / n)
    return rec


def _fit_times(fitter: HandFitStage, det: HandDetector, frames: list[np.ndarray], K: np.ndarray) -> list[float]:
    det.reset()
    fitter.reset()
    out = []
    for i, img in enumerate(frames):
        fr = det.track(img)
        t0 = time.perf_counter()
        fits = fitter.fit_frame(fr, K)
        ms = (time.perf_counter() - t0) * 1e3
        if fits and i > 0:
            out.append(ms / len(fits))
    return out


def main(args: argparse.Namespace) -> int:
    from inscene.engine.camera import default_K
    from inscene.models.detector import DetectorConfig, HandDetector
    from inscene.models.runtime import RuntimeConfig

    clip = args.clip or SHARED_CLIP
    if not clip.exists():
        print(f"inscene bench hands: no clip at {clip} (pass --clip)")
        return 2
    providers = _present() if args.providers == "present" else [p.strip() for p in args.providers.split(",")]
    sizes = [s.strip() for s in args.sizes.split(",")]
    print(header("inscene bench hands"))
    load0 = os.getloadavg()[0]
    print(f"clip: {clip}; providers: {', '.join(providers)}; repeats {args.repeats} (+1 warm-up); "
          f"load average {load0:.2f} (other processes on this machine slow every figure)")
    figures: dict = {"clip": str(clip), "providers": {}, "target_ms_per_hand": TARGET_MS_PER_HAND,
                     "load_average_start": load0}
    fit_ms: dict[str, dict] = {}
    fitter = None
    if not args.no_fit:
        from inscene.engine.config import RunConfig
        from inscene.engine.stages.hands import HandFitStage

        import torch

        torch.set_num_threads(1)
        fitter = HandFitStage(RunConfig())
    for size_name in sizes:
        frames = _frames(clip, args.frames, SIZES[size_name])
        K = default_K(*SIZES[size_name], 60.0)
        print(f"\n## {size_name}: {len(frames)} frames")
        for prov in providers:
            rt = RuntimeConfig(provider=prov, threads=args.threads)
            det = HandDetector(DetectorConfig(runtime=rt, refine_static=False))
            label = det.networks.label
            res: dict = {"backend": label}
            for mode in ("tracking", "detection"):
                _pass(det, frames, mode)  # warm-up
                recs = [_pass(det, frames, mode) for _ in range(args.repeats)]
                frame_ms = [v for r in recs for v in r["frame"]]
                hand_ms = [v for r in recs for v in r["hand"]]
                res[mode] = {"ms_per_frame": stats(frame_ms), "ms_per_hand": stats(hand_ms) if hand_ms else None,
                             "palm_fraction": float(np.mean(recs[0]["palm"])),
                             "hands_per_frame": float(np.mean(recs[0]["hands"]))}
                line = f"{prov:9s} {mode:9s} {fmt(stats(frame_ms), ' ms/frame')}"
                if hand_ms:
                    line += f"; per hand {stats(hand_ms)['median']:.2f} ms"
                if mode == "tracking":
                    tracked = [v for r in recs for v in r["tracked_only"]]
                    res[mode]["ms_per_hand_tracked_only"] = stats(tracked) if tracked else None
                    line += f"; palm detection on {res[mode]['palm_fraction']:.1%} of frames"
                print(f"{line}  [{label}]")
            if fitter is not None and size_name not in fit_ms:
                _fit_times(fitter, det, frames[:30], K)  # warm-up
                fit_ms[size_name] = stats([v for _ in range(args.repeats) for v in _fit_times(fitter, det, frames, K)])
                print(f"{'fit':9s} {'warm':9s} {fmt(fit_ms[size_name], ' ms/hand')}  [torch, 1 thread]")
            if fitter is not None:
                per_hand = res["tracking"]["ms_per_hand"]["median"] + fit_ms[size_name]["median"]
                res["tracking_plus_fit_ms_per_hand"] = per_hand
                verdict = "meets" if per_hand <= TARGET_MS_PER_HAND else "misses"
                print(f"{'total':9s} {'':9s} tracking + fit = {per_hand:.2f} ms per hand per frame "
                      f"({verdict} the {TARGET_MS_PER_HAND:.0f} ms target)")
            figures["providers"].setdefault(prov, {})[size_name] = res
            det.close()
    figures["fit_ms_per_hand"] = fit_ms
    figures["load_average_end"] = os.getloadavg()[0]
    print(f"load average at the end {figures['load_average_end']:.2f}")
    print(f"\njson: {write_json('hands', figures, args.json)}")
    return 0
