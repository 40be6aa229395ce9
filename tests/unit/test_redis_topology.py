"""Pure parts of the topology layer: CLUSTER NODES, host:port, error messages, option lockstep."""
import ssl

import pytest
import yaml
from redis import exceptions as rex

from ansible_collections.celery_ops.lean_results.plugins.doc_fragments.redis_connection import ModuleDocFragment
from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_connection import (
    REDIS_PY_VERSION,
    Node,
    Topology,
    acl_key_rule,
    client_kwargs,
    describe_redis_error,
    is_cluster_node,
    parse_cluster_nodes,
    parse_host_port,
    redis_connection_argument_spec,
    server_identity,
    server_mode,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_memory import (
    MINIMAL_ACL,
    MINIMAL_ACL_REDIS6,
    describe_config_error,
)

CLUSTER_NODES = b"""\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@40004,node-4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@40002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@40003 master - 0 1426238318243 3 connected 10923-16383
6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@40005 slave 67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 0 1426238316232 5 connected
824fe116063bc5fcf9f4ffd895bc17aee7731ac3 127.0.0.1:30006@40006 slave,fail 292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 0 1426238317741 6 disconnected
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
"""


def test_parse_cluster_nodes():
    nodes = {node["port"]: node for node in parse_cluster_nodes(CLUSTER_NODES)}
    assert sorted(nodes) == [30001, 30002, 30003, 30004, 30005, 30006]
    assert nodes[30004]["host"] == "127.0.0.1"  # ",hostname" after the bus port is dropped
    assert nodes[30004]["primary_id"] == "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca"
    assert nodes[30001]["flags"] == {"myself", "master"} and nodes[30001]["slots"]
    assert "fail" in nodes[30006]["flags"] and not nodes[30006]["slots"]


@pytest.mark.parametrize("text, expected", [
    pytest.param("sentinel-1", ("sentinel-1", 26379), id="default-port"),
    pytest.param("10.0.0.5:26380", ("10.0.0.5", 26380), id="host-port"),
    pytest.param("[::1]:26381", ("::1", 26381), id="ipv6"),
    pytest.param("[fe80::1]", ("fe80::1", 26379), id="ipv6-default-port"),
])
def test_parse_host_port(text, expected):
    assert parse_host_port(text, 26379) == expected


PARAMS = {"login_host": "10.0.0.7", "login_port": 6379, "login_password": "s3cret-pw", "tls": True,
          "ca_certs": "/etc/pki/ca.crt", "client_cert_file": "/etc/pki/c.crt"}


@pytest.mark.parametrize("exc, expected", [
    pytest.param(rex.MovedError("3999 127.0.0.1:6381"), "use cluster: auto (or yes)", id="moved"),
    pytest.param(rex.ResponseError("CROSSSLOT Keys in request don't hash to the same slot"), "(CROSSSLOT)",
                 id="crossslot"),
    pytest.param(rex.ResponseError("CLUSTERDOWN The cluster is down"), "cluster_state:ok", id="clusterdown"),
    pytest.param(rex.ConnectionError("Error 1 connecting to 10.0.0.7:6379. [SSL: CERTIFICATE_VERIFY_FAILED] "
                                     "certificate verify failed: unable to get local issuer certificate"),
                 "not signed by a CA in ca_certs=/etc/pki/ca.crt", id="verify-failed"),
    pytest.param(ssl.SSLCertVerificationError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: IP "
                                              "address mismatch, certificate is not valid for '10.0.0.7'."),
                 "does not name '10.0.0.7'", id="host-mismatch"),
    pytest.param(rex.ConnectionError("[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca"),
                 "rejected the client certificate client_cert_file=/etc/pki/c.crt", id="client-cert-unknown-ca"),
    pytest.param(rex.ConnectionError("[SSL: WRONG_VERSION_NUMBER] wrong version number"),
                 "does not speak TLS on that port", id="tls-to-plain-port"),
    pytest.param(rex.ConnectionError("[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required"),
                 "set client_cert_file and client_key_file", id="client-cert-required"),
])
def test_cluster_and_tls_messages(exc, expected):
    message = describe_redis_error(exc, PARAMS, command="SCAN")
    assert expected in message
    assert "s3cret-pw" not in message


def test_plain_client_on_tls_only_server():
    message = describe_redis_error(rex.ConnectionError("Connection closed by server."), dict(PARAMS, tls=False))
    assert "set tls: true" in message


def test_sentinel_password_is_no_log_and_options_in_lockstep():
    spec = redis_connection_argument_spec()
    assert spec["sentinel_password"]["no_log"] is True
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert sorted(documented) == sorted(spec)
    for name, option in spec.items():
        assert documented[name]["type"] == option["type"], name
        assert documented[name].get("default") == option.get("default"), name
        assert documented[name].get("elements") == option.get("elements"), name


def test_maintenance_notifications_off():
    # RESP3 (where redis-py 7+ would ask for them) exists from redis-py 5; 4.x speaks RESP2 only
    kwargs = client_kwargs({"login_unix_socket": "/run/r.sock", "protocol": 3 if REDIS_PY_VERSION >= (5, 0) else 2})
    config = kwargs.get("maint_notifications_config")
    assert config is None or config.enabled is False


def test_topology_describe():
    topology = Topology("replicated", [Node("10.0.0.1", 6379, "primary")],
                        [Node("10.0.0.2", 6379, "replica", primary="10.0.0.1:6379")], sentinel="10.0.0.9:26379")
    assert topology.describe() == {
        "mode": "replicated", "primaries": ["10.0.0.1:6379"],
        "replicas": [{"endpoint": "10.0.0.2:6379", "primary": "10.0.0.1:6379"}], "sentinel": "10.0.0.9:26379",
    }
    assert Node("/run/r.sock", None, "primary").endpoint == "unix:/run/r.sock"
    assert topology.cluster_enabled is False and Topology("cluster", []).cluster_enabled is True


# -- deciding by what the server says it can do, not by its version string ---------------------

class InfoOnly:
    """The slice of a redis client that cluster detection needs: INFO by section."""

    def __init__(self, **sections):
        self.sections = sections
        self.asked = []

    def info(self, section="server"):
        self.asked.append(section)
        return self.sections.get(section, {})


# INFO as the servers of the matrix report it (measured on Redis 6.2.16, 7.0.15, Valkey 8.0.1)
VALKEY_CLUSTER = dict(server={"server_name": "valkey", "redis_version": "7.2.4", "valkey_version": "8.0.1",
                              "server_mode": "cluster"}, cluster={"cluster_enabled": 1})
VALKEY_STANDALONE = dict(server={"server_name": "valkey", "redis_version": "7.2.4", "valkey_version": "8.0.1",
                                 "server_mode": "standalone"}, cluster={"cluster_enabled": 0})
REDIS6_CLUSTER = dict(server={"redis_version": "6.2.16", "redis_mode": "cluster"}, cluster={"cluster_enabled": 1})
REDIS7_STANDALONE = dict(server={"redis_version": "7.0.15", "redis_mode": "standalone"},
                         cluster={"cluster_enabled": 0})


@pytest.mark.parametrize("sections, expected", [
    pytest.param(VALKEY_CLUSTER, True, id="valkey-cluster-no-redis_mode"),
    pytest.param(VALKEY_STANDALONE, False, id="valkey-standalone"),
    pytest.param(REDIS6_CLUSTER, True, id="redis6-cluster"),
    pytest.param(REDIS7_STANDALONE, False, id="redis7-standalone"),
    pytest.param(dict(server={"server_mode": "cluster"}), True, id="no-cluster-section-valkey-mode-line"),
    pytest.param(dict(server={"redis_mode": "cluster"}), True, id="no-cluster-section-redis-mode-line"),
    pytest.param(dict(server={"redis_version": "5.0.0"}), False, id="no-mode-at-all"),
])
def test_cluster_mode_is_asked_of_the_server(sections, expected):
    client = InfoOnly(**sections)
    assert is_cluster_node(client, {"login_host": "h", "login_port": 1}) is expected
    assert client.asked[0] == "cluster"  # the capability first, the mode line only as a fallback


@pytest.mark.parametrize("info, expected", [
    pytest.param(VALKEY_CLUSTER["server"], dict(name="valkey", version="8.0.1", redis_version=(7, 2, 4)),
                 id="valkey"),
    pytest.param(REDIS6_CLUSTER["server"], dict(name="redis", version="6.2.16", redis_version=(6, 2, 16)),
                 id="redis6"),
    pytest.param({"server_name": "redis", "redis_version": "7.2.6"},
                 dict(name="redis", version="7.2.6", redis_version=(7, 2, 6)), id="redis7-with-server_name"),
])
def test_server_identity(info, expected):
    assert server_identity(info) == expected


@pytest.mark.parametrize("info, expected", [
    pytest.param(VALKEY_CLUSTER["server"], "cluster", id="valkey-server_mode"),
    pytest.param(REDIS6_CLUSTER["server"], "cluster", id="redis-redis_mode"),
    pytest.param({}, "standalone", id="none"),
])
def test_server_mode_line(info, expected):
    assert server_mode(info) == expected


@pytest.mark.parametrize("version, read_only, expected", [
    pytest.param((6, 2, 16), True, "~*", id="redis6-no-read-selectors"),
    pytest.param((7, 0, 0), True, "%R~*", id="redis7"),
    pytest.param((7, 2, 4), True, "%R~*", id="valkey8-reports-7.2.4"),
    pytest.param((7, 0, 15), False, "~*", id="writer"),
])
def test_acl_key_rule_per_server_line(version, read_only, expected):
    assert acl_key_rule(version, read_only) == expected


def test_redis6_memory_rule_is_the_7x_rule_without_read_selectors():
    assert MINIMAL_ACL_REDIS6.split() == [
        acl_key_rule((6, 2, 16)) if word == acl_key_rule((7, 0, 0)) else word for word in MINIMAL_ACL.split()]
    assert "%R~" not in MINIMAL_ACL_REDIS6


def test_noperm_message_gives_the_rule_for_each_server_line():
    message = describe_config_error(rex.NoPermissionError("this user has no permissions to run the 'config|set' "
                                                          "command"), {"login_host": "h", "login_port": 1},
                                    "CONFIG SET")
    assert MINIMAL_ACL in message and MINIMAL_ACL_REDIS6 in message and "Redis 6.2" in message
