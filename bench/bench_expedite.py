"""result_keys_wait: the expedite pass (throughput, GET latency, pacing, timeout) and the Redis CPU of the wait.

Each figure sits beside its reference, measured in the same run:

- Lua expedite of 1,000,000 keys (TTL one day, capped to one hour), keys/s against the goal
  (300,000 keys/s); the pipeline and a naive loop (one command per key, a 50,000-key slice
  extrapolated) for comparison.
- p99 latency of GETs from another process during the Lua expedite, against the p99 of the same
  GET loop with no expedite running, measured just before (goal: at most 2x).
- batch_size 1,000,000: clamped to 10,000 and paced, the longest Lua call (goal: about 1 ms).
- timeout 1 over the expedite of 1,000,000 keys: the module's time (goal: about 1 s), with how far it got.
- Redis CPU (INFO used_cpu_sys + used_cpu_user) of the wait for 200,000 keys expiring among
  1,000,000 long-lived ones, against one SCAN pass over the keyspace plus expiry alone (the CPU of
  the same seconds with nobody polling); goal at most 1.5x.
- Time from the last expiry to ``met``, with and without boost_active_expire.
"""
import multiprocessing
import tempfile
import time

from harness.redis_server import RedisServer
from harness.workload import result_payload

from ansible_collections.celery_ops.lean_results.plugins.module_utils._keyspace import count_keys, scan_keys
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
THROUGHPUT_GOAL = 300000
LATENCY_GOAL_RATIO = 2.0
CPU_GOAL_RATIO = 1.5

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
        self.p99 = None

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
    figures = {}
    with GetLatency(server) as idle:  # the same GET loop, with nothing else running: the reference
        time.sleep(3.0)
    for method, cap in (("lua", 3600), ("pipeline", 1800)):
        probe = RedisProbe(client, PATTERN, batch_size=1000, version=(7, 0, 0))
        with GetLatency(server) as latency:
            passed = probe.expedite(cap, method=method)
        assert passed.capped == KEYS, (method, passed.capped)
        figures[method] = (KEYS / passed.seconds, latency.p99, passed.pacing)
    with GetLatency(server) as latency:
        started = time.monotonic()
        done = _naive(client, 900 * 1000, NAIVE_SLICE)
        naive_seconds = time.monotonic() - started
    figures["naive"] = (done / naive_seconds, latency.p99, None)

    huge = RedisProbe(client, PATTERN, batch_size=1000000, version=(7, 0, 0))
    clamped = huge.expedite(600)
    assert clamped.capped == KEYS and huge.batch_size == 10000, huge.warnings

    wait_started = time.monotonic()
    settings = WaitSettings(max_ttl=300, expedite=True, timeout=1, fail_on_unmet=False)
    timed = wait_for_fall(RedisProbe(client, PATTERN), settings)
    wait_seconds = time.monotonic() - wait_started
    assert timed["expedite_complete"] is False and 0 < timed["expedited"] < KEYS, timed["msg"]

    lua_rate, lua_p99, lua_pacing = figures["lua"]
    entries = [
        dict(name="Lua expedite throughput, 1M keys (batch ceiling 1000, paced; largest %d, calls p50 %s ms, p99 %s ms)"
             % (lua_pacing["largest"], lua_pacing["p50_ms"], lua_pacing["p99_ms"]), value=round(lua_rate), unit="keys/s",
             reference="goal", reference_value=THROUGHPUT_GOAL, ratio=round(lua_rate / THROUGHPUT_GOAL, 2)),
        dict(name="p99 GET latency during the Lua expedite", value=round(lua_p99, 3), unit="ms",
             reference="p99 with no expedite running (goal ratio <= %s)" % LATENCY_GOAL_RATIO,
             reference_value=round(idle.p99, 3), ratio=round(lua_p99 / idle.p99, 2)),
    ]
    for method, label in (("pipeline", "pipelined PTTL + PEXPIRE LT, paced"),
                          ("naive", "naive one command per key, 50k-key slice extrapolated")):
        rate, p99, _pacing = figures[method]
        entries.append(dict(name="expedite 1M keys: %s" % label, value=round(rate), unit="keys/s",
                            reference="Lua", reference_value=round(lua_rate), ratio=round(rate / lua_rate, 2)))
        entries.append(dict(name="p99 GET latency during expedite: %s" % label, value=round(p99, 3), unit="ms",
                            reference="p99 with no expedite running", reference_value=round(idle.p99, 3),
                            ratio=round(p99 / idle.p99, 2)))
    entries += [
        dict(name="batch_size 1000000, clamped to 10000 and paced: p99 Lua call (%d calls, largest batch %d, "
             "p50 %s ms, slowest %s ms)" % (clamped.pacing["calls"], clamped.pacing["largest"], clamped.pacing["p50_ms"],
                                            clamped.pacing["slowest_ms"]),
             value=clamped.pacing["p99_ms"], unit="ms", reference="call budget", reference_value=1.0,
             ratio=round(clamped.pacing["p99_ms"] / 1.0, 2)),
        dict(name="timeout 1 over the expedite of 1M keys: wait_for_fall time (stopped with %d keys capped, "
             "expedite_complete false)" % timed["expedited"], value=round(wait_seconds, 3), unit="s",
             reference="timeout", reference_value=1.0, ratio=round(wait_seconds, 2)),
    ]
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
    counts = sum(1 for point in result["samples"] if point[1] is not None)
    return dict(cpu=_cpu(client) - cpu_before, seconds=ended - started, after_last_expiry=ended - last_expiry,
                counts=counts)


def _one_scan_pass(client):
    """CPU of one SCAN pass over the keyspace (the long-lived keys and a wave not yet expired)."""
    _expiring_wave(client)
    cpu_before = _cpu(client)
    count_keys(client, PATTERN)
    cpu = _cpu(client) - cpu_before
    time.sleep(EXPIRING_TTL + 1)
    count_keys(client, PATTERN)  # reclaim the wave before the next measure
    return cpu


def _wait_entries(server):
    client = server.admin()
    _load(client, LONG_LIVED, 86400 * 7, "session:")  # long-lived keys outside the pattern
    plain = _our_wait(client, boost=False)
    boosted = _our_wait(client, boost=True)
    scan_cpu = _one_scan_pass(client)
    idle_before = _cpu(client)
    _expiring_wave(client)
    time.sleep(plain["seconds"])
    idle_cpu = _cpu(client) - idle_before
    reference = scan_cpu + idle_cpu
    return [
        dict(name="Redis CPU of the wait (%d keys expiring among %d, poll %ss, %.1fs, %d counting SCANs "
             "after the TTL pass)" % (EXPIRING, LONG_LIVED, POLL, plain["seconds"], plain["counts"] - 1),
             value=round(plain["cpu"], 3), unit="cpu-s",
             reference="one SCAN pass (%.3f) + expiry alone (%.3f); goal ratio <= %s" % (scan_cpu, idle_cpu,
                                                                                         CPU_GOAL_RATIO),
             reference_value=round(reference, 3), ratio=round(plain["cpu"] / max(reference, 1e-6), 2)),
        # Without a baseline the wait walks the keyspace twice at least: the TTL pass that sets the
        # baseline, and the verified count at the end. The same figure against that floor:
        dict(name="Redis CPU of the same wait, against its floor", value=round(plain["cpu"], 3), unit="cpu-s",
             reference="two SCAN passes + expiry alone", reference_value=round(2 * scan_cpu + idle_cpu, 3),
             ratio=round(plain["cpu"] / max(2 * scan_cpu + idle_cpu, 1e-6), 2)),
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
