"""Pure logic of result_keys_info: sampling, percentiles, forecast."""
import collections
import random

import pytest

from ansible_collections.celery_ops.lean_results.plugins.module_utils._broker_keys import (
    binding_prefix,
    glob_regex,
    is_result_key,
    is_result_pattern,
    unacked_prefix,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_memory import (
    RedisMemoryError,
    config_file_holds,
    parse_wanted_memory,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys import (
    Reservoir,
    forecast,
    percentile,
    topology_result_keys_report,
    ttl_summary,
)


def test_reservoir_keeps_everything_when_stream_is_small():
    reservoir = Reservoir(10, random.Random(1))
    reservoir.offer(list(range(4)))
    reservoir.offer(list(range(4, 7)))
    assert sorted(reservoir.items) == list(range(7)) and reservoir.seen == 7


def test_reservoir_is_uniform_over_batches():
    hits = collections.Counter()
    rng = random.Random(7)
    for _round in range(400):
        reservoir = Reservoir(50, rng)
        for start in range(0, 1000, 137):  # uneven batch sizes
            reservoir.offer(list(range(start, min(start + 137, 1000))))
        assert len(reservoir.items) == 50 and len(set(reservoir.items)) == 50
        hits.update(item // 100 for item in reservoir.items)
    expected = 400 * 50 / 10.0
    for decile in range(10):
        assert abs(hits[decile] - expected) < 0.1 * expected, hits


def test_reservoir_of_zero_counts_only():
    reservoir = Reservoir(0)
    reservoir.offer([1, 2, 3])
    assert reservoir.items == [] and reservoir.seen == 3


@pytest.mark.parametrize("values, fraction, expected", [
    pytest.param([], 0.5, None, id="empty"),
    pytest.param([5], 0.9, 5, id="one"),
    pytest.param(list(range(1, 101)), 0.5, 50, id="p50"),
    pytest.param(list(range(1, 101)), 0.9, 90, id="p90"),
    pytest.param(list(range(1, 11)), 1.0, 10, id="p100"),
])
def test_percentile(values, fraction, expected):
    assert percentile(values, fraction) == expected


def test_ttl_summary_and_forecast():
    ttls = [100, 4000, 30000, 86000, 86400]
    assert ttl_summary(ttls) == {"min": 100, "p50": 30000, "p90": 86400, "max": 86400}
    assert ttl_summary([]) == {"min": None, "p50": None, "p90": None, "max": None}
    points = {p["after"]: (p["seconds"], p["keys_alive"]) for p in forecast(ttls, no_ttl=3)}
    assert points == {"1h": (3600, 3 + 4), "6h": (21600, 3 + 3), "24h": (86400, 3 + 0),
                      "last expiry": (86400, 3)}


class _Reached(Exception):
    pass


class _CallOrderClient(object):
    """Records what a measure asks of Redis, and stops at the first INFO stats."""

    def __init__(self):
        self.calls = []

    def info(self, section=None):
        self.calls.append("info:%s" % section)
        if section == "stats":
            raise _Reached()
        return {}

    def scan(self, cursor=0, match=None, count=None):
        self.calls.append("scan")
        return 0, []

    def __getattr__(self, name):
        def call(*_args, **_kwargs):
            self.calls.append(name)
        return call


class _OneNode(object):
    mode = "standalone"
    cluster_enabled = False

    def __init__(self, client):
        self.client = client
        self.endpoint = "127.0.0.1:6379"
        self.role = "primary"
        self.primaries = [self]


def test_throughput_is_read_before_our_own_scan():
    """instantaneous_ops_per_sec averages the last seconds: read after our SCAN it shows our load."""
    client = _CallOrderClient()
    with pytest.raises(_Reached):
        topology_result_keys_report(_OneNode(client))
    assert client.calls == ["info:stats"]


# -- the broker-key finder's pure parts ------------------------------------------------------------

@pytest.mark.parametrize("key, prefix", [
    pytest.param(b"_kombu.binding.celery", b"", id="plain"),
    pytest.param(b"shop:_kombu.binding.celery", b"shop:", id="global-keyprefix"),
    pytest.param(b"_kombu.binding_permanent.events", b"", id="permanent"),
    pytest.param(b"x_kombu.binding_permanent.q", b"x", id="prefixed-permanent"),
    pytest.param(b"_kombu.bindingsomething", None, id="not-a-binding"),
    pytest.param(b"celery-task-meta-1", None, id="result-key"),
])
def test_binding_prefix(key, prefix):
    assert binding_prefix(key) == prefix


@pytest.mark.parametrize("key, prefix", [
    pytest.param(b"unacked", b"", id="unacked"),
    pytest.param(b"unacked_index", b"", id="index"),
    pytest.param(b"app:unacked_mutex", b"app:", id="prefixed-mutex"),
    pytest.param(b"celery", None, id="queue"),
])
def test_unacked_prefix(key, prefix):
    assert unacked_prefix(key) == prefix


@pytest.mark.parametrize("pattern, yes, no", [
    pytest.param("*", [b"", b"celery", b"a\nb"], [], id="star"),
    pytest.param("celery*", [b"celery", b"celery-task-meta-1"], [b"_kombu.binding.celery"], id="celery-star"),
    pytest.param("h?llo", [b"hello", b"hallo"], [b"hllo"], id="question"),
    pytest.param("h[ae]llo", [b"hello", b"hallo"], [b"hillo"], id="class"),
    pytest.param("h[^e]llo", [b"hallo"], [b"hello"], id="negated"),
    pytest.param("h[a-c]llo", [b"hbllo"], [b"hdllo"], id="range"),
    pytest.param("a\\*b", [b"a*b"], [b"axb"], id="escape"),
    pytest.param("*[_c][kh]*", [b"_kombu.binding.x", b"unacked", b"chord-unlock-1"],
                 [b"celery-task-meta-0af3"], id="side-pattern"),
])
def test_glob_regex_matches_like_redis(pattern, yes, no):
    regex = glob_regex(pattern)
    assert all(regex.match(key) for key in yes)
    assert not any(regex.match(key) for key in no)


@pytest.mark.parametrize("pattern, result", [
    pytest.param("celery-task-meta-*", True, id="default"),
    pytest.param("*celery-task-meta-*", True, id="any-prefix"),
    pytest.param("myapp:celery-taskset-meta-*", True, id="groups"),
    pytest.param("celery-taskset-meta-*.j", True, id="chord-counters"),
    pytest.param("*", False, id="star"),
    pytest.param("celery*", False, id="celery-star"),
    pytest.param("celery-task-meta-", False, id="no-id-part"),
    pytest.param("[c]elery-task-meta-*", False, id="mark-not-literal"),
    pytest.param("session:*", False, id="other"),
])
def test_is_result_pattern(pattern, result):
    assert is_result_pattern(pattern) is result


@pytest.mark.parametrize("key, result", [
    pytest.param(b"celery-task-meta-0af3", True, id="task"),
    pytest.param(b"p_celery-taskset-meta-1.j", True, id="prefixed-chord-counter"),
    pytest.param(b"celery-task-meta-", False, id="no-id"),
    pytest.param(b"celery", False, id="queue"),
    pytest.param(b"unacked", False, id="unacked"),
])
def test_is_result_key(key, result):
    assert is_result_key(key) is result


def test_maxmemory_above_redis_limit_is_refused():
    assert parse_wanted_memory(str(2 ** 64 - 1)) == 2 ** 64 - 1
    with pytest.raises(RedisMemoryError, match="more than Redis can hold"):
        parse_wanted_memory(str(2 ** 70))


def test_maxmemory_limit_of_redis6_is_signed():
    """Redis 6.2 stores 2**64-1 as 2**63-1 (measured): refused there before anything is set."""
    assert parse_wanted_memory(str(2 ** 63 - 1), (6, 2, 16)) == 2 ** 63 - 1
    with pytest.raises(RedisMemoryError, match=r"\(9223372036854775807, 2\*\*63-1 on this server\)"):
        parse_wanted_memory(str(2 ** 64 - 1), (6, 2, 16))
    assert parse_wanted_memory(str(2 ** 64 - 1), (7, 2, 4)) == 2 ** 64 - 1  # Valkey 8 reports 7.2.4


@pytest.mark.parametrize("source, runtime, holds", [
    pytest.param(b"maxmemory 256mb\n", dict(maxmemory=256 * 1024 ** 2, maxmemory_policy="noeviction",
                                            maxmemory_samples=5), True, id="defaults-missing"),
    pytest.param(b"maxmemory 256mb\n", dict(maxmemory=256 * 1024 ** 2, maxmemory_samples=10), False,
                 id="non-default-missing"),
    pytest.param(b"", dict(maxmemory=0), True, id="empty-file-default"),
    pytest.param(b"maxmemory-policy allkeys-lru\n", dict(maxmemory_policy="volatile-ttl"), False, id="differs"),
])
def test_config_file_holds_counts_a_missing_line_as_default(source, runtime, holds):
    assert config_file_holds(source, runtime) is holds
