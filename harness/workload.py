"""Fill a Redis with what a Celery deployment leaves there: result keys, broker keys, others."""
import json
import uuid

KOMBU_SEP = b"\x06\x16"


def result_payload(task_id, size=120):
    """A result value shaped like Celery's JSON result meta."""
    return json.dumps({
        "status": "SUCCESS", "result": "x" * size, "traceback": None, "children": [],
        "date_done": "2026-11-25T10:00:00.000000", "task_id": task_id,
    }).encode()


def load_result_keys(client, count, ttl_for=lambda i: 86400, prefix="celery-task-meta-",
                     size=120, batch=5000):
    """Write ``count`` result keys; ``ttl_for(i)`` gives each TTL in seconds (None: no TTL)."""
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        task_id = str(uuid.UUID(int=i + (hash(prefix) & 0xFFFF) * 10 ** 12))
        ttl = ttl_for(i)
        if ttl is None:
            pipe.set(prefix + task_id, result_payload(task_id, size))
        else:
            pipe.set(prefix + task_id, result_payload(task_id, size), ex=ttl)
        if (i + 1) % batch == 0:
            pipe.execute()
    pipe.execute()


def load_broker_keys(client, queue="celery", messages=25):
    """What kombu's Redis transport keeps: a binding set, a queue list, unacked structures."""
    client.sadd("_kombu.binding.celery", queue.encode() + KOMBU_SEP + KOMBU_SEP + queue.encode())
    for i in range(messages):
        client.lpush(queue, json.dumps({"body": "msg-%d" % i}))
    client.hset("unacked", "tag-1", json.dumps({"body": "in flight"}))
    client.zadd("unacked_index", {"tag-1": 1.0})


def load_other_keys(client, count=1000):
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        pipe.set("session:%d" % i, "v" * 40)
    pipe.execute()
