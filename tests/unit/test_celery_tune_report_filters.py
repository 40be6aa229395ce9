"""The celery_tune role's report filters: the figures, rates, wait summary, old keys, baseline and verdict
that the role used to compute in Jinja (plugins/filter/celery_tune_report.py)."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.celery_ops.lean_results.plugins.filter.celery_tune_report import (
    celery_tune_endpoint, celery_tune_host_records, celery_tune_old_keys, celery_tune_rates, celery_tune_snapshot,
    celery_tune_verdict, celery_tune_wait_baseline, celery_tune_wait_summary,
)

STATS = {"instantaneous_ops_per_sec": 120, "total_commands_processed": 5000, "total_net_input_bytes": 64000,
         "total_net_output_bytes": 128000, "instantaneous_input_kbps": 1.5, "instantaneous_output_kbps": 2.25,
         "uptime_in_seconds": 3600}
INFO = {"changed": False, "count": 20200, "no_ttl": 3, "ttl": {"min": 4, "p50": 86000, "p90": 86300, "max": 86400},
        "memory": {"estimated_bytes": 9000000}, "used_memory": 12000000, "maxmemory": 0,
        "maxmemory_policy": "noeviction", "server_stats": STATS}
ZEROS = {"keys": 0, "no_ttl": 0, "ttl_max": None, "estimated_bytes": 0, "used_memory": 0, "maxmemory": 0,
         "maxmemory_policy": "", "ops_per_sec": 0, "total_commands_processed": 0, "total_net_input_bytes": 0,
         "total_net_output_bytes": 0, "input_kbps": 0, "output_kbps": 0, "uptime_in_seconds": 0}


@pytest.mark.parametrize("info, kwargs, expected", [
    pytest.param(INFO, {}, {"keys": 20200, "no_ttl": 3, "ttl_max": 86400, "estimated_bytes": 9000000,
                            "used_memory": 12000000, "maxmemory": 0, "maxmemory_policy": "noeviction",
                            "ops_per_sec": 120, "total_commands_processed": 5000, "total_net_input_bytes": 64000,
                            "total_net_output_bytes": 128000, "input_kbps": 1.5, "output_kbps": 2.25,
                            "uptime_in_seconds": 3600}, id="full-result"),
    pytest.param(INFO, {"at": "2026-11-25T10:00:00+00:00"}, dict(celery_tune_snapshot(INFO), at="2026-11-25T10:00:00+00:00"),
                 id="at-added"),
    pytest.param({"skipped": True, "changed": False}, {}, ZEROS, id="skipped-task"),
    pytest.param(None, {}, ZEROS, id="no-result"),
    pytest.param("", {}, ZEROS, id="not-a-dict"),
    pytest.param({"count": 0, "ttl": None, "memory": None, "server_stats": None}, {}, ZEROS, id="empty-keyspace-nulls"),
])
def test_snapshot(info, kwargs, expected):
    assert celery_tune_snapshot(info, **kwargs) == expected


def _snap(uptime, commands, net_in, net_out):
    return dict(ZEROS, uptime_in_seconds=uptime, total_commands_processed=commands, total_net_input_bytes=net_in,
                total_net_output_bytes=net_out)


@pytest.mark.parametrize("before, after, expected", [
    pytest.param(_snap(100, 1000, 0, 0), _snap(160, 7000, 600, 61),
                 {"seconds": 60, "commands_per_sec": 100.0, "net_input_bytes_per_sec": 10.0,
                  "net_output_bytes_per_sec": 1.0}, id="sixty-seconds"),
    pytest.param(_snap("100", "1000", "0", "0"), _snap("103", "1010", "7", "2"),
                 {"seconds": 3, "commands_per_sec": 3.3, "net_input_bytes_per_sec": 2.3,
                  "net_output_bytes_per_sec": 0.7}, id="numeric-strings-rounded"),
    pytest.param(_snap(5000, 9000, 10, 10), _snap(12, 30, 1, 1), {}, id="redis-restarted"),
    pytest.param(_snap(100, 1000, 0, 0), _snap(100, 1000, 0, 0), {}, id="no-time-between"),
    pytest.param({}, {}, {}, id="no-measures"),
])
def test_rates(before, after, expected):
    assert celery_tune_rates(before, after) == expected


WAIT = {"changed": True, "met": True, "baseline": 20200, "final": 150, "reduction": 134.67, "target": 2020,
        "elapsed": 7.2, "deadline": {"seconds": 8.2, "at": "2026-11-25T10:00:08Z"}, "expedited": 20000,
        "expedite_method": "lua", "progress": ["t=0.0s expediting"],
        "timeline": [[0.9, 20200, 61000000], {"t": 1.0, "event": "expedited", "keys": 20000}, [3.0, None, 40000000],
                     [6.3, 150, 9000000]]}
SAMPLES = [[0.9, 20200, 61000000], [3.0, None, 40000000], [6.3, 150, 9000000]]
EVENTS = [{"t": 1.0, "event": "expedited", "keys": 20000}]


@pytest.mark.parametrize("wait, samples, events", [
    pytest.param(WAIT, SAMPLES, EVENTS, id="timeline-split"),
    pytest.param(dict(WAIT, timeline=[], samples=SAMPLES, events=EVENTS), SAMPLES, EVENTS, id="samples-and-events-taken"),
    pytest.param(dict(WAIT, samples=SAMPLES[:1], events=[]), SAMPLES[:1], [], id="samples-and-events-win-over-timeline"),
    pytest.param(dict(WAIT, samples=SAMPLES), SAMPLES, EVENTS, id="events-missing-split-from-timeline"),
    pytest.param(dict(WAIT, timeline=None), [], [], id="no-timeline"),
])
def test_wait_summary_samples_and_events(wait, samples, events):
    summary = celery_tune_wait_summary(wait)
    assert summary["samples"] == samples and summary["events"] == events


def test_wait_summary_of_a_wait_that_ran():
    assert celery_tune_wait_summary(WAIT) == {
        "ran": True, "met": True, "baseline": 20200, "final": 150, "reduction": 134.67, "target": 2020, "elapsed": 7.2,
        "deadline": {"seconds": 8.2, "at": "2026-11-25T10:00:08Z"}, "expedited": 20000, "would_expedite": None,
        "expedite_method": "lua", "retry_after": None, "retry_at": None, "samples": SAMPLES, "events": EVENTS,
        "progress": ["t=0.0s expediting"]}


@pytest.mark.parametrize("wait", [
    pytest.param({"skipped": True, "changed": False, "false_condition": "_celery_tune_old_keys | bool"}, id="skipped"),
    pytest.param({"failed": True, "msg": "NOPERM"}, id="failed"),
    pytest.param({}, id="absent"),
])
def test_wait_summary_of_a_wait_that_did_not_run(wait):
    summary = celery_tune_wait_summary(wait)
    assert summary["ran"] is False and summary["met"] is None and summary["expedited"] == 0
    assert summary["samples"] == [] and summary["events"] == [] and summary["progress"] == []


@pytest.mark.parametrize("baseline, max_ttl, kwargs, old", [
    pytest.param({"count": 0, "ttl": None}, 5, {}, False, id="no-key"),
    pytest.param({}, 5, {}, False, id="no-baseline"),
    pytest.param({"count": 10, "ttl": {"max": 3}}, 0, {}, True, id="no-result-expires-every-key-old"),
    pytest.param({"count": 10, "ttl": {"max": 86400}}, 5, {}, True, id="ttl-above-result-expires"),
    pytest.param({"count": 10, "ttl": {"max": 5}}, 5, {}, False, id="ttl-at-result-expires"),
    pytest.param({"count": 10, "ttl": {"max": 86400}}, "5", {}, True, id="max-ttl-as-string"),
    pytest.param({"count": 10, "ttl": None, "no_ttl": 10}, 5, {}, False, id="no-ttl-keys-left-alone"),
    pytest.param({"count": 10, "ttl": None, "no_ttl": 10}, 5, {"expedite": True}, False, id="expedite-without-no-ttl"),
    pytest.param({"count": 10, "ttl": None, "no_ttl": 10}, 5, {"expedite": True, "expedite_no_ttl": True}, True,
                 id="expedite-no-ttl-gives-them-one"),
])
def test_old_keys(baseline, max_ttl, kwargs, old):
    assert celery_tune_old_keys(baseline, max_ttl, **kwargs) is old


@pytest.mark.parametrize("baseline, state, expected", [
    pytest.param({"count": 100, "used_memory": 5}, {}, {"count": 100, "used_memory": 5}, id="no-state"),
    pytest.param({"count": 100}, {"version": 2, "hosts": {}}, {"count": 100}, id="state-without-baseline"),
    pytest.param({"count": 100, "used_memory": 5}, {"version": 2, "baseline": {"count": 20200}},
                 {"count": 20200, "used_memory": 5}, id="rerun-measures-against-recorded"),
    pytest.param({"count": 30000}, {"version": 2, "baseline": {"count": 20200}}, {"count": 30000},
                 id="more-keys-now-than-recorded"),
    pytest.param({"count": 100}, {"version": 2, "baseline": {"count": 20200}, "rolled_back": True}, {"count": 100},
                 id="rolled-back-state-ignored"),
    pytest.param({}, {"version": 2, "baseline": {"count": "500"}}, {"count": 500}, id="no-baseline-recorded-string"),
])
def test_wait_baseline(baseline, state, expected):
    assert celery_tune_wait_baseline(baseline, state) == expected


@pytest.mark.parametrize("connection, expected", [
    pytest.param({"login_unix_socket": "/run/redis/redis.sock", "login_host": "ignored"}, "/run/redis/redis.sock",
                 id="unix-socket"),
    pytest.param({"login_host": "redis.internal", "login_port": 6380, "db": 2, "login_password": "pw"},
                 "redis.internal:6380 db 2", id="host-port-db-no-password"),
    pytest.param({}, "127.0.0.1:6379 db 0", id="defaults"),
    pytest.param({"login_host": None, "login_port": None, "db": None, "login_unix_socket": ""}, "127.0.0.1:6379 db 0",
                 id="nulls-read-as-defaults"),
])
def test_endpoint(connection, expected):
    assert celery_tune_endpoint(connection) == expected


NOT_MET = {"met": False, "baseline": 350, "final": 50, "reduction": 7.0, "target": 3, "elapsed": 6.1}
ELSEWHERE = {"prefixes": {"billing_": 3000}, "warning": "3000 result-shaped keys under the prefix billing_"}


@pytest.mark.parametrize("wait, kwargs, status, met, message", [
    pytest.param({"would_expedite": 200, "plan": {"wait_seconds": 6.2}}, {"check_mode": True}, "check", None,
                 "check mode: nothing was changed; a run would cap 200 TTLs and wait about 6.2 s", id="check-with-plan"),
    pytest.param({"skipped": True}, {"check_mode": True}, "check", None,
                 "check mode: nothing was changed; a run would cap 0 TTLs and wait about 0 s", id="check-no-wait"),
    pytest.param(dict(WAIT), {"failure": "NOPERM this user has no permissions"}, "failed", False,
                 "the wait failed: NOPERM this user has no permissions", id="failure-wins"),
    pytest.param({"skipped": True}, {"baseline": {"count": 0}, "pattern": "celery-task-meta-*"}, "nothing_to_verify", False,
                 "nothing to verify: pattern celery-task-meta-* matched no result key before the change",
                 id="nothing-matched"),
    pytest.param({}, {"baseline": {"count": 0, "elsewhere": ELSEWHERE}, "wait_baseline": {"count": 500},
                      "pattern": "celery-task-meta-*"}, "nothing_to_verify", False,
                 "nothing to verify: pattern celery-task-meta-* matched no result key before the change; "
                 "3000 result-shaped keys under the prefix billing_", id="keys-under-another-prefix"),
    pytest.param({"skipped": True}, {"baseline": {"count": 0}, "wait_baseline": {"count": 20200}, "max_ttl": 5}, "met", True,
                 "no old result keys left: every key expires within result_expires (5 s)", id="rerun-after-the-fall"),
    pytest.param({"skipped": True}, {"baseline": {"count": 40}, "max_ttl": 3600}, "met", True,
                 "no old result keys left: every key expires within result_expires (3600 s)", id="already-lean"),
    pytest.param(WAIT, {"baseline": INFO}, "met", True, "result keys fell from 20200 to 150 (134.67x) in 7.2 s",
                 id="wait-met"),
    pytest.param(dict(NOT_MET, retry_after=85801, retry_at="2026-11-26T09:50:01Z"), {}, "pending", False,
                 "not met yet: the old keys expire later than celery_tune_wait_timeout allows; run again after "
                 "2026-11-26T09:50:01Z (in 85801 s), or set celery_tune_expedite", id="pending"),
    pytest.param(NOT_MET, {}, "not_met", False, "not met: 50 result keys left of 350 (7.0x), target 3", id="not-met"),
    pytest.param(dict(NOT_MET, retry_after=None), {}, "not_met", False,
                 "not met: 50 result keys left of 350 (7.0x), target 3", id="null-retry-after-is-not-pending"),
])
def test_verdict(wait, kwargs, status, met, message):
    assert celery_tune_verdict(wait, **kwargs) == {"status": status, "met": met, "message": message}


HOSTVARS = {"w1": {"_celery_tune_host": {"changed": True}}, "w2": {"other": 1}, "web": {"_celery_tune_host": {"changed": False}}}


@pytest.mark.parametrize("hosts, kwargs, expected", [
    pytest.param(["w1", "w2", "web"], {}, {"w1": {"changed": True}, "web": {"changed": False}}, id="hosts-that-recorded"),
    pytest.param(["w2"], {}, {}, id="none-recorded"),
    pytest.param(["w1", "gone"], {}, {"w1": {"changed": True}}, id="unknown-host-skipped"),
    pytest.param(["w1", "w2"], {"fact": "other"}, {"w2": 1}, id="another-fact"),
    pytest.param([], {}, {}, id="no-hosts"),
])
def test_host_records(hosts, kwargs, expected):
    assert celery_tune_host_records(hosts, HOSTVARS, **kwargs) == expected


@pytest.mark.parametrize("hosts", [pytest.param("w1", id="a-string"), pytest.param(None, id="none")])
def test_host_records_wants_a_list(hosts):
    with pytest.raises(AnsibleFilterError):
        celery_tune_host_records(hosts, HOSTVARS)
