"""``inscene demo``: the built-in default job, end to end, scored, and where its results are.

It renders a synthetic hand-object scene with ground truth (``inscene synth``,
preset ``mug_static``), runs the default per-frame pipeline on its video — the
real hand detector and per-frame hand fit, the region-based object tracker
started from the object's box in the first frame — and prints the accuracy
against the ground truth, the per-stage timings and where the store is. The
stage-1 window and stage-2 grasp completion are not built yet; the demo says so.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..app import JobRequest, run_job
from ..config import RunConfig
from .info import main as info_main


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, default=Path("out/demo"), help="folder for the scene and the store")
    p.add_argument("--preset", default="mug_static", help="synthetic preset (see 'inscene synth --list')")
    p.add_argument("--seed", type=int, default=0, help="scene seed")


def object_box(T_cam_obj: np.ndarray, vertices: np.ndarray, K: np.ndarray, size: tuple[int, int]) -> str:
    """``"x,y,w,h"`` of the whole object projected at ``T_cam_obj`` (the box a person would draw)."""
    from inscene.kernels import project

    uv = project(vertices @ T_cam_obj[:3, :3].T + T_cam_obj[:3, 3], K)
    lo = np.clip(uv.min(0), 0, [size[0] - 1, size[1] - 1])
    hi = np.clip(uv.max(0), 0, [size[0] - 1, size[1] - 1])
    return ",".join(f"{v:.0f}" for v in (lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]))


def score(gt_path: Path, store: Path) -> list[str]:
    """Per-frame accuracy of the run against the ground truth, as printable lines."""
    from ..store.reader import open_result

    gt, res = open_result(gt_path), open_result(store)
    n = min(gt.finalized_frames, res.finalized_frames)
    lines = []
    for side in ("right", "left"):
        if f"hand/{side}/joints" not in gt.fields or f"hand/{side}/joints" not in res.fields:
            continue
        g_ok = gt.array(f"hand/{side}/valid", n) & (gt.array(f"gt/hand/{side}/visible_fraction", n) > 0.3)
        r_ok = res.array(f"hand/{side}/valid", n)
        both = g_ok & r_ok
        if not g_ok.any():
            continue
        g, r = gt.array(f"hand/{side}/joints", n)[both], res.array(f"hand/{side}/joints", n)[both]
        mrpe = np.linalg.norm(g[:, 0] - r[:, 0], axis=1) * 1e3
        rel = np.linalg.norm((g - g[:, :1]) - (r - r[:, :1]), axis=2).mean(1) * 1e3
        lines.append(f"{side} hand: detected and fitted in {both.sum()}/{g_ok.sum()} frames where it is in view; "
                     f"root-relative MPJPE median {np.median(rel):.1f} mm, wrist position error (MRPE) "
                     f"median {np.median(mrpe):.0f} mm" if both.any() else f"{side} hand: not found")
    if "object/T_cam_obj" in res.fields:
        ok = res.array("object/valid", n)
        Tg, Tr = gt.array("object/T_cam_obj", n)[ok], res.array("object/T_cam_obj", n)[ok]
        t_err = np.linalg.norm(Tg[:, :3, 3] - Tr[:, :3, 3], axis=1) * 100
        R = np.einsum("nij,nkj->nik", Tg[:, :3, :3], Tr[:, :3, :3])
        r_err = np.degrees(np.arccos(np.clip((np.trace(R, axis1=1, axis2=2) - 1) / 2, -1, 1)))
        lines.append(f"object: tracked in {ok.sum()}/{n} frames; rotation error median {np.median(r_err):.1f} deg, "
                     f"translation error median {np.median(t_err):.2f} cm")
    return lines


def main(args: argparse.Namespace) -> int:
    from inscene.bench.synth import generate

    out: Path = args.output
    print(f"inscene demo: rendering the synthetic scene '{args.preset}' (seed {args.seed}) with ground truth ...")
    synth = generate(args.preset, args.seed, out / "scene", overwrite=True)
    scene_dir = synth.out_dir
    K = np.asarray(json.loads((scene_dir / "intrinsics.json").read_text())["K"], dtype=float)
    box = object_box(synth.scene.T_cam_obj[0], synth.scene.object.mesh.vertices, K, synth.scene.size)
    cfg = RunConfig().replace("camera", intrinsics=(K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    cfg = cfg.replace("object", mesh=str(scene_dir / "object.obj"), units="m", box=box)
    print(f"inscene demo: {synth.scene.n_frames} frames at {synth.scene.size[0]}x{synth.scene.size[1]} in {scene_dir}")
    print("inscene demo: running the default per-frame pipeline on its video: the real hand detector + per-frame "
          f"hand fit, and the object tracker started from the object's box {box} in frame 0")
    print("inscene demo: the stage-1 window optimizer and stage-2 grasp completion are not built yet, so these are "
          "per-frame estimates")
    store = out / "result.zarr"
    o = run_job(JobRequest(str(scene_dir / "video.mp4"), store, cfg, mode="overwrite"))
    if o.error is not None:
        raise o.error
    print(f"inscene demo: {o.state}, {o.finalized} frames in {o.seconds:.1f} s "
          f"({o.finalized / max(o.seconds, 1e-9):.1f} fps)\n")
    info_main(argparse.Namespace(store=str(store), json=False))
    print("\naccuracy against the ground truth (hands from the real detector, not oracle perception):")
    for line in score(scene_dir / "gt.zarr", store):
        print(f"  {line}")
    print(f"\nresults: {store.resolve()}  (read it with inscene.engine.open_result or 'inscene info {store}')")
    print(f"ground truth: {(scene_dir / 'gt.zarr').resolve()}; video: {(scene_dir / 'video.mp4').resolve()}")
    return 0
