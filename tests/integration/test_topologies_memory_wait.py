"""redis_memory and result_keys_wait on every topology: a 6-node cluster, a primary with 2 replicas
behind a Sentinel (with failovers), a TLS-only server with client certificates — always as the
least-privilege users whose rules docs/topologies.md documents, read from that page."""
import threading
import time

import pytest
import redis

from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_connection import connect_topology
from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_memory import (
    MINIMAL_ACL,
    MINIMAL_ACL_REDIS6,
    RedisMemoryError,
    file_targets,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait import (
    TopologyProbe,
    WaitSettings,
    wait_for_fall,
)
from harness.redis_server import expected_pipeline_method, server_facts
from harness.topologies import documented_acl_rule, RedisCluster, ReplicatedRedis, wait_until
from harness.topology_fixtures import tls_certs, tls_redis_factory  # noqa: F401  pylint: disable=unused-import
from harness.workload import load_broker_keys, load_result_keys

PASSWORD = "topo-pw-51c9"
LIMITS = dict(maxmemory="96mb", maxmemory_policy="volatile-ttl", maxmemory_samples=7)
EXPECTED = ("100663296", "volatile-ttl", "7")

MEMORY_RULE = documented_acl_rule("redis_memory", PASSWORD)
WAIT_RULE = documented_acl_rule("result_keys_wait", PASSWORD)
ACL_USERS = [MEMORY_RULE, WAIT_RULE]


def as_user(user, options, **extra):
    options = dict(options, login_user=user, login_password=PASSWORD)
    options.update(extra)
    return options


def limits_of(server):
    raw = server.admin().config_get("maxmemory*")
    return raw["maxmemory"], raw["maxmemory-policy"], raw["maxmemory-samples"]


def effort_of(server):
    return int(server.admin().config_get("active-expire-effort")["active-expire-effort"])


def endpoint(server):
    return "%s:%d" % (server.host, server.port)


def assert_ok(result):
    assert not result.get("failed"), result.get("msg")


def test_documented_rules_are_the_modules_own():
    assert MEMORY_RULE.split()[:3] == ["lean_memory", "on", ">" + PASSWORD]
    assert sorted(MEMORY_RULE.split()[3:]) == sorted(
        (MINIMAL_ACL if server_facts().acl_read_selectors else MINIMAL_ACL_REDIS6).split())
    assert WAIT_RULE.startswith("lean_wait on >") and "+pexpire" in WAIT_RULE and "+cluster|nodes" in WAIT_RULE
    for rule in ACL_USERS:
        assert "+@" not in rule and "allcommands" not in rule


class _Planned:  # the slice of NodePlan file_targets reads
    def __init__(self, endpoint):
        self.endpoint = endpoint


@pytest.mark.parametrize("endpoints, config_file, config_files, expected", [
    pytest.param(["a:1"], "/etc/redis.conf", None, {"a:1": "/etc/redis.conf"}, id="one-node-one-file"),
    pytest.param(["a:1", "b:2"], None, {"a:1": "/r/a.conf", "b:2": "/r/b.conf"},
                 {"a:1": "/r/a.conf", "b:2": "/r/b.conf"}, id="mapping-for-every-node"),
    pytest.param(["a:1", "b:2"], "/etc/redis.conf", None, "edits one config_file, but the servers behind the "
                 "connection options are 2 nodes (a:1, b:2)", id="one-file-several-nodes"),
    pytest.param(["a:1", "b:2"], None, {"a:1": "/r/a.conf"}, "missing b:2", id="mapping-misses-a-node"),
    pytest.param(["a:1"], None, {"a:1": "/r/a.conf", "c:3": "/r/c.conf"}, "not a node: c:3", id="mapping-names-a-stranger"),
])
def test_persist_file_targets(endpoints, config_file, config_files, expected):
    plans = [_Planned(name) for name in endpoints]
    if isinstance(expected, dict):
        assert file_targets(plans, config_file, config_files) == expected
        return
    with pytest.raises(RedisMemoryError) as caught:
        file_targets(plans, config_file, config_files)
    assert expected in str(caught.value)


# -- cluster ---------------------------------------------------------------------------------------

OLD_KEYS = 3000


@pytest.fixture(scope="module")
def acl_cluster(tmp_path_factory):
    cluster = RedisCluster(tmp_path_factory.mktemp("acl-cluster-mw"), acl_users=ACL_USERS)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_memory_on_every_cluster_node_replicas_included(acl_cluster, ansible_module):
    roles = acl_cluster.roles()
    login = as_user("lean_memory", roles["replica"][0].login())  # any node leads to all of them
    before = {endpoint(server): limits_of(server) for server in acl_cluster.servers}

    check = ansible_module("redis_memory", dict(login, **LIMITS), check=True, diff=True)
    assert_ok(check)
    assert check["changed"] is True and len(check["nodes"]) == 6
    assert {endpoint(server): limits_of(server) for server in acl_cluster.servers} == before

    applied = ansible_module("redis_memory", dict(login, **LIMITS), diff=True)
    assert_ok(applied)
    assert applied["changed"] is True and applied["topology"]["mode"] == "cluster"
    by_endpoint = {node["endpoint"]: node for node in applied["nodes"]}
    assert sorted(by_endpoint) == sorted(endpoint(server) for server in acl_cluster.servers)
    assert sorted(node["role"] for node in applied["nodes"]) == ["primary"] * 3 + ["replica"] * 3
    for role, servers in (("primary", roles["primary"]), ("replica", roles["replica"])):
        for server in servers:
            assert by_endpoint[endpoint(server)]["role"] == role
            assert by_endpoint[endpoint(server)]["changed"] is True
            assert limits_of(server) == EXPECTED, endpoint(server)  # CONFIG GET on the node itself
    assert len(applied["diff"]) == 6 and len(applied["changes"]) == 18

    again = ansible_module("redis_memory", dict(login, **LIMITS))
    assert_ok(again)
    assert again["changed"] is False and not any(node["changed"] for node in again["nodes"])
    assert PASSWORD not in ansible_module.last_run.output


def test_memory_cluster_guards_and_persist_file_refusal(acl_cluster, ansible_module, tmp_path):
    client = acl_cluster.client()
    load_broker_keys(client, messages=3)  # binding and queue land on different primaries
    login = as_user("lean_memory", acl_cluster.login())
    before = {endpoint(server): limits_of(server) for server in acl_cluster.servers}
    try:
        refused = ansible_module("redis_memory", dict(login, maxmemory_policy="allkeys-lru"))
        assert refused["failed"] is True
        assert "refusing maxmemory_policy allkeys-lru" in refused["msg"] and "celery (list, 3)" in refused["msg"]
        assert {endpoint(server): limits_of(server) for server in acl_cluster.servers} == before

        single_file = ansible_module("redis_memory", dict(login, maxmemory="128mb", persist="file",
                                                          config_file=str(tmp_path / "redis.conf")))
        assert single_file["failed"] is True
        assert "edits one config_file, but the servers behind the connection options are 6 nodes" in single_file["msg"]
        assert "config_files" in single_file["msg"]
        assert {endpoint(server): limits_of(server) for server in acl_cluster.servers} == before, "changed before refusing"
    finally:
        client.delete("_kombu.binding.celery", "celery", "unacked", "unacked_index")


def test_wait_expedites_every_primary_and_restores_each_boost(acl_cluster, ansible_module):
    client = acl_cluster.client()
    load_result_keys(client, OLD_KEYS, ttl_for=lambda i: 86400, prefix="celery-task-meta-old-")
    primaries = acl_cluster.roles()["primary"]
    for effort, server in enumerate(primaries, start=1):
        server.admin().config_set("active-expire-effort", effort)
    login = as_user("lean_wait", acl_cluster.login())

    lua = ansible_module("result_keys_wait", dict(login, max_ttl=2, expedite=True, expedite_method="lua",
                                                  target_count=0, timeout=30))
    assert lua["failed"] is True and "lua cannot run on a Redis Cluster" in lua["msg"]

    started = time.monotonic()
    result = ansible_module("result_keys_wait", dict(login, max_ttl=2, expedite=True, target_count=0, timeout=30,
                                                     poll_interval=0.3, boost_active_expire=True))
    assert_ok(result)
    assert result["met"] is True and result["changed"] is True
    assert (result["baseline"], result["expedited"], result["final"]) == (OLD_KEYS, OLD_KEYS, 0)
    assert result["expedite_method"] == expected_pipeline_method()
    assert result["topology"]["mode"] == "cluster"
    per_node = {node["endpoint"]: node for node in result["nodes"]}
    assert sorted(per_node) == sorted(endpoint(server) for server in primaries)
    assert sum(node["expedited"] for node in per_node.values()) == OLD_KEYS
    assert all(node["expedited"] > OLD_KEYS / 6 for node in per_node.values())  # spread over every primary
    for effort, server in enumerate(primaries, start=1):
        assert per_node[endpoint(server)]["active_expire_effort"] == effort
        assert effort_of(server) == effort, "restored per node"
    assert time.monotonic() - started < 25
    assert sum(1 for _key in client.scan_iter(match="celery-task-meta-*", count=5000)) == 0


# -- primary, 2 replicas, Sentinel --------------------------------------------------------------------

@pytest.fixture(scope="module")
def acl_sentinel_set(tmp_path_factory):
    replicated = ReplicatedRedis(tmp_path_factory.mktemp("acl-sentinel-mw"), acl_users=ACL_USERS)
    replicated.start()
    try:
        yield replicated
    finally:
        replicated.stop()


def test_memory_via_sentinel_then_failover_keeps_the_limits(acl_sentinel_set, ansible_module):
    login = as_user("lean_memory", acl_sentinel_set.sentinel_login())
    applied = ansible_module("redis_memory", dict(login, **LIMITS))
    assert_ok(applied)
    assert applied["changed"] is True and applied["topology"]["mode"] == "replicated"
    assert [node["endpoint"] for node in applied["nodes"]][0] == endpoint(acl_sentinel_set.primary)
    assert sorted(node["endpoint"] for node in applied["nodes"][1:]) == sorted(
        endpoint(server) for server in acl_sentinel_set.replicas)
    assert [node["role"] for node in applied["nodes"]] == ["primary", "replica", "replica"]
    for server in acl_sentinel_set.servers:
        assert limits_of(server) == EXPECTED, endpoint(server)

    new_primary = acl_sentinel_set.failover()
    assert new_primary is not acl_sentinel_set.primary
    assert limits_of(new_primary) == EXPECTED  # the promoted replica came up with the limits
    # Sentinel turns the old primary into a replica of the new one a moment later
    wait_until(lambda: new_primary.admin().info("replication").get("connected_slaves") == 2, 20,
               "the old primary to follow the new one")

    again = ansible_module("redis_memory", dict(login, **LIMITS))
    assert_ok(again)
    assert again["changed"] is False
    assert again["nodes"][0]["endpoint"] == endpoint(new_primary) and again["nodes"][0]["role"] == "primary"
    assert endpoint(acl_sentinel_set.primary) in [node["endpoint"] for node in again["nodes"][1:]]


def test_wait_follows_the_primary_through_a_failover(replicated_factory):
    replicated = replicated_factory(acl_users=ACL_USERS)
    old_primary = replicated.primary
    load_result_keys(old_primary.admin(), 400, ttl_for=lambda i: 5)
    for server in replicated.servers:
        server.admin().config_set("active-expire-effort", 3)
    params = as_user("lean_wait", replicated.sentinel_login(), protocol=2, db=0, connect_timeout=5, cluster="auto")
    probe = TopologyProbe(lambda: connect_topology(params), params).connect()
    settings = WaitSettings(target_count=0, timeout=40, poll_interval=0.3, boost_active_expire=True)
    promoted = {}
    failing_over = threading.Thread(target=lambda: (time.sleep(1.0), promoted.update(server=replicated.failover())))
    failing_over.start()
    try:
        result = wait_for_fall(probe, settings)
    finally:
        failing_over.join(30)
        probe.close()
    new_primary = promoted["server"]
    assert result["met"] is True and result["final"] == 0 and result["baseline"] == 400
    assert probe.topology_changes == [dict(primaries_before=[endpoint(old_primary)],
                                           primaries_after=[endpoint(new_primary)])]
    reconnected = [entry for entry in result["timeline"] if isinstance(entry, dict) and entry["event"] == "reconnected"]
    assert reconnected and reconnected[-1]["restarted"] is True
    roles = {node["endpoint"]: node["role"] for node in probe.report()}
    assert roles == {endpoint(new_primary): "primary", endpoint(old_primary): "former primary"}
    assert any(entry.get("reapplied") for entry in result["timeline"] if isinstance(entry, dict))
    assert effort_of(old_primary) == effort_of(new_primary) == 3  # each got its own value back


# -- TLS-only server, client certificate ----------------------------------------------------------

def test_both_modules_over_tls_with_client_certificate(tls_redis_factory, ansible_module):
    server = tls_redis_factory(auth_clients=True, acl_users=ACL_USERS)
    memory = ansible_module("redis_memory", as_user("lean_memory", server.login(), **LIMITS))
    assert_ok(memory)
    assert memory["changed"] is True and limits_of(server) == EXPECTED
    assert memory["nodes"][0]["endpoint"] == endpoint(server)

    load_result_keys(server.admin(), 300, ttl_for=lambda i: 86400)
    wait = ansible_module("result_keys_wait", as_user("lean_wait", server.login(), max_ttl=1, expedite=True,
                                                      target_count=0, timeout=20, poll_interval=0.3))
    assert_ok(wait)
    assert (wait["met"], wait["expedited"], wait["final"]) == (True, 300, 0)
    assert wait["expedite_method"] == "lua"
    assert PASSWORD not in ansible_module.last_run.output


# -- the documented rules are minimal: without one permission a module fails or degrades ----------

@pytest.fixture
def rule_server(redis_factory):
    server = redis_factory()
    load_result_keys(server.admin(), 50, ttl_for=lambda i: 86400)
    return server


def _wait_as(server, rule, **options):
    server.admin().execute_command("ACL", "SETUSER", "lean_wait", "reset", *rule.split()[1:])
    server.admin().script_flush()
    params = as_user("lean_wait", server.login(), protocol=2, db=0, connect_timeout=5, cluster="auto")
    probe = TopologyProbe(lambda: connect_topology(params), params).connect()
    try:
        return wait_for_fall(probe, WaitSettings(**options))
    finally:
        probe.close()


@pytest.mark.parametrize("permission, options, effect", [
    pytest.param("+scan", {}, "fails", id="+scan"),
    pytest.param("+ttl", {}, "fails", id="+ttl"),
    pytest.param("+pexpire", {"expedite": True}, "fails", id="+pexpire"),
    pytest.param("+pttl", {"expedite": True}, "fails", id="+pttl"),
    pytest.param("+config|set", {"expedite": True, "boost_active_expire": True}, "fails", id="+config|set"),
    pytest.param("+config|get", {"expedite": True, "boost_active_expire": True}, "fails", id="+config|get"),
    pytest.param("+info", {}, "fails", id="+info"),
    pytest.param("+ping", {}, "fails", id="+ping"),
    pytest.param("+evalsha", {"expedite": True}, "pipeline", id="+evalsha"),
    pytest.param("+script|load", {"expedite": True}, "pipeline", id="+script|load"),
])
def test_every_permission_of_the_wait_rule_is_used(rule_server, permission, options, effect):
    settings = dict(max_ttl=1, target_count=0, timeout=10, poll_interval=0.2)
    settings.update(options)
    reduced = " ".join(word for word in WAIT_RULE.split() if word != permission)
    assert reduced != WAIT_RULE
    if effect == "fails":
        with pytest.raises(Exception) as caught:
            _wait_as(rule_server, reduced, **settings)
        assert isinstance(caught.value, redis.exceptions.NoPermissionError) or "NOPERM" in str(caught.value).upper() \
            or "no permission" in str(caught.value)
        return
    result = _wait_as(rule_server, reduced, **settings)
    assert result["met"] is True and result["expedite_method"] == expected_pipeline_method()
