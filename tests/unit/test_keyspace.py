"""The keyspace layer: the bounded TTL histogram, the pass over the keys, the count on the server."""
import random

import pytest

from ansible_collections.celery_ops.lean_results.plugins.module_utils._keyspace import (
    FINE_LIMIT,
    KeyCounter,
    TtlHistogram,
    read_pass,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys import (
    forecast,
    percentile,
    ttl_summary,
)

FRACTIONS = (0.0, 0.01, 0.5, 0.9, 0.99, 1.0)


def _random_ttls(seed, keys, spread):
    rng = random.Random(seed)
    return [rng.randint(0, spread) for _key in range(keys)]


@pytest.mark.parametrize("ttls", [
    pytest.param(_random_ttls(1, 5000, 86400), id="a-day-of-seconds"),
    pytest.param(_random_ttls(2, 5000, 60), id="under-a-minute"),
    pytest.param(_random_ttls(3, 20000, 99999), id="up-to-the-last-exact-second"),
    pytest.param(_random_ttls(4, 3, 10), id="three-keys"),
    pytest.param([3600] * 1000 + [5] * 10, id="nearly-all-equal"),
    pytest.param([int(random.Random(5).expovariate(1.0 / 3600)) for _key in range(10000)], id="exponential"),
])
def test_percentiles_are_exact_as_over_the_sorted_list(ttls):
    histogram = TtlHistogram().extend(ttls)
    ordered = sorted(ttls)
    for fraction in FRACTIONS:
        assert histogram.percentile(fraction) == percentile(ordered, fraction), fraction
    assert (histogram.min, histogram.max, histogram.total) == (ordered[0], ordered[-1], len(ttls))
    assert ttl_summary(histogram) == ttl_summary(ttls) == dict(
        min=ordered[0], p50=percentile(ordered, 0.5), p90=percentile(ordered, 0.9), max=ordered[-1])
    for limit in (0, 30, 3600, 21600, 86400):
        assert histogram.above(limit) == sum(1 for ttl in ttls if ttl > limit), limit


@pytest.mark.parametrize("ttls, no_ttl", [
    pytest.param([100, 4000, 30000, 86000, 86400], 3, id="spread"),
    pytest.param([], 7, id="no-ttl-only"),
    pytest.param(_random_ttls(6, 2000, 90000), 0, id="random"),
])
def test_forecast_from_the_histogram_equals_the_list_count(ttls, no_ttl):
    points = forecast(TtlHistogram().extend(ttls), no_ttl)
    for point in points[:-1]:
        assert point["keys_alive"] == no_ttl + sum(1 for ttl in ttls if ttl > point["seconds"])
    assert points[-1] == dict(after="last expiry", seconds=max(ttls) if ttls else 0, keys_alive=no_ttl)


def test_histogram_stays_bounded_and_rounds_up_by_at_most_its_step():
    ttls = list(range(int(FINE_LIMIT), int(FINE_LIMIT) + 50000))  # 50,000 distinct seconds
    histogram = TtlHistogram(max_buckets=1000).extend(ttls)
    assert len(histogram.coarse) <= 1000 and len(histogram.counts) <= 1000 and histogram.total == len(ttls)
    assert histogram.step == 64  # 50,120 / 1,000 rounded up to a power of two
    ordered = sorted(ttls)
    for fraction in FRACTIONS[1:]:
        exact = percentile(ordered, fraction)
        assert exact <= histogram.percentile(fraction) <= exact + histogram.step, fraction
    # rounded up: a key is never counted gone before it is
    assert all(histogram.above(limit) >= sum(1 for ttl in ttls if ttl > limit) for limit in (200, 5000, 40000))


def test_a_week_of_ttls_is_kept_to_eight_seconds():
    ttls = _random_ttls(7, 20000, 7 * 86400)
    histogram = TtlHistogram().extend(ttls)
    ordered = sorted(ttls)
    assert histogram.step == 8 and len(histogram.coarse) <= 100000
    for fraction in FRACTIONS:
        exact = percentile(ordered, fraction)
        assert exact <= histogram.percentile(fraction) <= exact + 8, fraction


def test_a_million_keys_take_no_more_room_than_a_thousand():
    small, large = TtlHistogram(), TtlHistogram()
    small.extend([86400 - i % 3600 for i in range(1000)])
    for batch in range(100):
        large.extend([86400 - (batch * 10000 + i) % 3600 for i in range(10000)])
    assert large.total == 1000000 and len(large.counts) == 3600 and large.buckets == small.buckets


@pytest.mark.parametrize("seconds, bucket", [
    pytest.param(0, 0, id="zero"),
    pytest.param(4.01, 4.1, id="fine-rounds-up-to-a-tenth"),
    pytest.param(119.95, 120.0, id="fine-edge"),
    pytest.param(3600.2, 3601, id="coarse-rounds-up-to-a-second"),
    pytest.param(86400, 86400, id="whole-second-stays"),
])
def test_bucket_rounds_up(seconds, bucket):
    assert TtlHistogram().bucket(seconds) == bucket


def test_merge_shifts_and_capped_view():
    first = TtlHistogram().extend([10, 20])
    second = TtlHistogram().extend([10])
    first.merge(second, shift=5)
    assert sorted(first.counts.items()) == [(10, 1), (15, 1), (20, 1)]
    view = first.capped(12, extra=2)
    assert sorted(view.counts.items()) == [(10, 1), (12, 4)] and first.total == 3


def test_time_until_at_most():
    histogram = TtlHistogram().extend([10, 20, 30, 40])
    assert [histogram.time_until_at_most(allowed) for allowed in (4, 3, 2, 0)] == [0, 10, 20, 40]


# -- the pass over the keys, on a stand-in client ------------------------------------------------

class FakeKeyspace(object):
    """SCAN in fixed batches; TTLs from a dict (None: no TTL, missing: gone); scripts maybe refused."""

    def __init__(self, ttls, batch=3, scripts=True, clock=None):
        self.names = sorted(ttls)
        self.ttls = ttls
        self.batch = batch
        self.scripts = scripts
        self.clock = clock
        self.calls = []

    def scan(self, cursor=0, match=None, count=None):
        self.calls.append("scan")
        if self.clock is not None:
            self.clock.now += 1.0
        cursor = int(cursor)
        keys = self.names[cursor:cursor + self.batch]
        following = cursor + self.batch
        return (0 if following >= len(self.names) else following), keys

    def ttl_of(self, key):
        if key not in self.ttls:
            return -2
        return -1 if self.ttls[key] is None else self.ttls[key]

    def register_script(self, source):
        def call(keys=(), args=(), client=None):
            if not self.scripts:
                raise RuntimeError("NOPERM this user has no permissions to run the 'evalsha' command")
            if "TTL" in source:
                self.calls.append("ttl-script")
                return ",".join(str(self.ttl_of(key)) for key in keys).encode()
            self.calls.append("count-script")
            cursor, found = self.scan(args[0], args[1], args[2])
            return [str(cursor).encode(), len(found)]
        return call

    def pipeline(self, transaction=False):
        keyspace = self

        class Pipe(object):
            def __init__(self):
                self.keys = []

            def ttl(self, key):
                self.keys.append(key)

            def execute(self):
                keyspace.calls.append("ttl-pipeline")
                return [keyspace.ttl_of(key) for key in self.keys]
        return Pipe()


class Clock(object):
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


TTLS = {"k1": 10, "k2": 3600, "k3": None, "k4": 86400, "k5": 20, "k6": 3600, "k7": 5}


@pytest.mark.parametrize("scripts, method", [pytest.param(True, "lua", id="lua"),
                                             pytest.param(False, "pipeline", id="refused-pipeline")])
def test_read_pass_counts_and_histograms_every_ttl(scripts, method):
    client = FakeKeyspace(TTLS, scripts=scripts)
    seen = []
    passed = read_pass(client, "*", on_keys=seen.extend, above=60)
    assert (passed.count, passed.no_ttl, passed.method, passed.complete) == (7, 1, method, True)
    assert sorted(passed.histogram.counts.items()) == [(5, 1), (10, 1), (20, 1), (3600, 2), (86400, 1)]
    assert passed.above == 3 and sorted(seen) == sorted(TTLS)


def test_read_pass_leaves_out_keys_gone_between_scan_and_ttl():
    client = FakeKeyspace(dict(TTLS))
    client.ttl_of = lambda key: -2 if key == "k2" else FakeKeyspace.ttl_of(client, key)
    seen = []
    passed = read_pass(client, "*", on_keys=seen.extend)
    assert passed.count == 6 and "k2" not in seen


def test_read_pass_moments_count_from_each_batch_and_round_up():
    clock = Clock()
    client = FakeKeyspace({"a": 10, "b": 10, "c": 10, "d": 10}, batch=2, clock=clock)
    passed = read_pass(client, "*", clock=clock, moments=True)
    # each SCAN call takes 1 s of fake time: the second batch's TTLs count from t=2; +0.5 s for TTL's rounding
    assert sorted(passed.histogram.counts.items()) == [(11.5, 2), (12.5, 2)] and passed.origin == 100.0


def test_read_pass_stops_at_its_deadline():
    clock = Clock()
    client = FakeKeyspace(TTLS, batch=2, clock=clock)
    passed = read_pass(client, "*", clock=clock, deadline=clock.now + 1.5)
    assert passed.complete is False and passed.count == 4 and client.calls.count("scan") == 2


@pytest.mark.parametrize("scripts, expected_calls", [
    pytest.param(True, ["count-script", "scan"] * 3, id="on-the-server"),
    pytest.param(False, ["scan"] * 3, id="refused-plain-scan"),
])
def test_key_counter(scripts, expected_calls):
    client = FakeKeyspace(TTLS, scripts=scripts)
    counter = KeyCounter(client, "*", use_script=True)
    assert counter.count() == 7 and counter.method == ("lua" if scripts else "scan")
    assert client.calls == expected_calls
