"""Tasks go through one broker per process: django-q2 makes a new one (on Redis a new client, pool and
connection) for every task it is not handed one for."""

import os

import pytest
from django.conf import settings

from sora_studio import queue


@pytest.mark.django_db
def test_tasks_share_one_broker_per_process_and_a_forked_worker_makes_its_own(monkeypatch):
    handed = []
    monkeypatch.setattr(queue, "_async_task", lambda func, *args, broker, **options: handed.append(broker))

    queue.enqueue("generations.tasks.run_pump")
    queue.enqueue("generations.tasks.advance", 1)

    assert handed[0] is handed[1] is queue.broker()
    forked = os.getpid() + 1
    monkeypatch.setattr(queue.os, "getpid", lambda: forked)  # as in a worker forked from this process
    assert queue.broker() is not handed[0]


@pytest.mark.skipif(not getattr(settings, "REDIS_URL", ""), reason="the Redis broker: REDIS_URL")
def test_tasks_on_redis_reuse_one_connection():
    broker = queue.broker()
    pool = broker.connection.connection_pool
    try:
        for n in range(5):
            queue.async_task("generations.tasks.advance", n, sync=False)
        assert broker.queue_size() == 5
        assert len(pool._available_connections) + len(pool._in_use_connections) == 1
    finally:
        broker.purge_queue()
