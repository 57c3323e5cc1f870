"""Temporal handedness: one label per tracked hand, steady over time.

The landmark network's per-frame handedness flickers when a hand is seen edge-on
or half hidden. Each track accumulates evidence instead: the log-odds of "right"
summed with exponential forgetting, so a confident early view is not outvoted by
a few ambiguous frames but a sustained change still wins. With two hands
tracked and ``distinct`` set (two hands of one person, the usual case), both
cannot carry the same label: the hand with the weaker evidence takes the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class HandednessVote:
    """Evidence of one track.

    Attributes:
        log_odds: accumulated log-odds of "right".
        frames: observations so far.
    """

    log_odds: float = 0.0
    frames: int = 0

    def update(self, p_right: float, decay: float = 0.95, clip: float = 4.0) -> None:
        """Add one frame's probability of "right" (log-odds clipped to +-clip)."""
        p = min(max(float(p_right), 1e-6), 1 - 1e-6)
        lo = max(-clip, min(clip, math.log(p / (1 - p))))
        self.log_odds = decay * self.log_odds + lo
        self.frames += 1

    @property
    def p_right(self) -> float:
        """Probability of "right" from the accumulated evidence."""
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, self.log_odds))))

    @property
    def side(self) -> str:
        """``right`` or ``left``."""
        return "right" if self.log_odds >= 0 else "left"


def assign_sides(votes: list[HandednessVote], distinct: bool = True) -> list[str]:
    """Labels for the tracked hands' votes; with ``distinct`` two hands get different labels."""
    sides = [v.side for v in votes]
    if distinct and len(votes) == 2 and sides[0] == sides[1]:
        weaker = 0 if abs(votes[0].log_odds) < abs(votes[1].log_odds) else 1
        sides[weaker] = "left" if sides[weaker] == "right" else "right"
    return sides
