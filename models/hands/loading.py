"""Choose and load the hand model from the run flags and the environment.

``--hand-model anny|mano|auto`` and ``--mano-dir DIR`` (or ``INSCENE_MANO_DIR``):
``auto`` (the default) takes MANO when a MANO folder is given, else anny's hand.
"""

from __future__ import annotations

import torch

from ...engine.errors import InputError
from ...engine.hand_selection import ENV_MANO_DIR, KINDS, resolve_hand_model  # noqa: F401
from .model import HandModel

SIDES = ("right", "left")


def load_hand_model(kind: str = "auto", mano_dir: str | None = None, side: str = "right",
                    dtype: torch.dtype = torch.float32) -> HandModel:
    """The hand model of ``side`` selected by ``kind`` / ``mano_dir`` / ``INSCENE_MANO_DIR``.

    Raises:
        InputError: unknown kind or side, MANO requested without files, unreadable files.
    """
    if side not in SIDES:
        raise InputError(f"hand side '{side}'", "unknown side", "use 'right' or 'left'")
    family, folder = resolve_hand_model(kind, mano_dir)
    if family == "mano":
        from .mano_hand import load_mano_hand

        return load_mano_hand(folder, side, dtype=dtype)
    from .anny_hand import load_anny_hand

    return load_anny_hand(side, dtype=dtype)


def load_hand_models(kind: str = "auto", mano_dir: str | None = None,
                     dtype: torch.dtype = torch.float32) -> dict[str, HandModel]:
    """Both sides: {"right": ..., "left": ...}."""
    return {side: load_hand_model(kind, mano_dir, side, dtype) for side in SIDES}
