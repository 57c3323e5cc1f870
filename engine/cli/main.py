"""The ``inscene`` command line: one entry point, subcommands in their own modules.

Each command module exposes ``add_arguments(parser)`` and ``main(args) -> int``.
Errors of type :class:`InsceneError` are printed as one line on stderr with a
non-zero exit status; nothing else is caught (a bug keeps its traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import InsceneError, one_line

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("inscene.engine.cli.run", "reconstruct a video, folder, webcam or stream into a store"),
    "info": ("inscene.engine.cli.info", "summarize a result store"),
    "demo": ("inscene.engine.cli.demo", "run the built-in default job and say where the results are"),
    "bench": ("inscene.engine.cli.bench", "run a benchmark and print its figures"),
    "mano": ("inscene.models.hands.cli", "MANO files: import the official pickles once"),
    "models": ("inscene.models.detector.cli", "fetch and convert the hand-detector networks"),
    "synth": ("inscene.bench.synth.cli", "render a synthetic hand-object scene with ground truth"),
}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: {one_line(message)} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that command's module is imported (fast start:
    the others may import torch), the rest are listed by name."""
    parser = _Parser(prog="inscene", description="Streaming hand-object reconstruction from monocular video.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_)
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and module.startswith(e.name):  # command not built yet
                continue
            raise
        p = sub.add_parser(name, help=help_, description=help_)
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in COMMANDS else "")
    args = parser.parse_args(argv)
    if args.version:
        from .. import __version__

        print(__version__)
        return 0
    if not getattr(args, "_main", None):
        parser.print_help()
        return 2
    try:
        return int(args._main(args) or 0)
    except InsceneError as e:
        sys.stderr.write(f"inscene: {one_line(e)}\n")
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("inscene: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
