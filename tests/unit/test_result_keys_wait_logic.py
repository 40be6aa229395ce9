"""The wait's pure core: forecast arithmetic, early return, the loop on a fake clock, reconnects, boost."""
import pytest

from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait import (
    BOOST_EFFORT,
    MAX_BATCH_SIZE,
    Pacer,
    RecountPolicy,
    RedisProbe,
    ResultKeysWaitError,
    TtlHistogram,
    TtlPass,
    WaitSettings,
    gone_between,
    is_met,
    is_transient,
    iso_timestamp,
    may_be_met,
    parse_baseline,
    plan_wait,
    reduction,
    target_for,
    wait_for_fall,
)


class ConnectionError(Exception):  # pylint: disable=redefined-builtin
    """Named like redis-py's, which is how the core recognises a dropped connection."""


class BusyLoadingError(ConnectionError):
    pass


class FakeClock:
    def __init__(self, start=1000.0):
        self.now = start
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds > 0, seconds
        self.sleeps.append(seconds)
        self.now += seconds


class FakeProbe:
    """Keys with TTLs in fake time: ``ttls`` are seconds from the clock's start (None: no TTL).

    ``failures``: {call_number: exception} for count() calls; ``traffic``: keys that never go.
    """

    def __init__(self, clock, ttls, traffic=0, failures=None, effort=1, scan_seconds=0.0, restart_at=None):
        self.clock = clock
        self.origin = clock.now
        self.expiry = [None if ttl is None else self.origin + ttl for ttl in ttls]
        self.traffic = traffic
        self.failures = dict(failures or {})
        self.count_calls = 0
        self.effort = effort
        self.effort_history = [effort]
        self.scan_seconds = scan_seconds
        self.run_id = "run-1"
        self.client_id = 7
        self.restart_at = restart_at
        self.capped = None

    def _alive(self):
        return [e for e in self.expiry if e is None or e > self.clock.now]

    def count(self):
        self.count_calls += 1
        failure = self.failures.pop(self.count_calls, None)
        if failure is not None:
            if self.restart_at is not None:  # the server came back: new run id, boost lost
                self.run_id, self.client_id, self.effort = "run-2", 1, 1
            raise failure
        self.clock.now += self.scan_seconds
        return len(self._alive()) + self.traffic

    def status(self):
        return dict(used_memory=100 * len(self._alive()), run_id=self.run_id, client_id=self.client_id)

    def active_expire_effort(self):
        return self.effort

    def set_active_expire_effort(self, value):
        self.effort = value
        self.effort_history.append(value)

    def _histogram(self):
        return TtlHistogram().extend(int(e - self.clock.now + 0.999) for e in self.expiry if e is not None
                                     and e > self.clock.now)

    def read_ttls(self, deadline=None, above=None):
        alive = self._alive()
        passed = TtlPass(len(alive) + self.traffic, sum(1 for e in alive if e is None), self._histogram())
        if above is not None:
            passed.above = sum(1 for e in alive if e is not None and e - self.clock.now > above)
        return passed

    def expedite(self, cap, no_ttl_too=False, method="auto", deadline=None):
        capped = 0
        no_ttl = sum(1 for e in self._alive() if e is None)
        limit = self.clock.now + cap
        for i, e in enumerate(self.expiry):
            if (e is None and no_ttl_too) or (e is not None and e > limit):
                self.expiry[i] = limit
                capped += 1
        self.capped = capped
        return TtlPass(len(self._alive()) + self.traffic, no_ttl, self._histogram(), capped=capped, method=method)


def run(probe, clock, **options):
    options.setdefault("poll_interval", 1.0)
    return wait_for_fall(probe, WaitSettings(**options), clock=clock, sleep=clock.sleep, wall=lambda: 1700000000.0)


# -- pure arithmetic ---------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    pytest.param(None, None, id="absent"),
    pytest.param(1200, dict(count=1200, ttl_max=None, no_ttl=None), id="int"),
    pytest.param("1200", dict(count=1200, ttl_max=None, no_ttl=None), id="templated-string"),
    pytest.param({"count": 50, "no_ttl": 3, "ttl": {"max": 86399, "min": 2}}, dict(count=50, ttl_max=86399, no_ttl=3),
                 id="result_keys_info-dict"),
    pytest.param({"count": 0, "no_ttl": 0, "ttl": {"max": None}}, dict(count=0, ttl_max=None, no_ttl=0), id="empty-info"),
])
def test_parse_baseline(value, expected):
    assert parse_baseline(value) == expected


@pytest.mark.parametrize("value", [
    pytest.param({"ttl": {}}, id="dict-without-count"),
    pytest.param("many", id="word"),
    pytest.param(-1, id="negative"),
    pytest.param(True, id="bool"),
])
def test_parse_baseline_refuses(value):
    with pytest.raises(ResultKeysWaitError):
        parse_baseline(value)


@pytest.mark.parametrize("baseline, min_reduction, target_count, expected", [
    pytest.param(1000, None, None, None, id="no-target"),
    pytest.param(1000, 10.0, None, 100, id="ratio"),
    pytest.param(1000, 3.0, None, 333, id="ratio-floors"),
    pytest.param(1000, None, 250, 250, id="count"),
    pytest.param(1000, 10.0, 250, 100, id="both-stricter-ratio"),
    pytest.param(1000, 2.0, 250, 250, id="both-stricter-count"),
])
def test_target_for(baseline, min_reduction, target_count, expected):
    assert target_for(baseline, min_reduction, target_count) == expected


@pytest.mark.parametrize("baseline, final, expected", [
    pytest.param(1000, 10, 100.0, id="tenfold"),
    pytest.param(1000, 0, 1000.0, id="all-gone-divides-by-one"),
    pytest.param(3, 7, 0.429, id="grew"),
])
def test_reduction(baseline, final, expected):
    assert reduction(baseline, final) == expected


@pytest.mark.parametrize("baseline, final, target, expected", [
    pytest.param(100, 99, None, True, id="any-fall"),
    pytest.param(100, 100, None, False, id="no-fall"),
    pytest.param(0, 0, None, True, id="empty-stays-empty"),
    pytest.param(100, 10, 10, True, id="at-target"),
    pytest.param(100, 11, 10, False, id="above-target"),
])
def test_is_met(baseline, final, target, expected):
    assert is_met(baseline, final, target) is expected


@pytest.mark.parametrize("ttls, persistent, target, expected", [
    pytest.param([10, 20, 30, 40], 0, None, dict(target_met_after=42, last_expiry_after=42, reachable=True),
                 id="no-target-waits-for-last"),
    pytest.param([10, 20, 30, 40], 0, 2, dict(target_met_after=22, last_expiry_after=42, reachable=True),
                 id="target-met-before-last"),
    pytest.param([10, 20, 30, 40], 0, 4, dict(target_met_after=2, last_expiry_after=42, reachable=True),
                 id="already-met"),
    pytest.param([10, 20, 30, 40], 3, 3, dict(target_met_after=42, last_expiry_after=42, reachable=True),
                 id="persistent-keys-count"),
    pytest.param([10, 20], 5, 4, dict(target_met_after=None, last_expiry_after=22, reachable=False),
                 id="unreachable"),
    pytest.param([5] * 1000, 0, 0, dict(target_met_after=7, last_expiry_after=7, reachable=True),
                 id="after-expedite-all-equal"),
])
def test_plan_wait(ttls, persistent, target, expected):
    assert plan_wait(2, TtlHistogram().extend(ttls), persistent, target) == expected


def test_plan_wait_from_ttl_max_only():
    assert plan_wait(0, None, 0, 10, ttl_max=3600) == dict(target_met_after=3600, last_expiry_after=3600, reachable=True)


def test_iso_timestamp():
    assert iso_timestamp(0.4) == "1970-01-01T00:00:00Z"


@pytest.mark.parametrize("exc, expected", [
    pytest.param(ConnectionError("refused"), True, id="connection"),
    pytest.param(BusyLoadingError("LOADING"), True, id="loading"),
    pytest.param(type("TimeoutError", (Exception,), {})("slow"), True, id="timeout"),
    pytest.param(ValueError("NOPERM"), False, id="other"),
])
def test_transient_errors(exc, expected):
    assert is_transient(exc) is expected


# -- the loop on a fake clock ------------------------------------------------------------------

def test_forecast_beyond_timeout_returns_at_once():
    clock = FakeClock()
    probe = FakeProbe(clock, [86400] * 50 + [100] * 50)
    result = run(probe, clock, min_reduction=10, timeout=600)
    assert result["met"] is False
    assert clock.sleeps == []  # not a single second slept
    assert result["forecast"]["target_met_after"] == 86400
    assert result["retry_after"] == 86400 - 600 + 1
    assert result["retry_at"] == iso_timestamp(1700000000.0 + result["retry_after"])
    assert result["final"] == 100 and result["baseline"] == 100
    assert "run again in" in result["msg"]


def test_sleeps_until_the_forecast_then_polls():
    clock = FakeClock()
    probe = FakeProbe(clock, [30] * 90 + [3600] * 10)
    result = run(probe, clock, target_count=10, timeout=600, poll_interval=2.0)
    assert result["met"] is True and result["final"] == 10
    # the TTL pass counts at start; then one count just after the forecast moment, no polling before it
    assert probe.count_calls == 1
    assert 30 <= result["elapsed"] < 31
    samples = [entry for entry in result["timeline"] if isinstance(entry, list) and entry[1] is not None]
    assert [count for _t, count, _m in samples] == [100, 10]
    assert result["deadline"]["seconds"] == 3600 + 1 + 2 * 2.0


def test_long_forecast_counts_only_at_the_forecast_with_heartbeats_between():
    clock = FakeClock()
    probe = FakeProbe(clock, [550] * 100)
    result = run(probe, clock, timeout=600, poll_interval=1.0)
    assert result["met"] is True and result["final"] == 0
    samples = [entry for entry in result["timeline"] if isinstance(entry, list) and entry[1] is not None]
    # the pass at start, then one count at the forecast: no SCAN while the forecast says not yet
    assert [count for _t, count, _m in samples] == [100, 0] and probe.count_calls == 1
    assert max(clock.sleeps) <= 5.0  # heartbeats (INFO) notice restarts between counts


def test_heartbeats_add_memory_points_without_counting():
    clock = FakeClock()
    probe = FakeProbe(clock, [30] * 90 + [3600] * 10)
    result = run(probe, clock, target_count=10, timeout=600, poll_interval=2.0)
    memory_only = [entry for entry in result["timeline"] if isinstance(entry, list) and entry[1] is None]
    # a 30 s quiet wait with a heartbeat every 5 s: memory points between the two counts
    assert 5 <= len(memory_only) <= 6 and probe.count_calls == 1
    assert all(entry[2] is not None and 0 < entry[0] < 31 for entry in memory_only)


def test_expedite_caps_and_meets_at_the_cap():
    clock = FakeClock()
    probe = FakeProbe(clock, [86400] * 200 + [3] * 20, traffic=5)
    result = run(probe, clock, max_ttl=5, expedite=True, min_reduction=10, timeout=60)
    assert probe.capped == 200 and result["expedited"] == 200 and result["changed"] is True
    assert result["met"] is True and result["final"] == 5
    assert 5 <= result["elapsed"] <= 6
    assert result["timeline"][0]["event"] == "expedited"


def test_expedite_leaves_keys_without_ttl_unless_asked():
    clock = FakeClock()
    probe = FakeProbe(clock, [86400] * 10 + [None] * 4)
    result = run(probe, clock, max_ttl=5, expedite=True, timeout=60)
    assert result["no_ttl"] == 4 and result["expedited"] == 10 and result["final"] == 4 and result["met"] is True

    clock = FakeClock()
    probe = FakeProbe(clock, [86400] * 10 + [None] * 4)
    result = run(probe, clock, max_ttl=5, expedite=True, expedite_no_ttl=True, target_count=0, timeout=60)
    assert result["expedited"] == 14 and result["final"] == 0 and result["met"] is True


def test_unreachable_target_fails_at_once():
    clock = FakeClock()
    probe = FakeProbe(clock, [10] * 10 + [None] * 50)
    with pytest.raises(ResultKeysWaitError, match="never be met by waiting: 50 keys have no TTL") as caught:
        run(probe, clock, target_count=5, timeout=60)
    assert clock.sleeps == [] and caught.value.result["no_ttl"] == 50


def test_not_met_by_the_deadline_fails_with_the_timeline():
    clock = FakeClock()
    probe = FakeProbe(clock, [10] * 100, traffic=50)  # live traffic keeps 50 keys
    with pytest.raises(ResultKeysWaitError, match="not met by the deadline: 50 keys") as caught:
        run(probe, clock, target_count=20, timeout=60)
    result = caught.value.result
    assert result["met"] is False and result["final"] == 50 and result["reduction"] == 3.0
    assert [entry[1] for entry in result["timeline"] if isinstance(entry, list)][-1] == 50
    assert result["elapsed"] == pytest.approx(result["deadline"]["seconds"], abs=0.01)


def test_not_met_without_failing_when_asked():
    clock = FakeClock()
    probe = FakeProbe(clock, [10] * 100, traffic=50)
    result = run(probe, clock, target_count=20, timeout=60, fail_on_unmet=False)
    assert result["met"] is False and "not met by the deadline" in result["msg"]


def test_timeout_ends_the_wait_before_the_deadline():
    clock = FakeClock()
    probe = FakeProbe(clock, [5] * 100 + [500] * 100, traffic=60)
    with pytest.raises(ResultKeysWaitError) as caught:
        run(probe, clock, target_count=100, timeout=30)  # forecast 5 s, but traffic keeps it above
    assert caught.value.result["elapsed"] == pytest.approx(30, abs=0.01)
    assert caught.value.result["deadline"]["seconds"] == 500 + 3


def test_poll_interval_stretches_when_counting_is_slow():
    clock = FakeClock()
    probe = FakeProbe(clock, [10] * 100 + [40] * 10, traffic=50, scan_seconds=1.0)
    with pytest.raises(ResultKeysWaitError) as caught:
        run(probe, clock, target_count=20, timeout=200, poll_interval=1.0)
    times = [entry[0] for entry in caught.value.result["timeline"] if isinstance(entry, list) and entry[1] is not None]
    # a count takes 1 s and may use at most 20% of the time: counts 5 s apart, not 1 s
    gaps = [later - earlier for earlier, later in zip(times[1:], times[2:])]
    assert len(gaps) >= 4 and min(gaps[:-1]) >= 4.9
    assert len(times) <= 9


def test_reconnects_with_backoff_and_records_it():
    clock = FakeClock()
    failures = {1: ConnectionError("Connection refused"), 2: ConnectionError("Connection refused"),
                3: BusyLoadingError("Redis is loading the dataset in memory")}
    probe = FakeProbe(clock, [20] * 100, failures=failures, restart_at=True)
    result = run(probe, clock, timeout=60, boost_active_expire=True)
    assert result["met"] is True
    events = [entry for entry in result["timeline"] if isinstance(entry, dict) and entry["event"] == "reconnected"]
    assert len(events) == 1
    assert events[0]["attempts"] == 3 and events[0]["restarted"] is True
    assert events[0]["error"].startswith("ConnectionError")
    assert clock.sleeps[-3:] != [] and 0.1 in clock.sleeps and 0.2 in clock.sleeps and 0.4 in clock.sleeps
    # the restarted server lost the boost: re-applied, then restored to the value from before
    # (the first 1 again: the precondition check writes the value the server has, to prove CONFIG SET works)
    assert probe.effort_history == [1, 1, BOOST_EFFORT, BOOST_EFFORT, 1]
    reapplied = [entry for entry in result["timeline"] if isinstance(entry, dict) and entry.get("reapplied")]
    assert len(reapplied) == 1


def test_gives_up_when_redis_stays_away():
    clock = FakeClock()
    failures = dict((n, ConnectionError("Connection refused")) for n in range(1, 500))
    probe = FakeProbe(clock, [5] * 10, failures=failures)
    with pytest.raises(ResultKeysWaitError, match="lost the connection"):
        run(probe, clock, timeout=30, boost_active_expire=True)


def test_boost_restored_on_failure():
    clock = FakeClock()
    probe = FakeProbe(clock, [10] * 100, traffic=50, effort=3)
    with pytest.raises(ResultKeysWaitError):
        run(probe, clock, target_count=20, timeout=60, boost_active_expire=True)
    assert probe.effort_history == [3, 3, BOOST_EFFORT, 3] and probe.effort == 3


def test_boost_restored_on_unexpected_error():
    clock = FakeClock()
    probe = FakeProbe(clock, [10] * 100, failures={1: RuntimeError("NOPERM")})
    with pytest.raises(ResultKeysWaitError) as failed:
        run(probe, clock, timeout=60, boost_active_expire=True)
    assert isinstance(failed.value.cause, RuntimeError)  # the module words it
    assert failed.value.result["changed"] is True  # the boost was applied (and restored)
    assert probe.effort == 1 and probe.effort_history == [1, 1, BOOST_EFFORT, 1]


def test_boost_left_alone_when_already_high():
    clock = FakeClock()
    probe = FakeProbe(clock, [3] * 10, effort=BOOST_EFFORT)
    result = run(probe, clock, timeout=60, boost_active_expire=True)
    assert probe.effort_history == [BOOST_EFFORT, BOOST_EFFORT] and result["changed"] is False


def test_check_mode_plans_without_waiting_or_changing():
    clock = FakeClock()
    probe = FakeProbe(clock, [86400] * 30 + [2] * 10 + [None] * 5)
    result = run(probe, clock, max_ttl=5, expedite=True, check_mode=True, boost_active_expire=True, timeout=60)
    assert clock.sleeps == [] and probe.capped is None and probe.effort_history == [1]
    assert result["would_expedite"] == 30 and result["expedited"] == 0 and result["changed"] is True
    assert result["no_ttl"] == 5 and result["met"] is False
    assert result["forecast"]["last_expiry_after"] == 5
    assert result["plan"]["wait_seconds"] == 5


@pytest.mark.parametrize("options, message", [
    pytest.param(dict(expedite=True), "expedite needs max_ttl", id="expedite-without-max-ttl"),
    pytest.param(dict(min_reduction=0.5), "must be 1 or more", id="reduction-below-one"),
    pytest.param(dict(poll_interval=0), "more than 0", id="zero-poll"),
    pytest.param(dict(max_ttl=0), "at least 1 second", id="zero-max-ttl"),
])
def test_settings_refused(options, message):
    with pytest.raises(ResultKeysWaitError, match=message):
        WaitSettings(**options).validate()


# -- preconditions before any side effect ------------------------------------------------------------

@pytest.mark.parametrize("options, message", [
    pytest.param(dict(min_reduction=float("nan")), "min_reduction must be a finite number", id="nan"),
    pytest.param(dict(min_reduction=float("inf")), "min_reduction must be a finite number", id="inf"),
    pytest.param(dict(poll_interval=float("nan")), "poll_interval must be a finite number", id="nan-poll"),
    pytest.param(dict(max_ttl=True), "max_ttl must be a whole number", id="bool-max-ttl"),
    pytest.param(dict(target_count=2.5), "target_count must be a whole number", id="fraction"),
    pytest.param(dict(timeout="600"), "timeout must be a whole number", id="string"),
])
def test_numbers_refused_before_anything(options, message):
    clock = FakeClock()
    probe = FakeProbe(clock, [86400] * 10)
    settings = dict(max_ttl=5, expedite=True, timeout=60)
    settings.update(options)
    with pytest.raises(ResultKeysWaitError, match=message):
        run(probe, clock, **settings)
    assert probe.capped is None and probe.effort_history == [1]


def test_unreachable_target_fails_before_any_cap():
    clock = FakeClock()
    probe = FakeProbe(clock, [86400] * 30 + [None] * 10)
    with pytest.raises(ResultKeysWaitError, match="nothing was capped") as failed:
        run(probe, clock, max_ttl=5, expedite=True, min_reduction=10, timeout=60, boost_active_expire=True)
    assert probe.capped is None and probe.effort == 1
    assert failed.value.result["changed"] is False and failed.value.result["no_ttl"] == 10


def test_unreachable_target_from_a_baseline_needs_no_pass():
    clock = FakeClock()
    probe = FakeProbe(clock, [86400] * 30 + [None] * 10)
    probe.read_ttls = None  # the baseline's no_ttl is enough: no TTL pass may run
    with pytest.raises(ResultKeysWaitError, match="nothing was capped"):
        run(probe, clock, baseline=dict(count=40, no_ttl=10, ttl=dict(max=86400)), max_ttl=5, expedite=True,
            target_count=5, timeout=60)
    assert probe.capped is None


def test_config_refused_before_any_cap():
    class NoConfig(FakeProbe):
        def set_active_expire_effort(self, value):
            raise RuntimeError("NOPERM this user has no permissions to run the 'config|set' command")

    clock = FakeClock()
    probe = NoConfig(clock, [86400] * 30)
    with pytest.raises(ResultKeysWaitError, match="boost_active_expire needs CONFIG") as failed:
        run(probe, clock, max_ttl=5, expedite=True, timeout=60, boost_active_expire=True)
    assert probe.capped is None and failed.value.result["changed"] is False
    assert isinstance(failed.value.cause, RuntimeError)


def test_a_failure_after_capping_reports_what_was_done():
    class FailsAfterCapping(FakeProbe):
        capped_so_far = 0

        def expedite(self, cap, no_ttl_too=False, method="auto", deadline=None):
            passed = FakeProbe.expedite(self, cap, no_ttl_too, method)
            self.capped_so_far = passed.capped
            raise RuntimeError("OOM command not allowed when used memory > 'maxmemory'")

    clock = FakeClock()
    probe = FailsAfterCapping(clock, [86400] * 30)
    with pytest.raises(ResultKeysWaitError) as failed:
        run(probe, clock, max_ttl=5, expedite=True, timeout=60)
    assert failed.value.result["changed"] is True and failed.value.result["expedited"] == 30


# -- samples and events apart; nothing to wait for ---------------------------------------------------

def test_samples_and_events_are_returned_apart_and_together_in_the_timeline():
    clock = FakeClock()
    probe = FakeProbe(clock, [86400] * 20 + [3] * 5)
    result = run(probe, clock, max_ttl=5, expedite=True, target_count=0, timeout=60, boost_active_expire=True)
    assert all(isinstance(entry, list) and len(entry) == 3 for entry in result["samples"])
    assert [entry["event"] for entry in result["events"]] == ["expedited", "boost", "boost restored"]
    assert [entry for entry in result["timeline"] if isinstance(entry, list)] == result["samples"]
    assert [entry for entry in result["timeline"] if isinstance(entry, dict)] == result["events"]
    assert len(result["timeline"]) == len(result["samples"]) + len(result["events"])


@pytest.mark.parametrize("ttls, options, nothing_to_wait, met", [
    pytest.param([60] * 10, dict(baseline=100, max_ttl=3600), True, True, id="no-old-key-and-fallen"),
    pytest.param([60] * 10, dict(baseline=100, max_ttl=3600, target_count=10), True, True, id="target-met-now"),
    pytest.param([60] * 10, dict(max_ttl=3600), False, True, id="no-fall-from-a-baseline-counted-now"),
    pytest.param([60] * 10 + [86400], dict(baseline=100, max_ttl=3600), False, False, id="an-old-key-left"),
    pytest.param([60] * 10, dict(baseline=100, target_count=10), False, True, id="no-max-ttl-no-notion-of-old"),
    pytest.param([60] * 10, dict(baseline=100, max_ttl=3600, expedite=True), True, True, id="expedite-capped-nothing"),
    pytest.param([60] * 10 + [None], dict(baseline=100, max_ttl=3600, expedite=True, expedite_no_ttl=True), False,
                 True, id="expedite-gave-a-ttl"),
])
def test_nothing_to_wait_answers_at_once(ttls, options, nothing_to_wait, met):
    clock = FakeClock()
    probe = FakeProbe(clock, ttls)
    result = run(probe, clock, timeout=7200, fail_on_unmet=False, **options)
    assert result["nothing_to_wait"] is nothing_to_wait and result["met"] is met
    if nothing_to_wait:
        assert clock.sleeps == [] and result["changed"] is False and "nothing to wait for" in result["msg"]


def test_check_mode_says_whether_a_run_would_have_nothing_to_wait_for():
    clock = FakeClock()
    result = run(FakeProbe(clock, [60] * 10), clock, baseline=100, max_ttl=3600, expedite=True, check_mode=True)
    assert result["nothing_to_wait"] is True and result["would_expedite"] == 0 and result["changed"] is False


# -- timeout over the passes ---------------------------------------------------------------------

class SlowProbe(FakeProbe):
    """Expedites (or reads) one key per fake second, stopping at the deadline like RedisProbe."""

    def _pass(self, deadline, cap=None):
        capped = seen = 0
        limit = None if cap is None else self.clock.now + cap
        for index, expiry in enumerate(self.expiry):
            if deadline is not None and self.clock.now >= deadline:
                break
            self.clock.now += 1.0
            seen += 1
            if limit is not None and expiry is not None and expiry > limit:
                self.expiry[index] = limit
                capped += 1
        self.capped_so_far = capped
        passed = TtlPass(seen, 0, self._histogram(), capped=capped, method="lua",
                         complete=seen == len(self.expiry))
        return passed

    def expedite(self, cap, no_ttl_too=False, method="auto", deadline=None):
        return self._pass(deadline, cap)

    def read_ttls(self, deadline=None, above=None):
        return self._pass(deadline)


@pytest.mark.parametrize("options, expedited, changed, which", [
    pytest.param(dict(max_ttl=5, expedite=True), 3, True, "expedite pass", id="expedite"),
    pytest.param(dict(), 0, False, "TTL pass", id="ttl-pass"),
    pytest.param(dict(max_ttl=5, expedite=True, target_count=0), 0, False, "TTL pass", id="precondition-pass"),
])
def test_timeout_bounds_the_passes_and_says_how_far_they_got(options, expedited, changed, which):
    clock = FakeClock()
    probe = SlowProbe(clock, [86400] * 10)
    with pytest.raises(ResultKeysWaitError, match="timeout \\(3s\\) reached during the %s" % which) as failed:
        run(probe, clock, timeout=3, **options)
    result = failed.value.result
    assert clock.now - 1000.0 == pytest.approx(3.0)  # not one key after the deadline
    assert (result["met"], result["reason"], result["expedite_complete"]) == (False, "timeout", False)
    assert (result["expedited"], result["changed"], result["final"]) == (expedited, changed, None)


def test_timeout_counts_from_the_start_of_the_module():
    clock = FakeClock()
    probe = SlowProbe(clock, [86400] * 10)
    result = wait_for_fall(probe, WaitSettings(max_ttl=5, expedite=True, timeout=3, fail_on_unmet=False,
                                               started=clock.now - 2.0),
                           clock=clock, sleep=clock.sleep, wall=lambda: 1700000000.0)
    assert result["expedited"] == 1 and result["met"] is False and "stopped after" in result["msg"]


def test_batch_size_above_the_ceiling_is_clamped_with_a_warning():
    clock = FakeClock()
    probe = RedisProbe(object(), batch_size=1000000, clock=clock)
    assert probe.batch_size == MAX_BATCH_SIZE and "above the safe ceiling 10000" in probe.warnings[0]
    probe = FakeProbe(clock, [3] * 5)
    probe.warnings = ["batch_size 1000000 is above the safe ceiling 10000"]
    assert run(probe, clock, timeout=60)["warnings"] == probe.warnings


# -- pacing: each call's batch from the server time of the last ----------------------------------------

@pytest.mark.parametrize("ceiling, seconds, sizes", [
    pytest.param(1000, [0.0001] * 6, [200, 400, 800, 1000, 1000, 1000], id="quick-calls-grow-to-the-ceiling"),
    pytest.param(10000, [0.0004, 0.0008, 0.0009], [200, 225, 225], id="settles-under-the-budget"),
    pytest.param(1000, [0.004, 0.004, 0.004, 0.0001], [25, 16, 16, 32], id="slow-calls-shrink-to-the-floor"),
    pytest.param(1000, [0.1], [25], id="one-very-slow-call-shrinks-fourfold-at-most"),
    pytest.param(50, [0.00001] * 3, [50, 50, 50], id="never-above-a-small-ceiling"),
    pytest.param(1000, [0.0], [200], id="no-time-at-all-doubles"),
])
def test_pacer(ceiling, seconds, sizes):
    pacer = Pacer(ceiling)
    assert pacer.size == min(100, ceiling)
    assert [pacer.record(taken) for taken in seconds] == sizes
    assert pacer.largest <= ceiling


def test_a_fixed_pacer_keeps_the_ceiling_and_times_the_calls():
    pacer = Pacer(1000, fixed=True)
    assert [pacer.record(taken) for taken in (0.0001, 0.05, 0.002)] == [1000, 1000, 1000]
    assert pacer.report()["p50_ms"] == 2.0 and pacer.report()["p99_ms"] == 50.0


class PacedClient(object):
    """The expedite script on a stand-in server: each call costs ``cost(count)`` server seconds."""

    def __init__(self, keys, cost):
        self.keys = keys
        self.cost = cost
        self.counts = []
        self.cursor = 0

    def register_script(self, source):
        def call(keys=(), args=()):
            cursor, count = int(args[0]), int(args[2])
            self.counts.append(count)
            found = min(count, self.keys - cursor)
            following = 0 if cursor + found >= self.keys else cursor + found
            micros = int(self.cost(len(self.counts), count) * 1e6)
            return [str(following).encode(), 0, 0, 0, b"36000:%d" % found, 0, found, micros]
        return call


def test_expedite_batches_shrink_when_calls_get_slow_and_grow_back_never_above_the_ceiling():
    clock = FakeClock()
    # 1 microsecond a key, but calls 8 to 12 take 20 microseconds a key (a busy server)
    client = PacedClient(60000, lambda call, count: count * (20e-6 if 8 <= call <= 12 else 1e-6))
    passed = RedisProbe(client, batch_size=2000, clock=clock).expedite(3600)
    counts = client.counts
    assert passed.complete and passed.count == 60000 and passed.capped == 0 and max(counts) <= 2000
    # grows while under the budget (1 ms a call, aimed at 0.9 ms: 900 keys at 1 microsecond each)
    assert counts[:4] == [100, 200, 400, 800] and all(895 <= count <= 905 for count in counts[4:8])
    assert counts[8] < counts[7] and min(counts[9:13]) < 100  # shrinks while the calls are slow
    assert 895 <= counts[-2] <= 905  # and grows back
    assert passed.pacing["ceiling"] == 2000 and passed.pacing["slowest_ms"] == pytest.approx(18.0, rel=0.01)
    assert passed.pacing["p50_ms"] == 0.9 and passed.pacing["calls"] == len(counts)


def test_expedite_stops_at_its_deadline_between_two_calls():
    clock = FakeClock()

    def cost(call, count):
        clock.now += 0.5  # every call takes half a second of the module's time
        return count * 1e-6
    client = PacedClient(60000, cost)
    passed = RedisProbe(client, clock=clock).expedite(3600, deadline=clock.now + 1.2)
    assert passed.complete is False and len(client.counts) == 3 and passed.count == 100 + 200 + 400


# -- the cheap wait: a count only when the O(1) signals say the target may be met ----------------------------

@pytest.mark.parametrize("before, after, gone", [
    pytest.param(dict(run_id="a", expired_keys=10, keys=100, expires=90),
                 dict(run_id="a", expired_keys=40, keys=95, expires=60), 30, id="most-of-three"),
    pytest.param(dict(run_id="a", expired_keys=10, keys=100, expires=90),
                 dict(run_id="a", expired_keys=10, keys=50, expires=90), 50, id="deleted"),
    pytest.param(dict(run_id="a", expired_keys=10, keys=100, expires=90),
                 dict(run_id="a", expired_keys=10, keys=130, expires=120), 0, id="grew"),
    pytest.param(dict(run_id="a", expired_keys=10), dict(run_id="b", expired_keys=0), None, id="restarted"),
    pytest.param(dict(run_id="a"), dict(run_id="a"), None, id="no-counters"),
    pytest.param(None, dict(run_id="a", expired_keys=0), None, id="nothing-before"),
])
def test_gone_between(before, after, gone):
    assert gone_between(before, after) == gone


@pytest.mark.parametrize("last, highest, known, gone, expected", [
    pytest.param(500, 100, 0, 0, False, id="nothing-went"),
    pytest.param(500, 100, 400, 0, True, id="known-keys-expired"),
    pytest.param(500, 100, 0, 400, True, id="counters-say-enough-went"),
    pytest.param(500, 100, 300, 399, False, id="not-enough-yet"),
    pytest.param(500, 100, 0, None, False, id="no-counter"),
])
def test_may_be_met(last, highest, known, gone, expected):
    assert may_be_met(last, highest, known, gone) is expected


def _policy():
    policy = RecountPolicy(highest_met=100, histogram=TtlHistogram().extend([50] * 200 + [90] * 300), read_at=0.0,
                           wake=50.05)
    policy.counted(600, 0.0, dict(run_id="a", expired_keys=0, keys=600, expires=600))
    return policy


@pytest.mark.parametrize("moments, status, reason", [
    pytest.param([(10.0, 0)], dict(keys=600), None, id="before-the-forecast"),
    pytest.param([(50.05, 0)], dict(keys=600), "the forecast moment", id="at-the-forecast"),
    pytest.param([(50.05, 400), (60.0, 0)], dict(keys=400), None, id="after-nothing-moves"),
    pytest.param([(50.05, 400), (60.0, 0)], dict(keys=280, expired_keys=120), None, id="after-not-enough"),
    pytest.param([(50.05, 400), (60.0, 0)], dict(keys=100, expired_keys=300), "signals say the target may be met",
                 id="after-counters-say-so"),
    pytest.param([(50.05, 400), (90.0, 0)], dict(keys=400), "signals say the target may be met",
                 id="after-known-keys-expire"),
    pytest.param([(50.05, 400), (111.0, 0)], dict(keys=400), "signals say the target may be met",
                 id="known-keys-expired-by-then"),
    pytest.param([(50.05, 400), (80.0, 0)], dict(run_id="b", keys=400), "no O(1) signal", id="after-a-restart"),
])
def test_recount_policy(moments, status, reason):
    policy = _policy()
    base = dict(run_id="a", expired_keys=0, keys=600, expires=600)
    for now, count in moments[:-1]:
        policy.counted(count, now, dict(base, keys=count, expires=count))
    now = moments[-1][0]
    got = policy.reason(now, dict(base, expires=status.get("keys"), **status))
    assert got == reason


def test_recount_policy_counts_at_least_every_minute_and_at_the_end():
    policy = _policy()
    status = dict(run_id="a", expired_keys=0, keys=400, expires=400)
    policy.counted(400, 50.05, status)
    policy.histogram = None  # keys written meanwhile: no pass knows their TTLs
    assert policy.reason(100.0, status) is None
    assert policy.reason(110.1, status) == "60 s since the last count"
    assert policy.reason(60.0, status, at_end=True) == "the end of the wait"


class CountedProbe(FakeProbe):
    """FakeProbe whose INFO carries the O(1) counters: expired keys are reclaimed at once."""

    def status(self):
        status = FakeProbe.status(self)
        alive = self._alive()
        status.update(expired_keys=len(self.expiry) - len(alive), keys=len(alive) + self.traffic,
                      expires=sum(1 for e in alive if e is not None) + self.traffic)
        return status


def test_cheap_wait_counts_only_when_the_signals_say_so():
    clock = FakeClock()
    # 100 keys gone at 10 s, traffic keeps 50 (target 20, never met), 10 more go at 40 s
    probe = CountedProbe(clock, [10] * 100 + [40] * 10, traffic=50)
    with pytest.raises(ResultKeysWaitError, match="not met by the deadline"):
        run(probe, clock, target_count=20, timeout=200, poll_interval=1.0)
    # counts at the forecast moment (10 s: 60 keys) and at the end (43 s); at 40 s the last 10 known keys
    # expire, which leaves 50 > 20, so no count there, nor at any tick between (polling would take 33)
    assert probe.count_calls == 2


def test_cheap_wait_counts_when_counters_show_keys_going():
    clock = FakeClock()

    class Churn(CountedProbe):
        def status(self):
            status = CountedProbe.status(self)
            status["expired_keys"] += int(max(0.0, clock.now - 1020.0) * 10)  # 10 keys/s expiring from 20 s on
            return status
    # traffic keeps 50 keys (target 20): after the forecast (10 s) only the counters can say it may be met
    probe = Churn(clock, [10] * 100 + [100] * 5, traffic=50)
    with pytest.raises(ResultKeysWaitError) as failed:
        run(probe, clock, target_count=20, timeout=60, poll_interval=1.0)
    counted = [entry[0] for entry in failed.value.result["samples"] if entry[1] is not None]
    assert counted[:2] == [0.0, 10.05] and counted[-1] == 60.0
    # 55 keys at the last count, 20 allowed: a count once 35 more went, i.e. every 3.5 s from 20 s on
    middle = counted[2:-1]
    assert middle and middle[0] >= 23.5 and all(later - earlier >= 3.0 for earlier, later in zip(middle, middle[1:]))
    assert probe.count_calls == len(counted) - 1 < 15  # polling every second would have counted 50 times
