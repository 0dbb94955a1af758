"""Every enqueue in one place, so a move to another task queue touches one file.

Tasks are enqueued after the transaction commits (the worker must see the row) and carry ids
only: django-q2 pickles and signs arguments, it does not encrypt them.
"""

import os
import threading

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string
from django_q.brokers import Broker, get_broker
from django_q.conf import Conf
from django_q.tasks import async_task as _async_task

_broker: tuple[int, Broker] | None = None  # (the process it was made in, the broker)
_broker_lock = threading.Lock()


def broker() -> Broker:
    """This process's broker, made once. django-q2 makes a new one for every task it is not given one for: on
    Redis a new client, connection pool and connection, whose handshake looks up redis-py's version in the
    installed packages' metadata (2.4 ms of CPU a task against 0.09 ms with one broker, measured enqueueing to
    Redis; every step that goes through the queue pays it). Per process: a worker forked from a process that has one
    must not share its socket, so it makes its own."""
    global _broker
    pid = os.getpid()
    with _broker_lock:
        if _broker is None or _broker[0] != pid:
            _broker = (pid, get_broker())
        return _broker[1]


def async_task(func: str, *args, **options):
    return _async_task(func, *args, broker=broker(), **options)


def enqueue(func: str, *args) -> None:
    async_task(func, *args)


def enqueue_on_commit(func: str, *args) -> None:
    transaction.on_commit(lambda: async_task(func, *args))


def advance_on_commit(generation_id: int) -> None:
    """The job is due now. With a cluster, the pump takes its step (it looks for newly due jobs every
    few hundredths of a second): make sure one runs. Without one (sync mode, tests) the step runs here."""
    if Conf.SYNC:
        enqueue_on_commit("generations.tasks.advance", generation_id)
    else:
        transaction.on_commit(import_string("generations.tasks.ensure_pump"))


def take_ended_on_commit(generation_id: int) -> None:
    # A continuous series whose scene this take is moves on (the one-minute "advance-chains" schedule is the
    # safety net if this task is lost).
    enqueue_on_commit("generations.tasks.take_ended", generation_id)


def register_binding_on_commit(binding_id: int) -> None:
    enqueue_on_commit("characters.tasks.register_binding", binding_id)


def build_export_on_commit(export_id: int) -> None:
    # Its own time limit: a library's zip takes longer than any other task. With the ORM broker a build
    # running past Q_RETRY is handed out again; the copy finds the export leased and stops at once.
    transaction.on_commit(
        lambda: async_task("generations.tasks.build_export", export_id, timeout=settings.EXPORT_TIMEOUT)
    )
