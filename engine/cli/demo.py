"""``inscene demo``: the built-in default job, end to end, scored, and where its results are.

It renders a synthetic hand-object scene with ground truth (``inscene synth``,
preset ``mug_static``), runs the full default pipeline on its video — the real
hand detector and per-frame hand fit, the region-based object tracker started
from the object's box in the first frame, the stage-1 window (stage-2 grasp
completion when ``grasp.enabled``) — and prints the accuracy against the ground truth (the window's
result next to the per-frame fit it started from), the per-stage timings and
where the store is. The hands come from the real detector, never from oracle
perception.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..app import JobRequest, run_job
from ..config import RunConfig
from .info import main as info_main

SIDES = ("right", "left")


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


def _joint_errors(g: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: wrist position error (MRPE) and root-relative MPJPE, mm; ``g``, ``r`` (N, 21, 3) metres."""
    mrpe = np.linalg.norm(g[:, 0] - r[:, 0], axis=1) * 1e3
    rel = np.linalg.norm((g - g[:, :1]) - (r - r[:, :1]), axis=2).mean(1) * 1e3
    return mrpe, rel


def _f1(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall, F1 of boolean per-frame labels (NaN where undefined)."""
    tp = float((truth & pred).sum())
    p = tp / pred.sum() if pred.any() else np.nan
    r = tp / truth.sum() if truth.any() else np.nan
    f1 = 2 * tp / (truth.sum() + pred.sum()) if truth.any() or pred.any() else np.nan
    return p, r, f1


def hand_scores(gt, res, side: str, n: int) -> dict | None:
    """Accuracy of one hand over rows ``[0, n)``: the final result and the per-frame init, contacts, penetration.

    Joint errors are taken over the frames where the hand is in view (ground truth valid, >= 30 % visible) and
    estimated; the init-vs-final comparison uses the frames where both are valid."""
    if f"hand/{side}/joints" not in gt.fields or f"hand/{side}/joints" not in res.fields:
        return None
    g_ok = gt.array(f"hand/{side}/valid", n) & (gt.array(f"gt/hand/{side}/visible_fraction", n) > 0.3)
    if not g_ok.any():
        return None
    out: dict = {"in_view": int(g_ok.sum())}
    gj = gt.array(f"hand/{side}/joints", n)
    fin_ok = res.array(f"hand/{side}/valid", n)
    init_path = f"hand/{side}/init/joints" if f"hand/{side}/init/joints" in res.fields else None
    init_ok = res.array(f"hand/{side}/init/valid", n) if init_path else np.zeros(n, bool)
    out["final_frames"], out["init_frames"] = int((g_ok & fin_ok).sum()), int((g_ok & init_ok).sum())
    both = g_ok & fin_ok & init_ok
    out["compared_frames"] = int(both.sum())
    if both.any():
        for key, path in (("final", f"hand/{side}/joints"), ("init", init_path)):
            mrpe, rel = _joint_errors(gj[both], res.array(path, n)[both])
            out[key] = {"mrpe_mm": float(np.median(mrpe)), "mpjpe_rel_mm": float(np.median(rel))}
    elif (g_ok & fin_ok).any():
        sel = g_ok & fin_ok
        mrpe, rel = _joint_errors(gj[sel], res.array(f"hand/{side}/joints", n)[sel])
        out["final"] = {"mrpe_mm": float(np.median(mrpe)), "mpjpe_rel_mm": float(np.median(rel))}
    if f"hand/{side}/in_contact" in res.fields and f"hand/{side}/in_contact" in gt.fields:
        truth, pred = gt.array(f"hand/{side}/in_contact", n).astype(bool), res.array(f"hand/{side}/in_contact", n)
        p, r, f1 = _f1(truth, pred)
        out["contact"] = {"gt_frames": int(truth.sum()), "frames": int(pred.sum()), "precision": p, "recall": r,
                          "f1": f1}
        pen = res.array(f"hand/{side}/penetration", n)[pred]
        pen = pen[np.isfinite(pen)]
        out["contact"]["penetration_mean_mm"] = float(pen.mean() * 1e3) if len(pen) else np.nan
        if f"gt/hand/{side}/penetration" in gt.fields:
            gpen = gt.array(f"gt/hand/{side}/penetration", n)[truth]
            gpen = gpen[np.isfinite(gpen)]
            out["contact"]["gt_penetration_mean_mm"] = float(gpen.mean() * 1e3) if len(gpen) else np.nan
    return out


def object_scores(gt, res, n: int) -> dict | None:
    """Median rotation (deg) and translation (cm) error of the tracked object over rows ``[0, n)``."""
    if "object/T_cam_obj" not in res.fields:
        return None
    ok = res.array("object/valid", n)
    Tg, Tr = gt.array("object/T_cam_obj", n)[ok], res.array("object/T_cam_obj", n)[ok]
    t_err = np.linalg.norm(Tg[:, :3, 3] - Tr[:, :3, 3], axis=1) * 100
    R = np.einsum("nij,nkj->nik", Tg[:, :3, :3], Tr[:, :3, :3])
    r_err = np.degrees(np.arccos(np.clip((np.trace(R, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    return {"tracked": int(ok.sum()), "frames": n, "rot_deg": float(np.median(r_err)) if ok.any() else np.nan,
            "trans_cm": float(np.median(t_err)) if ok.any() else np.nan}


def _num(x: float) -> str:
    return f"{x:.2f}" if np.isfinite(x) else "n/a"


def _hand_lines(side: str, s: dict) -> list[str]:
    if "final" not in s:
        return [f"{side} hand: in view in {s['in_view']} frames, not found"]
    lines = [f"{side} hand: in view in {s['in_view']} frames; window result in {s['final_frames']}, "
             + f"per-frame fit in {s['init_frames']}"]
    f = s["final"]
    if "init" in s:
        i = s["init"]
        lines.append(f"  over the {s['compared_frames']} frames with both: root-relative MPJPE median "
                     f"{f['mpjpe_rel_mm']:.1f} mm (per-frame fit {i['mpjpe_rel_mm']:.1f} mm), wrist position error "
                     f"(MRPE) median {f['mrpe_mm']:.0f} mm (per-frame fit {i['mrpe_mm']:.0f} mm)")
    else:
        lines.append(f"  root-relative MPJPE median {f['mpjpe_rel_mm']:.1f} mm, wrist position error (MRPE) median "
                     f"{f['mrpe_mm']:.0f} mm")
    c = s.get("contact")
    if c is not None:
        pen = (f"mean penetration depth over the detected contact frames {c['penetration_mean_mm']:.1f} mm"
               if np.isfinite(c["penetration_mean_mm"]) else "no penetration depth (no contact frame detected)")
        if np.isfinite(c.get("gt_penetration_mean_mm", np.nan)):
            pen += f" (ground truth {c['gt_penetration_mean_mm']:.1f} mm)"
        lines.append(f"  contact: {c['frames']} frames detected, {c['gt_frames']} in the ground truth; precision "
                     f"{_num(c['precision'])}, recall {_num(c['recall'])}, F1 {_num(c['f1'])}; {pen}")
    return lines


def score(gt_path: Path, store: Path) -> list[str]:
    """Accuracy of the run against the ground truth, as printable lines."""
    from ..store.reader import open_result

    gt, res = open_result(gt_path), open_result(store)
    n = min(gt.finalized_frames, res.finalized_frames)
    lines = []
    for side in SIDES:
        s = hand_scores(gt, res, side, n)
        if s is not None:
            lines += _hand_lines(side, s)
    o = object_scores(gt, res, n)
    if o is not None:
        lines.append(f"object: tracked in {o['tracked']}/{o['frames']} frames; rotation error median "
                     f"{o['rot_deg']:.1f} deg, translation error median {o['trans_cm']:.2f} cm")
    return lines


def stage_timings(store: Path, seconds: float | None = None) -> dict:
    """Per-stage time per frame from ``/timing/<stage>``: median and mean (the mean counts the window's solves,
    which fall on one frame in ``window.stride``, and one-off starts such as the object's initialization) and
    the rate the stage alone would sustain (1000 / mean). With ``seconds`` (the run's wall time) also the
    end-to-end throughput. ``latency`` (decoded -> final in the store) is reported apart."""
    from ..store.reader import open_result

    res = open_result(store)
    out: dict = {"stages": {}}
    for name, ms in res.timing().items():
        ms = ms[np.isfinite(ms)].astype(float)
        if not len(ms):
            continue
        fig = {"median_ms": float(np.median(ms)), "mean_ms": float(ms.mean()), "p95_ms": float(np.percentile(ms, 95)),
               "max_ms": float(ms.max()), "n": len(ms)}
        if name == "latency":
            out["latency"] = fig
        else:
            fig["fps_alone"] = 1000.0 / fig["mean_ms"] if fig["mean_ms"] > 0 else np.inf
            out["stages"][name] = fig
    if seconds:
        out["frames"], out["seconds"] = res.finalized_frames, float(seconds)
        out["fps"] = res.finalized_frames / max(seconds, 1e-9)
    return out


def timing_lines(t: dict) -> list[str]:
    """Printable lines of :func:`stage_timings`."""
    lines = [f"{name:<10} median {v['median_ms']:8.2f} ms, mean {v['mean_ms']:8.2f} ms, max {v['max_ms']:8.1f} ms "
             f"per frame ({v['fps_alone']:.0f} fps alone)" for name, v in t["stages"].items()]
    if "latency" in t:
        v = t["latency"]
        lines.append(f"{'latency':<10} median {v['median_ms']:8.0f} ms, p95 {v['p95_ms']:.0f} ms (frame decoded -> "
                     "final in the store)")
    if "fps" in t:
        lines.append(f"throughput {t['fps']:.1f} frames/s end to end ({t['frames']} frames in {t['seconds']:.1f} s; "
                     "the stages run in parallel threads on the machine's cores)")
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
    print("inscene demo: running the full default pipeline on its video: the real hand detector (not oracle "
          f"perception) + per-frame hand fit, the object tracker started from the object's box {box} in frame 0, "
          "the stage-1 window optimizer" + (" and stage-2 grasp completion" if cfg.grasp.enabled else
                                            " (stage-2 grasp completion is off by default: grasp.enabled)"))
    store = out / "result.zarr"
    o = run_job(JobRequest(str(scene_dir / "video.mp4"), store, cfg, mode="overwrite"))
    if o.error is not None:
        raise o.error
    print(f"inscene demo: {o.state}, {o.finalized} frames in {o.seconds:.1f} s "
          f"({o.setup_seconds:.1f} s of it loading models; {o.fps:.1f} fps)\n")
    info_main(argparse.Namespace(store=str(store), json=False))
    print("\naccuracy against the ground truth (hands from the real detector, not oracle perception; the window's "
          "result vs the per-frame fit it started from):")
    for line in score(scene_dir / "gt.zarr", store):
        print(f"  {line}")
    print("\nper-stage timings (ms per frame):")
    for line in timing_lines(stage_timings(store, o.seconds)):
        print(f"  {line}")
    print(f"\nresults: {store.resolve()}  (read it with inscene.engine.open_result or 'inscene info {store}')")
    print(f"ground truth: {(scene_dir / 'gt.zarr').resolve()}; video: {(scene_dir / 'video.mp4').resolve()}")
    return 0
