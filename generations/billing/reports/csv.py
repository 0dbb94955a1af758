"""The ledger as CSV, streamed a row at a time."""

from __future__ import annotations

import csv

CSV_HEADER = [
    "day",
    "time",
    "kind",
    "amount_usd",
    "backend",
    "model",
    "seconds",
    "size",
    "generation",
    "character_binding",
    "user",
    "price",
    "note",
]


class _Line:
    """A file-like that hands back what csv.writer writes, so rows can be streamed one by one."""

    def write(self, value):
        return value


def csv_lines(entries):
    """The entries as CSV text, a row at a time (for StreamingHttpResponse and the command)."""
    writer = csv.writer(_Line())
    yield writer.writerow(CSV_HEADER)
    rows = entries.select_related("backend", "owner", "generation", "price").order_by("created_at", "pk")
    for e in rows.iterator(chunk_size=2000):
        g = e.generation
        yield writer.writerow(
            [
                e.day.isoformat(),
                e.created_at.isoformat(),
                e.kind,
                f"{e.amount:f}",
                e.backend.name,
                g.model if g else "",
                g.seconds if g else "",
                g.size if g else "",
                e.generation_id or "",
                e.binding_id or "",
                e.owner.get_username(),
                str(e.price) if e.price else "",
                e.note,
            ]
        )


def write_csv(stream, entries) -> None:
    for line in csv_lines(entries):
        stream.write(line)
