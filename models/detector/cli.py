"""``inscene models``: fetch the hand detector's weights once per machine, and show what runs them.

``inscene models fetch`` downloads the ``mediapipe==0.10.21`` wheel with pip
(``--no-deps``; mediapipe is not installed), takes the two ``.tflite`` files out,
checks their sha256, caches them and converts them to ONNX.
``inscene models fetch --from PATH`` does the same from a wheel or folder already
on the machine (offline set-up). ``inscene models info`` lists the cached files
and the backend the runtime would choose here.
"""

from __future__ import annotations

import argparse

from inscene.engine.errors import InputError


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="models_command", metavar="ACTION", parser_class=type(p), required=True)
    f = sub.add_parser("fetch", help="fetch, verify and convert the hand detector weights (once per machine)",
                       description="Fetch the palm detection and hand landmark networks from the mediapipe==0.10.21 "
                                   "wheel, verify them (sha256), cache them and convert them to ONNX.")
    f.add_argument("--from", dest="source", metavar="PATH",
                   help="a mediapipe-0.10.21 wheel, or a folder with the wheel or the two .tflite files "
                        "(offline machines); default: pip download from PyPI")
    f.add_argument("--no-convert", action="store_true", help="only fetch the .tflite files")
    i = sub.add_parser("info", help="show the cached weights and the runtime backend chosen here")
    i.add_argument("--provider", default="auto", help="provider preference to resolve (default: auto)")


def _fetch(args: argparse.Namespace) -> int:
    from .networks import NETWORKS, converted_onnx
    from .weights import fetch

    paths = fetch(args.source)
    for name, path in paths.items():
        print(f"{name}: {path}")
    if not args.no_convert:
        for spec in NETWORKS.values():
            print(f"{spec.name} (ONNX): {converted_onnx(spec)}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from inscene.models.runtime import ModelIO, cache_dir, choose, probe

    from .networks import NETWORKS, onnx_path
    from .weights import WEIGHTS, cached_path, missing, weights_dir

    absent = {w.name for w in missing()}
    for w in WEIGHTS.values():
        state = "missing" if w.name in absent else "ok (sha256 verified)"
        print(f"{w.filename:42s} {state:22s} {cached_path(w)}")
    for spec in NETWORKS.values():
        p = onnx_path(spec)
        print(f"{p.name:42s} {'ok' if p.exists() else 'not converted yet':22s} {p}")
    env = probe()
    print(f"machine: onnxruntime providers {', '.join(env.ort_providers)}; NVIDIA GPUs {env.gpus}; "
          f"tensorrt {'importable' if env.tensorrt else 'not importable'}; "
          f"torch CUDA {'yes' if env.torch_cuda else 'no'}")
    c = choose(env, args.provider, ModelIO(cache_dir=cache_dir("tensorrt", create=False)))
    print(f"runtime ({args.provider}): {c.label} — {c.reason}")
    if absent:
        raise InputError(str(weights_dir(create=False)), "hand detector weights are not fetched",
                         "run 'inscene models fetch'")
    return 0


def main(args: argparse.Namespace) -> int:
    if args.models_command == "fetch":
        return _fetch(args)
    return _info(args)
