"""``inscene mano import DIR [-o OUT]``: convert the official MANO pickles once into plain npz.

Later runs (``--hand-model mano --mano-dir OUT``) load the npz without unpickling.
The npz hold MANO's data: keep them as private as the pickles (never commit or share).
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="mano_command", metavar="ACTION", parser_class=type(parser), required=True)
    imp = sub.add_parser("import", help="convert MANO_RIGHT.pkl / MANO_LEFT.pkl into plain npz files",
                         description="Read the official MANO pickles without chumpy and write MANO_RIGHT.npz / "
                                     "MANO_LEFT.npz that later runs load without unpickling.")
    imp.add_argument("dir", metavar="DIR", help="folder holding MANO_RIGHT.pkl and/or MANO_LEFT.pkl")
    imp.add_argument("-o", "--out", metavar="OUT", default=None, help="output folder (default: DIR)")


def main(args: argparse.Namespace) -> int:
    if args.mano_command == "import":
        from .mano_hand import import_mano_dir, load_mano_hand

        written = import_mano_dir(args.dir, args.out)
        for path in written:
            side = "right" if path.stem.endswith("RIGHT") else "left"
            model = load_mano_hand(path.parent, side)  # check the result loads
            sys.stdout.write(f"wrote {path} ({model.num_vertices} vertices, {model.num_joints} joints)\n")
        folder = written[0].parent
        sys.stdout.write(f"use it with: inscene run --hand-model mano --mano-dir {folder}\n")
        return 0
    return 2
