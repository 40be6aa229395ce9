"""result_keys_wait on real redis-servers, through real ansible-playbook, with live traffic and restarts."""
import threading
import time

import pytest
import yaml

from harness.workload import result_payload

OLD_KEYS = 200000
DAY = 86400

# Server-side bulk load: 200,000 keys in a fraction of a second instead of seconds of pipelining.
LOAD_SCRIPT = """
local first, last, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = first, last do
  if ttl > 0 then redis.call('SET', ARGV[4] .. i, ARGV[5], 'EX', ttl)
  else redis.call('SET', ARGV[4] .. i, ARGV[5]) end
end
return last - first + 1
"""


def load(client, count, ttl, prefix="celery-task-meta-old-", chunk=50000):
    """``count`` result keys with TTL ``ttl`` seconds (0: no TTL)."""
    script = client.register_script(LOAD_SCRIPT)
    payload = result_payload("old", 120)
    for first in range(0, count, chunk):
        script(args=[first, min(first + chunk, count) - 1, ttl, prefix, payload])


class Traffic(threading.Thread):
    """Live Celery-like traffic: new result keys with a short TTL, written until stopped."""

    def __init__(self, client, ttl=2, per_second=200):
        super().__init__(daemon=True)
        self.client, self.ttl, self.pause = client, ttl, 1.0 / per_second
        self.written = 0
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            try:
                self.client.set("celery-task-meta-new-%d" % self.written, b"{}", ex=self.ttl)
                self.written += 1
            except Exception:  # the server restarting under us: keep writing afterwards
                time.sleep(0.05)
            time.sleep(self.pause)

    def stop(self):
        self.stopping.set()
        self.join(5)


def samples(result):
    """The counted samples (heartbeat entries carry memory only: their count is None)."""
    return [entry for entry in result["timeline"] if isinstance(entry, list) and entry[1] is not None]


def events(result, name):
    return [entry for entry in result["timeline"] if isinstance(entry, dict) and entry["event"] == name]


def effort(client):
    return int(client.config_get("active-expire-effort")["active-expire-effort"])


def test_expedite_with_live_traffic_meets_at_the_deadline(redis_server, ansible_module):
    client = redis_server.admin()
    load(client, OLD_KEYS, DAY)
    load(client, 1000, 0, prefix="celery-task-meta-forever-")
    client.config_set("active-expire-effort", 2)
    traffic = Traffic(redis_server.admin())
    traffic.start()
    try:
        result = ansible_module("result_keys_wait", dict(
            redis_server.login(), max_ttl=5, expedite=True, min_reduction=10, timeout=60, poll_interval=0.5,
            boost_active_expire=True))
    finally:
        traffic.stop()
    assert not result["failed"], result.get("msg")
    assert result["met"] is True and result["changed"] is True
    assert result["expedited"] == OLD_KEYS  # the 2 s traffic keys are below the cap
    assert result["no_ttl"] == 1000  # reported, left alone (expedite_no_ttl: false)
    assert client.ttl("celery-task-meta-forever-7") == -1
    assert OLD_KEYS + 1000 <= result["baseline"] <= OLD_KEYS + 1000 + 1000
    assert result["final"] <= result["baseline"] / 10 and result["reduction"] >= 10
    forecast = result["forecast"]["target_met_after"]
    print("forecast %.2fs, met at %.2fs, deadline %.2fs, timeline %s"
          % (forecast, result["elapsed"], result["deadline"]["seconds"], samples(result)))
    assert forecast - 0.5 <= result["elapsed"] <= forecast + 3  # within a few seconds of the computed moment
    assert len(samples(result)) <= 4  # no polling at full speed before the forecast
    assert events(result, "boost")[0]["previous"] == 2
    assert effort(client) == 2  # restored
    assert result["expedite_method"] == "lua"
    assert any("capped 200000 keys" in line for line in result["progress"])


def test_forecast_beyond_timeout_returns_at_once(redis_server, ansible_module):
    client = redis_server.admin()
    load(client, OLD_KEYS, DAY)
    started = time.monotonic()
    result = ansible_module("result_keys_wait", dict(redis_server.login(), min_reduction=10, timeout=30,
                                                     boost_active_expire=True), verbosity=1)
    took = time.monotonic() - started
    assert not result["failed"], result.get("msg")
    assert result["met"] is False and result["changed"] is False
    assert result["elapsed"] < 5 and took < 20
    # the TTLs were read some seconds after the load (ansible-playbook start, the broker-key search)
    assert DAY - took - 5 <= result["forecast"]["target_met_after"] <= DAY + 5
    assert DAY - 30 - took - 5 <= result["retry_after"] <= DAY - 30 + 5
    assert result["retry_at"].endswith("Z") and result["deadline"]["at"].endswith("Z")
    assert result["baseline"] == result["final"] == OLD_KEYS
    assert "run again in" in result["msg"]
    assert "beyond timeout" in ansible_module.last_run.output  # progress shows with -v
    assert effort(client) == 1  # no boost for a wait that does not happen


def test_not_met_by_the_deadline_fails_with_the_timeline(redis_server, ansible_module):
    client = redis_server.admin()
    load(client, 5000, 3)
    load(client, 100, 0, prefix="celery-task-meta-forever-")
    result = ansible_module("result_keys_wait", dict(redis_server.login(), target_count=50, timeout=30,
                                                     poll_interval=0.5))
    assert result["failed"] is True
    assert "never be met by waiting: 100 keys have no TTL" in result["msg"]
    for batch in client.scan_iter("celery-task-meta-forever-*", count=1000):
        client.delete(batch)
    load(client, 5000, 3)
    traffic = Traffic(redis_server.admin(), ttl=2, per_second=200)  # keeps ~400 keys alive
    traffic.start()
    try:
        result = ansible_module("result_keys_wait", dict(redis_server.login(), target_count=100, timeout=30,
                                                         poll_interval=0.5))
    finally:
        traffic.stop()
    assert result["failed"] is True and "not met by the deadline" in result["msg"], result.get("msg")
    assert result["met"] is False and result["final"] > 100 and len(samples(result)) >= 2
    assert result["elapsed"] < 15


def test_survives_a_redis_restart_during_the_wait(redis_factory, ansible_module):
    server = redis_factory(extra={"appendonly": "yes", "appendfsync": "always"})
    client = server.admin()
    load(client, 50000, DAY)
    restarted = threading.Event()

    def restart_once_capped():
        deadline = time.monotonic() + 30
        probe = server.admin(socket_timeout=2)
        while time.monotonic() < deadline:
            if 0 < probe.ttl("celery-task-meta-old-49999") <= 8:
                time.sleep(1.0)  # the module is asleep until the forecast now
                server.restart(downtime=1.0)
                restarted.set()
                return
            time.sleep(0.05)

    thread = threading.Thread(target=restart_once_capped, daemon=True)
    thread.start()
    result = ansible_module("result_keys_wait", dict(
        server.login(), max_ttl=8, expedite=True, min_reduction=10, timeout=60, poll_interval=0.5,
        boost_active_expire=True))
    thread.join(10)
    assert restarted.is_set()
    assert not result["failed"], result.get("msg")
    # met at the first count at or under the target; on a busy machine the capped keys expire over
    # a few seconds (the pass that capped them took that long), so some may still be there
    assert result["met"] is True and result["final"] <= result["target"] == 5000
    reconnects = events(result, "reconnected")
    assert reconnects and reconnects[0]["restarted"] is True, result["timeline"]
    assert [e.get("reapplied") for e in events(result, "boost")] == [None, True]
    assert effort(server.admin()) == 1  # restored on the restarted server too
    assert any("restarted" in line for line in result["progress"])


def test_check_mode_changes_nothing(redis_server, ansible_module):
    client = redis_server.admin()
    load(client, 10000, DAY)
    load(client, 10, 0, prefix="celery-task-meta-forever-")
    result = ansible_module("result_keys_wait", dict(redis_server.login(), max_ttl=5, expedite=True,
                                                     expedite_no_ttl=True, boost_active_expire=True), check=True)
    assert not result["failed"], result.get("msg")
    assert result["changed"] is True and result["would_expedite"] == 10010 and result["expedited"] == 0
    assert result["elapsed"] < 3 and result["plan"]["wait_seconds"] <= 6
    assert client.ttl("celery-task-meta-old-9999") > DAY - 60 and client.ttl("celery-task-meta-forever-1") == -1
    assert effort(client) == 1
    again = ansible_module("result_keys_wait", dict(redis_server.login(), max_ttl=DAY * 2, expedite=True), check=True)
    assert again["changed"] is False and again["would_expedite"] == 0


@pytest.mark.parametrize("method", [pytest.param("pipeline", id="pipeline"), pytest.param("lua", id="lua")])
def test_expedite_methods_agree_and_are_idempotent(redis_server, ansible_module, method):
    client = redis_server.admin()
    load(client, 3000, DAY)
    load(client, 2000, 100, prefix="celery-task-meta-young-")
    load(client, 7, 0, prefix="celery-task-meta-forever-")
    options = dict(redis_server.login(), max_ttl=200, expedite=True, expedite_method=method, timeout=1,
                   fail_on_unmet=False)
    first = ansible_module("result_keys_wait", options)
    assert not first["failed"], first.get("msg")
    assert (first["expedited"], first["no_ttl"], first["changed"]) == (3000, 7, True)
    assert 190 <= client.ttl("celery-task-meta-old-1") <= 200 and client.ttl("celery-task-meta-young-1") <= 100
    assert first["met"] is False and 195 <= first["retry_after"] <= 205
    second = ansible_module("result_keys_wait", options)
    assert (second["expedited"], second["changed"]) == (0, False)


def test_runs_under_async(redis_server, ansible_playbook, tmp_path):
    load(redis_server.admin(), 2000, DAY)
    play = [{"hosts": "all", "gather_facts": False, "tasks": [{
        "name": "wait in the background",
        "celery_ops.lean_results.result_keys_wait": dict(redis_server.login(), max_ttl=2, expedite=True,
                                                         min_reduction=10, timeout=30, poll_interval=0.5),
        "async": 60, "poll": 1, "register": "fall"}, {
        "ansible.builtin.assert": {"that": ["fall.met", "fall.expedited == 2000", "fall.final == 0"]}}]}]
    path = tmp_path / "async.yml"
    path.write_text(yaml.safe_dump(play))
    run = ansible_playbook(path)
    assert run.returncode == 0, run.output


COUNT_CAPPED_SCRIPT = """
local cursor, capped = '0', 0
repeat
  local reply = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 10000)
  cursor = reply[1]
  for _, key in ipairs(reply[2]) do
    local ttl = redis.call('TTL', key)
    if ttl >= 0 and ttl <= tonumber(ARGV[2]) then capped = capped + 1 end
  end
until cursor == '0'
return capped
"""


def test_timeout_bounds_the_expedite_pass_and_says_how_far_it_got(redis_server, ansible_module):
    client = redis_server.admin()
    load(client, 1000000, DAY)
    result = ansible_module("result_keys_wait", dict(redis_server.login(), max_ttl=600, expedite=True, timeout=1,
                                                     fail_on_unmet=False))
    assert not result["failed"], result.get("msg")
    assert (result["met"], result["reason"], result["expedite_complete"]) == (False, "timeout", False)
    # timeout counts from the module's start; past it come one paced call and the verified count of
    # 1M keys (up to ~0.6 s on Redis 6.2 on a busy machine). Unbounded, this pass took 5.3 s.
    assert result["elapsed"] < 2.5 and "stopped after" in result["msg"]
    # honest: exactly the keys it says it capped have the new TTL, the others keep a day
    capped = client.register_script(COUNT_CAPPED_SCRIPT)(args=["celery-task-meta-old-*", 600])
    assert 0 < result["expedited"] == capped < 1000000 and result["changed"] is True
    expedited = events(result, "expedited")[0]
    assert expedited["complete"] is False and expedited["batch"]["ceiling"] == 1000


def test_nothing_to_wait_answers_at_once_with_samples_and_events(redis_server, ansible_module):
    client = redis_server.admin()
    load(client, 1000, 60, prefix="celery-task-meta-new-")
    result = ansible_module("result_keys_wait", dict(redis_server.login(), baseline=200000, max_ttl=3600,
                                                     expedite=True, min_reduction=10, timeout=600))
    assert not result["failed"], result.get("msg")
    assert (result["met"], result["nothing_to_wait"], result["changed"]) == (True, True, False)
    assert result["expedited"] == 0 and result["elapsed"] < 3 and "nothing to wait for" in result["msg"]
    assert result["samples"] == [entry for entry in result["timeline"] if isinstance(entry, list)]
    assert result["events"] == [entry for entry in result["timeline"] if isinstance(entry, dict)]
    assert [entry["event"] for entry in result["events"]] == ["expedited"] and result["samples"][-1][1] == 1000


def test_batch_size_above_the_ceiling_is_clamped_with_a_warning(redis_server, ansible_module):
    load(redis_server.admin(), 5000, DAY)
    result = ansible_module("result_keys_wait", dict(redis_server.login(), max_ttl=600, expedite=True,
                                                     batch_size=1000000, timeout=1, fail_on_unmet=False))
    assert not result["failed"], result.get("msg")
    assert result["expedited"] == 5000 and events(result, "expedited")[0]["batch"]["ceiling"] == 10000
    assert "above the safe ceiling 10000" in ansible_module.last_run.output
