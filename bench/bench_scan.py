"""Counting 1,000,000 result keys among 2,000,000: ours vs redis-cli --scan vs the server's SCAN time.

The count the wait runs (``KeyCounter``) walks with SCAN on the server, in a script that returns
only how many keys it found, so no key name is parsed on the client: with redis-py's pure-Python
parser (a host without hiredis) it stays near the server's own SCAN time (goal: at most 1.5x).
Plain SCAN, where scripts are refused, is measured beside it.
"""
import subprocess
import tempfile
import time

import redis
from redis.connection import ConnectionPool

from harness.redis_server import RedisServer

from ansible_collections.celery_ops.lean_results.plugins.module_utils._keyspace import count_keys
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys import (
    DEFAULT_PATTERN,
    measure_result_keys,
)

RESULT_KEYS = 1000000
OTHER_KEYS = 1000000
PARSER_GOAL_RATIO = 1.5


def pure_python_parser():
    """redis-py's RESP2 parser written in Python: a private class whose home moved in redis-py 5
    (redis._parsers._RESP2Parser); redis-py 4.x has it as redis.connection.PythonParser."""
    try:
        from redis._parsers import _RESP2Parser
    except ImportError:  # redis-py 4.x
        from redis.connection import PythonParser as _RESP2Parser
    return _RESP2Parser


def resp2():
    """Connection arguments for RESP2: redis-py 8 speaks RESP3 by default and would then swap the
    RESP2 parser for its RESP3 one; before 5.0 there is no ``protocol`` argument (RESP2 only)."""
    return {"protocol": 2} if int(redis.__version__.split(".")[0]) >= 5 else {}


def _server_scan_seconds(client):
    stats = client.info("commandstats").get("cmdstat_scan", {})
    return stats.get("usec", 0) / 1e6


def _timed_count(client, use_script=False):
    client.config_resetstat()
    started = time.monotonic()
    found = count_keys(client, DEFAULT_PATTERN, use_script=use_script)
    elapsed = time.monotonic() - started
    assert found == RESULT_KEYS, found
    return elapsed, _server_scan_seconds(client)


def run():
    workdir = tempfile.mkdtemp(prefix="bench-scan-")
    server = RedisServer(workdir, extra={"enable-debug-command": "yes"}).start()
    try:
        client = server.admin()
        # DEBUG POPULATE writes keys server-side: 2M keys in seconds instead of a minute.
        client.execute_command("DEBUG", "POPULATE", RESULT_KEYS, "celery-task-meta-", 150)
        client.execute_command("DEBUG", "POPULATE", OTHER_KEYS, "session:", 150)

        ours, server_seconds = _timed_count(client)

        # The same count with redis-py's pure-Python parser, as on a host without hiredis.
        plain = redis.Redis(connection_pool=ConnectionPool(
            host=server.host, port=server.port, parser_class=pure_python_parser(), **resp2()))
        ours_plain, server_plain = _timed_count(plain)
        ours_counted, server_counted = _timed_count(plain, use_script=True)

        started = time.monotonic()
        output = subprocess.run(
            "redis-cli -h %s -p %d --scan --pattern '%s' | wc -l" % (server.host, server.port, DEFAULT_PATTERN),
            shell=True, capture_output=True, text=True, check=True).stdout
        cli = time.monotonic() - started
        assert int(output.strip()) == RESULT_KEYS

        started = time.monotonic()
        measured = measure_result_keys(client, DEFAULT_PATTERN, sample=1000)
        full = time.monotonic() - started
        assert measured["count"] == RESULT_KEYS
    finally:
        server.stop()
    return [
        dict(name="count 1M result keys among 2M (vs redis-cli --scan | wc -l)", value=round(ours, 3), unit="s",
             reference="redis-cli --scan", reference_value=round(cli, 3), ratio=round(cli / ours, 2)),
        dict(name="count 1M result keys among 2M (vs server time in SCAN)", value=round(ours, 3), unit="s",
             reference="server SCAN usec", reference_value=round(server_seconds, 3),
             ratio=round(ours / server_seconds, 2)),
        dict(name="count 1M result keys among 2M, pure-Python parser, counted on the server (the wait's count)",
             value=round(ours_counted, 3), unit="s",
             reference="server SCAN usec (goal ratio <= %s)" % PARSER_GOAL_RATIO,
             reference_value=round(server_counted, 3), ratio=round(ours_counted / server_counted, 2)),
        dict(name="count 1M result keys among 2M, pure-Python parser, plain SCAN (where scripts are refused)",
             value=round(ours_plain, 3), unit="s", reference="server SCAN usec", reference_value=round(server_plain, 3),
             ratio=round(ours_plain / server_plain, 2)),
        dict(name="result_keys_info full measure of 1M keys (count + every TTL + 1000 MEMORY USAGE)",
             value=round(full, 3), unit="s", reference="redis-cli --scan (count only)",
             reference_value=round(cli, 3), ratio=round(cli / full, 2)),
    ]
