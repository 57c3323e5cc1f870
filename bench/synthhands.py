"""The real hand detector on rendered synthetic hands: detection rate, handedness, keypoint error.

For each preset and seed: render every frame, run the detector in tracking mode,
and compare with the ground truth for each hand that is in view (at least
``--min-visible`` of its silhouette visible): found (a hand of the same side),
handedness (the hand nearest the ground truth carries the right label), and the
pixel error of the keypoints the ground truth marks visible. This says whether
the real detector can replace oracle perception on the synthetic suite.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from .report import header, write_json

DEFAULT_PRESETS = ("mug_static", "ycb_mug_ego", "handover_static")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--presets", nargs="+", default=list(DEFAULT_PRESETS), help="synthetic presets to render")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="scene seeds")
    p.add_argument("--frames", type=int, default=0, help="frames per scene (0: the preset's length)")
    p.add_argument("--min-visible", type=float, default=0.3, help="hands less visible than this are not counted")
    p.add_argument("--json", help="where to write the JSON (default bench/results/synthhands.json)")


def evaluate(preset_name: str, seed: int, frames: int = 0, min_visible: float = 0.3) -> dict:
    """Detector vs ground truth on one synthetic scene."""
    from inscene.bench.synth import Renderer, build_scene, preset
    from inscene.bench.synth.render import LABELS
    from inscene.bench.synth.truth import keypoint_visibility
    from inscene.kernels import project
    from inscene.models.detector import HandDetector

    overrides = {"n_frames": frames} if frames else {}
    scene = build_scene(preset(preset_name, **overrides), seed)
    renderer = Renderer(scene)
    det = HandDetector()
    counted = found = side_ok = 0
    errors: list[np.ndarray] = []
    ms = []
    for i in range(scene.n_frames):
        frame = renderer.frame(i)
        t0 = time.perf_counter()
        out = det.track(frame.rgb)
        ms.append((time.perf_counter() - t0) * 1e3)
        hands = out.hands
        for side, track in scene.hands.items():
            if not frame.visible_fraction(side) >= min_visible:
                continue
            kp3 = track.keypoints[i]
            uv = project(kp3, scene.K)
            vis = keypoint_visibility(kp3, uv, frame, LABELS[side])
            counted += 1
            if not hands:
                continue
            # the detection nearest this ground-truth hand (by the visible keypoints)
            dists = [np.nanmedian(np.linalg.norm(h.keypoints2d()[:, :2] - uv, axis=1)) for h in hands]
            best = hands[int(np.argmin(dists))]
            box = float(np.ptp(uv, axis=0).max())
            if min(dists) > 0.5 * box:  # nothing detected on this hand
                continue
            found += 1
            side_ok += int(best.side == side)
            if vis.any():
                errors.append(np.linalg.norm(best.keypoints2d()[vis, :2] - uv[vis], axis=1))
    det.close()
    err = np.concatenate(errors) if errors else np.array([np.nan])
    return {"preset": preset_name, "seed": seed, "size": list(scene.size), "frames": scene.n_frames,
            "hands_in_view": counted, "detection_rate": found / max(counted, 1),
            "handedness_rate": side_ok / max(found, 1), "kp_err_px_median": float(np.nanmedian(err)),
            "kp_err_px_p90": float(np.nanpercentile(err, 90)), "detector_ms_median": float(np.median(ms))}


def main(args: argparse.Namespace) -> int:
    print(header("inscene bench synthhands"))
    rows = [evaluate(p, s, args.frames, args.min_visible) for p in args.presets for s in args.seeds]
    print(f"{'preset':<18} {'seed':>4} {'hands':>6} {'found':>7} {'side ok':>8} {'kp err px (median / p90)':>26}")
    for r in rows:
        print(f"{r['preset']:<18} {r['seed']:>4} {r['hands_in_view']:>6} {r['detection_rate']:>7.1%} "
              f"{r['handedness_rate']:>8.1%} {r['kp_err_px_median']:>13.1f} / {r['kp_err_px_p90']:.1f}")
    print(f"json: {write_json('synthhands', {'scenes': rows}, args.json)}")
    return 0
