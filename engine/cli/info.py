"""``inscene info STORE``: what a result store holds."""

from __future__ import annotations

import argparse
import json

import numpy as np

from ..store.reader import open_result


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="result store written by 'inscene run'")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def summarize(path: str) -> dict:
    r = open_result(path)
    wm = r.finalized_frames
    status = r.status
    src = r.attrs.get("source", {})
    out = {
        "store": str(r.path),
        "schema_version": r.attrs.get("schema_version"),
        "inscene_version": r.attrs.get("inscene_version"),
        "state": r.state,
        "source": src,
        "created": r.attrs.get("created"),
        "finalized_frames": wm,
        "rows": r.attrs.get("rows"),
        "final": int((status == 2).sum()),
        "dropped": r.attrs.get("dropped", 0),
        "stages": r.attrs.get("stages", []),
        "fields": r.fields,
    }
    t = r.time
    if len(t):
        out["time_span_s"] = [float(t[0]), float(t[-1])]
    timing = {}
    for name, ms in r.timing().items():
        ms = ms[np.isfinite(ms)]
        if len(ms):
            timing[name] = {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))}
    out["timing"] = timing
    if r.attrs.get("error"):
        out["error"] = r.attrs["error"]
    return out


def main(args: argparse.Namespace) -> int:
    s = summarize(args.store)
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    src = s["source"]
    size = "x".join(str(v) for v in src.get("size", []))
    print(f"store      {s['store']}  (schema v{s['schema_version']}, inscene {s['inscene_version']})")
    print(f"state      {s['state']}" + (f"  error: {s['error']}" if s.get("error") else ""))
    print(f"source     {src.get('uri')}  [{src.get('kind')}, {size}, {src.get('fps') or '?'} fps"
          + (", live" if src.get("live") else "") + "]")
    span = s.get("time_span_s")
    print(f"frames     {s['finalized_frames']} final" + (f", t = {span[0]:.3f} .. {span[1]:.3f} s" if span else "")
          + (f", {s['dropped']} dropped" if s["dropped"] else ""))
    print(f"stages     {', '.join(s['stages']) or '(none: engine and store only)'}")
    if s["timing"]:
        print("timing     " + "; ".join(f"{k} p50 {v['p50_ms']:.2f} / p95 {v['p95_ms']:.2f} ms"
                                        for k, v in s["timing"].items()))
    print(f"arrays     {len(s['fields'])} per-frame: {', '.join(s['fields'])}")
    return 0
