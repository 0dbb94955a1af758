"""Real processes for the pipeline benchmark: the simulator under gunicorn, qcluster workers, and the CPU
time they spent (read from /proc, their children included)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from generations.bench.databases import ROOT

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A process in its own session (so stop() takes its children too), its output in `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(10)


def qcluster(env: dict[str, str], log: Path) -> subprocess.Popen:
    return start([sys.executable, "manage.py", "qcluster"], env, log)


def gunicorn(env: dict[str, str], port: int, *, workers: int, threads: int, access_log: Path, log: Path):
    return start(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "sora_studio.wsgi:application",
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            f"--threads={threads}",
            f"--access-logfile={access_log}",
            "--log-level=warning",
            # Its default control socket is one path per user: a second gunicorn would take over another's.
            "--no-control-socket",
        ],
        env,
        log,
    )


def wait_until_up(url: str, headers: dict[str, str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered at {url} within {timeout:.0f} s")


def _stat(pid: int) -> tuple[str, list[str]] | None:
    """The process's name and the fields of its stat file after it, or None if it ended meanwhile."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The name is in parentheses and may hold spaces (or parentheses): the fields start after the last ")".
    return text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()


def _processes() -> dict[int, tuple[int, str]]:
    """Every live process: its parent and its name, from one read of its stat file."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := _stat(int(entry.name))):
            name, fields = stat
            found[int(entry.name)] = (int(fields[1]), name)
    return found


def tree(root: int) -> list[int]:
    """`root` and every live descendant."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in _processes().items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(roots: list[int]) -> float:
    """CPU time (user + system) of these process trees so far. A child that ended and was reaped counts in
    its parent's cutime/cstime, so live processes' own and children's times together count everything once."""
    ticks = 0
    for root in roots:
        for pid in tree(root):
            if stat := _stat(pid):
                ticks += sum(int(value) for value in stat[1][11:15])  # utime stime cutime cstime
    return ticks / CLOCK_TICKS


def postmaster() -> int | None:
    """The local PostgreSQL server's main process (the `postgres` whose parent is not one), or None if this machine
    runs none, or several: the server's CPU is then not this bench's to read."""
    servers = {pid: parent for pid, (parent, name) in _processes().items() if name == "postgres"}
    roots = [pid for pid, parent in servers.items() if parent not in servers]
    return roots[0] if len(roots) == 1 else None
