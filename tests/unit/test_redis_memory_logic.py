"""Pure logic of redis_memory: units, policies, the plan, guards, apply/roll-back, config-file edits."""
import pytest

from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_memory import (
    MINIMAL_ACL,
    NodePlan,
    RedisMemoryError,
    apply_changes,
    apply_nodes,
    check_guards,
    config_file_matches,
    describe_config_error,
    normalise_config,
    normalise_wanted,
    parse_memory,
    plan,
    read_config_values,
    rewrite_config,
    supported_policies,
    validate_policy,
)

GIB = 1024 ** 3
PARAMS = {"login_host": "redis.internal", "login_port": 6379, "login_password": "hunter2-secret"}


# -- units ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    pytest.param("1073741824", GIB, id="bare-bytes"),
    pytest.param(1073741824, GIB, id="int"),
    pytest.param("1gb", GIB, id="gb"),
    pytest.param("1024mb", GIB, id="mb"),
    pytest.param("1048576kb", GIB, id="kb"),
    pytest.param("1GB", GIB, id="upper"),
    pytest.param("1Gb", GIB, id="mixed-case"),
    pytest.param(" 1gb ", GIB, id="surrounding-space"),
    pytest.param("1g", 1000000000, id="g-power-of-10"),
    pytest.param("512m", 512000000, id="m-power-of-10"),
    pytest.param("100k", 100000, id="k-power-of-10"),
    pytest.param("100b", 100, id="b"),
    pytest.param("0", 0, id="zero-no-limit"),
])
def test_parse_memory(value, expected):
    assert parse_memory(value) == expected


def test_units_that_mean_the_same():
    assert parse_memory("1gb") == parse_memory("1024mb") == parse_memory("1073741824")
    assert parse_memory("1g") != parse_memory("1gb")


@pytest.mark.parametrize("value", [
    pytest.param("1 gb", id="space-inside"),
    pytest.param("1.5gb", id="fraction"),
    pytest.param("-1", id="negative-text"),
    pytest.param(-1, id="negative-int"),
    pytest.param("1tb", id="unknown-unit"),
    pytest.param("gb", id="no-number"),
    pytest.param("", id="empty"),
    pytest.param("1gib", id="iec-suffix"),
    pytest.param(True, id="bool"),
])
def test_parse_memory_refuses_garbage(value):
    with pytest.raises(RedisMemoryError, match="maxmemory"):
        parse_memory(value)


# -- policies -------------------------------------------------------------------------------

@pytest.mark.parametrize("policy, version, expected", [
    pytest.param("volatile-ttl", (7, 0, 15), "volatile-ttl", id="classic-on-7"),
    pytest.param("ALLKEYS-LRU", (6, 2, 0), "allkeys-lru", id="case-insensitive"),
    pytest.param("noeviction", (5, 0, 0), "noeviction", id="noeviction-on-5"),
    pytest.param("volatile-lrm", (8, 6, 0), "volatile-lrm", id="lrm-on-8.6"),
    pytest.param("allkeys-lrm", (9, 0, 1), "allkeys-lrm", id="lrm-on-9"),
])
def test_validate_policy_accepts(policy, version, expected):
    assert validate_policy(policy, version) == expected


@pytest.mark.parametrize("policy, version, message", [
    pytest.param("volatile-lrm", (8, 4, 0), "needs Redis 8.6", id="lrm-on-8.4"),
    pytest.param("allkeys-lrm", (7, 0, 15), "needs Redis 8.6", id="lrm-on-7"),
    pytest.param("volatile-fifo", (7, 0, 15), "not an eviction policy", id="made-up"),
    pytest.param("", (7, 0, 15), "not an eviction policy", id="empty"),
])
def test_validate_policy_refuses(policy, version, message):
    with pytest.raises(RedisMemoryError, match=message):
        validate_policy(policy, version)


def test_supported_policies_by_version():
    assert len(supported_policies((8, 5, 9))) == 8
    assert len(supported_policies((8, 6, 0))) == 10


# -- plan -----------------------------------------------------------------------------------

RAW_CONFIG = {b"maxmemory": b"1073741824", b"maxmemory-policy": b"volatile-ttl",
              b"maxmemory-samples": b"5", b"maxmemory-clients": b"0",
              b"maxmemory-eviction-tenacity": b"10"}


def test_normalise_config_keeps_our_three():
    assert normalise_config(RAW_CONFIG) == {"maxmemory": GIB, "maxmemory_policy": "volatile-ttl",
                                            "maxmemory_samples": 5}


@pytest.mark.parametrize("params, expected", [
    pytest.param({"maxmemory": "1024mb"}, [], id="same-bytes-other-unit"),
    pytest.param({"maxmemory": "1gb", "maxmemory_policy": "VOLATILE-TTL", "maxmemory_samples": 5}, [],
                 id="all-same"),
    pytest.param({}, [], id="nothing-asked"),
    pytest.param({"maxmemory": "1g"}, [("maxmemory", GIB, 10 ** 9)], id="g-is-not-gb"),
    pytest.param({"maxmemory_policy": "volatile-lru", "maxmemory_samples": 10},
                 [("maxmemory_policy", "volatile-ttl", "volatile-lru"), ("maxmemory_samples", 5, 10)],
                 id="two-changes-in-order"),
])
def test_plan(params, expected):
    current = normalise_config(RAW_CONFIG)
    assert plan(current, normalise_wanted(params, (7, 0, 15))) == expected


# -- guards ---------------------------------------------------------------------------------

BROKER = {"found": True, "bindings": ["_kombu.binding.celery"],
          "queues": [{"name": "celery", "type": "list", "length": 25}], "unacked": [], "total": 2}
NO_BROKER = {"found": False, "bindings": [], "queues": [], "unacked": [], "total": 0}
CURRENT = {"maxmemory": 0, "maxmemory_policy": "noeviction", "maxmemory_samples": 5}
MB = 1024 ** 2


@pytest.mark.parametrize("wanted, used, broker, allow, message", [
    pytest.param({"maxmemory_policy": "allkeys-lru"}, MB, BROKER, {}, "allkeys-lru.*broker keys.*celery",
                 id="allkeys-with-broker"),
    pytest.param({"maxmemory_policy": "allkeys-random"}, MB, BROKER, {"allow_below_used": True},
                 "allow_allkeys_with_broker", id="allkeys-other-override-not-enough"),
    pytest.param({"maxmemory": 100 * MB}, 200 * MB, None, {}, "below|already uses.*allow_below_used",
                 id="below-used"),
])
def test_guards_refuse(wanted, used, broker, allow, message):
    with pytest.raises(RedisMemoryError, match=message):
        check_guards(CURRENT, wanted, used, broker, **allow)


@pytest.mark.parametrize("current, wanted, used, broker, allow, warned", [
    pytest.param(CURRENT, {"maxmemory": GIB, "maxmemory_policy": "volatile-ttl"}, 100 * MB, BROKER, {}, [],
                 id="volatile-with-broker-fine"),
    pytest.param(CURRENT, {"maxmemory": GIB, "maxmemory_policy": "allkeys-lru"}, 100 * MB, NO_BROKER, {}, [],
                 id="allkeys-without-broker-fine"),
    pytest.param(CURRENT, {"maxmemory_policy": "allkeys-lru"}, MB, BROKER,
                 {"allow_allkeys_with_broker": True}, ["queued tasks can be evicted", "no effect"],
                 id="allkeys-allowed-warns"),
    pytest.param(CURRENT, {"maxmemory": 110 * MB}, 100 * MB, None, {}, ["headroom"], id="low-headroom"),
    pytest.param(CURRENT, {"maxmemory": 121 * MB}, 100 * MB, None, {}, [], id="enough-headroom"),
    pytest.param(CURRENT, {"maxmemory": 50 * MB}, 100 * MB, None, {"allow_below_used": True},
                 ["below used_memory"], id="below-used-allowed-warns"),
    pytest.param(dict(CURRENT, maxmemory=50 * MB), {"maxmemory": 50 * MB}, 100 * MB, None, {},
                 ["below used_memory"], id="already-below-not-refused-again"),
    pytest.param(CURRENT, {"maxmemory_policy": "volatile-ttl"}, MB, None, {}, ["no effect"],
                 id="policy-without-limit"),
    pytest.param(CURRENT, {"maxmemory": "0", "maxmemory_policy": "noeviction"}, MB, None, {}, [],
                 id="noeviction-without-limit-fine"),
    pytest.param(dict(CURRENT, maxmemory=GIB, maxmemory_policy="allkeys-lru"), {"maxmemory_samples": 10},
                 MB, BROKER, {}, ["current policy allkeys-lru can evict"], id="current-allkeys-warns"),
])
def test_guard_warnings(current, wanted, used, broker, allow, warned):
    wanted = normalise_wanted(wanted, (7, 0, 15))
    warnings = check_guards(current, wanted, used, broker, **allow)
    assert len(warnings) == len(warned), warnings
    for text, expected in zip(warnings, warned):
        assert expected in text


# -- errors ---------------------------------------------------------------------------------

class ResponseError(Exception):
    pass


class NoPermissionError(Exception):
    pass


@pytest.mark.parametrize("exc, command, expected", [
    pytest.param(NoPermissionError("this user has no permissions to run the 'config|set' command"),
                 "CONFIG SET", ["NOPERM", "+config|get +config|set", MINIMAL_ACL], id="noperm"),
    pytest.param(ResponseError("unknown command 'CONFIG', with args beginning with: 'GET' 'maxmemory*'"),
                 "CONFIG GET", ["renamed", "parameter groups"], id="renamed"),
    pytest.param(ResponseError("CONFIG SET failed (possibly related to argument 'maxmemory-samples') - "
                               "argument must be between 1 and 64 inclusive"),
                 "CONFIG SET", ["Redis rejected maxmemory-samples 1000"], id="rejected-value"),
])
def test_describe_config_error(exc, command, expected):
    changes = [("maxmemory", 0, GIB), ("maxmemory_samples", 5, 1000)]
    message = describe_config_error(exc, PARAMS, command, changes)
    for text in expected:
        assert text in message
    assert "hunter2" not in message
    if "rejected" in message:
        assert "maxmemory 1073741824" not in message


# -- apply ----------------------------------------------------------------------------------

class FakeClient:
    """CONFIG SET recorder; refuses a parameter named in ``refuse``."""

    def __init__(self, refuse=()):
        self.calls = []
        self.refuse = refuse

    def execute_command(self, *args):
        self.calls.append(args)
        names = args[2::2]
        for name in names:
            if name in self.refuse:
                raise ResponseError("CONFIG SET failed (possibly related to argument '%s') - bad" % name)
        return b"OK"


CHANGES = [("maxmemory", 0, GIB), ("maxmemory_policy", "noeviction", "volatile-ttl"),
           ("maxmemory_samples", 5, 1000)]


def test_apply_on_redis_7_is_one_atomic_call():
    client = FakeClient()
    apply_changes(client, PARAMS, CHANGES, (7, 0, 15))
    assert client.calls == [("CONFIG", "SET", "maxmemory", "1073741824", "maxmemory-policy", "volatile-ttl",
                             "maxmemory-samples", "1000")]


def test_apply_on_redis_7_refused_names_the_parameter():
    client = FakeClient(refuse=("maxmemory-samples",))
    with pytest.raises(RedisMemoryError, match="rejected maxmemory-samples 1000.*nothing was changed"):
        apply_changes(client, PARAMS, CHANGES, (7, 2, 0))
    assert len(client.calls) == 1


def test_apply_on_redis_6_one_by_one():
    client = FakeClient()
    apply_changes(client, PARAMS, CHANGES, (6, 2, 14))
    assert [call[2] for call in client.calls] == ["maxmemory", "maxmemory-policy", "maxmemory-samples"]


def test_apply_on_redis_6_rolls_back_when_a_later_one_fails():
    client = FakeClient(refuse=("maxmemory-samples",))
    with pytest.raises(RedisMemoryError, match="rejected maxmemory-samples 1000.*rolled back maxmemory, "
                                               "maxmemory-policy"):
        apply_changes(client, PARAMS, CHANGES, (6, 0, 0))
    assert client.calls[3:] == [("CONFIG", "SET", "maxmemory-policy", "noeviction"),
                                ("CONFIG", "SET", "maxmemory", "0")]


def test_apply_on_redis_6_first_fails_changes_nothing():
    client = FakeClient(refuse=("maxmemory",))
    with pytest.raises(RedisMemoryError, match="nothing was changed"):
        apply_changes(client, PARAMS, CHANGES, (6, 0, 0))
    assert len(client.calls) == 1


class SaturatingClient(FakeClient):
    """A server that keeps at most ``limit`` for maxmemory, as Redis 6.2 keeps 2**63-1."""

    def __init__(self, limit):
        FakeClient.__init__(self)
        self.limit = limit
        self.values = {"maxmemory": "0", "maxmemory-policy": "noeviction", "maxmemory-samples": "5"}

    def execute_command(self, *args):
        FakeClient.execute_command(self, *args)
        for name, value in zip(args[2::2], args[3::2]):
            self.values[name] = str(min(int(value), self.limit)) if name == "maxmemory" else value
        return b"OK"

    def config_get(self, _pattern):
        return dict(self.values)


class FakeNode:
    endpoint, role = "redis.internal:6379", "primary"

    def __init__(self, client):
        self.client = client


def test_a_value_the_server_does_not_hold_is_rolled_back_and_refused():
    """Read back after CONFIG SET: a saturated value would make every later run "change"."""
    client = SaturatingClient(limit=2 ** 63 - 1)
    before = normalise_config(dict(client.values))
    item = NodePlan(FakeNode(client), PARAMS, (7, 0, 0), before, 1000,
                    {"maxmemory": 2 ** 64 - 1, "maxmemory_policy": "volatile-ttl"})
    with pytest.raises(RedisMemoryError, match="maxmemory 18446744073709551615 was stored as 9223372036854775807"
                                               ".*rolled back"):
        apply_nodes([item])
    assert client.values == {"maxmemory": "0", "maxmemory-policy": "noeviction", "maxmemory-samples": "5"}
    assert item.after == before


# -- config file ----------------------------------------------------------------------------

WANTED = {"maxmemory": GIB, "maxmemory_policy": "volatile-ttl"}
TEXTS = {"maxmemory": "1gb", "maxmemory_policy": "volatile-ttl"}
HEADER = b"# Redis configuration\nport 6379\n# maxmemory <bytes>\nsave \"\"\n"


@pytest.mark.parametrize("source, expected", [
    pytest.param(HEADER + b"maxmemory 100mb\nmaxmemory-policy noeviction\nappendonly no\n",
                 HEADER + b"maxmemory 1gb\nmaxmemory-policy volatile-ttl\nappendonly no\n",
                 id="replace-in-place"),
    pytest.param(HEADER, HEADER + b"maxmemory 1gb\nmaxmemory-policy volatile-ttl\n", id="append-missing"),
    pytest.param(b"port 6379", b"port 6379\nmaxmemory 1gb\nmaxmemory-policy volatile-ttl\n",
                 id="append-after-missing-final-newline"),
    pytest.param(b"port 6379\r\nmaxmemory 0\r\n", b"port 6379\r\nmaxmemory 1gb\r\nmaxmemory-policy volatile-ttl\r\n",
                 id="crlf-kept"),
    pytest.param(b"  MAXMEMORY\t2gb\nmaxmemory-policy allkeys-lru\n",
                 b"  MAXMEMORY\t1gb\nmaxmemory-policy volatile-ttl\n", id="indent-case-and-tab-kept"),
    pytest.param(b"maxmemory 1mb\nport 1\nmaxmemory 2mb\nmaxmemory-policy volatile-ttl\n",
                 b"maxmemory 1gb\nport 1\nmaxmemory 1gb\nmaxmemory-policy volatile-ttl\n",
                 id="every-active-duplicate"),
    pytest.param(b"maxmemory-clients 0\nmaxmemory-eviction-tenacity 10\nmaxmemory \"5mb\"\n",
                 b"maxmemory-clients 0\nmaxmemory-eviction-tenacity 10\nmaxmemory 1gb\nmaxmemory-policy volatile-ttl\n",
                 id="other-maxmemory-directives-untouched"),
    pytest.param(b"\xef\xbb\xbfmaxmemory 0\n\xff\xfe latin junk\n",
                 b"\xef\xbb\xbfmaxmemory 1gb\n\xff\xfe latin junk\nmaxmemory-policy volatile-ttl\n",
                 id="bom-and-non-utf8-bytes"),
])
def test_rewrite_config(source, expected):
    assert rewrite_config(source, WANTED, TEXTS) == expected


@pytest.mark.parametrize("source", [
    pytest.param(b"maxmemory 1gb\nmaxmemory-policy volatile-ttl\n", id="same-text"),
    pytest.param(b"# hi\nmaxmemory 1024MB\nmaxmemory-policy VOLATILE-TTL\n", id="same-meaning-other-spelling"),
    pytest.param(b"maxmemory 1073741824\r\nmaxmemory-policy volatile-ttl", id="bytes-crlf-no-final-newline"),
    pytest.param(b"maxmemory-policy volatile-ttl\n\x0c\nmaxmemory '1gb'\n", id="form-feed-and-quotes"),
])
def test_rewrite_config_no_op(source):
    assert rewrite_config(source, WANTED, TEXTS) == source
    assert config_file_matches(source, WANTED)


def test_read_config_values_last_wins():
    source = b"maxmemory 1mb\n# maxmemory 9gb\nmaxmemory 2mb\nmaxmemory-samples 7\n"
    assert read_config_values(source) == {"maxmemory": "2mb", "maxmemory_samples": "7"}
    assert not config_file_matches(source, WANTED)
