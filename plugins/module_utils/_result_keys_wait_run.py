# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run of the result_keys_wait module: refuse bad options, follow the primaries, wait, report.

The wait itself (plan, expedite, poll, verify) lives in _result_keys_wait; this file checks
the options before anything connects, makes SIGTERM and SIGHUP unwind the wait, and words a
failure with what was done before it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import signal

from ansible.module_utils import basic

from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_connection import (
    connect_topology,
    describe_redis_error,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_module import Failure, OptionError
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait import (
    ResultKeysWaitError,
    TopologyProbe,
    WaitInterrupted,
    WaitSettings,
    check_number,
    guard_pattern,
    wait_for_fall,
)

NUMBER_OPTIONS = (("max_ttl", True), ("min_reduction", False), ("target_count", True), ("timeout", True),
                  ("poll_interval", False), ("batch_size", True))
SIGNALS = ("SIGTERM", "SIGHUP")


def raw_arguments():
    """The task's arguments as written, before Ansible converted them (YAML ``yes`` is still True)."""
    try:
        return basic._load_params()
    except Exception:  # another ansible-core: the converted values are checked anyway
        return {}


def refuse_wrong_numbers(params, raw):
    """A boolean is no number (``max_ttl: yes`` would become 1); NaN and inf are no limit.

    ``raw`` are the arguments as written (raw_arguments()), ``params`` as converted.
    """
    for name, whole in NUMBER_OPTIONS:
        value = raw.get(name)
        if isinstance(value, bool):
            raise OptionError("%s must be a %s, got the boolean %r (a YAML yes/no/true/false)"
                              % (name, "whole number" if whole else "number", value))
        try:
            check_number(name, params[name], whole)
        except ResultKeysWaitError as exc:
            raise OptionError(str(exc))


def wait_settings(params, check_mode, started=None):
    return WaitSettings(
        baseline=params["baseline"], max_ttl=params["max_ttl"], expedite=params["expedite"],
        expedite_no_ttl=params["expedite_no_ttl"], expedite_method=params["expedite_method"],
        min_reduction=params["min_reduction"], target_count=params["target_count"], timeout=params["timeout"],
        poll_interval=params["poll_interval"], boost_active_expire=params["boost_active_expire"],
        fail_on_unmet=params["fail_on_unmet"], check_mode=check_mode,
        allow_non_result_pattern=params["allow_non_result_pattern"], started=started)


def check_options(shell):
    """Every option that could make the wait cap keys and then fail, refused before it connects."""
    params = shell.params
    refuse_wrong_numbers(params, raw_arguments())
    if params["batch_size"] < 1:
        raise OptionError("batch_size must be 1 or more, got %d" % params["batch_size"])
    try:
        wait_settings(params, shell.check_mode).validate()
    except ResultKeysWaitError as exc:
        raise OptionError(str(exc))


def interrupt_on_signals():
    """SIGTERM and SIGHUP unwind the wait like SIGINT does, so active-expire-effort is restored."""
    def handler(number, _frame):
        for name in SIGNALS:  # one unwinding: a second signal must not cut the restore short
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        raise WaitInterrupted(signal.Signals(number).name)
    for name in SIGNALS:
        signal.signal(getattr(signal, name), handler)


def open_probe(params):
    """The primaries behind ``params``, found again whenever they move (a failover), signals armed first."""
    interrupt_on_signals()
    probe = TopologyProbe(lambda: connect_topology(params), params, params["pattern"], params["batch_size"],
                          results_only=not params["allow_non_result_pattern"])
    try:
        return probe.connect()
    except BaseException:  # what the probe found before the failure is closed all the same
        probe.close()
        raise


def wait(shell, probe, result):
    """Refuse a pattern that reaches broker keys, then wait for the fall; fills ``result``."""
    params = shell.params
    broker = guard_pattern(probe, params["pattern"], params.get("db") or 0, shell.open_db,
                           params["allow_non_result_pattern"], params["expedite"])
    result["broker_keys"] = broker
    result.update(wait_for_fall(probe, wait_settings(params, shell.check_mode)))
    result.update(_where(probe), broker_keys=broker)


def _what_was_done(result):
    """The side effects before a failure, for the message (the fields say it too)."""
    done = []
    if result.get("expedited"):
        done.append("%d keys had their TTL capped" % result["expedited"])
    boost = result.get("boost") or {}
    if any(isinstance(entry, dict) and entry.get("event") == "boost" for entry in result.get("timeline", [])):
        done.append("active-expire-effort was raised and set back to %s" % boost.get("previous"))
    return " (changed before the failure: %s)" % "; ".join(done) if done else ""


def _where(probe):
    """The primaries the wait used (and any change of them, e.g. a Sentinel failover)."""
    if probe is None or probe.topology is None:
        return {}
    return dict(nodes=probe.report(), topology=probe.topology.describe(), topology_changes=probe.topology_changes)


def _wait_failed(shell, probe, result, exc):
    """The wait's own figures and timeline, where it ran, and a message that says what was done."""
    fields = dict(exc.result)
    fields.pop("msg", None)
    fields.update(_where(probe))
    if result.get("broker_keys") is not None:
        fields.setdefault("broker_keys", result["broker_keys"])
    fields.setdefault("changed", False)
    message = str(exc)
    if exc.cause is not None:
        message = describe_redis_error(exc.cause, shell.params, command=shell.command)
        if exc.context:
            message = "%s. %s" % (exc.context, message)
    if fields.get("changed"):
        message += _what_was_done(fields)
    fields["msg"] = message
    return fields


def _interrupted(_shell, _probe, _result, exc):
    return dict(msg="interrupted by %s before the wait began; nothing was changed" % exc.signal_name)


# WaitInterrupted reaches the shell only before the wait began: wait_for_fall() turns it into a
# ResultKeysWaitError that reports what was restored.
WAIT_FAILURES = (Failure(ResultKeysWaitError, describe=_wait_failed), Failure(WaitInterrupted, describe=_interrupted))


__all__ = ["NUMBER_OPTIONS", "WAIT_FAILURES", "check_options", "open_probe", "refuse_wrong_numbers", "wait",
           "wait_settings"]
