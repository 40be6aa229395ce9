# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the celery_tune role that shape what the modules return into what the role decides
and reports: the before/after figures, the rates between them, the wait's samples and events,
whether old keys are left, the baseline a rerun measures against, and the verdict.

The role only wires modules together; these decisions were Jinja if/elif chains before, and are
here so that table tests cover every branch (tests/unit/test_celery_tune_filters.py).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence

# (report name, INFO field of result_keys_info's server_stats), in the order the report lists them.
SERVER_STATS = (
    ("ops_per_sec", "instantaneous_ops_per_sec"),
    ("total_commands_processed", "total_commands_processed"),
    ("total_net_input_bytes", "total_net_input_bytes"),
    ("total_net_output_bytes", "total_net_output_bytes"),
    ("input_kbps", "instantaneous_input_kbps"),
    ("output_kbps", "instantaneous_output_kbps"),
    ("uptime_in_seconds", "uptime_in_seconds"),
)

# (rate name, snapshot counter): per-second averages between the two measures.
RATES = (
    ("commands_per_sec", "total_commands_processed"),
    ("net_input_bytes_per_sec", "total_net_input_bytes"),
    ("net_output_bytes_per_sec", "total_net_output_bytes"),
)

# What the report keeps of result_keys_wait's result, with the value when the wait did not say.
WAIT_FIELDS = (
    ("met", None), ("baseline", None), ("final", None), ("reduction", None), ("target", None),
    ("elapsed", None), ("deadline", None), ("expedited", 0), ("would_expedite", None),
    ("expedite_method", None), ("retry_after", None), ("retry_at", None),
)


def _mapping(value):
    """``value`` when it is a dict, else an empty one: a skipped or missing result reads as nothing."""
    return value if isinstance(value, Mapping) else {}


def _int(value, default=0):
    """An int the way Jinja's ``int`` filter reads one: numeric strings too, anything else ``default``."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return default


def celery_tune_snapshot(info, at=None):
    """The report's figures of one measure, from a result_keys_info result.

    The same shape before and after the change, so the report compares like with like. A result
    that is missing or skipped gives zeros. ``at`` (an ISO 8601 time) is added when given.
    """
    info = _mapping(info)
    stats = _mapping(info.get("server_stats"))
    snapshot = {
        "keys": info.get("count", 0),
        "no_ttl": info.get("no_ttl", 0),
        "ttl_max": _mapping(info.get("ttl")).get("max"),
        "estimated_bytes": _mapping(info.get("memory")).get("estimated_bytes", 0),
        "used_memory": info.get("used_memory", 0),
        "maxmemory": info.get("maxmemory", 0),
        "maxmemory_policy": info.get("maxmemory_policy", ""),
    }
    for name, field in SERVER_STATS:
        snapshot[name] = stats.get(field, 0)
    if at is not None:
        snapshot["at"] = at
    return snapshot


def celery_tune_rates(before, after):
    """Averages per second between two snapshots, from Redis' INFO counters.

    ``{}`` when the server's uptime did not grow between them: a restart of Redis reset its
    counters, so a difference would be meaningless.
    """
    before, after = _mapping(before), _mapping(after)
    span = _int(after.get("uptime_in_seconds")) - _int(before.get("uptime_in_seconds"))
    if span <= 0:
        return {}
    rates = {"seconds": span}
    for name, counter in RATES:
        rates[name] = round((_int(after.get(counter)) - _int(before.get(counter))) / span, 1)
    return rates


def _split_timeline(timeline):
    """``(samples, events)`` of a timeline that mixes ``[t, count, memory]`` lists and event dicts."""
    samples, events = [], []
    for entry in timeline if is_sequence(timeline) else []:
        (events if isinstance(entry, Mapping) else samples).append(entry)
    return samples, events


def celery_tune_wait_summary(wait):
    """What the report shows of a result_keys_wait result: the figures, samples, events, progress.

    ``samples`` and ``events`` are taken as the module returns them; from a module that returns
    only ``timeline`` (samples and events mixed), they are split from it. ``ran`` says whether the
    wait ran at all (a skipped or failed task has no ``met``).
    """
    wait = _mapping(wait)
    split_samples, split_events = _split_timeline(wait.get("timeline"))
    summary = {"ran": "met" in wait}
    for name, missing in WAIT_FIELDS:
        summary[name] = wait.get(name, missing)
    summary["samples"] = list(wait["samples"]) if is_sequence(wait.get("samples")) else split_samples
    summary["events"] = list(wait["events"]) if is_sequence(wait.get("events")) else split_events
    summary["progress"] = list(wait.get("progress") or [])
    return summary


def celery_tune_old_keys(baseline, max_ttl, expedite=False, expedite_no_ttl=False):
    """Whether result keys are left that the wait has to see expire.

    ``baseline`` is result_keys_info's result before the change; ``max_ttl`` the new
    ``result_expires`` (0: none set). A key is old when its TTL is above ``max_ttl``; with
    ``expedite`` and ``expedite_no_ttl``, a key without TTL is old too (it is given one). Without
    a ``max_ttl`` every key is old. No key at all: nothing to wait for.
    """
    baseline = _mapping(baseline)
    max_ttl = _int(max_ttl)
    if _int(baseline.get("count")) <= 0:
        return False
    if max_ttl == 0:
        return True
    if _int(_mapping(baseline.get("ttl")).get("max")) > max_ttl:
        return True
    return bool(expedite and expedite_no_ttl and _int(baseline.get("no_ttl")) > 0)


def celery_tune_wait_baseline(baseline, state=None):
    """The baseline the wait measures the fall against: this run's, or the count recorded before.

    A run that changed the config recorded the key count of before the change in ``state``
    (state.json). A later run (after a ``pending`` verdict) starts with fewer keys; it measures
    against the larger of the two, so the fall the first run caused still counts. A state that
    was rolled back records nothing that holds.
    """
    baseline = _mapping(baseline)
    state = _mapping(state)
    recorded = _mapping(state.get("baseline")).get("count")
    if state.get("rolled_back") or recorded is None or recorded == "":
        return dict(baseline)
    merged = dict(baseline)
    merged["count"] = max(_int(recorded), _int(baseline.get("count")))
    return merged


def celery_tune_endpoint(connection):
    """Where the result keys were measured, for the report: the socket, or ``host:port db N``.

    ``connection`` holds the collection's connection options; nothing secret is read from it.
    """
    connection = _mapping(connection)
    if connection.get("login_unix_socket"):
        return "%s" % connection["login_unix_socket"]
    host = connection.get("login_host")
    port = connection.get("login_port")
    db = connection.get("db")
    return "%s:%s db %s" % ("127.0.0.1" if host in (None, "") else host, 6379 if port in (None, "") else port,
                            0 if db in (None, "") else db)


def _verdict(status, met, message):
    return {"status": status, "met": met, "message": message}


def celery_tune_verdict(wait, baseline=None, wait_baseline=None, pattern="", max_ttl=0, check_mode=False, failure=None):
    """The verdict of a run: ``{status, met, message}``.

    ``wait`` is result_keys_wait's result (or ``{}`` when the wait was skipped), ``baseline``
    result_keys_info's result before the change, ``wait_baseline`` what the wait measured against
    (see celery_tune_wait_baseline), ``failure`` the message of a wait that failed. In order:

    - ``check``: check mode, with the plan of the wait;
    - ``failed``: the wait itself failed;
    - ``nothing_to_verify``: no wait, no key before the change and none recorded by an earlier
      run, or result-shaped keys under another prefix: a fall of nothing is never ``met``;
    - ``met``: no old key was left (no wait), or the wait met its target;
    - ``pending``: the old keys expire after the wait's timeout: run again later;
    - ``not_met``: the wait ended without its target.
    """
    wait = _mapping(wait)
    baseline = _mapping(baseline)
    if check_mode:
        return _verdict("check", None, "check mode: nothing was changed; a run would cap %s TTLs and wait about %s s"
                        % (wait.get("would_expedite", 0), _mapping(wait.get("plan")).get("wait_seconds", 0)))
    if failure is not None:
        return _verdict("failed", False, "the wait failed: %s" % (failure,))
    ran = "met" in wait
    if not ran:
        elsewhere = _mapping(baseline.get("elsewhere"))
        recorded = _int(_mapping(wait_baseline).get("count"))
        if _int(baseline.get("count")) == 0 and (recorded == 0 or elsewhere.get("prefixes")):
            message = "nothing to verify: pattern %s matched no result key before the change" % (pattern,)
            if elsewhere.get("warning"):
                message += "; %s" % (elsewhere["warning"],)
            return _verdict("nothing_to_verify", False, message)
        return _verdict("met", True, "no old result keys left: every key expires within result_expires (%s s)"
                        % (max_ttl,))
    if wait["met"]:
        return _verdict("met", True, "result keys fell from %s to %s (%sx) in %s s"
                        % (wait.get("baseline"), wait.get("final"), wait.get("reduction"), wait.get("elapsed")))
    if wait.get("retry_after") is not None:
        return _verdict("pending", False, "not met yet: the old keys expire later than celery_tune_wait_timeout allows; "
                        "run again after %s (in %s s), or set celery_tune_expedite"
                        % (wait.get("retry_at"), wait["retry_after"]))
    return _verdict("not_met", False, "not met: %s result keys left of %s (%sx), target %s"
                    % (wait.get("final"), wait.get("baseline"), wait.get("reduction"), wait.get("target")))


def celery_tune_host_records(hosts, hostvars, fact="_celery_tune_host"):
    """``{host: record}`` of the hosts among ``hosts`` that set ``fact`` (the role's record of a host).

    ``hostvars`` is Ansible's ``hostvars`` (or any mapping of host to its variables). Hosts
    that did not get as far as recording (failed, or left out by tags) are left out.
    """
    if not is_sequence(hosts):  # a string is not a sequence here
        raise AnsibleFilterError("celery_tune_host_records expects a list of host names")
    records = {}
    for host in hosts:
        variables = hostvars[host] if host in hostvars else {}
        if fact in variables:
            records[host] = variables[fact]
    return records


class FilterModule(object):
    """celery_tune's filters that shape results into decisions and report figures."""

    def filters(self):
        return {
            "celery_tune_snapshot": celery_tune_snapshot,
            "celery_tune_rates": celery_tune_rates,
            "celery_tune_wait_summary": celery_tune_wait_summary,
            "celery_tune_old_keys": celery_tune_old_keys,
            "celery_tune_wait_baseline": celery_tune_wait_baseline,
            "celery_tune_endpoint": celery_tune_endpoint,
            "celery_tune_verdict": celery_tune_verdict,
            "celery_tune_host_records": celery_tune_host_records,
        }
