"""`make bench` must keep working as the code changes: each benchmark runs here on tiny numbers and prints
its table. (What they measure belongs to `make bench`, never to a test.)"""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from generations.jobs.models import Generation
from generations.providers.models import Backend

HEADER = "| measure | studio | floor | ratio |"


@pytest.mark.django_db
def test_the_pump_benchmark_ticks_over_a_short_and_a_longer_history():
    out = StringIO()
    call_command("bench_pump", rows=300, small=100, repeat=3, this_database=True, stdout=out)

    text = out.getvalue()
    assert HEADER in text
    assert "| pump.tick(), 8 jobs active, 300 finished (ms; floor: 100 finished) |" in text
    assert "| queries per tick |" in text


@pytest.mark.django_db
def test_the_gallery_benchmark_pages_through_a_filled_history():
    out = StringIO()
    call_command("bench_gallery", generations=60, requests=3, repeat=2, this_database=True, stdout=out)

    text = out.getvalue()
    assert HEADER in text
    assert "| gallery, 24 cards, req/s (floor: a bare view, same" in text
    assert "| 'Load older', last page of 60 (ms; floor: page 2) |" in text
    assert Generation.objects.filter(status="completed").exists()  # the filled rows read back through the ORM


@pytest.mark.django_db(transaction=True)
def test_the_pipeline_benchmark_runs_jobs_through_real_workers_and_checks_them(settings, monkeypatch, tmp_path):
    from django_q.conf import Conf

    from generations.bench import pipeline, processes

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    monkeypatch.setattr(Conf, "SYNC", False)  # jobs go through the broker to the bench's qcluster
    monkeypatch.setattr(pipeline, "IDLE_SECONDS", 0.5)
    out = StringIO()
    call_command(
        "bench_pipeline",
        jobs=5,
        rounds=2,
        idle_repeats=1,
        this_database=True,
        shared_simulator_database=True,
        workdir=tmp_path,
        timeout=120,
        stdout=out,
    )

    text = out.getvalue()
    assert HEADER in text
    assert re.search(r"\| jobs/s, (sqlite|postgresql)[^|]*, 1 qcluster\(s\) \|", text), text  # the suite runs on both
    assert "| one job at idle, create → completed (s) |" in text
    assert "| worker-side CPU while idle (ms per second) |" in text
    assert "| slots busy, share of the run (floor: its threads) |" in text
    assert "| mean s per job in a slot: submitting → completed (floor: a whole job) |" in text
    assert re.search(r"\| simulator CPU per job \(ms\) \| [\d.,]+ \| [\d.,]+ \|", text), text
    assert re.search(r"\| CPU per job, all of it \(ms\): [^|]+ \| [\d.,]+ \| [\d.,]+ \| [\d.]+ \|", text), text
    # Two rounds, floor and studio in turn: each round's headline figures, their medians, the median round in full.
    assert "| round | jobs/s studio | floor | ratio | worker CPU per job (ms) studio | floor | ratio |" in text
    assert re.search(r"\| 1 \| [\d.]+ \| [\d.]+ \| [\d.]+ \|", text), text
    assert re.search(r"\| 2 \| [\d.]+ \| [\d.]+ \| [\d.]+ \|", text), text
    assert re.search(r"\| median \| [\d.]+ \| [\d.]+ \| [\d.]+ \|", text), text
    assert re.search(r"Round [12], the median by jobs/s ratio, in full:", text), text
    if connection.vendor == "postgresql" and processes.postmaster():  # a server on this machine, as in CI
        assert re.search(r"\| PostgreSQL server CPU per job \(ms\) \| [\d.,]+ \|", text), text
    for number in (1, 2):
        assert f"round {number}: checks: completed 5 of 5 · made once at the provider 5/5 (creates sent 5) · " in text
    # Each round's backend retires when the round ends: the next round's starts weigh one backend, as the first did.
    assert Backend.objects.filter(name__startswith="Bench simulator").count() == 2
    assert not Backend.objects.filter(name__startswith="Bench simulator", enabled=True).exists()


def test_every_floor_sends_idempotency_keys_of_its_own(monkeypatch):
    """A round of the bench makes a new Floor: keys the simulator knew from an earlier round would be answered with
    that round's finished jobs, and the floor would measure nothing."""
    from generations.bench.floor import Floor

    names = []
    monkeypatch.setattr(Floor, "job", lambda self, session, name, folder: names.append(name))
    for _ in range(2):
        floor = Floor("http://127.0.0.1:9", "key")
        floor.run(3, 1)
        floor.run(3, 1)

    assert len(names) == len(set(names)) == 12


def test_the_floor_measures_no_single_job_when_asked_for_none(monkeypatch, tmp_path):
    """`--idle-repeats 0` (a run that only wants throughput) leaves the one-job-at-idle figure out: no median
    of nothing."""
    from generations.bench import pipeline
    from generations.bench.floor import Floor

    runs = []
    monkeypatch.setattr(Floor, "run", lambda self, jobs, threads: runs.append((jobs, threads)) or 1.0)
    bench = pipeline.PipelineBench(pipeline.Options(jobs=4, idle_repeats=0, workdir=tmp_path), say=lambda _: None)
    monkeypatch.setattr(bench.access_log, "mark", lambda: 0)
    monkeypatch.setattr(bench.access_log, "since", lambda mark: {})
    monkeypatch.setattr(bench, "simulator_cpu", lambda: 0.0)  # no simulator started here
    monkeypatch.setattr(pipeline.time, "sleep", lambda seconds: None)

    floor = bench.measure_floor("http://127.0.0.1:9/simulator/openai/v1")

    assert floor["idle"] is None
    assert runs == [(1, 1), (4, 3)]  # the warm-up, then the run
    assert floor["jobs_per_s"] == 4.0
