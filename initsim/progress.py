"""A small dependency-free progress bar on stderr with an ETA."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Progress over ``total`` items, drawn only for runs longer than ``delay`` seconds.

    Parameters
    ----------
    total : int
        Number of items (nets, cells, ...).
    label : str
        Text in front of the bar.
    enabled : bool or None
        True: always draw (after ``delay``); False: never; None: only when
        the stream is a terminal.
    delay : float
        Seconds before the bar first appears (short runs stay quiet).
    stream : file, optional
        Where to draw; default ``sys.stderr``.
    """

    def __init__(
        self,
        total: int,
        label: str = "",
        enabled: bool | None = None,
        delay: float = 2.0,
        stream: TextIO | None = None,
    ) -> None:
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.delay = delay
        self.done = 0
        self.start = time.perf_counter()
        self._drawn = False

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` items and redraw if due.

        Parameters
        ----------
        n : int
            Items just finished.
        """
        self.done += n
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        if elapsed < self.delay and self.done < self.total:
            return
        frac = min(self.done / self.total, 1.0)
        eta = elapsed * (1.0 - frac) / frac if frac > 0 else float("nan")
        filled = int(30 * frac)
        bar = "#" * filled + "-" * (30 - filled)
        self.stream.write(
            f"\r{self.label} [{bar}] {100 * frac:5.1f}% {self.done}/{self.total} "
            f"elapsed {elapsed:6.1f}s ETA {eta:6.1f}s"
        )
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Finish the line if a bar was drawn."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
