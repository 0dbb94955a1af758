"""The pump: finds jobs that are due (to submit, to poll, or left behind by a dead worker) and
runs their next step.

django-q2 has no "run this in 2 s" and its scheduler ticks every ~30 s, so a job's next step is a
row (`next_poll_at`) and this loop claims due rows. It runs as a long-lived task inside
`qcluster` (started and restarted by a one-minute Schedule) or on its own with `manage.py pump`.
A lease row makes sure only one pump runs at a time; any number may try.

A claimed step runs on one of the pump's own threads when one is free (`Hands`): no trip through the
task queue, and a job whose provider asks to be polled again within moments stays on its thread until
it does. A job that ends there gives its slot to its backend's next queued job in its completing
transaction (claims.hand_slot_on), and the thread sends that job next. Steps no thread is free for go to
the qcluster workers as tasks, so a burst spreads over every cluster.
"""

from __future__ import annotations

import logging
import os
import queue as queue_module
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, connections
from django.db.models import Q
from django.utils import timezone

from generations.jobs import claims, lifecycle
from generations.jobs.claims import HANDOUT_GRACE
from generations.jobs.models import Generation, PumpLease
from generations.providers import http
from generations.providers.models import Backend
from generations.states import Status
from sora_studio import queue

log = logging.getLogger(__name__)

LEASE_NAME = "pump"
# Timeouts are minutes long: the pump's loop looks for overdue jobs this often, not on every tick.
SWEEP_SECONDS = 5.0
BATCH = 200


def tick(now=None, hands: Hands | None = None, *, full: bool = True, sweeping: bool | None = None) -> int:
    """End overdue jobs, then hand out every due job once: to a free thread of `hands`, else to the task
    queue. Returns how many were handed out. `full=False` (a step just ended) skips the sweep and the
    characters' registrations, which the next full tick does, and counts free slots against the backends as
    the last full tick read them (submit's own count, under the backend's lock, is the one that decides).
    `sweeping`: whether to end overdue jobs (by default on a full tick; the pump's loop does every few seconds)."""
    now = now or timezone.now()
    sweeping = full if sweeping is None else sweeping
    if sweeping:
        sweep(now)
    if full or hands is None or hands.backends is None:
        backends = _backends()
        if hands is not None:
            hands.backends = backends
    else:
        backends = hands.backends
    free = _free_slots(now, backends)
    # A queued job of a full (or paused) backend waits here: not read again on every tick.
    saturated = [pk for pk, slots in free.items() if slots <= 0]
    handed = 0
    for pk, next_poll_at, status, backend_id in claims.due(now, saturated, BATCH):
        if status == Status.QUEUED:
            # A queued job waits here, not in the task queue, while its backend is full or paused.
            if free.get(backend_id, 0) <= 0:
                continue
            free[backend_id] -= 1
        # Compare-and-set, so two pumps (or a pump and a late worker) never hand out a job twice. A job for
        # one of the pump's own threads is leased in the same write (the thread need not claim it again).
        if hands is not None and hands.reserve():
            if lease := claims.take(pk, status, next_poll_at, now):
                hands.run(pk, lease)
                handed += 1
            else:
                hands.unreserve()
        elif Generation.objects.filter(pk=pk, next_poll_at=next_poll_at).update(next_poll_at=now + HANDOUT_GRACE):
            queue.enqueue("generations.tasks.advance", pk)
            handed += 1
    if not full:
        return handed
    from characters.models import CharacterBinding
    from characters.registry import due_bindings

    for pk, next_try_at in list(due_bindings(now).values_list("pk", "next_try_at")[:BATCH]):
        if CharacterBinding.objects.filter(pk=pk, next_try_at=next_try_at).update(next_try_at=now + HANDOUT_GRACE):
            queue.enqueue("characters.tasks.register_binding", pk)
            handed += 1
    return handed


def sweep(now=None) -> int:
    """End active jobs past their backend's timeout as timed out (refunded where billed), whether or
    not a poll is due: a job whose next poll is far off, or that no worker picks up, still ends on time.

    A job a worker holds is left to it until its lease ends (it may be storing the finished video).
    Each job is taken by compare-and-set on its lease, then ended by compare-and-set on its status,
    so two pumps (or a pump and a worker) end it once. Returns how many it ended.
    """
    now = now or timezone.now()
    timeouts = dict(Backend.objects.values_list("pk", "timeout_seconds"))
    # The active jobs are few (the status index finds them), and only those older than the shortest timeout
    # are read; each one's own deadline is checked here rather than as one OR per backend in SQL, which SQLite
    # plans as a scan of every generation each backend ever had.
    shortest = min([seconds for seconds in timeouts.values() if seconds], default=settings.GENERATION_TIMEOUT)
    old_enough = now - timedelta(seconds=min(shortest, settings.GENERATION_TIMEOUT))
    overdue = [
        pk
        for pk, backend_id, created_at in Generation.objects.active()
        .unleased(now)
        .filter(created_at__lte=old_enough)
        .values_list("pk", "backend_id", "created_at")
        if created_at <= now - timedelta(seconds=timeouts.get(backend_id) or settings.GENERATION_TIMEOUT)
    ]
    swept = 0
    for pk in overdue[:BATCH]:
        hold = now + timedelta(seconds=settings.GENERATION_LEASE_SECONDS)
        if not Generation.objects.active().unleased(now).filter(pk=pk).update(lease_until=hold):
            continue  # another pump or a worker took it first
        generation = Generation.objects.select_related("backend").get(pk=pk)
        if generation.time_out():
            swept += 1
    return swept


def _backends() -> list[tuple]:
    """Each backend's (pk, max_in_flight, paused_until): what free slots are counted against."""
    return list(Backend.objects.values_list("pk", "max_in_flight", "paused_until"))


def _free_slots(now, backends: list[tuple] | None = None) -> dict[int, int]:
    """Concurrency slots left per backend (none while the provider asked us to slow down).

    Counts only the jobs in flight (through the status index): a tick costs the same with a million
    finished generations in the table as with a hundred. `backends`: as `_backends()` read them, if recently."""
    used = claims.slots_taken()
    return {
        pk: 0 if (paused_until and paused_until > now) else cap - used.get(pk, 0)
        for pk, cap, paused_until in (_backends() if backends is None else backends)
    }


# The lease's holder while a pump task is on its way to a worker (see claim_start).
STARTING = "starting"
START_GRACE = timedelta(seconds=30)


def acquire(holder: str, seconds: float) -> bool:
    now = timezone.now()
    PumpLease.objects.get_or_create(name=LEASE_NAME)
    return (
        PumpLease.objects.filter(name=LEASE_NAME)
        .filter(Q(holder=holder) | Q(expires_at__lt=now) | Q(holder="") | Q(holder=STARTING))
        .update(holder=holder, expires_at=now + timedelta(seconds=seconds))
        == 1
    )


def claim_start() -> bool:
    """True for exactly one caller while no pump runs and none is on its way: that caller enqueues one.

    So a burst of new jobs starts one pump, never a queue of them; a pump task lost on its way (a dying
    worker, the Redis broker's at-most-once delivery) is replaced after START_GRACE."""
    now = timezone.now()
    if is_running():
        return False
    PumpLease.objects.get_or_create(name=LEASE_NAME)
    return (
        PumpLease.objects.filter(name=LEASE_NAME)
        .filter(Q(expires_at__lt=now) | Q(holder=""))
        .update(holder=STARTING, expires_at=now + START_GRACE)
        == 1
    )


def release(holder: str) -> None:
    PumpLease.objects.filter(name=LEASE_NAME, holder=holder).update(holder="", expires_at=timezone.now())


def hand_over(holder: str) -> bool:
    """End a shift keeping the lease for the successor the caller enqueues (no second pump meanwhile)."""
    return bool(
        PumpLease.objects.filter(name=LEASE_NAME, holder=holder).update(
            holder=STARTING, expires_at=timezone.now() + START_GRACE
        )
    )


def is_running() -> bool:
    return PumpLease.objects.filter(name=LEASE_NAME, expires_at__gte=timezone.now()).exclude(holder="").exists()


def run(
    seconds: float | None = None,
    tick_seconds: float | None = None,
    *,
    hand_over_at_end: bool = False,
    threads: int | None = None,
) -> bool:
    """Pump for `seconds` (forever if None) while holding the lease. False if another pump runs.

    `hand_over_at_end`: keep the lease for a successor (the caller enqueues it) rather than release it.
    `threads`: the pump's own threads for steps (PUMP_THREADS; 0: every step goes to the task queue)."""
    holder = uuid.uuid4().hex
    tick_seconds = tick_seconds or settings.PUMP_TICK_SECONDS
    lease_seconds = max(10.0, tick_seconds * 20)
    if not acquire(holder, lease_seconds):
        return False
    hands = Hands(settings.PUMP_THREADS if threads is None else threads)
    stop_at = None if seconds is None else time.monotonic() + seconds
    parent = os.getppid()
    renewed = time.monotonic()
    full_at = sweep_at = 0.0
    try:
        while (stop_at is None or time.monotonic() < stop_at) and os.getppid() == parent:  # orphaned: stop
            _drop_stale_connections()
            ticked_at = timezone.now()
            # The sweep and the characters' registrations every tick; only the due jobs when a step ended.
            full = time.monotonic() >= full_at
            try:
                if time.monotonic() - renewed > lease_seconds / 3:  # a write only now and then, not every tick
                    if not acquire(holder, lease_seconds):
                        log.warning("pump lost its lease; stopping")
                        return False
                    renewed = time.monotonic()
                sweeping = full and time.monotonic() >= sweep_at
                tick(ticked_at, hands, full=full, sweeping=sweeping)
                if full:
                    full_at = time.monotonic() + tick_seconds
                if sweeping:
                    sweep_at = time.monotonic() + max(SWEEP_SECONDS, tick_seconds)
            except DatabaseError:
                log.exception("pump tick failed: the database")
                _drop_stale_connections()
            except Exception:
                log.exception("pump tick failed")
            left = min(tick_seconds, max(full_at - time.monotonic(), 0))
            _sleep_until_due(left, stop_at, ticked_at, hands.ended, hands.busy if hands.threads else None)
    except BaseException:
        hands.finish()
        release(holder)
        raise
    hands.finish()  # the steps under way end before the lease goes (they hold their jobs' leases anyway)
    if not (hand_over_at_end and hand_over(holder)):
        release(holder)
    return True


class Hands:
    """The pump's own threads, for one shift. `reserve()` then `run(pk, lease)` runs the job's steps on one at once.

    Each thread has its own database connection (Django's are per thread), dropped when stale as django-q2 drops
    a worker's between tasks, and closed when the shift ends (`finish`): a pump that hands over every 30 s must
    not leave three connections behind each time. A step that ends sets `ended`, so the pump looks for what it
    freed (a concurrency slot, a job now due) at once instead of at its next tick."""

    def __init__(self, threads: int):
        self.threads = threads
        self.idle = threads
        self.backends = None  # as the last full tick read them
        self.stopping = False
        self.lock = threading.Lock()
        self.ended = threading.Event()
        self.work: queue_module.SimpleQueue = queue_module.SimpleQueue()
        self.pool = [threading.Thread(target=self._serve, name=f"pump-step-{n}", daemon=True) for n in range(threads)]
        for thread in self.pool:
            thread.start()

    def reserve(self) -> bool:
        """Book a thread, if one is free, for a job about to be taken (run it, or unreserve)."""
        with self.lock:
            if self.idle <= 0:
                return False
            self.idle -= 1
            return True

    def busy(self) -> bool:
        return self.idle <= 0

    def unreserve(self) -> None:
        with self.lock:
            self.idle += 1

    def run(self, pk: int, lease) -> None:
        """Run the job's steps on the booked thread; the caller leased the job until `lease` (claims.take)."""
        self.work.put((pk, lease))

    def finish(self) -> None:
        """Let the steps under way end (their jobs' next steps are left to the next pump), then stop the threads
        and close their connections."""
        self.stopping = True
        for _ in self.pool:
            self.work.put(None)
        for thread in self.pool:
            thread.join()

    def _serve(self) -> None:
        try:
            with claims.pump_thread():
                while (item := self.work.get()) is not None:
                    self._steps(*item)
        finally:
            connections.close_all()  # this thread's own
            http.close_sessions()

    def _steps(self, pk: int, lease) -> None:
        try:
            _drop_stale_connections()
            generation = None  # the job as its last step on this thread left it (None: read it)
            while lease:
                generation = lifecycle.advance(pk, held_until=lease, known=generation)
                if handed := getattr(generation, "successor", None):
                    # The job's end (lifecycle.complete) gave its slot to its backend's next queued job, submitting now
                    # and leased for this thread: its create goes out next, even as the shift ends (it is in flight).
                    (generation, lease), pk = handed, handed[0].pk
                    continue
                if self.stopping:
                    # The shift ends: what is left goes back to the table, for the next pump. A slot this step freed
                    # is not taken here, so its backend's next queued job falls due now (as a job ending elsewhere
                    # makes it), rather than wait for the next pump's tick; a job the step kept is let go.
                    if freed := _freed_a_slot(generation):
                        claims.wake_next_in_line(freed, timezone.now())
                    elif kept := _kept(generation, lease):
                        claims.let_go(pk, kept)
                    break
                lease = _hold(generation, lease)
                if lease is None:
                    freed, generation = _freed_a_slot(generation), None
                    if freed:
                        # The slot this job held goes to its backend's next queued job, on this thread, at once (read
                        # as it was taken: its first step starts from that account).
                        generation, lease = claims.take_next_queued(freed, timezone.now())
                        pk = generation.pk if generation is not None else pk
        except Exception:
            log.exception("generation %s: step failed on the pump's thread", pk)
        finally:
            _drop_stale_connections()
            with self.lock:
                self.idle += 1
            self.ended.set()


def _freed_a_slot(generation: Generation | None) -> int | None:
    """The backend whose slot the job just gave back by ending (None: it held none, or has not ended)."""
    if generation is not None and generation.is_terminal and generation.submitted_at is not None:
        return generation.backend_id
    return None


def _hold(generation: Generation | None, held):
    """After a step run under the lease `held`: wait on this thread for the job's next poll if it is due within
    HOLD_SECONDS, and return the lease to run it under; None when the job ended, waits for a slot, or is not due soon.

    A step whose last write kept the job (claims.lease_kept: a new lease) is trusted as it stands: nobody else takes
    a job while it is leased. Otherwise the job is leased as the pump would (claims.take), if it is still as the
    step left it (its status and due time), so a webhook or a sweep since lets it go back to the pump. Either way
    the step's own account of the job is trusted (no read), and the next step starts from it."""
    if generation is None or not generation.is_active or generation.status == Status.QUEUED:
        return None  # ended, or queued: a queued job waits for a slot the pump counts
    kept = _kept(generation, held)
    due = generation.next_poll_at
    now = timezone.now()
    if due is None or due > now + timedelta(seconds=claims.HOLD_SECONDS):
        if kept:
            claims.let_go(generation.pk, kept)
        return None
    time.sleep(max((due - now).total_seconds(), 0))
    return kept or claims.take(generation.pk, generation.status, due, timezone.now())


def _kept(generation: Generation | None, held):
    """The lease the step's last write left on the job, if it kept it (a new lease, not the one it ran under)."""
    lease = generation.lease_until if generation is not None and generation.is_active else None
    return lease if lease is not None and lease != held else None


def _drop_stale_connections() -> None:
    """A long-lived loop drops a kept database connection that is too old or broken (a restarted database),
    as Django does between requests and django-q2 between tasks; never inside a transaction (a test's)."""
    if not connection.in_atomic_block:
        close_old_connections()


# While it waits for its next tick, the pump looks this often for a job that fell due sooner (a create
# whose provider hinted a quick first poll, a webhook): one indexed read, so a due job waits at most this.
WAKE_SLICE = 0.05


def _sleep_until_due(
    tick_seconds: float,
    stop_at: float | None,
    ticked_at,
    ended: threading.Event | None = None,
    busy: Callable[[], bool] | None = None,
):
    """Sleep until the next tick, until a job falls due that was not due at the last tick (one that
    was, and is still waiting for a free slot, does not make the pump spin), or until one of the pump's own
    steps ended (`ended`), whichever comes first. While `busy()` (every thread of the pump's is working) it
    does not look for due jobs: one of the steps ending wakes it."""
    wake = time.monotonic() + tick_seconds
    if stop_at is not None:
        wake = min(wake, stop_at)
    ended = ended or threading.Event()
    while (left := wake - time.monotonic()) > 0:
        if ended.wait(min(WAKE_SLICE, left)):
            ended.clear()
            return
        if busy is not None and busy():
            continue  # no thread to give a newly due job to: the next step to end wakes the pump anyway
        if claims.fell_due(ticked_at, timezone.now()):
            return


def wait_until_terminal(generation, timeout: float, interval: float = 0.5):
    """Block until the job is terminal (for `--wait`). With no cluster (sync mode) pump here too."""
    from django_q.conf import Conf

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        generation.refresh_from_db()
        if generation.is_terminal:
            return generation
        if Conf.SYNC:
            tick()
        time.sleep(interval)
    generation.refresh_from_db()
    return generation
