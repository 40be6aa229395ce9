# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check mode's own path: read every TTL, plan, say what a run would do; never cap, boost or sleep.

Kept apart from the wait (as kubernetes.core keeps its DummyWaiter apart), so no branch of the
real run has to ask whether it may change something.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.outcomes import (
    Plan,
    nothing_to_verify,
    nothing_to_wait,
    stopped_at_timeout,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.planning import (
    is_met,
    summary,
    wait_seconds,
)


def plan_only(state, baseline):
    """The plan of a run, from one read-only TTL pass (a baseline's TTLs are not enough to plan a cap)."""
    settings, probe = state.settings, state.probe
    if settings.boost_active_expire:
        state.boost.read_current()
    passed = state.call(lambda: probe.read_ttls(deadline=state.deadline, above=settings.max_ttl))
    if not passed.complete:
        return stopped_at_timeout(state, baseline, passed)
    baseline_count = baseline["count"] if baseline is not None else passed.count
    state.check_identity()
    if baseline_count == 0 and settings.has_target:
        return nothing_to_verify(state, passed)

    histogram, no_ttl = passed.histogram, passed.no_ttl
    would_cap = 0
    if settings.expedite:
        above = passed.above if passed.above is not None else histogram.above(settings.max_ttl)
        would_cap = above + (no_ttl if settings.expedite_no_ttl else 0)
        histogram = histogram.capped(settings.max_ttl, extra=no_ttl if settings.expedite_no_ttl else 0)
    persistent = 0 if (settings.expedite and settings.expedite_no_ttl) else no_ttl
    read_at = passed.origin - state.started if passed.origin is not None else state.elapsed()
    plan = Plan(state, baseline_count, read_at, histogram, persistent, no_ttl)

    state.point(passed.count, None)
    met = is_met(baseline_count, passed.count, plan.target)
    result = summary(state, baseline_count, passed.count, met, plan.target)
    result.update(plan.fields)
    result.update(changed=bool(would_cap) or bool(settings.boost_active_expire and state.boost.would_change()),
                  would_expedite=would_cap, expedited=0, expedite_method=None,
                  nothing_to_wait=nothing_to_wait(state, plan, passed),
                  plan=dict(would_expedite=would_cap, wait_seconds=wait_seconds(plan.as_dict(), settings.timeout),
                            boost_active_expire=bool(settings.boost_active_expire)))
    state.note("check mode: would cap %d keys, forecast %s" % (would_cap, plan.fields["forecast"]))
    return result


__all__ = ["plan_only"]
