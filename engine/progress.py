"""Live progress: frames, fps, lag behind the source, drops, ETA for files.

On a terminal the display redraws in place (rich); elsewhere (logs, CI) it
prints a plain line every ``log_every_s`` seconds, and nothing when disabled.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text


class ProgressDisplay:
    def __init__(self, info: Any, stats: Any, writer: Any, *, enabled: bool, live: bool, first_row: int = 0,
                 log_every_s: float = 10.0) -> None:
        self.info = info
        self.stats = stats
        self.writer = writer
        self.enabled = enabled
        self.live_source = live
        self.first_row = first_row
        self.log_every_s = log_every_s
        self._console = Console(stderr=True)
        self._live: Live | None = None
        self._last_log = time.monotonic()
        self._t0 = time.monotonic()

    def __enter__(self) -> ProgressDisplay:
        if self.enabled and self._console.is_terminal:
            self._live = Live(self._render(), console=self._console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(*exc)

    def update(self) -> None:
        if self._live is not None:
            self._live.update(self._render())
        elif self.enabled and time.monotonic() - self._last_log >= self.log_every_s:
            self._last_log = time.monotonic()
            self._console.print(self.line(), highlight=False, soft_wrap=True)

    def line(self) -> str:
        s = self.stats
        elapsed = max(time.monotonic() - self._t0, 1e-6)
        done = self.writer.watermark - self.first_row
        fps = done / elapsed
        parts = [f"frames {self.writer.watermark}"]
        total = self.info.n_frames
        if total and not self.live_source:
            parts[0] += f"/{total}"
        parts.append(f"{fps:5.1f} fps")
        if self.live_source:
            lag = time.monotonic() - s.last_arrival if s.last_arrival is not None else 0.0
            parts.append(f"lag {lag:4.2f} s")
            parts.append(f"dropped {s.dropped}")
        else:
            parts.append(f"lag {max(s.decoded - done, 0)} frames")
            if total and fps > 0:
                remaining = max(total - self.writer.watermark, 0) / fps
                parts.append(f"ETA {_clock(remaining)}")
        parts.append(f"elapsed {_clock(elapsed)}")
        return "inscene: " + " | ".join(parts)

    def _render(self) -> Text:
        return Text(self.line())


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"

