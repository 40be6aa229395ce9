"""Pure logic of result_keys_info: sampling, percentiles, forecast."""
import collections
import random

import pytest

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
