# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""active-expire-effort raised during the wait, and given back on every exit path."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.errors import (
    ResultKeysWaitError,
    is_transient,
    quietly,
)

BOOST_EFFORT = 10
BOOST_REFUSED = ("boost_active_expire needs CONFIG GET and CONFIG SET of active-expire-effort; nothing was "
                 "changed (grant +config|get +config|set, or set boost_active_expire: false)")


class Boost(object):
    """The boost of one run: ``previous`` (the value to give back), ``touched`` (ever set), ``applied`` (set now).

    Every Redis call goes through ``state.call`` (retried over a dropped connection); what is
    done is written to the state's timeline and progress.
    """

    def __init__(self, state):
        self.state = state
        self.previous = None
        self.touched = False
        self.applied = False

    @property
    def probe(self):
        return self.state.probe

    def report(self):
        if self.previous is None:
            return None
        return dict(previous=self.previous, boosted_to=BOOST_EFFORT if self.applied else None)

    def would_change(self):
        """In check mode: whether a real run would raise the setting."""
        return self.previous is not None and self.previous < BOOST_EFFORT

    def read_current(self):
        self.previous = self.state.call(self.probe.active_expire_effort)

    def recorded_effort(self):
        recorded = getattr(self.probe, "recorded_effort", None)
        return None if recorded is None else self.state.call(lambda: quietly(recorded))

    def check_access(self):
        """Before any side effect: CONFIG GET and SET of active-expire-effort must be allowed.

        SET writes the value the server already has, so the check changes nothing.
        """
        try:
            current = self.probe.active_expire_effort()
            if current is not None:
                self.probe.set_active_expire_effort(current)
        except Exception as exc:
            if is_transient(exc):
                raise
            error = ResultKeysWaitError("%s: %s" % (BOOST_REFUSED, exc))
            error.cause, error.context = exc, BOOST_REFUSED
            raise error
        return current

    def apply(self):
        state = self.state
        current = state.call(self.probe.active_expire_effort)
        if current is None:
            state.warnings.append("boost_active_expire ignored: this server has no active-expire-effort (Redis 6+)")
            return
        recorded = self.recorded_effort()
        previous = current if recorded is None else recorded
        if recorded is not None and recorded != current:
            state.note("active-expire-effort is %d, but a run that did not finish kept %d as the original: "
                       "%d is restored at the end" % (current, recorded, recorded))
        self.previous = previous
        if current >= BOOST_EFFORT and recorded is None:
            state.note("active-expire-effort already %d" % current)
            return
        state.call(lambda: self.probe.set_active_expire_effort(BOOST_EFFORT))
        self.applied = self.touched = True
        for text in getattr(self.probe, "marker_warnings", []):
            if text not in state.warnings:
                state.warnings.append(text)
        state.event("boost", active_expire_effort=BOOST_EFFORT, previous=previous)
        state.note("active-expire-effort %d -> %d" % (previous, BOOST_EFFORT))

    def reapply(self):
        """After a restart the server runs with its configured value again: boost it once more."""
        if not self.applied:
            return
        current = self.state.call(self.probe.active_expire_effort)
        if current != BOOST_EFFORT:
            self.state.call(lambda: self.probe.set_active_expire_effort(BOOST_EFFORT))
            self.state.event("boost", active_expire_effort=BOOST_EFFORT, previous=current, reapplied=True)

    def restore(self):
        """Give the value back; False (with a warning) when that fails, so the wait's own outcome shows."""
        if not self.applied:
            return None
        restore = getattr(self.probe, "restore_active_expire_effort", None)  # per node, on a topology
        try:
            self.state.call(restore or (lambda: self.probe.set_active_expire_effort(self.previous)))
        except Exception as exc:  # pylint: disable=broad-except  # never hide the outcome behind a restore failure
            self.state.warnings.append("could not restore active-expire-effort to %s: %s" % (self.previous, exc))
            return False
        finally:
            self.applied = False
        self.state.event("boost restored", active_expire_effort=self.previous)
        return True


__all__ = ["BOOST_EFFORT", "BOOST_REFUSED", "Boost"]
