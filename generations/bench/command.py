"""What every bench command shares: the throw-away database options, and running itself again on it."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from generations.bench import databases


class BenchCommand(BaseCommand):
    """`handle` makes a throw-away database and runs the command again there with --this-database;
    that run calls `measure`. Subclasses list the options to pass on in `forwarded` (dest names)."""

    forwarded: tuple[str, ...] = ()
    uses_redis = False
    renders_pages = False  # its pages name static files: collect them first

    def add_arguments(self, parser):
        parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
        parser.add_argument("--postgres-url", default=databases.POSTGRES_URL, help="Dropped and created again.")
        if self.uses_redis:
            parser.add_argument(
                "--redis-url", default=databases.REDIS_URL, help="With postgres (flushed first); empty: ORM broker."
            )
        parser.add_argument("--workdir", type=Path, default=databases.DEFAULT_WORKDIR)
        parser.add_argument("--keep", action="store_true", help="Leave the throw-away database in place.")
        parser.add_argument(
            "--this-database",
            action="store_true",
            help="Run on the configured database, which must be a throw-away one (the command does this itself "
            "once it has made one; the smoke tests use it).",
        )

    def handle(self, *args, **opts):
        if opts["this_database"]:
            return self.measure(opts)
        name = self.__module__.rsplit(".", 1)[-1]
        database = databases.BenchDatabase.named(
            opts["database"], name.removeprefix("bench_"), opts["workdir"], opts["postgres_url"]
        )
        redis_url = opts.get("redis_url", "") if opts["database"] == "postgres" else ""
        code = databases.run_on_throwaway(
            name,
            self.argv(opts),
            database,
            opts["workdir"],
            self.stdout,
            redis_url=redis_url,
            keep=opts["keep"],
            static=self.renders_pages,
        )
        if code:
            raise CommandError(f"{name} failed (exit {code})")

    def argv(self, opts) -> list[str]:
        """The options as the run on the throw-away database gets them."""
        argv = ["--workdir", str(opts["workdir"])] + (["--keep"] if opts["keep"] else [])
        for dest in self.forwarded:
            value = opts[dest]
            flag = f"--{dest.replace('_', '-')}"
            if value is True:
                argv.append(flag)
            elif isinstance(value, list):
                for item in value:
                    argv += [flag, str(item)]
            elif value is not None and value is not False:
                argv += [flag, str(value)]
        return argv

    def measure(self, opts) -> None:
        raise NotImplementedError
