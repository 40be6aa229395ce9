# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run of the wait: its clock, what it recorded, and every Redis call retried over a lost connection."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.boost import Boost
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.errors import (
    ResultKeysWaitError,
    is_transient,
)

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 2.0
# Moments closer than this are the same moment (float sums of sleeps do not add up exactly).
CLOCK_SLACK = 1e-6


class WaitState(object):
    """What one run shares: samples ``[t, keys|null, used_memory]``, events ``{t, event, ...}``, both
    in order in ``timeline`` (kept for one release), progress lines, warnings, the boost, the identity
    of the server (a restart shows as a new run_id) and the end of the wait.

    Times are seconds since ``started``: the module's start when the settings give it, else now.
    """

    def __init__(self, probe, settings, clock, sleep, wall):
        self.probe = probe
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        now = clock()
        self.started = settings.started if settings.started is not None else now
        self.started_wall = wall() - (now - self.started)
        self.timeline = []
        self.samples = []
        self.events = []
        self.progress = []
        self.warnings = list(getattr(probe, "warnings", None) or [])
        self.identity = None
        self.pending_reconnect = None
        self.boost = Boost(self)
        self.hard_end = float(settings.timeout)
        self.last_count = None
        self.last_status = None
        self.fastest_poll_seconds = None

    @property
    def deadline(self):
        """The clock value at which ``timeout`` runs out (a pass stops there)."""
        return self.started + float(self.settings.timeout)

    def elapsed(self):
        return self.clock() - self.started

    def note(self, text):
        self.progress.append("t=%.1fs %s" % (self.elapsed(), text))

    def event(self, name, **fields):
        entry = dict(t=round(self.elapsed(), 3), event=name)
        entry.update(fields)
        self.events.append(entry)
        self.timeline.append(entry)
        return entry

    def point(self, count, used_memory):
        """A sample: a counted one, or (``count`` None) memory only, from an INFO read anyway."""
        entry = [round(self.elapsed(), 3), count, used_memory]
        self.samples.append(entry)
        self.timeline.append(entry)
        return entry

    def sleep_until(self, moment):
        pause = moment - self.elapsed()
        if pause > CLOCK_SLACK:
            self.sleep(pause)

    # Every Redis call of the loop goes through here: transient failures are retried with backoff
    # until the end of the wait, and the recovery is written to the timeline.
    def call(self, operation):
        failures = 0
        first_error = None
        delay = BACKOFF_FIRST
        while True:
            try:
                value = operation()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                first_error = first_error or "%s: %s" % (type(exc).__name__, exc)
                if self.elapsed() + delay > max(self.hard_end, 0) + BACKOFF_MAX * 5:
                    raise ResultKeysWaitError(
                        "lost the connection to Redis and could not get it back before the end of the wait "
                        "(%d attempts, first error %s)" % (failures, first_error))
                self.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            if failures:
                self.pending_reconnect = self.event("reconnected", attempts=failures, error=first_error,
                                                    restarted=None)
                self.note("reconnected after %d failed attempts (%s)" % (failures, first_error))
            return value

    def check_identity(self):
        """Notice a restart (new run_id) or a silently re-opened connection (new client id)."""
        status = self.call(self.probe.status)
        identity = (status.get("run_id"), status.get("client_id"))
        pending, self.pending_reconnect = self.pending_reconnect, None
        if self.identity is not None and (identity != self.identity or pending is not None):
            restarted = identity[0] != self.identity[0]
            if pending is None:  # the client re-opened its connection by itself
                pending = self.event("reconnected", attempts=0, error=None, restarted=None)
            pending["restarted"] = restarted
            if restarted:
                self.note("the server restarted (new run_id)")
                self.boost.reapply()
        self.identity = identity
        self.last_status = status
        return status

    def sample(self, count=None):
        """Count with SCAN (unless a pass just counted), then read the status; one sample."""
        if count is None:
            started = self.clock()
            count = self.call(self.probe.count)
            took = self.clock() - started
            if self.fastest_poll_seconds is None or took < self.fastest_poll_seconds:
                self.fastest_poll_seconds = took
        status = self.check_identity()  # after the count: its SCAN reclaimed keys, the counters show it
        self.last_count = count
        self.point(count, status.get("used_memory"))
        return count


__all__ = ["CLOCK_SLACK", "WaitState"]
