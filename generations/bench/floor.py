"""The pipeline's floor: a bare `requests` loop doing the HTTP a job needs, and nothing else.

Create the video, poll it as often as the provider's `openai-poll-after-ms` says until it is completed,
download the video and its thumbnail to disk. No database, no queue, no retries: whatever the studio
spends beyond this is the cost of its bookkeeping.
"""

from __future__ import annotations

import queue
import secrets
import tempfile
import threading
import time
from pathlib import Path

import requests

TERMINAL = {"completed", "failed"}


class Floor:
    def __init__(self, base_url: str, api_key: str, *, model="sora-2", seconds=4, size="720x1280"):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.body = {"model": model, "seconds": str(seconds), "size": size}
        self.runs = 0
        # Each job's idempotency key is new to the simulator, whichever Floor made it (a round of the bench makes
        # its own): a key it knew would answer with the finished job of an earlier round, not make a new one.
        self.prefix = secrets.token_hex(4)
        # Per job of the last run: the create's round trip, and from its answer to both files on disk.
        self.create_seconds: list[float] = []
        self.rest_seconds: list[float] = []

    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.api_key}"
        return session

    def job(self, session: requests.Session, name: str, folder: Path) -> None:
        """One job, create to stored files."""
        started = time.perf_counter()
        response = session.post(
            f"{self.base_url}/videos",
            json={**self.body, "prompt": f"Floor {name}"},
            headers={"Idempotency-Key": f"floor-{name}"},
            timeout=30,
        )
        response.raise_for_status()
        video = response.json()
        accepted = time.perf_counter()
        while video["status"] not in TERMINAL:
            time.sleep(int(response.headers.get("openai-poll-after-ms", "2000")) / 1000)
            response = session.get(f"{self.base_url}/videos/{video['id']}", timeout=30)
            response.raise_for_status()
            video = response.json()
        if video["status"] != "completed":
            raise RuntimeError(f"floor job {video['id']} failed: {video.get('error')}")
        for variant, suffix in (("video", "mp4"), ("thumbnail", "webp")):
            with session.get(
                f"{self.base_url}/videos/{video['id']}/content", params={"variant": variant}, stream=True, timeout=30
            ) as download:
                download.raise_for_status()
                with (folder / f"{name}.{suffix}").open("wb") as out:
                    for chunk in download.iter_content(64 * 1024):
                        out.write(chunk)
        self.create_seconds.append(accepted - started)
        self.rest_seconds.append(time.perf_counter() - accepted)

    def run(self, jobs: int, threads: int) -> float:
        """`jobs` jobs on `threads` threads, each with its own session; returns the seconds it took."""
        self.runs += 1
        self.create_seconds, self.rest_seconds = [], []
        work: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(jobs):
            work.put(index)
        errors: list[BaseException] = []

        def worker(folder: Path) -> None:
            session = self.session()
            while not errors:
                try:
                    index = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    self.job(session, f"{self.prefix}-{self.runs}-{index}", folder)
                except BaseException as exc:  # reported by run(), not lost in a thread
                    errors.append(exc)

        with tempfile.TemporaryDirectory(prefix="sora-bench-floor-") as folder:
            started = time.perf_counter()
            pool = [threading.Thread(target=worker, args=(Path(folder),)) for _ in range(threads)]
            for thread in pool:
                thread.start()
            for thread in pool:
                thread.join()
            elapsed = time.perf_counter() - started
        if errors:
            raise errors[0]
        return elapsed
