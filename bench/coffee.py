"""Coffee clip: the full default pipeline on 04_coffee.mp4, the holding hand's contacts, an overlay video.

Method: ``../shared/data/clips/04_coffee.mp4`` (1280x720, 287 frames; resolved from
the repository root) through the default chain — hand detector, per-frame fit,
the region object tracker, the stage-1 window, stage-2 grasp completion, store —
with the blue mug modelled as in the object tracker's issue (``bench.object.BLUE_MUG``,
written as an OBJ next to the store) and the tracker started from the box of a
colour-threshold mask of the mug in the first processed frame (``blue_mask``).
Default intrinsics (60 degrees horizontal field of view). There is no ground truth:
the figures are physical plausibility — for the holding hand (the hand with the
most ``in_contact`` frames) the frames tracked and in contact, contact onsets and
releases, penetration depth over the contact frames (``hand/{side}/penetration``:
the deepest hand vertex inside the mug), contact points per frame — and the
per-stage timings; the overlay video (hand meshes from ``hand/{side}/vertices``,
the mug at ``object/T_cam_obj``, a red border and red hand in contact frames) is
for a person to judge. One run (the pipeline is deterministic up to thread timing);
``--end N`` limits the frames for a quick look.
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from .object import BLUE_MUG, CLIP, blue_mask
from .report import RESULTS, header, write_json

SIDES = ("right", "left")
HAND_COLOURS = {"right": (0.35, 0.75, 1.0), "left": (0.45, 1.0, 0.45)}
CONTACT_COLOUR = (1.0, 0.2, 0.2)
OBJECT_COLOUR = (1.0, 0.85, 0.0)
BORDER_PX = 12


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clip", type=Path, default=CLIP, help="video (default ../shared/data/clips/04_coffee.mp4)")
    p.add_argument("--start", type=int, default=0, help="first source frame (default 0)")
    p.add_argument("--end", type=int, help="source frame to stop before (default: the whole clip)")
    p.add_argument("--store", type=Path, default=RESULTS / "coffee.zarr", help="result store to write (replaced)")
    p.add_argument("--out", type=Path, default=RESULTS / "coffee_overlay.mp4", help="overlay video to write")
    p.add_argument("--json", type=Path, default=RESULTS / "coffee.json", help="figures (JSON; .md next to it)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="config override, as for 'inscene run' (repeatable); default: the default config")


def model_mug(path: Path) -> Path:
    """Write the blue mug's mesh (metres, ``BLUE_MUG``) as an OBJ file."""
    from inscene.models.objects.synthetic import mug_mesh

    path.parent.mkdir(parents=True, exist_ok=True)
    mug_mesh(**BLUE_MUG).export(str(path))
    return path


def first_box(clip: Path, start: int) -> tuple[int, int, int, int]:
    """``(x, y, w, h)`` of the blue mug's colour mask in source frame ``start``."""
    import av
    from inscene.engine.errors import InputError
    from inscene.models.objects.init import box_from_mask

    with av.open(str(clip)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == start:
                try:
                    return box_from_mask(blue_mask(f.to_ndarray(format="rgb24")))
                except ValueError:
                    raise InputError(str(clip), f"no blue mug found in frame {start}",
                                     "start at a frame where the mug is in view") from None
    raise InputError(str(clip), f"has no frame {start}", "choose a smaller --start")


def run_pipeline(clip: Path, store: Path, start: int = 0, end: int | None = None, progress: bool | None = None,
                 overrides: list[str] | None = None):
    """The default pipeline on the clip with the modelled mug; returns ``(JobOutcome, box)``."""
    from inscene.engine.app import JobRequest, run_job
    from inscene.engine.config import RunConfig

    box = first_box(clip, start)
    mesh = model_mug(store.parent / "coffee_blue_mug.obj")
    cfg = RunConfig().override(list(overrides or [])).replace("source", start=start, end=end)
    cfg = cfg.replace("object", mesh=str(mesh), units="m", box=",".join(map(str, box)))
    out = run_job(JobRequest(str(clip), store, cfg, mode="overwrite"), progress=progress)
    if out.error is not None:
        raise out.error
    return out, box


def _edges(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices where ``flags`` turns on (onsets) and where it turns off (releases: first row without)."""
    d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    on, off = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return on, off[off < len(flags)]


def _spread_mm(x: np.ndarray) -> dict:
    x = x[np.isfinite(x)] * 1e3
    if not len(x):
        return {"n": 0}
    return {"median": float(np.median(x)), "p90": float(np.percentile(x, 90)), "max": float(x.max()), "n": len(x)}


def hand_figures(res, side: str) -> dict:
    """What the store says about one hand: tracking, contacts, penetration (mm), contact points per frame."""
    src = res.array("frames/source_index")
    valid = res.array(f"hand/{side}/valid")
    contact = res.array(f"hand/{side}/in_contact") & valid
    pen = res.array(f"hand/{side}/penetration")
    pts = res.array(f"contact/{side}/points")
    n_pts = np.isfinite(pts).all(-1).sum(-1)
    on, off = _edges(contact)
    fig = {"side": side, "frames_tracked": int(valid.sum()), "frames_in_contact": int(contact.sum()),
           "onsets": [int(src[i]) for i in on], "releases": [int(src[i]) for i in off],
           "penetration_contact_mm": _spread_mm(pen[contact]),
           "penetration_tracked_mm": _spread_mm(pen[valid]),
           "frames_penetrating_over_5mm": int((np.nan_to_num(pen[contact]) > 0.005).sum())}
    if contact.any():
        c = n_pts[contact]
        fig["contact_points_per_frame"] = {"median": float(np.median(c)), "min": int(c.min()), "max": int(c.max())}
    return fig


def figures(store: Path) -> dict:
    """Per-hand figures, the holding hand (most contact frames) and the object's tracking, from the store."""
    from inscene.engine.store import open_result

    res = open_result(store)
    hands = {s: hand_figures(res, s) for s in SIDES}
    holding = max(SIDES, key=lambda s: (hands[s]["frames_in_contact"], hands[s]["frames_tracked"]))
    out = {"frames": res.finalized_frames, "state": res.state, "holding_hand": holding, "hands": hands}
    if "object/valid" in res.fields:
        out["object_tracked"] = int(res.array("object/valid").sum())
    return out


def _appearances(side_contact: dict[str, bool]):
    from inscene.kernels import Appearance

    return [Appearance(color=CONTACT_COLOUR if c else HAND_COLOURS[s]) for s, c in side_contact.items()]


def write_overlay(store: Path, clip: Path, path: Path) -> dict:
    """Encode the clip's processed frames with the hand meshes and the mug drawn over them; contact frames get
    a red border and the touching hand is drawn red. Returns ``{"frames", "size", "ms_per_frame"}``."""
    import av
    from inscene.engine.store import open_result
    from inscene.kernels import Appearance, blend, render

    res = open_result(store)
    rows = {int(s): i for i, s in enumerate(res.array("frames/source_index"))}
    K = res.K
    obj = (res.array("object/mesh/vertices").astype(np.float64), res.array("object/mesh/faces"))
    T_obj, obj_ok = res.array("object/T_cam_obj"), res.array("object/valid")
    faces = {s: res.array(f"hand/{s}/faces") for s in SIDES}
    verts = {s: res.array(f"hand/{s}/vertices") for s in SIDES}
    valid = {s: res.array(f"hand/{s}/valid") for s in SIDES}
    contact = {s: res.array(f"hand/{s}/in_contact") for s in SIDES}
    path.parent.mkdir(parents=True, exist_ok=True)
    written, ms, size = 0, [], None
    with av.open(str(clip)) as src, av.open(str(path), "w") as dst:
        fps = src.streams.video[0].average_rate or Fraction(30)
        stream = dst.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.pix_fmt = "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            row = rows.get(i)
            if row is None:
                if rows and i > max(rows):
                    break
                continue
            img = frame.to_ndarray(format="rgb24")
            if size is None:
                size = (img.shape[1], img.shape[0])
                stream.width, stream.height = size
            t0 = time.perf_counter()
            meshes, poses, apps = [], [], []
            if obj_ok[row]:
                meshes.append(obj)
                poses.append(T_obj[row])
                apps.append(Appearance(color=OBJECT_COLOUR))
            touching = {}
            for s in SIDES:
                v = verts[s][row].astype(np.float64)
                if valid[s][row] and np.isfinite(v).all():
                    meshes.append((v, faces[s]))
                    poses.append(np.eye(4))
                    touching[s] = bool(contact[s][row])
            apps += _appearances(touching)
            out = img
            if meshes:
                rgb, raster = render(meshes, np.stack(poses), K, img.shape[:2], apps)
                out = blend(img, rgb, raster.mesh_id, 0.5)
            if any(touching.values()):
                out = out.copy()
                b = BORDER_PX
                red = np.asarray([255, 40, 40], np.uint8)
                out[:b], out[-b:], out[:, :b], out[:, -b:] = red, red, red, red
            ms.append(1000 * (time.perf_counter() - t0))
            for pkt in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(out), format="rgb24")):
                dst.mux(pkt)
            written += 1
        for pkt in stream.encode():
            dst.mux(pkt)
    return {"path": str(path), "frames": written, "size": list(size or (0, 0)),
            "render_ms_per_frame": float(np.median(ms)) if ms else None}


def markdown(fig: dict) -> str:
    """The summary table of the figures (for bench/results/coffee.md)."""
    h = fig["hands"][fig["holding_hand"]]
    pc, pt = h["penetration_contact_mm"], h["penetration_tracked_mm"]
    cp = h.get("contact_points_per_frame")

    def spread(p: dict) -> str:
        return f"{p['median']:.1f} / {p['p90']:.1f} / {p['max']:.1f} mm (n={p['n']})" if p.get("n") else "none"

    rows = [
        ("clip", f"{fig['clip']} frames [{fig['start']}, {fig['end'] if fig['end'] is not None else 'end'})"),
        ("hands", "real hand detector (not oracle perception)"),
        ("config", "default" + (" with " + ", ".join(fig["overrides"]) if fig.get("overrides") else "")),
        ("object box, first frame", ",".join(map(str, fig["box"]))),
        ("frames in the store", f"{fig['frames']} ({fig['state']})"),
        ("object tracked", f"{fig.get('object_tracked', 0)} frames"),
        ("holding hand", fig["holding_hand"] + ("" if h["frames_in_contact"] else
                                                " (no contact detected: the hand tracked longest)")),
        ("frames tracked / in contact", f"{h['frames_tracked']} / {h['frames_in_contact']}"),
        ("contact onsets (source frame)", ", ".join(map(str, h["onsets"])) or "none"),
        ("contact releases (source frame)", ", ".join(map(str, h["releases"])) or "none"),
        ("penetration over contact frames, median / p90 / max", spread(pc)),
        ("penetration over all tracked frames, median / p90 / max", spread(pt)),
        ("contact frames penetrating > 5 mm", str(h["frames_penetrating_over_5mm"])),
        ("contact points per contact frame, median (min..max)",
         f"{cp['median']:.0f} ({cp['min']}..{cp['max']})" if cp else "none"),
    ]
    other = next(s for s in SIDES if s != fig["holding_hand"])
    o = fig["hands"][other]
    rows.append((f"other hand ({other}): tracked / in contact", f"{o['frames_tracked']} / {o['frames_in_contact']}"))
    for name, t in fig["timing"]["stages"].items():
        rows.append((f"timing/{name}, median / mean", f"{t['median_ms']:.2f} / {t['mean_ms']:.2f} ms per frame"))
    if "latency" in fig["timing"]:
        rows.append(("latency (decoded -> final), median", f"{fig['timing']['latency']['median_ms']:.0f} ms"))
    rows.append(("throughput end to end", f"{fig['timing']['fps']:.1f} frames/s ({fig['timing']['seconds']:.1f} s)"))
    rows.append(("overlay video", f"{fig['overlay']['path']} ({fig['overlay']['frames']} frames)"))
    return ("# coffee clip: full default pipeline\n\n| figure | value |\n|---|---|\n"
            + "".join(f"| {k} | {v} |\n" for k, v in rows))


def main(args: argparse.Namespace) -> int:
    from inscene.engine.cli.demo import stage_timings, timing_lines
    from inscene.engine.errors import InputError

    clip = Path(args.clip)
    if not clip.exists():
        raise InputError(str(clip), "the clip is not there", "put the shared test data at ../shared/data or pass --clip")
    print(header("coffee clip: full default pipeline (detector, fit, object, window, grasp, store)"))
    print(f"running on {clip} frames [{args.start}, {args.end or 'end'}) with the real hand detector (not oracle "
          "perception) and the modelled blue mug ...")
    outcome, box = run_pipeline(clip, args.store, args.start, args.end, overrides=args.set)
    fig = {"clip": str(clip), "start": args.start, "end": args.end, "box": list(box), "store": str(args.store),
           "overrides": list(args.set)}
    fig.update(figures(args.store))
    fig["timing"] = stage_timings(args.store, outcome.seconds)
    print(f"pipeline: {outcome.state}, {outcome.finalized} frames in {outcome.seconds:.1f} s; object box {box}; "
          f"writing the overlay ...")
    fig["overlay"] = write_overlay(args.store, clip, args.out)
    md = markdown(fig)
    print(md)
    print("per-stage timings:\n" + "\n".join(f"  {line}" for line in timing_lines(fig["timing"])))
    path = write_json("coffee", fig, args.json)
    path.with_suffix(".md").write_text(md)
    print(f"store: {Path(args.store).resolve()}\noverlay: {Path(args.out).resolve()}\nresults: {path}, "
          f"{path.with_suffix('.md')}")
    return 0
