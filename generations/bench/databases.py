"""Throw-away databases for the benchmarks: a SQLite file under .bench/, or a PostgreSQL database the
bench creates and drops itself (never the one the studio runs on): `<database of the URL>_<benchmark>`.

A bench command asked for `--database sqlite|postgres` creates that database, migrates it, and runs
itself again there with `--this-database`: settings are read once per process, so the measuring process
(and the workers it starts) must be born with the bench's DATABASE_URL, REDIS_URL and SECRET_KEY.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)
DEFAULT_WORKDIR = ROOT / ".bench"
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/sora_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


@dataclass(frozen=True)
class BenchDatabase:
    kind: str  # "sqlite" or "postgres"
    url: str

    @classmethod
    def named(cls, kind: str, name: str, workdir: Path, postgres_url: str = POSTGRES_URL) -> BenchDatabase:
        if kind == "sqlite":
            return cls("sqlite", f"sqlite:///{workdir / f'{name}.sqlite3'}")
        if kind == "postgres":
            # Its own database per benchmark (sora_bench_pipeline, ...): never the one `make bench` gave
            # bench_spending, which it does not create or drop.
            parts = urlsplit(postgres_url)
            return cls("postgres", urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}_{name}")))
        raise ValueError(f"unknown database kind {kind!r}: sqlite or postgres")

    @property
    def sqlite_path(self) -> Path:
        return Path(urlsplit(self.url).path)

    @property
    def postgres_name(self) -> str:
        return urlsplit(self.url).path.lstrip("/")

    def create(self) -> None:
        """An empty database (whatever was there before is dropped)."""
        self.drop()
        if self.kind == "sqlite":
            self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        else:
            with maintenance_connection(self.url) as conn:
                conn.execute(f'CREATE DATABASE "{self.postgres_name}"')

    def drop(self) -> None:
        if self.kind == "sqlite":
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.sqlite_path}{suffix}").unlink(missing_ok=True)
        else:
            with maintenance_connection(self.url) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.postgres_name}" WITH (FORCE)')


def maintenance_connection(url: str):
    """An autocommit connection to the server's `postgres` database: to create and drop the bench's,
    and to read pg_stat_database without adding to the bench database's own counters."""
    import psycopg

    parts = urlsplit(url)
    return psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True)


def current_url() -> str:
    """The database this process runs on, as a URL its worker processes can open."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] or "postgres"
    if db["PASSWORD"]:
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def bench_env(database: BenchDatabase, media: Path, *, redis_url: str = "") -> dict[str, str]:
    """The environment of a bench run: production-like (DEBUG off), its own key and media folder."""
    return {
        **os.environ,
        "DATABASE_URL": database.url,
        "REDIS_URL": redis_url,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        # The simulated provider is on loopback; a real one would be public.
        "ALLOW_PRIVATE_FETCH": "true",
        "MEDIA_ROOT": str(media),
        "LOG_LEVEL": "WARNING",
        "Q_SYNC": "0",
    }


def manage(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_on_throwaway(
    command: str,
    argv: list[str],
    database: BenchDatabase,
    workdir: Path,
    stdout,
    *,
    redis_url="",
    keep=False,
    static=False,
) -> int:
    """Create and migrate `database`, run `manage.py <command> <argv> --this-database` on it (its output
    copied to `stdout`), then drop it unless `keep`. Returns the run's exit code. With `static`, the static
    files are collected first: with DEBUG off pages name them from the collected manifest."""
    workdir.mkdir(parents=True, exist_ok=True)
    media = workdir / f"media-{command}"
    env = bench_env(database, media, redis_url=redis_url)
    if static:
        env["STATIC_ROOT"] = str(workdir / "static")
        collect = manage("collectstatic", "--noinput", "-v0", env=env)
        output, _ = collect.communicate()
        if collect.returncode:
            stdout.write(output)
            return collect.returncode
    redis_note = f" · Redis {redis_url}" if redis_url else ""
    stdout.write(f"Throw-away {database.kind} database: {database.url}{redis_note}")
    database.create()
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()  # the bench's own Redis database: no tasks left from a last run
    try:
        migrate = manage("migrate", "--noinput", "-v0", env=env)
        output, _ = migrate.communicate()
        if migrate.returncode:
            stdout.write(output)
            return migrate.returncode
        run = manage(command, *argv, "--this-database", env=env)
        for line in run.stdout:
            stdout.write(line.rstrip("\n"))
        return run.wait()
    finally:
        if not keep:
            database.drop()
            shutil.rmtree(media, ignore_errors=True)
            if static:
                shutil.rmtree(workdir / "static", ignore_errors=True)
