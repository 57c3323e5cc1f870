"""Stage 1: the sliding-window interaction optimizer (see ``engine/stages/window.py`` for the stage)."""

from .types import WindowHand

__all__ = ["WindowHand"]
