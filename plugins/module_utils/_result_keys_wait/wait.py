# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wait itself: preconditions, one pass over the keys, the plan, the cheap wait, the verdict.

``wait_for_fall`` is the entry; check mode takes its own path (``check_mode.plan_only``), which
reads and plans but never caps, boosts or sleeps.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.check_mode import plan_only
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.errors import (
    ResultKeysWaitError,
    WaitInterrupted,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.outcomes import (
    Plan,
    answer_nothing_to_wait,
    beyond_timeout,
    nothing_to_verify,
    nothing_to_wait,
    stopped_at_timeout,
    verdict,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.planning import (
    highest_met,
    is_met,
    parse_baseline,
    summary,
    target_for,
    unreachable_message,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.recount import RecountPolicy
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.state import (
    CLOCK_SLACK,
    WaitState,
)

# Counting may take at most this share of wall time: with millions of keys to SCAN, the interval
# stretches rather than keep the server busy. Measured on the fastest count seen, which is the
# walk over the keyspace; a slower count is reclaiming expired keys, work Redis owes anyway.
MAX_POLL_DUTY = 0.2
# Wake this long after the forecast moment (expiry moments are rounded up already).
WAKE_AFTER_FORECAST = 0.05
# Before the forecast, a status read (INFO) this often notices restarts and re-applies the boost.
HEARTBEAT_SECONDS = 5.0


def wait_for_fall(probe, settings, clock=time.monotonic, sleep=time.sleep, wall=time.time):
    """Plan, optionally expedite, wait and verify. Returns the result dict.

    Raises ResultKeysWaitError (with ``result``) when the target is not met by the deadline and
    ``fail_on_unmet`` is set, when the target can never be met, when Redis stays away or
    refuses a command, and on SIGTERM/SIGHUP (WaitInterrupted). Whatever the failure,
    ``active-expire-effort`` is restored first, and the result says what was done
    (``changed``, ``expedited``).
    """
    settings.validate()
    state = WaitState(probe, settings, clock, sleep, wall)
    baseline = parse_baseline(settings.baseline)
    error = None
    try:
        return (plan_only if settings.check_mode else run_wait)(state, baseline)
    except ResultKeysWaitError as exc:
        error = exc
    except WaitInterrupted as exc:
        error = ResultKeysWaitError("interrupted by %s" % exc.signal_name)
        error.interrupted = exc
    except Exception as exc:  # pylint: disable=broad-except  # a Redis refusal mid-way: report what was done
        error = ResultKeysWaitError("%s: %s" % (type(exc).__name__, exc))
        error.cause = exc
    finally:
        state.boost.restore()
    merged = summary(state, baseline and baseline["count"], None, None, None)
    merged.update(error.result)
    capped = int(getattr(probe, "capped_so_far", 0) or 0)
    merged["expedited"] = max(capped, merged.get("expedited") or 0)
    merged["changed"] = bool(state.boost.touched or merged["expedited"])
    error.result = merged
    raise error


def preconditions(state, baseline):
    """What must hold before the first side effect (a capped TTL, a boost); raises, changing nothing.

    CONFIG access for the boost, and a target that keys without a TTL do not alone put out of
    reach (with expedite but without expedite_no_ttl). The latter needs the no-TTL count: from a
    result_keys_info baseline, else one read-only TTL pass first.
    """
    settings = state.settings
    if settings.boost_active_expire:
        state.call(state.boost.check_access)
    if not (settings.expedite and not settings.expedite_no_ttl and settings.has_target):
        return None
    if baseline is not None and baseline["no_ttl"] is not None:
        count, no_ttl = baseline["count"], baseline["no_ttl"]
    else:
        passed = state.call(lambda: state.probe.read_ttls(deadline=state.deadline))
        if not passed.complete:
            return passed
        count = baseline["count"] if baseline is not None else passed.count
        no_ttl = passed.no_ttl
    target = target_for(count, settings.min_reduction, settings.target_count)
    if target is not None and no_ttl > target:
        state.note("precondition: %d keys without a TTL exceed the target %s; nothing was capped" % (no_ttl, target))
        raise ResultKeysWaitError(unreachable_message(no_ttl, target) + " (nothing was capped)", dict(
            baseline=count, target=target, no_ttl=no_ttl, expedited=0,
            forecast=dict(target_met_after=None, last_expiry_after=None, reachable=False)))
    return None


def first_pass(state, baseline):
    """One pass over the keys: cap old TTLs, or read them (a baseline with ``ttl.max`` needs none)."""
    settings, probe = state.settings, state.probe
    if settings.expedite:
        state.note("expediting: capping TTLs above %ss" % settings.max_ttl)
        passed = state.call(lambda: probe.expedite(settings.max_ttl, settings.expedite_no_ttl,
                                                   settings.expedite_method, deadline=state.deadline))
        state.event("expedited", capped=passed.capped, method=passed.method, seconds=round(passed.seconds, 3),
                    complete=passed.complete, keys=passed.count, batch=getattr(passed, "pacing", None))
        state.note("capped %d keys (%s) in %.2fs%s" % (passed.capped, passed.method, passed.seconds,
                                                       "" if passed.complete else ", stopped at the timeout"))
        return passed
    if baseline is None or baseline["ttl_max"] is None:
        return state.call(lambda: state.probe.read_ttls(deadline=state.deadline, above=settings.max_ttl))
    return None


def run_wait(state, baseline):
    settings = state.settings
    stopped = preconditions(state, baseline)  # its read-only TTL pass, when that ran into the timeout
    if stopped is not None:
        return stopped_at_timeout(state, baseline, stopped)
    passed = first_pass(state, baseline)
    if passed is not None and not passed.complete:
        return stopped_at_timeout(state, baseline, passed, expediting=settings.expedite)
    baseline_count = baseline["count"] if baseline is not None else passed.count
    state.check_identity()
    if baseline_count == 0 and settings.has_target:
        return nothing_to_verify(state, passed)

    read_at = passed.origin - state.started if passed is not None and passed.origin is not None else state.elapsed()
    no_ttl = passed.no_ttl if passed else baseline["no_ttl"] or 0
    persistent = 0 if (settings.expedite and settings.expedite_no_ttl) else no_ttl
    plan = Plan(state, baseline_count, read_at, passed.histogram if passed else None, persistent, no_ttl,
                ttl_max=baseline["ttl_max"] if baseline else None)
    fields = dict(plan.fields, expedited=passed.capped if passed else 0,
                  expedite_method=passed.method if passed and settings.expedite else None)
    if settings.expedite:
        fields["expedite_complete"] = True
    if not plan.reachable:
        raise ResultKeysWaitError(unreachable_message(persistent, plan.target), fields)
    first = passed.count if passed else None
    if nothing_to_wait(state, plan, passed):
        return answer_nothing_to_wait(state, plan, passed, fields)
    if plan.target_met_after > settings.timeout:
        return beyond_timeout(state, plan, first, fields)
    if settings.boost_active_expire:
        state.boost.apply()
    count, met = cheap_wait(state, plan, first)
    return verdict(state, plan, count, met, fields)


def cheap_wait(state, plan, first):
    """Sleep until the forecast, then count only when the O(1) signals say the target may be met.

    Between counts a tick reads INFO (restarts, memory, the expiry counters): every
    ``HEARTBEAT_SECONDS`` before the forecast, every ``poll_interval`` after. A count waits at
    least ``poll_interval``, stretched so counting takes at most ``MAX_POLL_DUTY`` of the time;
    the end of the wait always counts, for the verified figure. Returns (last count, met).
    """
    settings = state.settings
    wake = max(0.0, plan.target_met_after + WAKE_AFTER_FORECAST)
    policy = RecountPolicy(highest_met(plan.baseline_count, plan.target), plan.histogram, plan.read_at, wake)
    state.note("sleeping until t=%.1fs, then counting when the signals say the target may be met, until t=%.1fs"
               % (wake, state.hard_end))

    def done(count, now):
        return is_met(plan.baseline_count, count, plan.target) and (
            plan.target is not None or now >= plan.last_expiry_after)

    count = state.sample(first)  # the pass just counted: no second walk over the keyspace
    now = state.elapsed()
    policy.counted(count, now, state.last_status)
    met = done(count, now)
    pending = False  # a count is due but waits for the duty cycle
    while not met and now < state.hard_end - CLOCK_SLACK:
        earliest = policy.counted_at + max(settings.poll_interval, (state.fastest_poll_seconds or 0.0) / MAX_POLL_DUTY)
        if pending:
            tick = max(earliest, now)
        elif now < wake - CLOCK_SLACK:
            tick = min(now + HEARTBEAT_SECONDS, wake)
        else:
            tick = now + settings.poll_interval
        state.sleep_until(min(tick, state.hard_end))
        now = state.elapsed()
        at_end = now >= state.hard_end - CLOCK_SLACK
        status = state.check_identity()
        reason = policy.reason(now, status, at_end)
        pending = bool(reason) and not at_end and now < earliest - CLOCK_SLACK
        if reason is None or pending:
            # INFO was read anyway: its used_memory makes a point of the memory curve. The count
            # stays None (it would take a SCAN), so charts draw keys from the counted samples only.
            state.point(None, status.get("used_memory"))
            continue
        count = state.sample()
        now = state.elapsed()
        policy.counted(count, now, state.last_status)
        met = done(count, now)
    return count, met


__all__ = ["HEARTBEAT_SECONDS", "MAX_POLL_DUTY", "cheap_wait", "run_wait", "wait_for_fall"]
