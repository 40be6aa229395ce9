"""result_keys_wait: expedite 1M keys (Lua, pipeline, naive), the Redis CPU of our polling, and boost.

- Expedite 1,000,000 keys (TTL one day, capped to one hour): keys/s of the Lua batches, the
  pipeline, and a naive loop (one command per key, measured on a 50,000-key slice and
  extrapolated), each with the p99 latency of GETs from another process meanwhile.
- Redis CPU (INFO used_cpu_sys + used_cpu_user) used by our wait for 200,000 keys expiring among
  1,000,000 long-lived ones, against a `redis-cli --scan --pattern ... | wc -l` loop at the same
  interval over the same time.
- Time from the last expiry to `met`, with and without boost_active_expire.
"""
import multiprocessing
import subprocess
import tempfile
import time

from harness.redis_server import RedisServer
from harness.workload import result_payload

from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys import scan_keys
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait import (
    RedisProbe,
    WaitSettings,
    wait_for_fall,
)

KEYS = 1000000
NAIVE_SLICE = 50000
LONG_LIVED = 1000000
EXPIRING = 200000
EXPIRING_TTL = 8
POLL = 1.0
PATTERN = "celery-task-meta-*"

LOAD_SCRIPT = """
local first, last, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = first, last do redis.call('SET', ARGV[4] .. i, ARGV[5], 'EX', ttl) end
return last - first + 1
"""


def _load(client, count, ttl, prefix, chunk=100000):
    script = client.register_script(LOAD_SCRIPT)
    payload = result_payload("bench", 120)
    for first in range(0, count, chunk):
        script(args=[first, min(first + chunk, count) - 1, ttl, prefix, payload])


def _get_loop(host, port, stop, results):
    import redis
    client = redis.Redis(host=host, port=port)
    client.set("latency-probe", b"x" * 100)
    latencies = []
    while not stop.is_set():
        started = time.perf_counter()
        client.get("latency-probe")
        latencies.append(time.perf_counter() - started)
        time.sleep(0.0005)
    latencies.sort()
    results.put(latencies[int(len(latencies) * 0.99)] * 1000 if latencies else None)


class GetLatency(object):
    """GETs from another process (its own GIL), p99 in milliseconds."""

    def __init__(self, server):
        context = multiprocessing.get_context("fork")
        self.stop = context.Event()
        self.results = context.Queue()
        self.process = context.Process(target=_get_loop, args=(server.host, server.port, self.stop, self.results))

    def __enter__(self):
        self.process.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.p99 = self.results.get(timeout=30)
        self.process.join(10)


def _naive(client, cap_ms, limit):
    """One command per key: PTTL, then PEXPIRE when above the cap."""
    done = 0
    for batch in scan_keys(client, PATTERN, count=1000):
        for key in batch:
            if client.pttl(key) > cap_ms:
                client.pexpire(key, cap_ms)
            done += 1
            if done >= limit:
                return done
    return done


def _cpu(client):
    info = client.info("cpu")
    return info["used_cpu_sys"] + info["used_cpu_user"]


def _expedite_entries(server):
    client = server.admin()
    _load(client, KEYS, 86400, "celery-task-meta-")
    entries = []
    figures = {}
    for method, cap in (("lua", 3600), ("pipeline", 1800)):
        probe = RedisProbe(client, PATTERN, batch_size=1000, version=(7, 0, 0))
        with GetLatency(server) as latency:
            passed = probe.expedite(cap, method=method)
        assert passed.capped == KEYS, (method, passed.capped)
        figures[method] = (KEYS / passed.seconds, latency.p99)
    with GetLatency(server) as latency:
        started = time.monotonic()
        done = _naive(client, 900 * 1000, NAIVE_SLICE)
        naive_seconds = time.monotonic() - started
    figures["naive"] = (done / naive_seconds, latency.p99)
    lua_rate, lua_p99 = figures["lua"]
    for method, label in (("lua", "Lua batches of 1000"), ("pipeline", "pipelined PTTL + PEXPIRE LT"),
                          ("naive", "naive one command per key, 50k-key slice extrapolated")):
        rate, p99 = figures[method]
        entries.append(dict(name="expedite 1M keys: %s" % label, value=round(rate), unit="keys/s",
                            reference="target", reference_value=200000, ratio=round(rate / 200000.0, 2)))
        entries.append(dict(name="p99 GET latency during expedite: %s" % label, value=round(p99, 3), unit="ms",
                            reference="target", reference_value=5.0, ratio=round(p99 / 5.0, 3)))
    entries.append(dict(name="expedite 1M keys: naive loop extrapolated to 1M", value=round(KEYS / figures["naive"][0], 1),
                        unit="s", reference="Lua batches", reference_value=round(KEYS / lua_rate, 2),
                        ratio=round(lua_rate / figures["naive"][0], 1)))
    client.flushall()
    return entries


def _expiring_wave(client):
    """200,000 keys that all expire EXPIRING_TTL s from now; returns the moment the last one expires."""
    started = time.monotonic()
    _load(client, EXPIRING, EXPIRING_TTL, "celery-task-meta-wave-")
    return started + EXPIRING_TTL + (time.monotonic() - started)


def _our_wait(client, boost):
    last_expiry = _expiring_wave(client)
    cpu_before = _cpu(client)
    started = time.monotonic()
    result = wait_for_fall(RedisProbe(client, PATTERN), WaitSettings(target_count=0, timeout=60, poll_interval=POLL,
                                                                     boost_active_expire=boost))
    ended = time.monotonic()
    assert result["met"], result
    return dict(cpu=_cpu(client) - cpu_before, seconds=ended - started, after_last_expiry=ended - last_expiry)


def _cli_loop(server, client, seconds):
    _expiring_wave(client)
    cpu_before = _cpu(client)
    deadline = time.monotonic() + seconds
    passes = 0
    while time.monotonic() < deadline:
        began = time.monotonic()
        subprocess.run("redis-cli -h %s -p %d --scan --pattern '%s' | wc -l" % (server.host, server.port, PATTERN),
                       shell=True, capture_output=True, check=True)
        passes += 1
        time.sleep(max(0.0, POLL - (time.monotonic() - began)))
    return _cpu(client) - cpu_before, passes


def _wait_entries(server):
    client = server.admin()
    _load(client, LONG_LIVED, 86400 * 7, "session:")  # long-lived keys outside the pattern
    plain = _our_wait(client, boost=False)
    boosted = _our_wait(client, boost=True)
    cli_cpu, passes = _cli_loop(server, client, plain["seconds"])
    idle_before = _cpu(client)
    _expiring_wave(client)
    time.sleep(plain["seconds"])
    idle_cpu = _cpu(client) - idle_before
    return [
        dict(name="Redis CPU of our wait (%d keys expiring among %d, poll %ss, %.1fs)"
             % (EXPIRING, LONG_LIVED, POLL, plain["seconds"]), value=round(plain["cpu"], 3), unit="cpu-s",
             reference="redis-cli --scan | wc -l loop, same interval and time (%d passes)" % passes,
             reference_value=round(cli_cpu, 3), ratio=round(cli_cpu / max(plain["cpu"], 1e-6), 2)),
        dict(name="Redis CPU over the same time with nobody polling (expiry alone)", value=round(idle_cpu, 3),
             unit="cpu-s", reference="our wait", reference_value=round(plain["cpu"], 3),
             ratio=round(plain["cpu"] / max(idle_cpu, 1e-6), 2)),
        dict(name="last expiry to met, %d keys among %d, boost_active_expire" % (EXPIRING, LONG_LIVED),
             value=round(boosted["after_last_expiry"], 3), unit="s", reference="without boost",
             reference_value=round(plain["after_last_expiry"], 3),
             ratio=round(plain["after_last_expiry"] / max(boosted["after_last_expiry"], 1e-6), 2)),
    ]


def run():
    server = RedisServer(tempfile.mkdtemp(prefix="bench-expedite-")).start()
    try:
        return _expedite_entries(server) + _wait_entries(server)
    finally:
        server.stop()


if __name__ == "__main__":
    for entry in run():
        print(entry)
