# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The answers the wait can give, each built in one place: plan fields, and every early or final exit.

A real run and check mode share them, so a result has the same shape whichever way it ends.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.errors import ResultKeysWaitError
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.planning import (
    is_met,
    iso_timestamp,
    plan_wait,
    reduction,
    summary,
    target_for,
)

NOTHING_TO_VERIFY = ("nothing to verify: the baseline has no result key (check the pattern, the db and the key "
                     "prefix; result_keys_info says where result-shaped keys are)")


class Plan(object):
    """The forecast and what the result says of it (``fields``), for one baseline and one TTL pass."""

    def __init__(self, state, baseline_count, read_at, histogram, persistent, no_ttl, ttl_max=None):
        settings = state.settings
        self.baseline_count = baseline_count
        self.read_at = read_at
        self.histogram = histogram
        self.persistent = persistent
        self.target = target_for(baseline_count, settings.min_reduction, settings.target_count)
        forecast = plan_wait(read_at, histogram, persistent, self.target,
                             ttl_max=None if histogram is not None else ttl_max)
        self.target_met_after = forecast["target_met_after"]
        self.last_expiry_after = forecast["last_expiry_after"]
        self.reachable = forecast["reachable"]
        # The wait ends at the last expiry plus a grace of a second and two polls, or at the timeout.
        deadline = self.last_expiry_after + 1.0 + 2 * settings.poll_interval
        state.hard_end = min(float(settings.timeout), deadline)
        self.fields = dict(
            target=self.target,
            no_ttl=no_ttl,
            deadline=dict(seconds=round(deadline, 3), at=iso_timestamp(state.started_wall + deadline)),
            forecast=dict(target_met_after=None if self.target_met_after is None else round(self.target_met_after, 3),
                          last_expiry_after=round(self.last_expiry_after, 3), reachable=self.reachable),
        )

    def as_dict(self):
        return dict(target_met_after=self.target_met_after, last_expiry_after=self.last_expiry_after,
                    reachable=self.reachable)


def old_keys_left(settings, passed):
    """Keys a run still has to wait for beyond ``max_ttl``: capped now, or found above it (None: unknown)."""
    if settings.max_ttl is None or passed is None:
        return None
    if settings.expedite and not settings.check_mode:
        return passed.capped
    return passed.above


def nothing_to_wait(state, plan, passed):
    """No key has a TTL above max_ttl, nothing is left to expedite, and the count meets the target now."""
    settings = state.settings
    left = old_keys_left(settings, passed)
    if settings.check_mode and settings.expedite and settings.expedite_no_ttl and passed is not None:
        left = None if left is None else left + passed.no_ttl
    return left == 0 and is_met(plan.baseline_count, passed.count, plan.target)


def nothing_to_verify(state, passed):
    """A fall from nothing is no fall: the pattern, the db or the prefix is likely wrong."""
    result = summary(state, 0, passed.count if passed else None, False, None)
    result.update(reason="nothing to verify", msg=NOTHING_TO_VERIFY)
    if state.settings.fail_on_unmet:
        raise ResultKeysWaitError(result["msg"], result)
    return result


def stopped_at_timeout(state, baseline, passed, expediting=False):
    """The TTL pass or (``expediting``) the expedite pass ran into ``timeout``: say how far it got, honestly."""
    settings = state.settings
    result = summary(state, baseline["count"] if baseline else None, None, False, None)
    result.update(reason="timeout", expedited=passed.capped if expediting else 0, expedite_complete=False,
                  expedite_method=passed.method if expediting else None)
    if expediting:
        done = ("capped %d keys among the %d it reached; the keys it did not reach keep their TTLs "
                "(capping is idempotent: run again, or raise timeout)" % (passed.capped, passed.count))
    else:
        done = "read the TTLs of %d keys and changed nothing (raise timeout)" % passed.count
    result["msg"] = "timeout (%ss) reached during the %s pass, which stopped after %.1fs: it %s" % (
        settings.timeout, "expedite" if expediting else "TTL", passed.seconds, done)
    result["changed"] = bool(result["expedited"]) or state.boost.touched
    state.note("stopped at the timeout: %s" % done)
    if settings.fail_on_unmet:
        raise ResultKeysWaitError(result["msg"], result)
    return result


def answer_nothing_to_wait(state, plan, passed, fields):
    """The old keys are gone (none above max_ttl) and the count meets the target: done, without sleeping."""
    count = state.sample(passed.count)
    result = summary(state, plan.baseline_count, count, True, plan.target)
    result.update(fields)
    result.update(nothing_to_wait=True, changed=False, msg=(
        "nothing to wait for: no key has a TTL above max_ttl (%ss) and nothing is left to expedite; %d keys now, "
        "baseline %d" % (state.settings.max_ttl, count, plan.baseline_count)))
    state.note("nothing to wait for: no TTL above %ss, %d keys" % (state.settings.max_ttl, count))
    return result


def beyond_timeout(state, plan, first, fields):
    """The forecast is later than ``timeout``: return at once with when to come back."""
    settings = state.settings
    retry_after = int(math.ceil(plan.target_met_after - settings.timeout)) + 1
    count_now = first if first is not None else state.call(state.probe.count)
    state.point(count_now, None)
    state.note("forecast %.0fs is beyond timeout %ss: returning at once" % (plan.target_met_after, settings.timeout))
    result = summary(state, plan.baseline_count, count_now, False, plan.target)
    result.update(fields)
    result["changed"] = state.boost.touched or bool(fields.get("expedited"))
    wall_now = state.started_wall + state.elapsed()
    result.update(retry_after=retry_after, retry_at=iso_timestamp(wall_now + retry_after),
                  msg="the forecast (target met after %.0fs) is beyond timeout (%ss): run again in %ds, "
                      "or raise timeout" % (plan.target_met_after, settings.timeout, retry_after))
    return result


def verdict(state, plan, count, met, fields):
    """The end of the wait: met, or not met by the deadline (a failure unless fail_on_unmet is off)."""
    settings = state.settings
    baseline_count, target = plan.baseline_count, plan.target
    result = summary(state, baseline_count, count, met, target)
    result.update(fields)
    result["changed"] = state.boost.touched or bool(fields.get("expedited"))
    if met:
        state.note("met: %s -> %s keys" % (baseline_count, count))
        return result
    message = ("the target was not met by the deadline: %d keys after %.1fs, baseline %d (reduction %.2f), "
               "target %s" % (count, state.elapsed(), baseline_count, reduction(baseline_count, count),
                              "a fall below the baseline" if target is None else "at most %s keys" % target))
    if settings.fail_on_unmet:
        raise ResultKeysWaitError(message, result)
    result["msg"] = message
    return result


__all__ = [
    "NOTHING_TO_VERIFY", "Plan", "answer_nothing_to_wait", "beyond_timeout", "nothing_to_verify", "nothing_to_wait",
    "old_keys_left", "stopped_at_timeout", "verdict",
]
