"""result_keys_info on real redis-servers, through real ansible-playbook."""
import pytest

from harness.workload import load_broker_keys, load_other_keys, load_result_keys

RESULT_KEYS = 50000
NO_TTL_KEYS = 5000


def ttl_spread(i):
    """TTLs spread evenly from 1 h to 24 h."""
    return 3600 + (i * 7) % (82800)


@pytest.fixture
def loaded_server(redis_server):
    client = redis_server.admin()
    load_other_keys(client)
    load_broker_keys(client)
    before = client.info("memory")["used_memory"]
    load_result_keys(client, RESULT_KEYS, ttl_for=ttl_spread)
    load_result_keys(client, NO_TTL_KEYS, ttl_for=lambda i: None, prefix="celery-task-meta-nottl-")
    growth = client.info("memory")["used_memory"] - before
    return redis_server, growth


def test_counts_ttls_memory_and_broker_keys(loaded_server, ansible_module):
    server, growth = loaded_server
    result = ansible_module("result_keys_info", server.login())
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert result["count"] == RESULT_KEYS + NO_TTL_KEYS
    assert result["no_ttl"] == NO_TTL_KEYS
    ttl = result["ttl"]
    assert 3540 <= ttl["min"] <= 3700  # read some seconds after the load, more on a busy machine
    assert 86300 <= ttl["max"] <= 86400
    assert 40000 <= ttl["p50"] <= 50000
    assert 75000 <= ttl["p90"] <= 82000
    estimate = result["memory"]["estimated_bytes"]
    print("memory estimate %d vs used_memory growth %d (%.1f%%)"
          % (estimate, growth, 100.0 * (estimate - growth) / growth))
    assert abs(estimate - growth) <= 0.10 * growth
    assert result["memory"]["sampled"] == 1000
    broker = result["broker_keys"]
    assert broker["found"] is True
    assert broker["bindings"] == ["_kombu.binding.celery"]
    assert {"name": "celery", "type": "list", "length": 25} in broker["queues"]
    assert {q["name"] for q in broker["unacked"]} == {"unacked", "unacked_index"}
    assert result["dbsize"] == RESULT_KEYS + NO_TTL_KEYS + 1000 + 4
    assert result["server_stats"]["total_commands_processed"] > RESULT_KEYS / 1000
    assert result["server_stats"]["total_net_input_bytes"] > growth / 2
    forecast = {point["after"]: point["keys_alive"] for point in result["forecast"]}
    assert forecast["24h"] == NO_TTL_KEYS
    assert forecast["last expiry"] == NO_TTL_KEYS
    assert NO_TTL_KEYS + RESULT_KEYS * 0.9 < forecast["1h"] + 1 <= NO_TTL_KEYS + RESULT_KEYS + 1


def test_check_mode_measures_the_same(redis_server, ansible_module):
    load_result_keys(redis_server.admin(), 300, ttl_for=lambda i: 600)
    result = ansible_module("result_keys_info", redis_server.login(), check=True)
    assert result["count"] == 300 and result["no_ttl"] == 0 and result["changed"] is False


@pytest.mark.parametrize("protocol", [2, 3])
def test_protocols(redis_factory, ansible_module, protocol):
    server = redis_factory(password="s3cr3t-proto")
    load_result_keys(server.admin(), 10, ttl_for=lambda i: 60)
    result = ansible_module("result_keys_info", server.login(protocol=protocol))
    assert not result.get("failed"), result.get("msg")
    assert result["count"] == 10


def test_group_results_and_chord_keys_beside(redis_server, ansible_module):
    client = redis_server.admin()
    load_result_keys(client, 40, ttl_for=lambda i: 600)
    load_result_keys(client, 7, ttl_for=lambda i: 600, prefix="celery-taskset-meta-")
    client.set("chord-unlock-abc.j", 1)
    client.set("chord-unlock-abc.t", 2)
    result = ansible_module("result_keys_info", redis_server.login())
    assert (result["count"], result["group_results"], result["chord_keys"]) == (40, 7, 2)
    assert result["broker_keys"]["found"] is False


def test_wrong_password_is_clear_and_secret_free(redis_factory, ansible_module):
    server = redis_factory(password="right-pass-123")
    result = ansible_module("result_keys_info", server.login(login_password="wrong-pass-456"))
    assert result["failed"] is True
    assert "authentication failed" in result["msg"] and "127.0.0.1:%d" % server.port in result["msg"]
    output = ansible_module.last_run.output
    assert "wrong-pass-456" not in output and "right-pass-123" not in output


def test_no_password_given_where_required(redis_factory, ansible_module):
    server = redis_factory(password="needed-pass")
    result = ansible_module("result_keys_info", {"login_host": server.host, "login_port": server.port})
    assert result["failed"] is True and "requires a password" in result["msg"]


def test_server_down_is_clear(redis_factory, ansible_module):
    server = redis_factory()
    server.stop()
    result = ansible_module("result_keys_info", server.login(login_password="pw-down-789",
                                                             connect_timeout=2))
    assert result["failed"] is True
    assert "cannot connect to 127.0.0.1:%d" % server.port in result["msg"]
    assert "pw-down-789" not in ansible_module.last_run.output


def test_acl_user_without_eval_falls_back_to_pipeline(redis_factory, ansible_module):
    rule = "user reader on >reader-pw ~* &* +@read +scan +ttl +memory +info +type +ping +dbsize"
    server = redis_factory(acl_users=[rule])
    load_result_keys(server.admin(), 500, ttl_for=lambda i: None if i % 5 == 0 else 900)
    result = ansible_module("result_keys_info", {"login_host": server.host, "login_port": server.port,
                                                 "login_user": "reader", "login_password": "reader-pw"})
    assert not result.get("failed"), result.get("msg")
    assert (result["count"], result["no_ttl"], result["ttl_method"]) == (500, 100, "pipeline")


def test_connect_timeout_bounds_the_whole_connect(ansible_module):
    """A listener that accepts but never answers: connect_timeout 2 costs ~2 s, retries included.

    Measured against the same run on a closed port (refused at once), so ansible-playbook's own
    start-up, slow on a busy machine, is not counted; each is the quicker of two runs, since a
    busy machine only ever adds time (a load spike once made one start-up 6 s slower).
    """
    import socket
    import time

    def run(port):
        started = time.monotonic()
        result = ansible_module("result_keys_info", dict(login_host="127.0.0.1", login_port=port, connect_timeout=2))
        assert result["failed"] is True
        return time.monotonic() - started

    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # the kernel completes the handshake; nobody ever reads or answers
    try:
        refused = min(run(closed.getsockname()[1]) for _attempt in range(2))
        silent = min(run(listener.getsockname()[1]) for _attempt in range(2))
    finally:
        listener.close()
        closed.close()
    print("connect_timeout 2: silent listener %.1fs, refused port %.1fs, difference %.1fs"
          % (silent, refused, silent - refused))
    # redis-py's default retries (3, with backoff) made the difference ~20 s
    assert silent - refused < 6, (silent, refused)
