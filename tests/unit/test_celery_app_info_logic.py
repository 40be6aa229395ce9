"""celery_app_info's pure logic: Celery's key prefix rule, URL parsing, expectations, worker replies."""
import json

import pytest

from ansible_collections.celery_ops.lean_results.plugins.module_utils import _celery_app_info as info


@pytest.mark.parametrize("given, expected", [
    pytest.param(None, "", id="none"),
    pytest.param("", "", id="empty"),
    pytest.param("billing", "billing_", id="plain-gets-underscore"),
    pytest.param("billing:", "billing:", id="colon-kept"),
    pytest.param("billing_", "billing_", id="underscore-kept"),
    pytest.param("billing-", "billing-", id="dash-kept"),
    pytest.param("billing.", "billing.", id="dot-kept"),
    pytest.param("a:b", "a:b_", id="colon-inside-only"),
    pytest.param("billing/", "billing/_", id="slash-is-not-a-separator"),
])
def test_effective_prefix_follows_celery(given, expected):
    assert info.effective_prefix(given) == expected


def test_patterns_carry_the_prefix_and_escape_glob_characters():
    patterns = info.result_key_patterns("billing:")
    assert patterns == {
        "prefix": "billing:",
        "task": "billing:celery-task-meta-*",
        "group": "billing:celery-taskset-meta-*",
        "chord_counters": ["billing:celery-taskset-meta-*.j", "billing:celery-taskset-meta-*.t",
                           "billing:celery-taskset-meta-*.s"],
    }
    assert info.result_key_patterns("a*[b]")["task"] == "a\\*\\[b\\]_celery-task-meta-*"
    assert info.result_key_patterns(None)["task"] == "celery-task-meta-*"


URLS = [
    pytest.param("redis://127.0.0.1:6380/2", {}, None,
                 dict(kind="redis", host="127.0.0.1", port=6380, db=2, tls=False, unix_socket=None, password_set=False),
                 dict(login_host="127.0.0.1", login_port=6380, db=2, tls=False), id="redis-db-in-path"),
    pytest.param("redis://", {}, None, dict(kind="redis", host="localhost", port=6379, db=0),
                 dict(login_host="localhost", login_port=6379, db=0, tls=False), id="redis-defaults"),
    pytest.param("redis://:pw%40x@h:1/3", {}, None, dict(password_set=True, db=3, username=None),
                 dict(login_host="h", login_port=1, db=3, tls=False), id="password-only"),
    pytest.param("redis://app:pw@h/0", {}, None, dict(password_set=True, username="app"),
                 dict(login_host="h", login_port=6379, db=0, tls=False, login_user="app"), id="acl-user"),
    pytest.param("rediss://h:6390/1?ssl_cert_reqs=CERT_NONE", {}, None, dict(tls=True, db=1, validate_certs=False),
                 dict(login_host="h", login_port=6390, db=1, tls=True, validate_certs=False), id="rediss"),
    pytest.param("redis://h/4", {}, {"ssl_cert_reqs": "required"}, dict(tls=True, validate_certs=True),
                 dict(login_host="h", login_port=6379, db=4, tls=True, validate_certs=True), id="use-ssl-setting"),
    pytest.param("socket:///run/redis.sock?virtual_host=5", {}, None,
                 dict(kind="redis", unix_socket="/run/redis.sock", db=5, host=None),
                 dict(login_unix_socket="/run/redis.sock", db=5, tls=False), id="socket-db-in-query"),
    pytest.param("redis+socket:///run/redis.sock", {}, None, dict(unix_socket="/run/redis.sock", db=0),
                 dict(login_unix_socket="/run/redis.sock", db=0, tls=False), id="redis-socket"),
    pytest.param("sentinel://:pw@s1:26379/2;sentinel://s2:26380/2", {"master_name": "mymaster"}, None,
                 dict(kind="sentinel", db=2, password_set=True,
                      sentinel={"master": "mymaster", "hosts": ["s1:26379", "s2:26380"], "password_set": False}),
                 dict(sentinel_hosts=["s1:26379", "s2:26380"], sentinel_master="mymaster", db=2, tls=False),
                 id="sentinel"),
    pytest.param("sentinel://s1/0", {"master_name": "m", "sentinel_kwargs": {"password": "x"}}, None,
                 dict(sentinel={"master": "m", "hosts": ["s1:26379"], "password_set": True}),
                 dict(sentinel_hosts=["s1:26379"], sentinel_master="m", db=0, tls=False), id="sentinel-kwargs-password"),
    pytest.param("amqp://guest:guest@rabbit:5672//", {}, None, dict(kind="amqp", host="rabbit", password_set=True),
                 {}, id="amqp"),
    pytest.param(None, {}, None, dict(kind="none", password_set=False), {}, id="no-backend"),
]


@pytest.mark.parametrize("url, options, use_ssl, expected, connection", URLS)
def test_parse_url(url, options, use_ssl, expected, connection):
    parsed = info.parse_url(url, options, use_ssl)
    for key, value in expected.items():
        assert parsed[key] == value, key
    assert info.connection_params(parsed) == connection
    assert "pw" not in json.dumps(parsed).replace("password_set", "")


@pytest.mark.parametrize("url", [
    "redis://:Sup3r$ecret@h:6379/2",
    "redis://user:Sup3r$ecret@h/0",
    "rediss://:Sup3r$ecret@h:6380/1?ssl_cert_reqs=CERT_REQUIRED",
    "sentinel://:Sup3r$ecret@a:26379/0;sentinel://:Sup3r$ecret@b:26379/0",
])
def test_no_password_in_the_parsed_url(url):
    parsed = info.parse_url(url)
    assert parsed["password_set"] is True
    assert "Sup3r$ecret" not in json.dumps(parsed)
    assert "********" in parsed["url"]
    assert "Sup3r$ecret" in info.url_passwords(url)


def test_same_redis():
    backend = info.parse_url("redis://127.0.0.1:6379/2")
    assert info.same_redis(backend, info.parse_url("redis://localhost:6379/0"))
    assert not info.same_redis(backend, info.parse_url("redis://127.0.0.1:6380/2"))
    assert not info.same_redis(backend, info.parse_url("amqp://127.0.0.1//"))


def test_describe_app_masks_every_secret():
    raw = {
        "settings": {"task_ignore_result": False, "result_expires": 86400.0},
        "result_backend": "redis://:hunter2xyz@127.0.0.1:7000/2",
        "broker_url": "redis://:hunter2xyz@127.0.0.1:7000/0",
        "result_backend_transport_options": {"global_keyprefix": "billing", "sentinel_kwargs": {"password": "sk1pw"}},
        "broker_transport_options": {},
        "task_annotations": {"t": {"note": "redis://:hunter2xyz@x/0"}},
        "tasks": [{"name": "celery.chord", "ignore_result": False, "builtin": True},
                  {"name": "app.a", "ignore_result": True, "builtin": False}],
        "origin": {}, "_secrets": ["envvalue1"],
    }
    described, secrets = info.describe_app(raw)
    text = json.dumps(described)
    for secret in ("hunter2xyz", "sk1pw"):
        assert secret not in text
        assert secret in secrets
    assert described["result_patterns"]["task"] == "billing_celery-task-meta-*"
    assert described["redis_connection"] == {"login_host": "127.0.0.1", "login_port": 7000, "db": 2, "tls": False}
    assert described["broker_on_result_redis"] is True and described["broker_same_db"] is False
    assert described["task_names"] == ["app.a"] and described["builtin_tasks"] == ["celery.chord"]


@pytest.mark.parametrize("expected, actual, same", [
    pytest.param(True, True, True, id="bool"),
    pytest.param(True, 1, False, id="bool-is-not-int"),
    pytest.param(3600, 3600.0, True, id="int-float"),
    pytest.param(5, "0:00:05", True, id="worker-duration"),
    pytest.param(86400, "1 day, 0:00:00", True, id="worker-day"),
    pytest.param(5, "1 day, 0:00:00", False, id="old-duration"),
    pytest.param(0, None, True, id="zero-none"),
    pytest.param("json", "json", True, id="text"),
])
def test_same_value(expected, actual, same):
    assert info.same_value(expected, actual) is same


def test_mismatches_name_setting_and_task():
    settings = info.settings_mismatches({"task_ignore_result": True, "result_expires": 60},
                                        {"task_ignore_result": False, "result_expires": 60.0})
    assert settings == [{"setting": "task_ignore_result", "expected": True, "actual": False}]
    tasks = info.task_mismatches({"a": {"ignore_result": False}, "gone": {"ignore_result": False}, "c": {"rate_limit": "1/s"}},
                                 [{"name": "a", "ignore_result": True}])
    assert [(item["task"], item["actual"]) for item in tasks] == [("a", True), ("gone", "<not registered>")]


def test_cross_check():
    tasks = [{"name": "proj.a", "ignore_result": False}, {"name": "proj.made", "ignore_result": False},
             {"name": "proj.quiet", "ignore_result": True}]
    assert info.cross_check(["proj.a", "wrong.b", "celery.starmap"], ["proj.a", "proj.made", "proj.quiet"],
                            ["celery.starmap"], tasks) == {
        "audited_not_registered": ["wrong.b"], "registered_not_audited": ["proj.made", "proj.quiet"],
        "both": ["celery.starmap", "proj.a"], "keep_overrides": {"proj.made": {"ignore_result": False}}}


def test_worker_replies():
    calls = []

    def runner(argv, data=None, cwd=None, environ_update=None):
        calls.append(argv)
        action = argv[argv.index("inspect") + 1]
        replies = {
            "ping": {"w1@h": {"ok": "pong"}, "w2@h": {"ok": "pong"}},
            "registered": {"w1@h": ["app.a [ignore_result=True]", "app.r [ignore_result=False]"],
                           "w2@h": ["app.a [ignore_result=False]", "app.r [ignore_result=False]"]},
            "conf": {"w1@h": {"task_ignore_result": True, "result_expires": "0:00:05"},
                     "w2@h": {"task_ignore_result": False, "result_expires": "1 day, 0:00:00",
                              "result_backend": "redis://:topsecretpw@h/0"}},
        }
        return 0, "some banner\n" + json.dumps(replies[action]) + "\n", ""

    workers, errors = info.inspect_workers(runner, "/venv/bin/python", "proj", "/srv", {}, 1.0, ["topsecretpw"])
    assert errors == []
    assert calls[0][:6] == ["/venv/bin/python", "-m", "celery", "-A", "proj", "--workdir"]
    assert "topsecretpw" not in json.dumps(workers)
    assert workers["w1@h"]["ping"] is True and workers["w1@h"]["registered"]["app.a"] is True
    found = info.worker_mismatches(workers, {"task_ignore_result": True, "result_expires": 5},
                                   {"app.r": {"ignore_result": False}})
    assert list(found) == ["w2@h"]
    assert {item["setting"] for item in found["w2@h"]} == {"task_ignore_result", "result_expires"}


def test_no_worker_is_not_an_error():
    def runner(argv, data=None, cwd=None, environ_update=None):
        return 69, "", "Error: No nodes replied within time constraint"

    assert info.inspect_workers(runner, "py", "proj") == ({}, [])


def test_failed_import_is_scrubbed():
    def runner(argv, data=None, cwd=None, environ_update=None):
        answer = {"ok": False, "error": "ConnectionError: redis://:leakedpw@h/0 refused",
                  "traceback": "Traceback\n  File x\nConnectionError: redis://:leakedpw@h/0 refused token=envtok99"}
        return 0, info.PROBE_MARKER + json.dumps(answer) + "\n", "noise envtok99"

    with pytest.raises(info.CeleryAppInfoError) as caught:
        info.run_probe(runner, "py", "proj", environment={"API_TOKEN": "envtok99"})
    text = str(caught.value) + json.dumps(caught.value.details)
    assert "leakedpw" not in text and "envtok99" not in text
    assert caught.value.details["traceback_tail"][-1].startswith("ConnectionError")


def test_no_answer_says_so():
    def runner(argv, data=None, cwd=None, environ_update=None):
        return 1, "", "No module named celery"

    with pytest.raises(info.CeleryAppInfoError, match="gave no answer"):
        info.run_probe(runner, "py", "proj")
