"""result_keys_wait under attack: hostile patterns, bad numbers, refused CONFIG, signals, a kill.

Real redis-servers, real ansible-playbook; signals go to the real module process mid-wait.
"""
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from harness.collection import COLLECTIONS_ROOT
from harness.ansible_runner import VENV_BIN, ansible_env
from harness.workload import load_broker_keys
from tests.integration.test_result_keys_wait_module import DAY, effort, load

MARKER = "lean_results:active-expire-effort:original"
PASSWORD = "pw-Wait-41c9e"


def broker_intact(client, messages):
    """The broker keys load_broker_keys wrote: all there, none with a TTL."""
    for key in ("celery", "_kombu.binding.celery", "unacked", "unacked_index"):
        assert client.ttl(key) == -1, key
    assert client.llen("celery") == messages


@pytest.mark.parametrize("pattern, allow, expected", [
    pytest.param("*", False, "matches Celery broker keys", id="star"),
    pytest.param("celery*", False, "matches Celery broker keys", id="celery-star"),
    pytest.param("*", True, "expedite would give queued tasks a TTL", id="star-allowed-still-refused-with-expedite"),
    pytest.param("session:*", False, "not a Celery result-key pattern", id="not-a-result-pattern"),
])
def test_patterns_that_reach_beyond_results_are_refused(redis_server, ansible_module, pattern, allow, expected):
    client = redis_server.admin()
    load_broker_keys(client, messages=5)
    load(client, 100, DAY)
    client.set("session:1", "x")
    result = ansible_module("result_keys_wait", dict(
        redis_server.login(), pattern=pattern, max_ttl=5, expedite=True, expedite_no_ttl=True,
        allow_non_result_pattern=allow, timeout=10))
    assert result["failed"] is True and expected in result["msg"], result["msg"]
    assert result["changed"] is False and result["expedited"] == 0
    broker_intact(client, 5)
    assert client.ttl("session:1") == -1 and client.ttl("celery-task-meta-old-1") > DAY - 60


def test_pattern_is_checked_against_broker_keys_with_a_global_keyprefix(redis_server, ansible_module):
    client = redis_server.admin()
    client.sadd("shop:_kombu.binding.celery", b"celery\x06\x16\x06\x16celery-task-meta-queue")
    client.lpush("shop:celery-task-meta-queue", "a queue whose name looks like a result")
    result = ansible_module("result_keys_wait", dict(redis_server.login(), pattern="shop:celery-task-meta-*",
                                                     max_ttl=5, expedite=True, timeout=10))
    assert result["failed"] is True and "shop:celery-task-meta-queue" in result["msg"]
    assert result["broker_keys"]["prefixes"] == ["shop:"]
    assert client.ttl("shop:celery-task-meta-queue") == -1


@pytest.mark.parametrize("method", ["lua", "pipeline"])
def test_expedite_no_ttl_only_ever_touches_result_keys(redis_server, ansible_module, method):
    client = redis_server.admin()
    load(client, 50, 0)  # result keys without a TTL
    client.set("session:1", "x")
    client.set("cache:1", "x", ex=DAY)
    result = ansible_module("result_keys_wait", dict(
        redis_server.login(), pattern="*", allow_non_result_pattern=True, max_ttl=30, expedite=True,
        expedite_no_ttl=True, expedite_method=method, timeout=1, fail_on_unmet=False))
    assert not result.get("failed"), result.get("msg")
    assert 0 < client.ttl("celery-task-meta-old-7") <= 30
    assert client.ttl("session:1") == -1  # no result key: never given a TTL
    assert 0 < client.ttl("cache:1") <= 30  # has a TTL and the pattern was explicitly allowed
    assert result["expedited"] == 51


@pytest.mark.parametrize("method", ["lua", "pipeline"])
def test_default_expedite_caps_no_key_that_is_not_a_result(redis_server, ansible_module, method):
    client = redis_server.admin()
    load(client, 20, DAY)
    client.set("celery-task-meta-", "not a result: no id", ex=DAY)  # matches the pattern, no id after the mark
    result = ansible_module("result_keys_wait", dict(
        redis_server.login(), max_ttl=30, expedite=True, expedite_method=method, timeout=1, fail_on_unmet=False))
    assert not result.get("failed"), result.get("msg")
    assert result["expedited"] == 20 and client.ttl("celery-task-meta-") > DAY - 60


@pytest.mark.parametrize("args, message", [
    pytest.param(dict(min_reduction="nan"), "min_reduction must be a finite number", id="nan"),
    pytest.param(dict(min_reduction="inf"), "min_reduction must be a finite number", id="inf"),
    pytest.param(dict(max_ttl=True), "max_ttl must be a whole number, got the boolean", id="yaml-yes-max-ttl"),
    pytest.param(dict(target_count=True), "target_count must be a whole number", id="yaml-yes-target"),
    pytest.param(dict(poll_interval="nan"), "poll_interval must be a finite number", id="nan-poll"),
])
def test_numbers_are_validated_before_anything_is_capped(redis_server, ansible_module, args, message):
    client = redis_server.admin()
    load(client, 100, DAY)
    options = dict(redis_server.login(), max_ttl=5, expedite=True, timeout=10)
    options.update(args)
    result = ansible_module("result_keys_wait", options)
    assert result["failed"] is True and message in result["msg"], result["msg"]
    assert client.ttl("celery-task-meta-old-1") > DAY - 60


@pytest.mark.parametrize("acl, renamed", [
    pytest.param("~* +@all -config", None, id="noperm"),
    pytest.param(None, "CONFIG", id="renamed-config"),
])
def test_config_refused_means_nothing_is_capped(redis_factory, ansible_module, acl, renamed):
    if acl:
        server = redis_factory(acl_users=["waiter on >%s %s" % (PASSWORD, acl)])
        login = server.login(login_user="waiter", login_password=PASSWORD)
    else:
        server = redis_factory(config_file=True, extra={"rename-command": 'CONFIG ""'})
        login = server.login()
    client = server.admin()
    load(client, 500, DAY)
    result = ansible_module("result_keys_wait", dict(login, max_ttl=5, expedite=True, boost_active_expire=True,
                                                     min_reduction=10, timeout=20))
    assert result["failed"] is True and "boost_active_expire needs CONFIG" in result["msg"], result["msg"]
    assert result["changed"] is False and result["expedited"] == 0
    assert client.ttl("celery-task-meta-old-1") > DAY - 60
    assert PASSWORD not in ansible_module.last_run.output


def test_unreachable_target_fails_before_capping(redis_server, ansible_module):
    client = redis_server.admin()
    load(client, 1980, DAY)
    load(client, 500, 0, prefix="celery-task-meta-forever-")
    result = ansible_module("result_keys_wait", dict(redis_server.login(), max_ttl=5, expedite=True,
                                                     min_reduction=10, timeout=20))
    assert result["failed"] is True and "can never be met" in result["msg"] and "nothing was capped" in result["msg"]
    assert result["changed"] is False and result["expedited"] == 0 and result["no_ttl"] == 500
    assert client.ttl("celery-task-meta-old-1") > DAY - 60  # not one of the 1,980 was capped


# -- signals and kills ----------------------------------------------------------------------------

def _play(tmp_path, options):
    path = tmp_path / "wait.yml"
    path.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": [
        {"name": "wait", "celery_ops.lean_results.result_keys_wait": options}]}]))
    return str(path)


def _start_playbook(path, tmp_path):
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), path, "-i", "localhost,", "-c", "local",
            "-e", "ansible_python_interpreter=%s" % sys.executable]
    capture = str(tmp_path / "capture.jsonl")
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=ansible_env(COLLECTIONS_ROOT, capture), cwd=str(tmp_path)), capture


def _descendants(pid):
    """Every process below ``pid`` (read from /proc), deepest last."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            found.append(child)
            todo.append(child)
    return found


def _module_pid(playbook_pid):
    """The process running the module itself (the deepest one whose command line names it)."""
    matches = []
    for pid in _descendants(playbook_pid):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                cmdline = handle.read()
        except OSError:
            continue
        if b"AnsiballZ_result_keys_wait" in cmdline:
            matches.append(pid)
    return matches[-1] if matches else None


def _wait_until(predicate, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def _records(capture):
    import json
    with open(capture) as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_signal_mid_wait_restores_active_expire_effort(redis_server, tmp_path, signame):
    client = redis_server.admin()
    client.config_set("active-expire-effort", 3)
    load(client, 20000, DAY)
    play = _play(tmp_path, dict(redis_server.login(), max_ttl=60, expedite=True, min_reduction=10,
                                timeout=120, boost_active_expire=True))
    proc, capture = _start_playbook(play, tmp_path)
    try:
        _wait_until(lambda: effort(client) == 10)  # boosted: the module is asleep until the forecast
        assert client.get(MARKER) == b"3"
        pid = _wait_until(lambda: _module_pid(proc.pid))
        started = time.monotonic()
        os.kill(pid, getattr(signal, signame))
        output = proc.communicate(timeout=60)[0]
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert effort(client) == 3, output
    assert client.exists(MARKER) == 0
    result = [r for r in _records(capture) if r.get("task") == "wait"][-1]["result"]
    assert "interrupted by %s" % signame in result["msg"]
    assert result["changed"] is True and result["expedited"] == 20000  # what was done before the signal
    assert "set back to 3" in result["msg"]
    print("%s: the module ended %.2fs after the signal, active-expire-effort back at 3" % (signame, took))


def test_a_killed_run_is_undone_by_the_next_and_never_persisted(redis_factory, tmp_path, ansible_module):
    server = redis_factory(config_file=True)
    client = server.admin()
    client.config_set("active-expire-effort", 2)
    load(client, 20000, DAY)
    play = _play(tmp_path, dict(server.login(), max_ttl=60, expedite=True, min_reduction=10,
                                timeout=120, boost_active_expire=True))
    proc, _capture = _start_playbook(play, tmp_path)
    try:
        _wait_until(lambda: effort(client) == 10)
        os.kill(_wait_until(lambda: _module_pid(proc.pid)), signal.SIGKILL)  # no chance to restore
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert effort(client) == 10 and client.get(MARKER) == b"2"

    # a persist: rewrite now must write the true original, not the boost, and keep the boost running
    persisted = ansible_module("redis_memory", dict(server.login(), maxmemory="64mb", persist="rewrite"))
    assert not persisted.get("failed"), persisted.get("msg")
    conf = open(server.config_path).read()
    assert "active-expire-effort 10" not in conf and "maxmemory 64mb" in conf.replace("67108864", "64mb")
    assert effort(client) == 10

    # the next wait restores the original the killed run kept, not the 10 it finds
    again = ansible_module("result_keys_wait", dict(server.login(), max_ttl=2, expedite=True, target_count=0,
                                                    timeout=30, poll_interval=0.5, boost_active_expire=True))
    assert not again.get("failed"), again.get("msg")
    assert again["boost"]["previous"] == 2 and effort(client) == 2 and client.exists(MARKER) == 0
    assert any("did not finish" in line for line in again["progress"])


def test_soak_signals_and_restarts_leave_nothing_boosted(redis_factory, tmp_path, ansible_module):
    """20 runs of result_keys_wait (and redis_memory persist: rewrite), with a Redis restart or a
    SIGTERM at a random moment: afterwards nothing is boosted, on disk or at runtime, and the broker
    keys are intact."""
    import random

    rng = random.Random(16)
    server = redis_factory(config_file=True, extra={"appendonly": "yes", "appendfsync": "always",
                                                    "active-expire-effort": "2"})
    client = server.admin()
    load_broker_keys(client, messages=5)
    outcomes = dict(sigterm=0, restart=0, none=0)
    for run in range(20):
        load(client, 2000, DAY, prefix="celery-task-meta-soak%d-" % run)
        if run % 5 == 4:
            persisted = ansible_module("redis_memory", dict(server.login(), maxmemory="%dmb" % (64 + run),
                                                            maxmemory_policy="volatile-ttl", persist="rewrite"))
            assert not persisted.get("failed"), persisted.get("msg")
            continue
        play = _play(tmp_path, dict(server.login(), max_ttl=2, expedite=True, target_count=0, timeout=30,
                                    poll_interval=0.3, boost_active_expire=True))
        proc, _capture = _start_playbook(play, tmp_path)
        action = rng.choice(["sigterm", "restart", "none"])
        try:
            time.sleep(rng.uniform(2.0, 8.0))  # ansible-playbook starts in 2-7 s here: before, during, after
            pid = _module_pid(proc.pid)
            if action == "sigterm" and pid:
                os.kill(pid, signal.SIGTERM)
            elif action == "restart":
                server.restart(downtime=rng.uniform(0.1, 1.0))
                client = server.admin()
            else:
                action = "none"
            proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        outcomes[action] += 1
        assert effort(client) == 2, (run, action)
    print("soak: %s; active-expire-effort 2 after every run" % outcomes)
    assert client.exists(MARKER) == 0
    broker_intact(client, 5)
    conf = open(server.config_path).read()
    assert "active-expire-effort 10" not in conf and "active-expire-effort 2" in conf
