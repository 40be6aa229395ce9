"""Why redis_memory refuses allkeys-* next to a broker: a real Celery worker, Redis as broker AND backend.

The same run under two policies, with maxmemory below the data: tasks are queued while the
worker is stopped, a flood of result keys pushes Redis over its limit, then the worker starts
and we count the tasks that ran (each appends a line to a file, so the count does not live in
Redis and cannot be evicted itself). Run with ``-s`` to see the counts.
"""
import time

import pytest
from celery import Celery

from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys import count_keys
from harness.workload import load_result_keys

QUEUED_TASKS = 200
RESULT_KEYS = 4000
FLOOD_KEYS = 24000          # ~3x the limit in fresh result keys: eviction must run for a long while
RESULT_SIZE = 900
HEADROOM = 512 * 1024       # maxmemory = used after queueing + this

APP_SOURCE = '''
import os

from celery import Celery

app = Celery("proofapp", broker=os.environ["PROOF_REDIS_URL"], backend=os.environ["PROOF_REDIS_URL"])
app.conf.result_expires = 3600
app.conf.broker_connection_retry_on_startup = True


@app.task(name="proof.record")
def record(number):
    with open(os.environ["PROOF_LOG"], "a") as handle:
        handle.write("%d\\n" % number)
    return number
'''


def lines(path):
    try:
        with open(path) as handle:
            return sum(1 for _line in handle)
    except OSError:
        return 0


def wait_for_tasks(server, log_path, expected, settle=2.0, timeout=30.0):
    """Tasks run: wait until all ran, or until the queue is empty and nothing moved for ``settle`` s."""
    client = server.admin()
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        done = lines(log_path)
        if done >= expected:
            return done
        if done != last:
            last, since = done, time.monotonic()
        elif client.llen("celery") == 0 and time.monotonic() - since >= settle:
            return done
        time.sleep(0.1)
    return lines(log_path)


@pytest.mark.parametrize("policy, all_survive", [
    pytest.param("volatile-ttl", True, id="volatile-ttl-keeps-the-queue"),
    pytest.param("allkeys-lru", False, id="allkeys-lru-eats-the-queue"),
])
def test_eviction_under_memory_pressure(redis_factory, celery_worker_factory, tmp_path, policy, all_survive):
    server = redis_factory()
    admin = server.admin()
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "proofapp.py").write_text(APP_SOURCE)
    log_path = str(tmp_path / "ran.log")

    load_result_keys(admin, RESULT_KEYS, ttl_for=lambda i: 3600 + i, size=RESULT_SIZE)
    producer = Celery("producer", broker=server.url)
    try:
        for number in range(QUEUED_TASKS):
            producer.send_task("proof.record", args=[number])
    finally:
        producer.close()
    queued = admin.llen("celery")
    assert queued == QUEUED_TASKS

    limit = admin.info("memory")["used_memory"] + HEADROOM
    admin.config_set("maxmemory-policy", policy)
    admin.config_set("maxmemory", limit)
    time.sleep(2.1)  # the LRU clock ticks once a second: let the queue grow older than the flood
    results_before = count_keys(admin, "celery-task-meta-*")
    load_result_keys(admin, FLOOD_KEYS, ttl_for=lambda i: 7200 + i, prefix="celery-task-meta-flood-",
                     size=RESULT_SIZE)
    queue_after_flood = admin.llen("celery")
    evicted = admin.info("stats")["evicted_keys"]
    first_results_left = count_keys(admin, "celery-task-meta-*") - count_keys(admin, "celery-task-meta-flood-*")

    celery_worker_factory("proofapp", app_dir, env={"PROOF_REDIS_URL": server.url, "PROOF_LOG": log_path})
    ran = wait_for_tasks(server, log_path, QUEUED_TASKS)

    print("\n[%s] maxmemory %d bytes; queued %d tasks; result keys before the flood %d; evicted keys %d; "
          "first result keys left %d; queue length after the flood %d; tasks that ran %d of %d"
          % (policy, limit, queued, results_before, evicted, first_results_left, queue_after_flood, ran,
             QUEUED_TASKS))
    assert evicted > RESULT_KEYS, "the flood did not push Redis into eviction"
    if all_survive:
        assert queue_after_flood == QUEUED_TASKS
        assert ran == QUEUED_TASKS, "volatile-ttl lost queued tasks"
        assert first_results_left < RESULT_KEYS, "no result key was evicted"
    else:
        assert queue_after_flood < QUEUED_TASKS
        assert ran < QUEUED_TASKS, "allkeys-lru kept every queued task this time"
