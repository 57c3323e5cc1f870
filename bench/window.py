"""The stage-1 optimizer alone: its amortized cost per frame and hand, with the default window.

For each preset x seed the scene runs once through the engine with oracle
perception and the window on (:mod:`inscene.bench.accuracy.runner`); the window's
observations are rebuilt from the store (:mod:`inscene.bench.accuracy.replay`:
one offline pass gives exactly what the stage wrote) and replayed through
``HandWindow`` on one thread, nothing else running in the process: a warm-up
pass, then ``--repeats`` timed passes. Reported: milliseconds per frame per hand
(the pass's time over the frames in which that hand is present), median and
spread over the passes. Inside the full pipeline the window shares the cores and
the interpreter with the other stages (``timing/window`` of a run, e.g.
``inscene bench accuracy``); this is its own cost. Target (issue #7): <= 15 ms.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from .report import header, write_json

DEFAULT_PRESETS = ("mug_static", "ycb_mug_ego", "box_ego")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .accuracy.runner import DEFAULT_WORKDIR

    p.add_argument("--presets", nargs="+", default=list(DEFAULT_PRESETS), help="synthetic presets")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="scene (and oracle) seeds")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per scene (after one warm-up pass)")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="scenes and stores (reused between runs)")
    p.add_argument("--json", help="where to write the JSON (default bench/results/window.json)")


def time_scene(scene: Path, seed: int, repeats: int) -> dict:
    """ms per frame per hand of offline window passes over one scene's observations."""
    import torch

    from inscene.engine.store.reader import open_result
    from inscene.models.hands import load_hand_models
    from inscene.models.objects import load_object_mesh

    from .accuracy.replay import observations, replay
    from .accuracy.runner import run_method

    store, _, cfg = run_method(scene, "window", seed=seed,
                               store=scene.parent.parent / "runs" / scene.name / "window-bench.zarr")
    res = open_result(store)
    models = load_hand_models(cfg.hands.model, cfg.hands.mano_dir)
    mesh = load_object_mesh(cfg.object.mesh, cfg.object.units)
    hand_frames = sum(sum(o is not None for o in observations(res, s)) for s in ("right", "left"))
    torch.set_num_threads(1)
    replay(res, cfg, models, mesh)  # warm-up: caches, first-call costs
    ms = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        replay(res, cfg, models, mesh)
        ms.append((time.perf_counter() - t0) * 1e3 / max(hand_frames, 1))
    return {"scene": scene.name, "frames": res.finalized_frames, "hand_frames": hand_frames,
            "window": {"size": cfg.window.size, "stride": cfg.window.stride, "iterations": cfg.window.iterations},
            "ms_per_frame_per_hand": ms, "median": float(np.median(ms)), "min": float(min(ms)),
            "max": float(max(ms))}


def main(args: argparse.Namespace) -> int:
    from .accuracy.runner import scene_dir

    print(header("inscene bench window"))
    rows = []
    for preset in args.presets:
        for seed in args.seeds:
            r = time_scene(scene_dir(preset, seed, 0, args.workdir), seed, args.repeats)
            rows.append(r)
            print(f"  {r['scene']}: {r['hand_frames']} hand-frames; window alone {r['median']:.1f} ms per frame per "
                  f"hand (median of {args.repeats}; range {r['min']:.1f}-{r['max']:.1f})", flush=True)
    all_ms = [m for r in rows for m in r["ms_per_frame_per_hand"]]
    med = float(np.median(all_ms))
    q1, q3 = np.percentile(all_ms, [25, 75])
    w = rows[0]["window"]
    print(f"\nwindow W={w['size']}, stride {w['stride']}, {w['iterations']} iterations: median {med:.1f} ms per frame "
          f"per hand (IQR {q3 - q1:.1f}, range {min(all_ms):.1f}-{max(all_ms):.1f}) over {len(rows)} scenes; "
          f"target <= 15 ms: {'ok' if med <= 15 else 'FAIL'}")
    path = write_json("window", {"scenes": rows, "median": med, "iqr": float(q3 - q1), "target_ms": 15.0}, args.json)
    print(f"json: {path}")
    return 0
