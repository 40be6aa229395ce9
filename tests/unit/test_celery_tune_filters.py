"""The celery_tune role's filters: what the rollback state keeps, what it may hold, how tasks are counted."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.celery_ops.lean_results.plugins.filter.celery_tune import (
    celery_tune_audit_totals, celery_tune_chart_segments, celery_tune_restorable, celery_tune_state, scrub_secrets,
)

BACKUP_1 = {"config_path": "/srv/app/celeryconfig.py", "backup_file": "/srv/app/celeryconfig.py.1.bak"}
BACKUP_2 = {"config_path": "/srv/app/celeryconfig.py", "backup_file": "/srv/app/celeryconfig.py.2.bak"}
REDIS_ORIGINAL = {"maxmemory": 2147483648, "maxmemory_policy": "noeviction", "maxmemory_samples": 5}
REDIS_HALFWAY = {"maxmemory": 67108864, "maxmemory_policy": "volatile-ttl", "maxmemory_samples": 5}


@pytest.mark.parametrize("data, expected", [
    pytest.param({"login_host": "r", "login_password": "pw"}, {"login_host": "r"}, id="login_password-dropped"),
    pytest.param({"a": [{"sentinel_password": "s", "x": 1}]}, {"a": [{"x": 1}]}, id="sentinel_password-nested"),
    pytest.param({"before": "redis://:hunter2@h:6379/0"}, {"before": "redis://:********@h:6379/0"}, id="url-password"),
    pytest.param(["amqp://u:pw@h//"], ["amqp://u:********@h//"], id="amqp-in-list"),
    pytest.param("masterauth s3cret", "masterauth ********", id="redis-conf-line"),
    pytest.param({"n": 5, "b": True, "z": None}, {"n": 5, "b": True, "z": None}, id="non-strings-unchanged"),
])
def test_scrub_secrets(data, expected):
    assert scrub_secrets(data) == expected


@pytest.mark.parametrize("old, kwargs, expected_hosts, expected_before", [
    pytest.param({}, {"hosts": {"w1": BACKUP_1}}, {"w1": BACKUP_1}, None, id="first-run-records"),
    pytest.param({"version": 2, "hosts": {"w1": BACKUP_1}}, {"hosts": {"w1": BACKUP_2}}, {"w1": BACKUP_1}, None,
                 id="rerun-keeps-first-backup"),
    pytest.param({"version": 2, "hosts": {"w1": BACKUP_1}}, {"hosts": {"w2": BACKUP_2}},
                 {"w1": BACKUP_1, "w2": BACKUP_2}, None, id="other-host-added"),
    pytest.param({"version": 2, "hosts": {"w1": BACKUP_1}}, {"hosts": {"w1": {"config_path": "/x", "backup_file": ""}}},
                 {"w1": BACKUP_1}, None, id="unchanged-host-keeps-record"),
    pytest.param({"version": 2, "hosts": {"w1": BACKUP_1}, "rolled_back": True}, {"hosts": {"w1": BACKUP_2}},
                 {"w1": BACKUP_2}, None, id="after-rollback-starts-fresh"),
    pytest.param({"version": 2, "hosts": {}, "redis": {"before": REDIS_ORIGINAL}}, {"redis": {"before": REDIS_HALFWAY}},
                 {}, REDIS_ORIGINAL, id="rerun-keeps-first-redis-before"),
    pytest.param({}, {"redis": {"before": REDIS_HALFWAY}}, {}, REDIS_HALFWAY, id="first-redis-before"),
])
def test_state_keeps_the_first_originals(old, kwargs, expected_hosts, expected_before):
    state = celery_tune_state(old, **kwargs)
    assert state["hosts"] == expected_hosts
    assert (state.get("redis") or {}).get("before") == expected_before
    assert state["rolled_back"] is False


def test_state_updates_redis_after_and_keeps_first_baseline():
    state = celery_tune_state({}, redis={"before": REDIS_ORIGINAL}, baseline={"count": 100})
    state = celery_tune_state(state, redis={"before": REDIS_HALFWAY, "after": REDIS_HALFWAY}, baseline={"count": 7})
    assert state["redis"] == {"before": REDIS_ORIGINAL, "after": REDIS_HALFWAY, "connection": {}}
    assert state["baseline"] == {"count": 100}


def test_state_holds_no_secret():
    state = celery_tune_state({}, redis={"before": REDIS_ORIGINAL, "connection": {
        "login_host": "r", "login_password": "pw1", "sentinel_password": "pw2"}})
    assert state["redis"]["connection"] == {"login_host": "r"}
    assert "pw1" not in repr(state) and "pw2" not in repr(state)


@pytest.mark.parametrize("state, status", [
    pytest.param({}, "none", id="no-file"),
    pytest.param({"version": 2, "hosts": {}, "rolled_back": False}, "empty", id="nothing-recorded"),
    pytest.param({"version": 2, "hosts": {"w1": BACKUP_1}, "rolled_back": True}, "rolled_back", id="rolled-back"),
    pytest.param({"version": 2, "hosts": {"w1": BACKUP_1}}, "ready", id="config"),
    pytest.param({"version": 2, "hosts": {}, "redis": {"before": REDIS_ORIGINAL}}, "ready", id="redis-only"),
])
def test_restorable(state, status):
    assert celery_tune_restorable(state)["status"] == status


def _host(tasks, needing):
    return {"audit": {"summary": {"total": len(tasks), "need_result": len(needing)}, "tasks": tasks, "needing": needing}}


@pytest.mark.parametrize("records, tasks, need, sources", [
    pytest.param({"w%d" % i: _host(["a", "b", "c"], ["a"]) for i in range(3)}, 3, 1, 1, id="same-app-three-hosts"),
    pytest.param({"w1": _host(["a", "b"], ["a"]), "w2": _host(["x", "y", "z"], [])}, 5, 1, 2, id="two-apps"),
    pytest.param({"w1": _host(["b", "a"], ["a"]), "w2": _host(["a", "b"], ["a"])}, 2, 1, 1, id="order-ignored"),
    pytest.param({"w1": {"audit": {}}, "w2": {}}, 0, 0, 0, id="no-audit"),
])
def test_audit_totals_count_each_source_once(records, tasks, need, sources):
    assert celery_tune_audit_totals(records) == {"tasks": tasks, "need_result": need, "can_ignore": tasks - need,
                                                 "sources": sources}


@pytest.mark.parametrize("samples, segments, jumps", [
    pytest.param([[0, 100, 1], [1, 90, 1], [2, 80, 1]], 1, [], id="gradual"),
    pytest.param([[0, 10000, 1], [5, 20, 1], [6, 15, 1]], 2, [{"t0": 0, "t1": 5, "from": 10000, "to": 20}], id="cliff"),
    pytest.param([[0, 100, 1], [1, None, 5], [2, 95, 1]], 1, [], id="memory-only-skipped"),
    pytest.param([[0, 0, 1], [1, 0, 1]], 1, [], id="flat-zero"),
    pytest.param([], 0, [], id="none"),
])
def test_chart_segments_cut_at_jumps(samples, segments, jumps):
    chart = celery_tune_chart_segments(samples)
    assert len(chart["segments"]) == segments and chart["jumps"] == jumps
    assert sum(len(segment) for segment in chart["segments"]) == len([s for s in samples if s[1] is not None])


@pytest.mark.parametrize("kwargs", [
    pytest.param({"rolled_back": True}, id="marks-rolled-back"),
    pytest.param({"rolled_back": True, "hosts": {"w2": BACKUP_2}, "redis": {"before": REDIS_HALFWAY}},
                 id="merges-nothing-when-marking"),
])
def test_state_marked_rolled_back_keeps_what_was_recorded(kwargs):
    redis = {"before": REDIS_ORIGINAL, "connection": {"login_host": "r", "login_password": "pw"}}
    recorded = {"version": 2, "hosts": {"w1": BACKUP_1}, "redis": redis, "rolled_back": False}
    state = celery_tune_state(recorded, **kwargs)
    kept_redis = {"before": REDIS_ORIGINAL, "connection": {"login_host": "r"}}
    assert state == {"version": 2, "hosts": {"w1": BACKUP_1}, "redis": kept_redis, "rolled_back": True}
    assert celery_tune_restorable(state)["status"] == "rolled_back"
    assert celery_tune_state(state, hosts={"w1": BACKUP_2})["hosts"] == {"w1": BACKUP_2}, "the next run starts afresh"


def test_state_refuses_to_mark_nothing():
    with pytest.raises(AnsibleFilterError, match="no recorded state"):
        celery_tune_state({}, rolled_back=True)
