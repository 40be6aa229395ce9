# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wait's pure arithmetic: options, baseline, target, the plan from a TTL histogram, the verdict.

Nothing here talks to Redis: a test builds the inputs in one line.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import math

from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.errors import (
    ResultKeysWaitError,
    check_number,
)

EXPEDITE_METHODS = ("auto", "pipeline", "lua")


class WaitSettings(object):
    """The module options the wait uses (a plain object, so tests build it in one line).

    ``started``: the clock value the module started at, so ``timeout`` bounds the whole module
    (the connection and the broker-key search before the wait included); None: when the wait starts.
    """

    def __init__(self, baseline=None, max_ttl=None, expedite=False, expedite_no_ttl=False,
                 expedite_method="auto", min_reduction=None, target_count=None, timeout=600,
                 poll_interval=2.0, boost_active_expire=False, fail_on_unmet=True, check_mode=False,
                 allow_non_result_pattern=False, started=None):
        self.baseline = baseline
        self.max_ttl = max_ttl
        self.expedite = expedite
        self.expedite_no_ttl = expedite_no_ttl
        self.expedite_method = expedite_method
        self.min_reduction = min_reduction
        self.target_count = target_count
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.boost_active_expire = boost_active_expire
        self.fail_on_unmet = fail_on_unmet
        self.check_mode = check_mode
        self.allow_non_result_pattern = allow_non_result_pattern
        self.started = started

    @property
    def has_target(self):
        return self.min_reduction is not None or self.target_count is not None

    def validate(self):
        """Refuse any option that could cap keys and then fail: every check before a side effect."""
        for name, whole in (("max_ttl", True), ("min_reduction", False), ("target_count", True),
                            ("timeout", True), ("poll_interval", False)):
            check_number(name, getattr(self, name), whole)
        if self.expedite and self.max_ttl is None:
            raise ResultKeysWaitError("expedite needs max_ttl: the TTL (the new result_expires) to cap old keys at")
        if self.max_ttl is not None and self.max_ttl < 1:
            raise ResultKeysWaitError("max_ttl must be at least 1 second, got %s" % self.max_ttl)
        if self.min_reduction is not None and self.min_reduction < 1:
            raise ResultKeysWaitError("min_reduction is the ratio baseline/final and must be 1 or more, got %s"
                                      % self.min_reduction)
        if self.target_count is not None and self.target_count < 0:
            raise ResultKeysWaitError("target_count must be 0 or more, got %d" % self.target_count)
        if self.timeout < 0:
            raise ResultKeysWaitError("timeout must be 0 or more seconds, got %s" % self.timeout)
        if self.poll_interval <= 0:
            raise ResultKeysWaitError("poll_interval must be more than 0 seconds, got %s" % self.poll_interval)
        if self.expedite_method not in EXPEDITE_METHODS:
            raise ResultKeysWaitError("expedite_method must be one of %s" % ", ".join(EXPEDITE_METHODS))
        return self


def parse_baseline(value):
    """The ``baseline`` option: None, an int count, or the whole ``result_keys_info`` result.

    Returns {count, ttl_max, no_ttl} (the latter two None when unknown) or None.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ResultKeysWaitError("baseline must be a key count or the result of result_keys_info, got %r" % value)
    if isinstance(value, dict):
        if "count" not in value:
            raise ResultKeysWaitError("baseline is a dict without 'count': pass the registered result of "
                                      "result_keys_info, or a plain count")
        ttl = value.get("ttl") or {}
        return dict(count=_as_int(value["count"], "baseline.count"),
                    ttl_max=None if ttl.get("max") is None else _as_int(ttl["max"], "baseline.ttl.max"),
                    no_ttl=None if value.get("no_ttl") is None else _as_int(value["no_ttl"], "baseline.no_ttl"))
    return dict(count=_as_int(value, "baseline"), ttl_max=None, no_ttl=None)


def _as_int(value, name):
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ResultKeysWaitError("%s must be a whole number of keys, got %r" % (name, value))
    if number < 0:
        raise ResultKeysWaitError("%s must not be negative, got %d" % (name, number))
    return number


def target_for(baseline_count, min_reduction=None, target_count=None):
    """Highest final count that meets the target, or None when no target was set."""
    limits = []
    if target_count is not None:
        limits.append(target_count)
    if min_reduction is not None:
        limits.append(int(math.floor(baseline_count / float(min_reduction))))
    return min(limits) if limits else None


def reduction(baseline_count, final_count):
    """baseline / final; a final of 0 divides by 1, so the ratio stays a finite number."""
    return round(float(baseline_count) / max(final_count, 1), 3)


def is_met(baseline_count, final_count, target):
    if target is None:  # no explicit target: the count must have fallen
        return final_count < baseline_count or final_count == 0
    return final_count <= target


def highest_met(baseline_count, target):
    """The highest count ``is_met`` accepts: the target, or (without one) one key below the baseline."""
    return target if target is not None else max(baseline_count - 1, 0)


def plan_wait(at, histogram, persistent, target, ttl_max=None):
    """When the target can first be met, and when the last key with a TTL expires.

    ``at``: seconds since start when the TTLs were read; ``histogram``: their TTLs (or None with
    only ``ttl_max`` known); ``persistent``: keys that will never expire. New keys written
    meanwhile are unknown, so the forecast is the earliest moment, not a promise.
    Returns {target_met_after, last_expiry_after, reachable}.
    """
    if histogram is not None and histogram.total:
        last = histogram.max
    else:
        last = ttl_max or 0
    last_expiry_after = at + last
    if target is None:
        return dict(target_met_after=last_expiry_after, last_expiry_after=last_expiry_after, reachable=True)
    if persistent > target:
        return dict(target_met_after=None, last_expiry_after=last_expiry_after, reachable=False)
    if histogram is not None and histogram.total:
        when = at + histogram.time_until_at_most(target - persistent)
    else:
        when = last_expiry_after
    return dict(target_met_after=when, last_expiry_after=last_expiry_after, reachable=True)


def unreachable_message(persistent, target):
    return ("the target can never be met by waiting: %d keys have no TTL and never expire, but the target allows "
            "at most %s keys. Give them a TTL (expedite with expedite_no_ttl: true) or allow more keys"
            % (persistent, target))


def wait_seconds(plan, timeout):
    if plan["target_met_after"] is None:
        return None
    return round(min(plan["target_met_after"], float(timeout)), 3)


def iso_timestamp(epoch):
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def summary(state, baseline_count, final_count, met, target):
    """The fields every result carries, on success and failure alike."""
    return dict(
        met=met,
        baseline=baseline_count,
        final=final_count,
        reduction=None if baseline_count is None or final_count is None else reduction(baseline_count, final_count),
        target=target,
        elapsed=round(state.elapsed(), 3),
        nothing_to_wait=False,
        samples=state.samples,
        events=state.events,
        timeline=state.timeline,
        progress=state.progress,
        warnings=state.warnings,
        boost=state.boost.report(),
        changed=bool(state.boost.touched),
    )


__all__ = [
    "EXPEDITE_METHODS", "WaitSettings", "highest_met", "is_met", "iso_timestamp", "parse_baseline", "plan_wait",
    "reduction", "summary", "target_for", "unreachable_message", "wait_seconds",
]
