"""``inscene run SOURCE -o STORE``: reconstruct a video, folder, webcam or stream."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..app import JobRequest, run_job
from ..camera import parse_intrinsics
from ..config import RunConfig
from ..errors import one_line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="video file, image folder, /dev/videoN, rtsp/rtmp/http(s)/srt/udp URL, or gen: URI")
    p.add_argument("-o", "--output", required=True, type=Path, help="result store (a Zarr directory) to write")
    p.add_argument("--config", type=Path, help="TOML config file (flags override it)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value, e.g. --set store.chunk_frames=64 (repeatable)")
    g = p.add_argument_group("source")
    g.add_argument("--start", type=int, help="first source frame to process (index)")
    g.add_argument("--end", type=int, help="source frame index to stop before")
    g.add_argument("--stride", type=int, help="process every N-th frame")
    g.add_argument("--fps", type=float, help="frame rate for sources without timestamps (image folders)")
    g.add_argument("--live", action=argparse.BooleanOptionalAction, default=None,
                   help="treat the source as live (drop oldest frames under load) or as a file (never drop)")
    g = p.add_argument_group("camera")
    g.add_argument("--intrinsics", help="fx,fy,cx,cy in pixels, or a JSON/.txt/.npy file with them")
    g.add_argument("--fov", type=float, help="horizontal field of view in degrees when no intrinsics are given")
    g = p.add_argument_group("object")
    g.add_argument("--object", help="mesh of the manipulated object (OBJ, PLY, STL, GLB, OFF; units detected)")
    g.add_argument("--object-units", choices=("auto", "m", "cm", "mm"), help="units of the mesh file (default auto)")
    g.add_argument("--object-poses", help="object poses from another tracker: a folder of per-frame 4x4 .txt "
                   "(FoundationPose), one .txt of 4x4 blocks, .npz with T_cam_obj, or BOP scene_gt.json")
    g.add_argument("--object-id", type=int, help="object id in a multi-object BOP file")
    g.add_argument("--object-box", help="x,y,w,h of the whole object in the first processed frame (pixels): "
                   "the region tracker starts there")
    g.add_argument("--object-init", help="JSON that starts the tracker: {\"box\": [x,y,w,h]}, {\"mask\": \"m.png\"} "
                   "or {\"T_cam_obj\": 4x4}, optionally with \"frame\"")
    g.add_argument("--no-hand-occlusion", action="store_true",
                   help="do not discount the tracker's lines that fall on detected hands")
    g = p.add_argument_group("hands")
    g.add_argument("--hand-model", choices=("auto", "anny", "mano"), help="hand model (default auto: MANO when "
                   "--mano-dir or $INSCENE_MANO_DIR is given, else the open anny hand)")
    g.add_argument("--no-hands", action="store_true", help="run without the hand stages (engine and object only)")
    g.add_argument("--mano-dir", help="folder with your MANO_RIGHT.pkl / MANO_LEFT.pkl (never shipped with inscene)")
    g = p.add_argument_group("output")
    m = g.add_mutually_exclusive_group()
    m.add_argument("--resume", action="store_true", help="continue an interrupted run from its watermark")
    m.add_argument("--overwrite", action="store_true", help="replace an existing store")
    g.add_argument("--no-progress", action="store_true", help="no live progress display")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    cfg = RunConfig.from_toml(args.config) if args.config else RunConfig()
    cfg = cfg.override(args.set)
    src = {k: getattr(args, k) for k in ("start", "end", "stride", "fps", "live") if getattr(args, k) is not None}
    if src:
        cfg = cfg.replace("source", **src)
    if args.intrinsics:
        cfg = cfg.replace("camera", intrinsics=parse_intrinsics(args.intrinsics))
    if args.fov is not None:
        cfg = cfg.replace("camera", fov_deg=args.fov)
    hands = {k: v for k, v in (("model", args.hand_model), ("mano_dir", args.mano_dir)) if v is not None}
    if args.no_hands:
        hands["enabled"] = False
    if hands:
        cfg = cfg.replace("hands", **hands)
    obj = {k: v for k, v in (("mesh", args.object), ("units", args.object_units), ("poses", args.object_poses),
                             ("obj_id", args.object_id), ("box", args.object_box), ("init", args.object_init))
           if v is not None}
    if args.no_hand_occlusion:
        obj["hand_occlusion"] = False
    if obj:
        cfg = cfg.replace("object", **obj)
    if args.no_progress:
        cfg = cfg.replace("engine", progress=False)
    return cfg


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    mode = "resume" if args.resume else "overwrite" if args.overwrite else "create"
    outcome = run_job(JobRequest(source=args.source, output=args.output, config=cfg, mode=mode))
    if outcome.state == "up-to-date":
        print(f"inscene: {args.output} is complete ({outcome.finalized} frames); nothing to resume")
        return 0
    summary = (f"inscene: {outcome.state}: {outcome.finalized} frames final in {args.output} "
               f"({outcome.seconds:.1f} s, {outcome.setup_seconds:.1f} s of it loading models; {outcome.fps:.1f} fps"
               + (f", {outcome.dropped} dropped" if outcome.dropped else "") + ")")
    if outcome.error is not None:
        print(f"inscene: {one_line(outcome.error)}; {outcome.finalized} frames final in {args.output}",
              file=sys.stderr)
        return outcome.exit_code
    print(summary, file=sys.stderr if outcome.state != "complete" else sys.stdout)
    return outcome.exit_code
