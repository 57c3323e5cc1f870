"""The 21 hand keypoints every hand model yields, in the MediaPipe / DexYCB order.

0 wrist; 1-4 thumb CMC, MCP, IP, tip; 5-8 index MCP, PIP, DIP, tip; 9-12 middle;
13-16 ring; 17-20 little. Each finger is four consecutive keypoints from its base.
"""

from __future__ import annotations

FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "little")
"""The five fingers, in keypoint order."""

KEYPOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "little_mcp", "little_pip", "little_dip", "little_tip",
)
NUM_KEYPOINTS = 21

TIP_KEYPOINTS: tuple[int, ...] = (4, 8, 12, 16, 20)
"""Keypoint index of each fingertip (thumb..little)."""

PALM_KEYPOINTS: tuple[int, ...] = (0, 1, 5, 9, 13, 17)
"""Wrist, thumb CMC and the four finger MCPs: nearly rigid with the palm."""

# Parent of each keypoint along its finger (wrist for the bases); -1 for the wrist.
KEYPOINT_PARENTS: tuple[int, ...] = (
    -1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19,
)


def finger_keypoints(finger: str) -> tuple[int, int, int, int]:
    """The four keypoint indices of ``finger`` (base to tip)."""
    i = FINGERS.index(finger)
    return (1 + 4 * i, 2 + 4 * i, 3 + 4 * i, 4 + 4 * i)
