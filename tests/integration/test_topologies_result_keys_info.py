"""result_keys_info on every topology: a 6-node cluster, a primary with replicas behind Sentinel
(and a failover), a TLS-only server with client certificates, a unix socket, RESP2 and RESP3 —
always as the least-privilege user whose rule docs/topologies.md documents."""

import pytest
import redis
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_connection import (
    RedisModuleError,
    connect_topology,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys import topology_result_keys_report
from harness.topologies import documented_acl_rule, RedisCluster, ReplicatedRedis
from harness.topology_fixtures import tls_certs, tls_redis_factory  # noqa: F401  pylint: disable=unused-import
from harness.workload import load_broker_keys, load_result_keys

USER, PASSWORD = "lean_info", "info-pw-7f3a"

RULE = documented_acl_rule("result_keys_info", PASSWORD)
ACL_USERS = [RULE]


def as_user(options, **extra):
    options = dict(options, login_user=USER, login_password=PASSWORD)
    options.update(extra)
    return options


def one_tag_per_slot():
    """A hash tag for every cluster slot, so keys can cover all 16384 slots."""
    tags, number = {}, 0
    while len(tags) < REDIS_CLUSTER_HASH_SLOTS:
        tags.setdefault(key_slot(str(number).encode()), str(number))
        number += 1
    return [tags[slot] for slot in range(REDIS_CLUSTER_HASH_SLOTS)]


def test_documented_rule_is_the_one_used():
    assert RULE.startswith("lean_info on >") and "+scan" in RULE and "+cluster|nodes" in RULE
    assert "+@" not in RULE and "allcommands" not in RULE


# -- cluster -------------------------------------------------------------------------------------

CLUSTER_NO_TTL = 500


@pytest.fixture(scope="module")
def loaded_cluster(tmp_path_factory):
    cluster = RedisCluster(tmp_path_factory.mktemp("acl-cluster"), acl_users=ACL_USERS)
    cluster.start()
    try:
        client = cluster.client()
        pipe = client.pipeline()
        for slot, tag in enumerate(one_tag_per_slot()):
            pipe.set("celery-task-meta-{%s}-%d" % (tag, slot), b"x" * 100, ex=3600 + slot)
        pipe.execute()
        load_result_keys(client, CLUSTER_NO_TTL, ttl_for=lambda i: None, prefix="celery-task-meta-nottl-")
        load_broker_keys(client)
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.parametrize("login_as, protocol", [
    pytest.param("primary", 2, id="via-primary-resp2"),
    pytest.param("replica", 3, id="via-replica-resp3"),
])
def test_cluster_counts_every_primary(loaded_cluster, ansible_module, login_as, protocol):
    roles = loaded_cluster.roles()
    server = roles[login_as][0]
    result = ansible_module("result_keys_info", as_user(server.login(), protocol=protocol))
    assert not result["failed"], result.get("msg")
    assert result["count"] == REDIS_CLUSTER_HASH_SLOTS + CLUSTER_NO_TTL
    assert result["no_ttl"] == CLUSTER_NO_TTL
    assert result["ttl"]["min"] <= 3600 and 3600 + REDIS_CLUSTER_HASH_SLOTS - 10 <= result["ttl"]["max"]
    assert result["ttl_method"] == "pipeline"
    assert result["topology"]["mode"] == "cluster"
    primaries = sorted("%s:%d" % (s.host, s.port) for s in roles["primary"])
    assert sorted(node["endpoint"] for node in result["nodes"]) == primaries
    assert len(result["topology"]["replicas"]) == 3
    assert all(entry["primary"] in primaries for entry in result["topology"]["replicas"])
    # Each primary holds about a third of the slots, and the per-node counts add up.
    per_node = [node["count"] for node in result["nodes"]]
    assert sum(per_node) == result["count"] and min(per_node) > 5000
    assert result["dbsize"] == result["count"] + 4
    broker = result["broker_keys"]
    assert broker["bindings"] == ["_kombu.binding.celery"]
    assert {"name": "celery", "type": "list", "length": 25} in broker["queues"]
    assert {entry["name"] for entry in broker["unacked"]} == {"unacked", "unacked_index"}
    assert result["memory"]["sampled"] > 900 and result["memory"]["bytes_per_key"] > 100


def test_cluster_no_measures_only_the_node(loaded_cluster):
    server = loaded_cluster.roles()["primary"][0]
    params = as_user(server.login(), cluster="no", protocol=2, db=0, connect_timeout=10)
    topology = connect_topology(params)
    try:
        report = topology_result_keys_report(topology, sample=0)
    finally:
        topology.close()
    assert report["topology"]["mode"] == "replicated"  # the node and its replica, not the cluster
    on_node = sum(1 for _key in server.admin().scan_iter(match="celery-task-meta-*", count=5000))
    assert 5000 < report["count"] == on_node < REDIS_CLUSTER_HASH_SLOTS
    assert report["ttl_method"] == "pipeline"  # a cluster node refuses cross-slot scripts


def test_cluster_yes_on_a_plain_server_says_so(redis_factory):
    server = redis_factory()
    with pytest.raises(RedisModuleError, match=r"cluster: yes, but the server at 127\.0\.0\.1:\d+ is not a cluster node"):
        connect_topology(server.login(cluster="yes", protocol=2))


# -- TLS -------------------------------------------------------------------------------------------

@pytest.fixture
def tls_server(tls_redis_factory):
    server = tls_redis_factory(auth_clients=True, acl_users=ACL_USERS)
    load_result_keys(server.admin(), 200, ttl_for=lambda i: 600)
    return server


@pytest.mark.parametrize("protocol", [pytest.param(2, id="resp2"), pytest.param(3, id="resp3")])
def test_tls_with_client_certificate(tls_server, ansible_module, protocol):
    result = ansible_module("result_keys_info", as_user(tls_server.login(), protocol=protocol))
    assert not result["failed"], result.get("msg")
    assert result["count"] == 200 and result["topology"]["mode"] == "standalone"


def test_tls_wrong_ca_fails_naming_the_file(tls_server, tls_certs, ansible_module):
    result = ansible_module("result_keys_info", as_user(tls_server.login(ca_certs=tls_certs["other_ca"])))
    assert result["failed"]
    assert "certificate verify failed" in result["msg"]
    assert "ca_certs=%s" % tls_certs["other_ca"] in result["msg"]
    assert PASSWORD not in ansible_module.last_run.output


@pytest.mark.parametrize("options, expected", [
    # Redis ends the handshake with an alert, Valkey 8 resets the connection: both messages name the fix
    pytest.param({"client_cert_file": None, "client_key_file": None},
                 "requires a client certificate (tls-auth-clients)", id="no-client-cert"),
    pytest.param({"ca_certs": "/nonexistent/ca.crt"}, "ca_certs=/nonexistent/ca.crt does not exist", id="missing-ca-file"),
    pytest.param({"tls": False}, "set tls: true", id="plain-client-tls-only-server"),
])
def test_tls_failures_name_the_option(tls_server, options, expected):
    params = as_user(tls_server.login(), protocol=2, connect_timeout=5)
    params.update(options)
    with pytest.raises(RedisModuleError) as caught:
        connect_topology(params)
    assert expected in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_tls_client_on_a_plain_port_says_so(redis_server, tls_certs):
    params = dict(redis_server.login(), tls=True, ca_certs=tls_certs["ca"], protocol=2, connect_timeout=1)
    with pytest.raises(RedisModuleError, match="may not speak TLS on that port; set tls: false"):
        connect_topology(params)


# -- unix socket, RESP2-only ----------------------------------------------------------------------

@pytest.mark.parametrize("protocol", [pytest.param(2, id="resp2"), pytest.param(3, id="resp3")])
def test_unix_socket(redis_factory, ansible_module, protocol):
    server = redis_factory(unixsocket=True, acl_users=ACL_USERS)
    load_result_keys(server.admin(), 120, ttl_for=lambda i: 600 if i % 4 else None)
    result = ansible_module("result_keys_info", as_user({"login_unix_socket": server.unix_socket}, protocol=protocol))
    assert not result["failed"], result.get("msg")
    assert (result["count"], result["no_ttl"]) == (120, 30)
    assert result["nodes"][0]["endpoint"] == "unix:%s" % server.unix_socket
    assert result["ttl_method"] == "lua"


@pytest.mark.parametrize("protocol, error", [
    pytest.param(2, None, id="resp2-works"),
    pytest.param(3, "does not speak RESP3", id="resp3-refused-clearly"),
])
def test_resp2_only_server(redis_factory, ansible_module, protocol, error):
    # Without HELLO a server answers like Redis 5: RESP2 only.
    server = redis_factory(config_file=True, acl_users=ACL_USERS, extra={"rename-command": 'HELLO ""'})
    load_result_keys(server.admin(), 50, ttl_for=lambda i: 600)
    result = ansible_module("result_keys_info", as_user(server.login(), protocol=protocol))
    if error is None:
        assert not result["failed"], result.get("msg")
        assert result["count"] == 50
    else:
        assert result["failed"] and error in result["msg"] and "set protocol: 2" in result["msg"]


# -- primary, replicas, Sentinel --------------------------------------------------------------------

@pytest.fixture(scope="module")
def sentinel_set(tmp_path_factory):
    replicated = ReplicatedRedis(tmp_path_factory.mktemp("acl-sentinel"), acl_users=ACL_USERS)
    replicated.start()
    try:
        load_result_keys(replicated.primary.admin(), 300, ttl_for=lambda i: 900)
        yield replicated
    finally:
        replicated.stop()


def endpoint(server):
    return "%s:%d" % (server.host, server.port)


def test_direct_login_to_a_replica_follows_to_the_primary(sentinel_set):
    replica = sentinel_set.replicas[0]
    topology = connect_topology(as_user(replica.login(), protocol=3, db=0))
    try:
        assert topology.mode == "replicated"
        assert topology.primary.endpoint == endpoint(sentinel_set.primary)
        assert sorted(node.endpoint for node in topology.replicas) == sorted(endpoint(r) for r in sentinel_set.replicas)
        report = topology_result_keys_report(topology, sample=0)
        assert report["count"] == 300
    finally:
        topology.close()


def test_unknown_sentinel_master_and_no_sentinel_reachable(sentinel_set):
    params = as_user(sentinel_set.sentinel_login(sentinel_master="nope"), protocol=2, db=0)
    with pytest.raises(RedisModuleError, match="does not monitor a master named 'nope'"):
        connect_topology(params)
    params = as_user(sentinel_set.sentinel_login(sentinel_hosts=["127.0.0.1:1"]), protocol=2, db=0, connect_timeout=2)
    with pytest.raises(RedisModuleError, match=r"no Sentinel in sentinel_hosts \(127\.0\.0\.1:1\) named the current primary"):
        connect_topology(params)


def test_sentinel_then_failover_follows_the_new_primary(sentinel_set, ansible_module):
    before = ansible_module("result_keys_info", as_user(sentinel_set.sentinel_login()))
    assert not before["failed"], before.get("msg")
    assert before["count"] == 300
    assert before["nodes"] == [dict(before["nodes"][0], endpoint=endpoint(sentinel_set.primary), role="primary")]
    assert before["topology"]["sentinel"] == endpoint(sentinel_set.sentinel)
    assert sorted(r["endpoint"] for r in before["topology"]["replicas"]) == sorted(
        endpoint(r) for r in sentinel_set.replicas)

    new_primary = sentinel_set.failover()
    assert new_primary is not sentinel_set.primary
    load_result_keys(new_primary.admin(), 40, ttl_for=lambda i: 900, prefix="celery-task-meta-after-")

    after = ansible_module("result_keys_info", as_user(sentinel_set.sentinel_login(), protocol=3))
    assert not after["failed"], after.get("msg")
    assert after["nodes"][0]["endpoint"] == endpoint(new_primary)
    assert after["count"] == 340
    assert endpoint(new_primary) not in [r["endpoint"] for r in after["topology"]["replicas"]]


def test_wrong_password_never_shows(redis_factory, ansible_module):
    server = redis_factory(acl_users=ACL_USERS)
    result = ansible_module("result_keys_info", dict(server.login(), login_user=USER, login_password="wrong-" + PASSWORD))
    assert result["failed"] and "WRONGPASS" in result["msg"]
    assert "wrong-" + PASSWORD not in ansible_module.last_run.output


def test_redis_py_cluster_client_agrees(loaded_cluster):
    """The truth the module's count is compared to, from redis-py's own cluster client."""
    client = loaded_cluster.client()
    assert sum(1 for _key in client.scan_iter(match="celery-task-meta-*", count=5000)) == \
        REDIS_CLUSTER_HASH_SLOTS + CLUSTER_NO_TTL
    assert isinstance(client, redis.RedisCluster)


# -- the documented rule is minimal: without any one permission the module fails or loses something

def _report_as(server, rule):
    server.admin().execute_command("ACL", "SETUSER", USER, "reset", *rule.split()[1:])
    server.admin().script_flush()  # else EVALSHA finds the batch script loaded by an earlier run
    topology = connect_topology(as_user(server.login(), protocol=2, db=0, connect_timeout=5))
    try:
        return topology_result_keys_report(topology, sample=50)
    finally:
        topology.close()


@pytest.fixture(scope="module")
def rule_server(tmp_path_factory):
    from harness.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("acl-rule")).start()
    try:
        load_result_keys(server.admin(), 200, ttl_for=lambda i: 600)
        load_broker_keys(server.admin())
        server.admin().zadd("celery\x06\x169", {"m": 1})  # a priority queue (zset)
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("permission, effect", [
    pytest.param(permission, "fails", id=permission)
    for permission in ("+scan", "+ttl", "+type", "+llen", "+zcard", "+hlen", "+smembers", "+dbsize", "+info", "+ping")
] + [
    pytest.param("+evalsha", "pipeline", id="+evalsha"),
    pytest.param("+script|load", "pipeline", id="+script|load"),
    pytest.param("+memory|usage", "no-sample", id="+memory|usage"),
    pytest.param("+memory|stats", "smaller-estimate", id="+memory|stats"),
])
def test_every_permission_of_the_rule_is_used(rule_server, permission, effect):
    # +exists (a queue name of another type) and +cluster|nodes (clusters: see above) are not exercised here.
    full = _report_as(rule_server, RULE)
    assert full["ttl_method"] == "lua" and full["memory"]["sampled"] == 50 and full["count"] == 200
    reduced_rule = " ".join(word for word in RULE.split() if word != permission)
    assert reduced_rule != RULE
    if effect == "fails":
        with pytest.raises((RedisModuleError, redis.exceptions.NoPermissionError)):
            _report_as(rule_server, reduced_rule)
        return
    reduced = _report_as(rule_server, reduced_rule)
    assert reduced["count"] == 200
    if effect == "pipeline":
        assert reduced["ttl_method"] == "pipeline"
    elif effect == "no-sample":
        assert reduced["memory"]["sampled"] == 0
    else:
        assert reduced["memory"]["bytes_per_key"] < full["memory"]["bytes_per_key"]
