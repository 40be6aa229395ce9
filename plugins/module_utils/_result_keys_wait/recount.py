# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cheap wait: whether a counting SCAN is worth its cost now, from O(1) signals.

A count walks the whole keyspace (millions of keys, every time). Between counts the wait reads
INFO anyway (to notice a restart, and for the memory curve), which costs next to nothing and
carries three signals: ``expired_keys`` (INFO stats: keys the server reclaimed), ``keys`` and
``expires`` of the database (INFO keyspace), and, from the TTL pass, the forecast of how many
known keys have expired since. A count runs only when they say the target may be met:

- at the forecast moment (before it, the known keys alone keep the count above the target);
- when the keys known to have expired since the last count, or the keys the counters say went
  away (reclaimed, deleted), could bring the last count down to the target;
- when a signal is missing (an INFO without the counters, a restart that reset them);
- at least every ``RECOUNT_EVERY`` seconds (keys written meanwhile have TTLs no pass has read);
- once at the end, for the verified count.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

RECOUNT_EVERY = 60.0
CLOCK_SLACK = 1e-6


def gone_between(before, after):
    """Keys the O(1) counters say went away between two status reads, or None when they cannot say.

    The most any one counter shows: ``expired_keys`` rising (reclaimed), or ``keys`` or
    ``expires`` of the database falling (reclaimed or deleted). Counters of another run of the
    server (a restart resets them) say nothing.
    """
    if not before or not after or before.get("run_id") != after.get("run_id"):
        return None
    seen = []
    if before.get("expired_keys") is not None and after.get("expired_keys") is not None:
        seen.append(after["expired_keys"] - before["expired_keys"])
    for name in ("keys", "expires"):
        if before.get(name) is not None and after.get(name) is not None:
            seen.append(before[name] - after[name])
    return max(0, *seen) if seen else None


def may_be_met(last_count, highest_met, expired_known, gone):
    """Whether the count may now be at most ``highest_met``, from the last count and what went since."""
    return last_count - max(expired_known, gone or 0) <= highest_met


class RecountPolicy(object):
    """When the wait counts. ``histogram``: expiry moments (seconds after ``read_at``) of the known keys."""

    def __init__(self, highest_met, histogram, read_at, wake, recount_every=RECOUNT_EVERY):
        self.highest_met = highest_met
        self.histogram = histogram
        self.read_at = read_at
        self.wake = wake
        self.recount_every = recount_every
        self.last_count = None
        self.counted_at = None
        self.status = None

    def counted(self, count, now, status):
        self.last_count, self.counted_at, self.status = count, now, status

    def expired_known(self, since, now):
        """Keys of the TTL pass whose expiry moment falls between ``since`` and ``now``."""
        if self.histogram is None or not self.histogram.total:
            return 0
        return self.histogram.above(since - self.read_at) - self.histogram.above(now - self.read_at)

    def reason(self, now, status, at_end=False):
        """Why to count now (a short phrase for the progress), or None to let it be."""
        if at_end:
            return "the end of the wait"
        if now < self.wake - CLOCK_SLACK:
            return None
        if self.counted_at is None or self.counted_at < self.wake - CLOCK_SLACK:
            return "the forecast moment"
        gone = gone_between(self.status, status)
        if gone is None:
            return "no O(1) signal"
        if may_be_met(self.last_count, self.highest_met, self.expired_known(self.counted_at, now), gone):
            return "signals say the target may be met"
        if now - self.counted_at >= self.recount_every - CLOCK_SLACK:
            return "%.0f s since the last count" % self.recount_every
        return None


__all__ = ["RECOUNT_EVERY", "RecountPolicy", "gone_between", "may_be_met"]
