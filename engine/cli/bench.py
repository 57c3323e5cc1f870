"""``inscene bench NAME``: benchmarks live in ``inscene.bench``; each prints its figures."""

from __future__ import annotations

import argparse
import importlib

# benchmark name -> module in inscene.bench exposing add_arguments(parser) and main(args)
BENCHES: dict[str, str] = {
    "io": "inscene.bench.io",
    "handmodel": "inscene.bench.handmodel",
    "hands": "inscene.bench.hands",
    "kernels": "inscene.bench.kernels",
    "object": "inscene.bench.object",
    "synthhands": "inscene.bench.synthhands",
    "accuracy": "inscene.bench.accuracy.cli",
    "latency": "inscene.bench.latency",
    "coffee": "inscene.bench.coffee",
    "grasp": "inscene.bench.grasp",
    "window": "inscene.bench.window",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="NAME", parser_class=type(parser), required=True)
    for name, module in BENCHES.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and module.startswith(e.name):
                continue
            raise
        p = sub.add_parser(name, help=(mod.__doc__ or name).strip().splitlines()[0])
        mod.add_arguments(p)
        p.set_defaults(_bench_main=mod.main)


def main(args: argparse.Namespace) -> int:
    return int(args._bench_main(args) or 0)
