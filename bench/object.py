"""Object tracking: time per frame (1 and 2 cores, 640x480 and 1280x720); optionally accuracy and the real clip.

Timing: the region tracker (:class:`inscene.models.objects.session.TrackingSession`)
on a rendered sequence of the YCB mug held by a hand (preset ``mug``, hand up to
20 % of the silhouette, occlusion mask given), started from the true first pose;
each frame's ``step`` (correspondence lines, Newton steps, histogram update, score)
is timed after a warm-up pass, with numba limited to 1 or 2 threads. A view's ~200
lines run on one thread by default (threads only pay off for the thousands of lines
of the initialization search); with 2 threads the tracker is also timed with its
lines forced onto both.

``--accuracy``: the must-show figures on the synthetic presets (median errors with
the hand covering up to 20 % and 40 %, loss and recovery when the object leaves the
view, initialization from a box). ``--clip``: ``../shared/data/clips/04_coffee.mp4``
with a mug mesh modelled to the blue mug's size, started from the box of a colour
threshold mask of the mug in the first frame, the hands (hand detector, when its weights
are available) as occluders: the silhouette's IoU with that mask on every 10th frame, and
an overlay video (``bench/results/object_clip.mp4``).
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from .report import RESULTS, fmt, header, stats, write_json

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CLIP = DATA / "clips" / "04_coffee.mp4"
BLUE_MUG = {"top_diameter": 0.085, "bottom_diameter": 0.078, "height": 0.085, "handle_reach": 0.025}
"""The blue mug of 04_coffee.mp4, modelled from the first frame: the body is as tall as it is wide at the rim
(156 px at 20 degrees elevation), 8 % narrower at the base; 8.5 cm assumed (a common mug)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, default=80, help="frames of the timed sequence (default 80)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes over the sequence (after one warm-up)")
    p.add_argument("--sizes", default="640x480,1280x720", help="image sizes WxH, comma separated")
    p.add_argument("--threads", default="1,2", help="numba thread counts, comma separated")
    p.add_argument("--accuracy", action="store_true", help="also the must-show accuracy figures (synthetic, ~3 min)")
    p.add_argument("--clip", nargs="?", const=CLIP, type=Path, help="also track the blue mug in a clip "
                   "(default ../shared/data/clips/04_coffee.mp4) and write an overlay video")
    p.add_argument("--json", type=Path, help="where to write the JSON (default bench/results/object.json)")


def ycb_mesh(name: str):
    from inscene.models.objects import load_object_mesh
    from inscene.models.objects.synthetic import YCB

    return load_object_mesh(DATA / "ycb" / YCB[name])


def rotation_error_deg(A: np.ndarray, B: np.ndarray) -> float:
    c = (np.trace(A[:3, :3] @ B[:3, :3].T) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def translation_error_cm(A: np.ndarray, B: np.ndarray) -> float:
    return float(np.linalg.norm(A[:3, 3] - B[:3, 3]) * 100)


def track_sequence(session, seq, T0=None, box=None, occlusion: bool = True) -> dict:
    """Run a session over a rendered sequence; errors per frame (NaN when not valid), states, ms per frame."""
    n = len(seq.images)
    est = session.start(seq.images[0], T=T0, box=box, occlusion=seq.hand[0] if occlusion else None)
    rot, tra, states, ms = np.full(n, np.nan), np.full(n, np.nan), [est.state], []
    for i in range(n):
        if i:
            t0 = time.perf_counter()
            est = session.step(seq.images[i], seq.hand[i] if occlusion else None)
            ms.append(1000 * (time.perf_counter() - t0))
            states.append(est.state)
        if est.valid:
            rot[i] = rotation_error_deg(est.T_cam_obj, seq.T_cam_obj[i])
            tra[i] = translation_error_cm(est.T_cam_obj, seq.T_cam_obj[i])
    return {"rot": rot, "tra": tra, "states": states, "ms": np.asarray(ms)}


def timing(args: argparse.Namespace) -> dict:
    """ms per frame per configuration; configurations alternate within each repeat, so that load from other
    processes on the machine affects all of them alike."""
    import numba

    from inscene.models.objects.session import SessionConfig, TrackingSession
    from inscene.models.objects.synthetic import preset_sequence
    from inscene.models.objects.tracker import TrackerConfig

    mesh = ycb_mesh("mug")
    runs = []
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.lower().split("x"))
        seq = preset_sequence(mesh, "mug", args.frames, seed=1, size=(h, w))
        for threads in (int(t) for t in args.threads.split(",")):
            for label, parallel in [("", None)] + ([(", lines forced onto the threads", True)] if threads > 1 else []):
                cfg = SessionConfig(tracker=TrackerConfig(parallel=parallel))
                runs.append((f"{w}x{h}, {threads} thread(s){label}", threads, seq, TrackingSession(mesh, seq.K,
                                                                                                  config=cfg)))
    samples: dict[str, list[float]] = {key: [] for key, *_ in runs}
    rots: dict[str, list[float]] = {key: [] for key, *_ in runs}
    for rep in range(args.repeats + 1):  # the first pass warms up (and compiles)
        for key, threads, seq, session in runs:
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            r = track_sequence(session, seq, T0=seq.T_cam_obj[0])
            if rep:
                samples[key] += list(r["ms"])
                rots[key].append(float(np.nanmedian(r["rot"])))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    out = {}
    for key in samples:
        s = stats(samples[key])
        out[key] = {"ms_per_frame": s, "median_rot_err_deg": float(np.median(rots[key]))}
        print(f"{key}: {fmt(s, ' ms')} per frame (median rotation error {np.median(rots[key]):.2f} deg)")
    return out


def accuracy(seed: int = 11) -> dict:
    """The must-show figures on the synthetic presets (see the module docstring)."""
    from inscene.models.objects.init import box_from_mask
    from inscene.models.objects.session import TrackingSession
    from inscene.models.objects.synthetic import preset_sequence
    from inscene.kernels import render_silhouettes

    out: dict = {}
    for name in ("mug", "mustard"):
        mesh = ycb_mesh(name)
        for cov in (0.2, 0.4):
            seq = preset_sequence(mesh, name, 120, seed, max_coverage=cov)
            r = track_sequence(TrackingSession(mesh, seq.K), seq, T0=seq.T_cam_obj[0])
            lost = sum(s in ("lost", "recovered") for s in r["states"])
            fig = {"median_rot_deg": float(np.nanmedian(r["rot"])), "median_trans_cm": float(np.nanmedian(r["tra"])),
                   "p90_rot_deg": float(np.nanpercentile(r["rot"], 90)), "lost_frames": int(lost),
                   "invalid_frames": int(np.isnan(r["rot"]).sum()), "max_coverage": float(seq.coverage.max())}
            out[f"{name}, hand up to {cov:.0%}"] = fig
            print(f"{name}, hand up to {seq.coverage.max():.0%}: median {fig['median_rot_deg']:.2f} deg, "
                  f"{fig['median_trans_cm']:.2f} cm (90 % {fig['p90_rot_deg']:.1f} deg), lost {lost}, "
                  f"invalid {fig['invalid_frames']} of 120")
            boxes = []
            for f in (0, 40, 80):
                sil = render_silhouettes([(mesh.vertices, mesh.faces)], seq.T_cam_obj[f][None], seq.K,
                                         seq.images.shape[1:3]).mesh_id == 0
                s = TrackingSession(mesh, seq.K)
                est = s.start(seq.images[f], box=box_from_mask(sil), occlusion=seq.hand[f])
                e = (rotation_error_deg(est.T_cam_obj, seq.T_cam_obj[f]),
                     translation_error_cm(est.T_cam_obj, seq.T_cam_obj[f])) if est.valid else (np.inf, np.inf)
                boxes.append(e)
            out[f"{name}, init from box, hand up to {cov:.0%}"] = boxes
            print(f"{name}, init from the object's box (frames 0, 40, 80): "
                  + ", ".join(f"{a:.1f} deg / {b:.2f} cm" for a, b in boxes))
        seq = preset_sequence(mesh, name, 150, 12, max_coverage=0.2, leave_at=(40, 100))
        r = track_sequence(TrackingSession(mesh, seq.K), seq, T0=seq.T_cam_obj[0])
        st = r["states"]
        first_lost = next((i for i, s in enumerate(st) if s == "lost"), None)
        back = next((i for i, s in enumerate(st) if s == "recovered"), None)
        gone = [i for i, T in enumerate(seq.T_cam_obj) if not (render_silhouettes(
            [(mesh.vertices, mesh.faces)], T[None], seq.K, seq.images.shape[1:3]).mesh_id == 0).any()]
        fig = {"out_of_view": [gone[0], gone[-1]] if gone else None, "lost_at": first_lost, "recovered_at": back}
        if back is not None:
            fig.update(recovered_rot_deg=float(r["rot"][back]), recovered_trans_cm=float(r["tra"][back]),
                       median_rot_next20_deg=float(np.nanmedian(r["rot"][back:back + 20])),
                       median_trans_next20_cm=float(np.nanmedian(r["tra"][back:back + 20])))
        out[f"{name}, leaves and re-enters"] = fig
        print(f"{name}, out of the view in frames {fig['out_of_view']}: lost at {first_lost}, recovered at {back}"
              + (f" ({fig['recovered_rot_deg']:.1f} deg / {fig['recovered_trans_cm']:.2f} cm; next 20 frames: "
                 f"median {fig['median_rot_next20_deg']:.2f} deg / {fig['median_trans_next20_cm']:.2f} cm)"
                 if back is not None else ""))
    return out


def blue_mask(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool colour-threshold mask of the blue mug: saturated blue pixels, largest blob."""
    from scipy import ndimage

    f = image.astype(np.float32) / 255
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    mx, mn = f.max(-1), f.min(-1)
    sat = (mx - mn) / np.maximum(mx, 1e-6)
    m = (b == mx) & (sat > 0.45) & (b > 0.35) & (b - g > 0.12) & (g > r)
    m = ndimage.binary_opening(m, iterations=1)
    lab, n = ndimage.label(m)
    if n == 0:
        return m
    return lab == 1 + int(np.argmax(np.bincount(lab.ravel())[1:]))


def silhouette_iou(mesh, T: np.ndarray, K: np.ndarray, mask: np.ndarray) -> float:
    from inscene.kernels import render_silhouettes

    sil = render_silhouettes([(mesh.vertices, mesh.faces)], T[None], K, mask.shape).mesh_id == 0
    return float((sil & mask).sum() / max((sil | mask).sum(), 1))


def write_overlay(path: Path, frames, poses, mesh, K: np.ndarray, fps: float = 30.0) -> Path:
    """Encode the frames with the mesh drawn over them (yellow, outlined) where a pose is given."""
    import av

    from inscene.kernels import Appearance, overlay

    path.parent.mkdir(parents=True, exist_ok=True)
    app = [Appearance(color=(1.0, 0.85, 0.0))]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        s.pix_fmt = "yuv420p"
        for i, (img, T) in enumerate(zip(frames, poses, strict=True)):
            if i == 0:
                s.width, s.height = img.shape[1], img.shape[0]
            out = img if T is None else overlay(img, [(mesh.vertices, mesh.faces)], T[None], K, app, opacity=0.45)
            for pkt in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(out), format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def _hand_detector():
    """The hand detector (its masks make the hands occluders), or None when its weights cannot be had."""
    from inscene.engine.errors import InputError

    try:
        from inscene.models.detector import HandDetector

        return HandDetector()
    except InputError:
        return None


def clip(path: Path, video: Path | None = None) -> dict:
    """Track the blue mug in the clip; IoU with its colour mask on every 10th frame; an overlay video."""
    import av

    from inscene.engine.camera import default_K
    from inscene.models.objects import ObjectMesh
    from inscene.models.objects.init import box_from_mask
    from inscene.models.objects.occlusion import occlusion_from_packet
    from inscene.models.objects.session import TrackingSession
    from inscene.models.objects.synthetic import mug_mesh

    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    h, w = frames[0].shape[:2]
    K = default_K(w, h, 60.0)
    tm = mug_mesh(**BLUE_MUG)
    mesh = ObjectMesh(np.asarray(tm.vertices), np.asarray(tm.faces, np.int32), np.asarray(tm.vertex_normals),
                      None, None, None, "m", False, "blue mug (modelled)")
    session = TrackingSession(mesh, K)
    box = box_from_mask(blue_mask(frames[0]))
    detector = _hand_detector()
    poses, states, ms = [], [], []
    for i, img in enumerate(frames):
        occ = occlusion_from_packet({"hands2d": detector.track(img)}, img.shape[:2]) if detector else None
        t0 = time.perf_counter()
        est = session.start(img, box=box, occlusion=occ) if i == 0 else session.step(img, occ)
        ms.append(1000 * (time.perf_counter() - t0))
        poses.append(est.T_cam_obj)
        states.append(est.state)
    ious = [silhouette_iou(mesh, poses[i], K, blue_mask(frames[i])) if poses[i] is not None else 0.0
            for i in range(0, len(frames), 10)]
    video = video or RESULTS / "object_clip.mp4"
    write_overlay(video, frames, poses, mesh, K)
    fig = {"box": list(map(int, box)), "hands": "detector" if detector else "none",
           "iou_min": float(min(ious)), "iou_median": float(np.median(ious)),
           "valid_frames": int(sum(p is not None for p in poses)), "frames": len(frames),
           "init_ms": ms[0], "ms_per_frame": stats(ms[1:]), "video": str(video)}
    print(f"clip {path.name} (hands as occluders: {fig['hands']}): valid {fig['valid_frames']}/{len(frames)} "
          f"frames, IoU with the colour mask on every "
          f"10th frame: min {fig['iou_min']:.2f}, median {fig['iou_median']:.2f}; init {ms[0]:.0f} ms, "
          f"tracking {fmt(fig['ms_per_frame'], ' ms')}; overlay {video}")
    return fig


def main(args: argparse.Namespace) -> int:
    print(header("object tracking (region-based, SRT3D family)"))
    figures: dict = {"timing": timing(args)}
    if args.accuracy:
        figures["accuracy"] = accuracy()
    if args.clip is not None:
        figures["clip"] = clip(Path(args.clip))
    print(f"results: {write_json('object', figures, args.json)}")
    return 0
