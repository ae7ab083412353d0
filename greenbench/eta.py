"""How long a run has left: first from its protocol settings, then from the cells that finished.

A measured cell takes its two settled idle baselines (`idle_s` each, at least), one window of at
least `min_window_s` per phase and repetition, and a few seconds to build the model, warm up and
score fidelity. That guess is what the ETA starts from; each cell that finishes rescales the
guess for the rest by how long the finished cells really took against their guesses, so a slow
machine's ETA grows after the first cell instead of staying optimistic to the end. The cells of a
sweep that run interleaved in one child (one idle baseline for all) are timed as one entry.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from greenbench.protocol import ProtocolSettings

CELL_OVERHEAD_S = 5.0  # building the model, warmup, fidelity: beyond the protocol's windows


def cell_estimate_s(protocol: ProtocolSettings, phases: int) -> float:
    """A measured cell's expected seconds, from the protocol settings alone."""
    return group_estimate_s(protocol, [phases])


def group_estimate_s(protocol: ProtocolSettings, phases: Sequence[int]) -> float:
    """Cells run in one child (a sweep: each builds its model, they share the idle
    baselines), given each cell's phase count."""
    windows = sum(phases) * protocol.repetitions
    overhead = CELL_OVERHEAD_S * len(phases)
    return overhead + 2 * protocol.idle_s + windows * protocol.min_window_s


@dataclass
class RunEta:
    """The seconds left of a run, refined as cells finish. Cells are named by their ids."""

    protocol: ProtocolSettings
    clock: Callable[[], float] = time.monotonic
    _guess: dict[str, float] = field(default_factory=dict)  # unfinished cells' estimates
    _started: dict[str, float] = field(default_factory=dict)  # running cells: when they began
    _took: float = 0.0  # finished measured cells: seconds they took
    _guessed: float = 0.0  # and what they were estimated to take

    def plan(self, cells: dict[str, int]) -> None:
        """The cells still to run, each with its phase count."""
        self.plan_groups({cell: [n] for cell, n in cells.items()})

    def plan_groups(self, groups: Mapping[str, Sequence[int]]) -> None:
        """What is still to run, each entry (a cell, or a sweep's cells in one child, named by
        one id) with its cells' phase counts."""
        self._guess = {key: group_estimate_s(self.protocol, n) for key, n in groups.items()}

    def started(self, cell: str) -> None:
        self._started.setdefault(cell, self.clock())  # a group's cells start together

    def finished(self, cell: str, measured: bool) -> None:
        """A cell is done; a measured one teaches the scale, a skipped or failed one does not
        (it took next to nothing, or its timeout)."""
        guess = self._guess.pop(cell, 0.0)
        began = self._started.pop(cell, None)
        if measured and began is not None and guess:
            self._took += self.clock() - began
            self._guessed += guess

    @property
    def scale(self) -> float:
        """How much longer than guessed the finished cells took (1 before any finished)."""
        return self._took / self._guessed if self._guessed else 1.0

    def remaining_s(self) -> float:
        """Seconds left: the unfinished cells' scaled guesses, less what the running ones have
        already spent (never below nothing for a cell taking longer than guessed)."""
        now = self.clock()
        left = 0.0
        for cell, guess in self._guess.items():
            spent = now - self._started[cell] if cell in self._started else 0.0
            left += max(guess * self.scale - spent, 0.0)
        return left


def fmt_eta(seconds: float) -> str:
    """`ETA 2m10s`, `ETA 45s`, `ETA 1h05m`."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"ETA {hours}h{minutes:02d}m"
    if minutes:
        return f"ETA {minutes}m{secs:02d}s"
    return f"ETA {secs}s"
