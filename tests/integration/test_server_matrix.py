"""The server under test (make test-servers sets LEAN_RESULTS_REDIS_SERVER) and what differs.

Each test runs on every server of the matrix and expects what that server can do, as a
throwaway instance of it answers (harness.redis_server.server_facts), never a version
string: Redis 6.2 has no EXPIRE ... LT, one parameter per CONFIG SET and no %R~ selectors;
Valkey 8 says redis_version 7.2.4 and server_mode:cluster without redis_mode.
"""
import os

import redis

from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_connection import (
    acl_key_rule,
    server_identity,
    server_version,
)
from harness.redis_server import REDIS_SERVER, SERVER_ENV, server_facts


def test_the_server_under_test_is_the_one_the_matrix_names():
    facts = server_facts()
    expected = os.environ.get("LEAN_RESULTS_EXPECT_SERVER")
    if os.environ.get(SERVER_ENV):
        assert expected, "make test-servers names the server it expects (LEAN_RESULTS_EXPECT_SERVER)"
    if expected:
        name, version = expected.split()
        assert (facts.name, facts.version.split(".")[:len(version.split("."))]) == (name, version.split(".")), (
            "%s runs %r, the matrix asked for %s" % (REDIS_SERVER, facts, expected))
    if facts.name == "valkey":
        assert facts.redis_version == "7.2.4" and facts.version != facts.redis_version


def test_the_modules_version_decisions_match_what_the_server_can_do(redis_server):
    """The product decides Redis features by redis_version (Valkey keeps 7.2.4): on every server
    that must agree with what a probe of the real server finds."""
    facts = server_facts()
    client = redis_server.admin()
    version = server_version(client, {})
    identity = server_identity(client.info("server"))
    assert (identity["name"], identity["version"]) == (facts.name, facts.version)
    assert (version >= (7, 0, 0)) is facts.expire_lt  # result_keys_wait: PEXPIRE ... LT or read-then-cap
    assert (version >= (7, 0, 0)) is facts.multi_config_set  # redis_memory: one CONFIG SET or one by one
    assert (acl_key_rule(version) == "%R~*") is facts.acl_read_selectors
    rule = "probe on >pw %s +ping" % acl_key_rule(version)
    client.execute_command("ACL", "SETUSER", *rule.split())  # the rule the docs give for it is accepted


def _loaded(cluster, keys=300):
    client = cluster.client(protocol=2) if int(redis.__version__.split(".")[0]) >= 5 else cluster.client()
    for index in range(keys):
        client.set("celery-task-meta-%04d" % index, b"x" * 200, ex=3600)
    client.close()
    return keys


def test_every_redis_facing_module_finds_the_whole_cluster(redis_cluster, ansible_module):
    """cluster: auto on every server: Valkey reports server_mode:cluster and no redis_mode line."""
    keys = _loaded(redis_cluster)
    login = redis_cluster.login()
    primaries = sorted("%s:%d" % (s.host, s.port) for s in redis_cluster.roles()["primary"])

    info = ansible_module("result_keys_info", dict(login))
    assert not info["failed"], info.get("msg")
    assert info["topology"]["mode"] == "cluster" and sorted(info["topology"]["primaries"]) == primaries
    assert info["count"] == keys

    wait = ansible_module("result_keys_wait", dict(login, baseline=keys, target_count=keys, timeout=30))
    assert not wait["failed"], wait.get("msg")
    assert wait["topology"]["mode"] == "cluster" and wait["final"] == keys

    memory = ansible_module("redis_memory", dict(login, maxmemory="256mb", maxmemory_policy="volatile-lru"),
                            check=True)
    assert not memory["failed"], memory.get("msg")
    assert memory["topology"]["mode"] == "cluster" and len(memory["nodes"]) == 6
