# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What can go wrong during the wait, and how a failure is told apart from a passing hiccup."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math


class ResultKeysWaitError(Exception):
    """The wait failed; ``result`` carries the timeline and figures for the report.

    ``cause`` is the Redis error behind it, when there is one (the module words it).
    """

    def __init__(self, msg, result=None):
        super(ResultKeysWaitError, self).__init__(msg)
        self.result = result or {}
        self.cause = None
        self.context = None  # what the module says around its wording of ``cause``


class WaitInterrupted(BaseException):
    """SIGTERM or SIGHUP during the wait: unwind (restoring active-expire-effort), then report.

    A BaseException, like the KeyboardInterrupt of SIGINT, so no ``except Exception`` swallows it.
    """

    def __init__(self, signal_name):
        super(WaitInterrupted, self).__init__(signal_name)
        self.signal_name = signal_name


class TopologyChanged(ConnectionError):
    """The primaries are not where they were (failover, lost node): find them again and retry.

    A ConnectionError, so the wait treats it like a dropped connection (backoff, retry).
    """


def is_transient(exc):
    """A dropped connection, a timeout, or a server still loading its data after a restart."""
    names = set(klass.__name__ for klass in type(exc).__mro__)
    return bool(names & set(("ConnectionError", "TimeoutError", "BusyLoadingError")))


def quietly(operation):
    """``operation()``, or None when Redis refuses it (an ACL without GET/SET on our key, MOVED)."""
    try:
        return operation()
    except Exception as exc:  # pylint: disable=broad-except  # a refusal means "not available here"
        if is_transient(exc):
            raise
        return None


def check_number(name, value, whole):
    """A real, finite number (never a bool: YAML ``yes`` is not 1), or ResultKeysWaitError."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResultKeysWaitError("%s must be a %s, got %r (%s)" % (
            name, "whole number" if whole else "number", value, type(value).__name__))
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise ResultKeysWaitError("%s must be a finite number, got %r" % (name, value))
    if whole and value != int(value):
        raise ResultKeysWaitError("%s must be a whole number, got %r" % (name, value))


__all__ = ["ResultKeysWaitError", "TopologyChanged", "WaitInterrupted", "check_number", "is_transient", "quietly"]
