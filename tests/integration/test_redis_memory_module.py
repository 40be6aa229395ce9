"""redis_memory on real redis-servers, through real ansible-playbook."""
import os

import pytest
import yaml

from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_memory import (
    MINIMAL_ACL,
    MINIMAL_ACL_REDIS6,
)
from harness.redis_server import server_facts
from harness.workload import load_broker_keys, load_result_keys

GIB = 1024 ** 3
PASSWORD = "pw-Memory-7f3a9"


def runtime(server):
    """(maxmemory, policy, samples) as the server reports them now (redis-py decodes CONFIG GET)."""
    raw = server.admin().config_get("maxmemory*")
    return int(raw["maxmemory"]), raw["maxmemory-policy"], int(raw["maxmemory-samples"])


def assert_ok(result):
    assert not result.get("failed"), result.get("msg")


def test_four_runs_check_apply_check_apply(redis_factory, ansible_module):
    server = redis_factory(password=PASSWORD)
    args = dict(server.login(), maxmemory="1gb", maxmemory_policy="volatile-ttl", maxmemory_samples=10)

    first = ansible_module("redis_memory", args, check=True, diff=True)
    assert_ok(first)
    assert first["changed"] is True
    assert first["after"] == {"maxmemory": GIB, "maxmemory_policy": "volatile-ttl", "maxmemory_samples": 10}
    assert runtime(server) == (0, "noeviction", 5), "check mode changed the server"
    assert "maxmemory-policy volatile-ttl" in first["diff"][0]["after"]

    second = ansible_module("redis_memory", args, diff=True)
    assert_ok(second)
    assert second["changed"] is True
    assert second["before"] == {"maxmemory": 0, "maxmemory_policy": "noeviction", "maxmemory_samples": 5}
    assert second["after"] == first["after"]
    set_now = [change["parameter"] for change in second["changes"]]
    assert set_now == ["maxmemory", "maxmemory_policy", "maxmemory_samples"]
    assert second["diff"][0]["before"] == "maxmemory 0\nmaxmemory-policy noeviction\nmaxmemory-samples 5\n"
    assert second["diff"][0]["after"] == "maxmemory 1073741824\nmaxmemory-policy volatile-ttl\nmaxmemory-samples 10\n"
    node = second["nodes"][0]
    assert node["endpoint"] == "%s:%d" % (server.host, server.port) and node["role"] == "primary"
    assert node["changed"] is True and node["after"] == second["after"]
    assert second["persisted"] is False
    assert runtime(server) == (GIB, "volatile-ttl", 10)

    third = ansible_module("redis_memory", args, check=True, diff=True)
    fourth = ansible_module("redis_memory", args, diff=True)
    for result in (third, fourth):
        assert_ok(result)
        assert result["changed"] is False and result["changes"] == []
        assert result["before"] == result["after"] == second["after"]
    assert PASSWORD not in ansible_module.last_run.output


def run_tasks(ansible_playbook, tmp_path, task_args):
    """Several redis_memory tasks in one ansible-playbook run (one start-up cost); their results."""
    tasks = [{"name": "task %d" % number, "celery_ops.lean_results.redis_memory": args, "ignore_errors": True}
             for number, args in enumerate(task_args)]
    path = tmp_path / "play-several.yml"
    path.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": tasks}]))
    results = ansible_playbook(path).results("redis_memory")
    assert len(results) == len(task_args)
    return results


def test_same_value_in_other_units_is_no_change(redis_server, ansible_playbook, tmp_path):
    redis_server.admin().config_set("maxmemory", "1gb")
    spellings = ["1024mb", "1073741824", "1GB", "1048576kb"]
    results = run_tasks(ansible_playbook, tmp_path, [dict(redis_server.login(), maxmemory=spelling)
                                                     for spelling in spellings])
    for spelling, result in zip(spellings, results):
        assert_ok(result)
        assert result["changed"] is False and result["after"]["maxmemory"] == GIB, spelling


def test_g_is_powers_of_ten(redis_server, ansible_module):
    result = ansible_module("redis_memory", dict(redis_server.login(), maxmemory="1g"))
    assert_ok(result)
    assert result["after"]["maxmemory"] == 10 ** 9 and runtime(redis_server)[0] == 10 ** 9


def test_rewrite_survives_a_restart(redis_factory, ansible_module):
    server = redis_factory(config_file=True)
    args = dict(server.login(), maxmemory="256mb", maxmemory_policy="volatile-lru", persist="rewrite")
    check = ansible_module("redis_memory", args, check=True)
    assert_ok(check)
    assert check["changed"] is True and check["persisted"] is False
    result = ansible_module("redis_memory", args)
    assert_ok(result)
    assert result["changed"] is True and result["persisted"] is True
    assert result["config_file"] == server.config_path
    server.restart()
    assert runtime(server)[:2] == (256 * 1024 ** 2, "volatile-lru")
    again = ansible_module("redis_memory", args)
    assert_ok(again)
    assert again["changed"] is False and again["persisted"] is True


def test_rewrite_without_config_file_fails_clearly_but_sets_runtime(redis_factory, ansible_module):
    server = redis_factory(password=PASSWORD)
    result = ansible_module("redis_memory", dict(server.login(), maxmemory="64mb",
                                                 maxmemory_policy="volatile-ttl", persist="rewrite"))
    assert result["failed"] is True
    assert "runtime values ARE set" in result["msg"] and "without a config file" in result["msg"]
    assert result["after"] == {"maxmemory": 64 * 1024 ** 2, "maxmemory_policy": "volatile-ttl",
                               "maxmemory_samples": 5}
    assert result["persisted"] is False and result["changed"] is True
    assert runtime(server)[:2] == (64 * 1024 ** 2, "volatile-ttl")
    assert PASSWORD not in ansible_module.last_run.output


def test_persist_file_changes_only_maxmemory_lines(redis_factory, ansible_module):
    server = redis_factory(config_file=True)
    with open(server.config_path, "ab") as handle:
        handle.write(b"# maxmemory <bytes>\nmaxmemory 10mb\n\n# tuned by hand\nhz 10\n")
    original = open(server.config_path, "rb").read()
    args = dict(server.login(), maxmemory="128mb", maxmemory_policy="volatile-ttl", persist="file",
                config_file=server.config_path, backup=True)

    check = ansible_module("redis_memory", args, check=True, diff=True)
    assert_ok(check)
    assert check["changed"] is True and "maxmemory 128mb" in check["diff"][1]["after"]
    assert open(server.config_path, "rb").read() == original

    result = ansible_module("redis_memory", args, diff=True)
    assert_ok(result)
    assert result["changed"] is True and result["persisted"] is True
    updated = open(server.config_path, "rb").read()
    assert updated == original.replace(b"\nmaxmemory 10mb\n", b"\nmaxmemory 128mb\n") \
        + b"maxmemory-policy volatile-ttl\n"
    assert open(result["backup_file"], "rb").read() == original
    assert result["diff"][1]["before"] == original.decode()

    server.restart()
    assert runtime(server)[:2] == (128 * 1024 ** 2, "volatile-ttl")
    for check_mode in (True, False):
        again = ansible_module("redis_memory", args, check=check_mode)
        assert_ok(again)
        assert again["changed"] is False and "backup_file" not in again
    assert open(server.config_path, "rb").read() == updated
    os.unlink(result["backup_file"])


def test_broker_guard(redis_server, ansible_module):
    admin = redis_server.admin()
    load_broker_keys(admin, messages=10)
    load_result_keys(admin, 100, ttl_for=lambda i: 3600)
    refused = ansible_module("redis_memory", dict(redis_server.login(), maxmemory="64mb",
                                                  maxmemory_policy="allkeys-lru"))
    assert refused["failed"] is True
    assert "refusing maxmemory_policy allkeys-lru" in refused["msg"]
    assert "celery (list, 10)" in refused["msg"] and "allow_allkeys_with_broker" in refused["msg"]
    assert runtime(redis_server)[:2] == (0, "noeviction")

    accepted = ansible_module("redis_memory", dict(redis_server.login(), maxmemory="64mb",
                                                   maxmemory_policy="volatile-ttl"))
    assert_ok(accepted)
    assert accepted["changed"] is True and runtime(redis_server)[:2] == (64 * 1024 ** 2, "volatile-ttl")

    allowed = ansible_module("redis_memory", dict(redis_server.login(), maxmemory_policy="allkeys-lru",
                                                  allow_allkeys_with_broker=True))
    assert_ok(allowed)
    assert allowed["changed"] is True and allowed["broker_keys"]["found"] is True
    assert any("queued tasks can be evicted" in text for text in allowed["risks"])
    assert "queued tasks can be evicted" in ansible_module.last_run.output  # shown as an Ansible warning


def test_broker_guard_sees_other_databases(redis_server, ansible_module):
    load_broker_keys(redis_server.admin(db=3), messages=4)
    load_result_keys(redis_server.admin(), 10, ttl_for=lambda i: 3600)
    refused = ansible_module("redis_memory", dict(redis_server.login(), maxmemory_policy="allkeys-lfu"))
    assert refused["failed"] is True and "broker keys" in refused["msg"]


SEP = b"\x06\x16"


def _prefixed_kombu(client):
    """kombu with global_keyprefix "shop:": every broker key carries the prefix."""
    client.sadd("shop:_kombu.binding.tasks", b"tasks" + SEP + SEP + b"tasks")
    client.lpush("shop:tasks", "message")
    client.hset("shop:unacked", "tag", "message")
    client.zadd("shop:unacked_index", {"tag": 1.0})


def _permanent_binding_only(client):
    client.sadd("_kombu.binding_permanent.events", b"ev" + SEP + SEP + b"events.q")
    client.lpush("events.q", "message")


def _bare_celery_list(client):
    client.lpush("celery", "message")


def _prefixed_unacked_only(client):
    client.hset("app-unacked", "tag", "message")  # the "app-" prefix known from nothing else


@pytest.mark.parametrize("load, expected", [
    pytest.param(_prefixed_kombu, ["shop:_kombu.binding.tasks", "shop:tasks (list, 1)", "shop:unacked (hash, 1)"],
                 id="global-keyprefix"),
    pytest.param(_permanent_binding_only, ["_kombu.binding_permanent.events", "events.q (list, 1)"],
                 id="binding-permanent-only"),
    pytest.param(_bare_celery_list, ["celery (list, 1)"], id="bare-celery-list"),
    pytest.param(_prefixed_unacked_only, ["app-unacked (hash, 1)"], id="prefixed-unacked-only"),
])
def test_broker_guard_knows_every_kombu_shape(redis_server, ansible_module, load, expected):
    load(redis_server.admin(db=2))
    load_result_keys(redis_server.admin(), 50, ttl_for=lambda i: 3600)
    refused = ansible_module("redis_memory", dict(redis_server.login(), maxmemory="64mb",
                                                  maxmemory_policy="allkeys-lru"))
    assert refused["failed"] is True, refused
    for text in expected:
        assert text in refused["msg"]
    assert runtime(redis_server)[:2] == (0, "noeviction")
    # result_keys_info reports the same finding (every database, the same field)
    info = ansible_module("result_keys_info", redis_server.login())
    assert info["broker_keys"]["found"] is True and info["broker_keys"]["databases"] == [2]


def test_below_used_memory_guard(redis_server, ansible_module):
    load_result_keys(redis_server.admin(), 20000, ttl_for=lambda i: 3600)
    used = redis_server.admin().info("memory")["used_memory"]
    refused = ansible_module("redis_memory", dict(redis_server.login(), maxmemory="1mb"))
    assert refused["failed"] is True
    assert "refusing maxmemory 1048576" in refused["msg"] and "allow_below_used" in refused["msg"]
    assert runtime(redis_server)[0] == 0

    tight = ansible_module("redis_memory", dict(redis_server.login(), maxmemory=str(int(used * 1.1)),
                                                maxmemory_policy="volatile-ttl"))
    assert_ok(tight)
    assert any("headroom" in text for text in tight["risks"])

    allowed = ansible_module("redis_memory", dict(redis_server.login(), maxmemory="1mb", allow_below_used=True))
    assert_ok(allowed)
    assert any("below used_memory" in text for text in allowed["risks"])
    assert runtime(redis_server)[0] == 1024 ** 2


def test_acl_user_without_config_rights(redis_factory, ansible_module):
    server = redis_factory(acl_users=["noconfig on >%s ~* +@all -config" % PASSWORD])
    result = ansible_module("redis_memory", dict(server.login(login_user="noconfig", login_password=PASSWORD),
                                                 maxmemory="64mb"))
    assert result["failed"] is True
    assert "NOPERM" in result["msg"] and "+config|get +config|set" in result["msg"]
    assert "'noconfig'" in result["msg"]
    assert PASSWORD not in ansible_module.last_run.output


def test_minimal_acl_rule_from_the_docs_is_enough(redis_factory, ansible_module):
    # the rule each server line accepts: Redis 6.2 has no %R~ read-only key selectors
    rule = MINIMAL_ACL if server_facts().acl_read_selectors else MINIMAL_ACL_REDIS6
    server = redis_factory(acl_users=["tuner on >%s %s" % (PASSWORD, rule)])
    load_broker_keys(server.admin(db=1), messages=2)
    login = server.login(login_user="tuner", login_password=PASSWORD)
    refused = ansible_module("redis_memory", dict(login, maxmemory="64mb", maxmemory_policy="allkeys-lru"))
    assert refused["failed"] is True and "broker keys" in refused["msg"]
    result = ansible_module("redis_memory", dict(login, maxmemory="64mb", maxmemory_policy="volatile-ttl"))
    assert_ok(result)
    assert result["changed"] is True and runtime(server)[:2] == (64 * 1024 ** 2, "volatile-ttl")


def test_renamed_config_command(redis_factory, ansible_module):
    # rename-command needs a config file: on the command line the quoted "" would reach Redis
    # as one argument, so the server would not start.
    server = redis_factory(config_file=True, extra={"rename-command": 'CONFIG ""'})
    result = ansible_module("redis_memory", dict(server.login(), maxmemory="64mb"))
    assert result["failed"] is True
    assert "does not know the command" in result["msg"] and "renamed" in result["msg"]
    assert "parameter groups" in result["msg"]


def test_value_redis_rejects_names_the_parameter(redis_server, ansible_module):
    result = ansible_module("redis_memory", dict(redis_server.login(), maxmemory="64mb", maxmemory_samples=0))
    assert result["failed"] is True
    assert "Redis rejected maxmemory-samples 0" in result["msg"]
    if server_facts().multi_config_set:
        assert "nothing was changed: CONFIG SET is atomic" in result["msg"]
    else:  # Redis 6.2: one parameter per CONFIG SET; maxmemory was set first, then rolled back
        assert "rolled back maxmemory to the values before" in result["msg"]
    assert runtime(redis_server) == (0, "noeviction", 5)


def test_bad_input_and_policy_without_limit(redis_server, ansible_playbook, tmp_path):
    cases = [
        ({"maxmemory": "1 gb"}, "not a Redis memory value"),
        ({"maxmemory_policy": "volatile-lrm"}, "needs Redis 8.6"),
        ({"maxmemory_policy": "volatile-fifo"}, "not an eviction policy"),
        ({"persist": "file"}, "config_file"),
    ]
    results = run_tasks(ansible_playbook, tmp_path, [dict(redis_server.login(), **args) for args, _m in cases]
                        + [dict(redis_server.login(), maxmemory_policy="volatile-ttl")])
    for (args, message), result in zip(cases, results):
        assert result["failed"] is True and message in result["msg"], (args, result.get("msg"))
    assert_ok(results[-1])
    assert any("no effect while maxmemory is 0" in text for text in results[-1]["risks"])


def test_rewrite_is_idempotent_when_the_file_omits_defaults(redis_factory, ansible_module):
    """CONFIG REWRITE writes no line for a default value (samples 5): a missing line means the default."""
    server = redis_factory(config_file=True)
    args = dict(server.login(), maxmemory="256mb", maxmemory_policy="volatile-lru", maxmemory_samples=5,
                persist="rewrite")
    first = ansible_module("redis_memory", args)
    assert_ok(first)
    assert first["changed"] is True and first["persisted"] is True
    written = open(server.config_path, "rb").read()
    assert b"maxmemory-samples" not in written  # Redis left the default out
    stamp = os.stat(server.config_path).st_mtime_ns
    for _run in range(2):
        again = ansible_module("redis_memory", args)
        assert_ok(again)
        assert again["changed"] is False and again["persisted"] is True, again
    assert os.stat(server.config_path).st_mtime_ns == stamp and open(server.config_path, "rb").read() == written
    # back to every default: lines disappear, and the next run still changes nothing
    defaults = dict(server.login(), maxmemory="0", maxmemory_policy="noeviction", maxmemory_samples=5,
                    persist="rewrite")
    assert ansible_module("redis_memory", defaults)["changed"] is True
    assert ansible_module("redis_memory", defaults)["changed"] is False
    # a runtime value the file lacks (set by hand) is persisted, although nothing was asked to change
    server.admin().config_set("maxmemory-policy", "allkeys-lru")
    drift = ansible_module("redis_memory", dict(server.login(), persist="rewrite"))
    assert drift["changed"] is True and b"allkeys-lru" in open(server.config_path, "rb").read()


@pytest.mark.parametrize("value", [pytest.param(str(2 ** 70), id="2**70"), pytest.param("1000000000000gb", id="wraps"),
                                   pytest.param(str(2 ** 64), id="2**64")])
def test_maxmemory_above_what_redis_holds_is_refused(redis_server, ansible_module, value):
    result = ansible_module("redis_memory", dict(redis_server.login(), maxmemory=value))
    assert result["failed"] is True and "more than Redis can hold" in result["msg"]
    assert runtime(redis_server)[0] == 0


def test_maxmemory_at_the_limit_is_idempotent(redis_server, ansible_module):
    limit = server_facts().maxmemory_limit  # 2**64-1; 2**63-1 on Redis 6.2
    args = dict(redis_server.login(), maxmemory=str(limit))
    assert ansible_module("redis_memory", args)["changed"] is True
    assert ansible_module("redis_memory", args)["changed"] is False
    assert runtime(redis_server)[0] == limit


def test_maxmemory_above_this_servers_limit_is_refused_untouched(redis_server, ansible_module):
    """On a server that stores less than 2**64-1 (Redis 6.2), that value is refused before any change."""
    if server_facts().maxmemory_limit == 2 ** 64 - 1:
        value, refused = str(2 ** 64 - 1), False
    else:
        value, refused = str(server_facts().maxmemory_limit + 1), True
    result = ansible_module("redis_memory", dict(redis_server.login(), maxmemory=value))
    if refused:
        assert result["failed"] is True and "more than Redis can hold" in result["msg"], result
        assert runtime(redis_server)[0] == 0
    else:
        assert result["changed"] is True and runtime(redis_server)[0] == 2 ** 64 - 1


def test_yaml_yes_is_no_sample_count(redis_server, ansible_module):
    result = ansible_module("redis_memory", dict(redis_server.login(), maxmemory_samples=True))
    assert result["failed"] is True and "maxmemory_samples must be a whole number" in result["msg"]
    assert runtime(redis_server)[2] == 5


def test_persist_file_diff_masks_redis_conf_secrets(redis_factory, ansible_module):
    server = redis_factory(config_file=True, password=PASSWORD)
    with open(server.config_path, "a") as handle:
        handle.write("masterauth master-Secret-99\nuser app on >app-Secret-42 ~* +@all\n")
    server.restart()
    for check in (True, False):
        result = ansible_module("redis_memory", dict(server.login(), maxmemory="64mb", persist="file",
                                                     config_file=server.config_path), check=check, diff=True)
        assert_ok(result)
        output = ansible_module.last_run.output + repr(result)
        for secret in (PASSWORD, "master-Secret-99", "app-Secret-42"):
            assert secret not in output
        assert "masterauth ********" in repr(result["diff"])
