"""Which hand model a run uses, from the flags and the environment (no torch import).

``--hand-model anny|mano|auto`` and ``--mano-dir DIR`` (or ``INSCENE_MANO_DIR``):
``auto`` (the default) takes MANO when a MANO folder is given, else anny's hand.
"""

from __future__ import annotations

import os

from .errors import InputError

ENV_MANO_DIR = "INSCENE_MANO_DIR"
KINDS = ("auto", "anny", "mano")


def resolve_hand_model(kind: str = "auto", mano_dir: str | None = None) -> tuple[str, str | None]:
    """The model family and MANO folder the flags and environment select.

    Returns:
        ("anny", None) or ("mano", folder).
    """
    if kind not in KINDS:
        raise InputError(f"--hand-model {kind}", "unknown hand model", f"choose one of {', '.join(KINDS)}")
    folder = mano_dir or os.environ.get(ENV_MANO_DIR) or None
    if kind == "anny":
        return "anny", None
    if kind == "mano" and not folder:
        raise InputError("--hand-model mano", "needs the MANO model files",
                         f"pass --mano-dir DIR or set {ENV_MANO_DIR} to the folder with MANO_RIGHT.pkl / MANO_LEFT.pkl")
    return ("mano", folder) if folder else ("anny", None)
