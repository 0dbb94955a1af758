"""The table every benchmark prints: each figure of the studio beside its floor, and their ratio."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One measure. `ratio` is studio / floor (a throughput below 1 is slower; a time or a cost above 1 is
    slower or dearer). A measure with no floor (None) shows a dash."""

    measure: str
    studio: float | None
    floor: float | None = None
    digits: int = 1

    def cell(self, value: float | None) -> str:
        if value is None:
            return "—"
        return f"{value:,.{self.digits}f}"

    @property
    def ratio(self) -> str:
        if self.studio is None or not self.floor:
            return "—"
        return f"{self.studio / self.floor:.2f}"


def render(rows: Iterable[Row]) -> str:
    lines = ["| measure | studio | floor | ratio |", "|---|---:|---:|---:|"]
    lines += [f"| {r.measure} | {r.cell(r.studio)} | {r.cell(r.floor)} | {r.ratio} |" for r in rows]
    return "\n".join(lines)


def machine_load() -> str:
    """How busy the machine was: benchmarks on a shared box are only comparable within one run."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"
