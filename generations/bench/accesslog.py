"""What the simulator was asked, read from gunicorn's access log between two moments."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

# gunicorn's default format: 127.0.0.1 - - [date] "GET /path?query HTTP/1.1" 200 1234 "-" "agent"
LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>[^ ?"]+)[^"]*" (?P<status>\d{3}) ')


class AccessLog:
    def __init__(self, path: Path):
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def since(self, mark: int, until: int | None = None) -> Counter:
        """Requests by kind (create, poll, download, other, and one key per error status) since `mark`."""
        with self.path.open("rb") as log:
            log.seek(mark)
            text = log.read(None if until is None else until - mark).decode(errors="replace")
        kinds: Counter = Counter()
        for match in LINE.finditer(text):
            method, path, status = match["method"], match["path"], match["status"]
            if method == "POST" and path.endswith("/videos"):
                kinds["create"] += 1
            elif method == "GET" and path.endswith("/content"):
                kinds["download"] += 1
            elif method == "GET" and "/videos/" in path:
                kinds["poll"] += 1
            else:
                kinds["other"] += 1
            if not status.startswith("2"):
                kinds[f"status {status}"] += 1
        return kinds
