"""Error mapping and client options of the shared connection layer (pure logic)."""
import pytest
from redis import exceptions as rex

from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_connection import (
    REDIS_PY_VERSION,
    RedisModuleError,
    client_kwargs,
    describe_redis_error,
    redis_connection_argument_spec,
)

PARAMS = {"login_host": "redis.internal", "login_port": 6380, "login_user": "app",
          "login_password": "hunter2-secret"}


@pytest.mark.parametrize("exc, expected", [
    pytest.param(rex.AuthenticationError("WRONGPASS invalid username-password pair or user is disabled."),
                 "authentication failed at redis.internal:6380 for user 'app'", id="wrongpass"),
    pytest.param(rex.AuthenticationError("Authentication required."), "requires a password", id="noauth"),
    pytest.param(rex.ResponseError("NOAUTH Authentication required."), "requires a password", id="noauth-response"),
    pytest.param(rex.NoPermissionError("this user has no permissions to run the 'config|set' command"),
                 "ACL SETUSER app +config|set", id="noperm-names-command"),
    pytest.param(rex.ResponseError("unknown command 'CONFIG', with args beginning with: 'GET' "),
                 "renamed (rename-command) or blocked", id="unknown-command"),
    pytest.param(rex.ResponseError("unknown command 'HELLO', with args beginning with: '3' "),
                 "set protocol: 2", id="resp3-refused"),
    # Redis 6.2's wording, measured (HELLO renamed away): backticks, not quotes
    pytest.param(rex.ResponseError("unknown command `HELLO`, with args beginning with: `3`, "),
                 "set protocol: 2", id="resp3-refused-redis6-backticks"),
    pytest.param(rex.ResponseError("unknown command `CONFIG`, with args beginning with: `GET`, "),
                 "renamed (rename-command) or blocked", id="unknown-command-redis6-backticks"),
    pytest.param(rex.ResponseError("OOM command not allowed when used memory > 'maxmemory'."),
                 "out of memory (OOM)", id="oom"),
    pytest.param(rex.ResponseError("The server is running without a config file"),
                 "without a config file", id="no-config-file"),
    pytest.param(rex.ConnectionError("Error 111 connecting to redis.internal:6380. Connection refused."),
                 "cannot connect to redis.internal:6380", id="refused"),
    pytest.param(rex.TimeoutError("Timeout reading from socket"), "timed out talking to redis.internal:6380",
                 id="timeout"),
    pytest.param(rex.ResponseError("ERR something hunter2-secret odd"), "Redis error at redis.internal:6380",
                 id="other"),
])
def test_error_mapping(exc, expected):
    message = describe_redis_error(exc, PARAMS, command="CONFIG SET")
    assert expected in message
    assert "hunter2-secret" not in message


def test_unix_socket_endpoint_in_messages():
    message = describe_redis_error(rex.ConnectionError("No such file"), {"login_unix_socket": "/run/r.sock"})
    assert "unix:/run/r.sock" in message


def test_password_option_is_no_log():
    assert redis_connection_argument_spec()["login_password"]["no_log"] is True


def test_tls_options_reach_the_client():
    kwargs = client_kwargs(dict(PARAMS, tls=True, validate_certs=False, ca_certs="/ca.pem",
                                client_cert_file="/c.pem", client_key_file="/k.pem", protocol=2))
    assert kwargs["ssl"] is True and kwargs["ssl_cert_reqs"] == "none"
    assert (kwargs["ssl_ca_certs"], kwargs["ssl_certfile"], kwargs["ssl_keyfile"]) == ("/ca.pem", "/c.pem", "/k.pem")
    assert kwargs.get("protocol", 2) == 2 and kwargs["username"] == "app"


def test_protocol_3_on_this_redis_py():
    """RESP3 needs redis-py 5+ (make test-matrix runs 4.6 and 8): passed on, or refused clearly."""
    params = dict(PARAMS, tls=True, protocol=3)
    if REDIS_PY_VERSION >= (5, 0):
        assert client_kwargs(params)["protocol"] == 3
        return
    with pytest.raises(RedisModuleError) as caught:
        client_kwargs(params)
    assert "protocol: 3 needs redis-py 5.0 or later" in str(caught.value) and "use protocol: 2" in str(caught.value)


def test_unix_socket_wins_over_host():
    kwargs = client_kwargs({"login_unix_socket": "/run/r.sock", "login_host": "x", "login_port": 1})
    assert kwargs["unix_socket_path"] == "/run/r.sock" and "host" not in kwargs
