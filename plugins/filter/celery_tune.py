# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the celery_tune role: what it records for a rollback, what it reports.

The role wires modules together; the decisions that are easy to get wrong in Jinja (which
"before" a rerun keeps, what a state file may hold, how tasks are counted over hosts) live here,
where table tests cover them.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence

from ansible_collections.celery_ops.lean_results.plugins.module_utils._secrets import (
    SECRET_OPTIONS, mask_redis_conf, mask_url_passwords,
)

STATE_VERSION = 2


def scrub_secrets(data):
    """``data`` without secret options, with URL and redis.conf passwords masked, at any depth."""
    if isinstance(data, dict):
        return dict((key, scrub_secrets(value)) for key, value in data.items() if key not in SECRET_OPTIONS)
    if isinstance(data, str):
        return mask_redis_conf(mask_url_passwords(data))
    if is_sequence(data):
        return [scrub_secrets(item) for item in data]
    return data


def _fresh(state):
    """The recorded state a new run builds on: nothing after a rollback or without a file."""
    if not isinstance(state, dict) or state.get("rolled_back"):
        return {"version": STATE_VERSION, "hosts": {}, "rolled_back": False}
    merged = dict(state)
    merged["version"] = STATE_VERSION
    merged["hosts"] = dict(state.get("hosts") or {})
    merged["rolled_back"] = False
    return merged


def celery_tune_state(state, hosts=None, redis=None, baseline=None, rolled_back=False):
    """Merge what this run learned into the recorded rollback state, keeping the true originals.

    ``hosts`` maps a host to ``{config_path, backup_file}`` for configs this run changed;
    ``redis`` is ``{before, after, connection}`` read before (and after) redis_memory changed
    anything; ``baseline`` is the key count before the first change. A host, a Redis "before" or
    a baseline already recorded (and not rolled back) is kept: a rerun after a failure finds the
    intermediate state, never the original, so it must not replace what the first run saw.
    Only ``redis.after`` is updated. Secrets are removed from everything recorded.

    ``rolled_back=True`` (the rollback, once it restored everything) marks ``state`` as restored
    and merges nothing: the next run starts afresh from it.
    """
    if rolled_back:
        if not isinstance(state, dict) or "version" not in state:
            raise AnsibleFilterError("celery_tune_state: there is no recorded state to mark as rolled back")
        marked = dict(state)
        marked["rolled_back"] = True
        return scrub_secrets(marked)
    merged = _fresh(state)
    for host, record in (hosts or {}).items():
        if not isinstance(record, dict) or not record.get("backup_file"):
            continue
        kept = merged["hosts"].get(host)
        if kept and kept.get("config_path") == record.get("config_path"):
            continue
        merged["hosts"][host] = {"config_path": record.get("config_path"), "backup_file": record["backup_file"]}
    if redis and redis.get("before"):
        kept = merged.get("redis") or {}
        merged["redis"] = {
            "before": kept.get("before") or redis["before"],
            "after": redis.get("after") or kept.get("after") or {},
            "connection": redis.get("connection") or kept.get("connection") or {},
        }
    if baseline and "baseline" not in merged and (merged["hosts"] or merged.get("redis")):
        merged["baseline"] = baseline
    return scrub_secrets(merged)


def celery_tune_restorable(state):
    """What a rollback of ``state`` would restore: ``{status, hosts, redis, message}``.

    ``status`` is ``none`` (no state recorded), ``rolled_back`` (already restored: nothing to
    do), ``empty`` (a state that records nothing) or ``ready``.
    """
    if not isinstance(state, dict) or "version" not in state:
        return {"status": "none", "hosts": [], "redis": False, "message": "no rollback state recorded"}
    hosts = sorted((state.get("hosts") or {}).keys())
    redis = bool((state.get("redis") or {}).get("before"))
    if state.get("rolled_back"):
        return {"status": "rolled_back", "hosts": hosts, "redis": redis,
                "message": "already rolled back: nothing to restore"}
    if not hosts and not redis:
        return {"status": "empty", "hosts": [], "redis": False,
                "message": "the recorded state holds no config backup and no Redis settings: nothing to restore"}
    return {"status": "ready", "hosts": hosts, "redis": redis,
            "message": "restoring %d config(s)%s" % (len(hosts), " and the Redis settings" if redis else "")}


def celery_tune_audit_totals(records):
    """Tasks audited over hosts, each distinct app source counted once.

    ``records`` maps a host to its record (with ``audit.tasks``, the task names its audit found,
    and ``audit.needing``). Hosts that run the same app report the same tasks; summing over them
    would count each task once per host.
    """
    if not isinstance(records, dict):
        raise AnsibleFilterError("celery_tune_audit_totals expects a dict of host records")
    sources = {}
    for record in records.values():
        audit = (record or {}).get("audit") or {}
        if "summary" not in audit:
            continue
        tasks = tuple(sorted(audit.get("tasks") or []))
        needing = tuple(sorted(audit.get("needing") or []))
        summary = audit["summary"]
        key = (tasks, needing) if tasks else ("summary", summary.get("total"), summary.get("need_result"), needing)
        sources[key] = (int(summary.get("total") or 0), int(summary.get("need_result") or 0))
    total = sum(counts[0] for counts in sources.values())
    need = sum(counts[1] for counts in sources.values())
    return {"tasks": total, "need_result": need, "can_ignore": total - need, "sources": len(sources)}


def celery_tune_chart_segments(samples, share=0.5):
    """Split a chart's ``[t, count, ...]`` samples where the count jumps, and say where.

    Between two samples nothing was measured: when the count falls (or rises) between them by
    at least ``share`` of the larger one, a straight line would invent a gradual fall. The
    samples are cut there into separate segments, and each jump is returned to be marked:
    ``{segments: [[sample, ...], ...], jumps: [{t0, t1, from, to}, ...]}``.
    """
    points = [sample for sample in (samples or []) if sample is not None and len(sample) > 1
              and sample[1] is not None]
    segments, jumps = [], []
    current = []
    for sample in points:
        if current:
            before, after = float(current[-1][1]), float(sample[1])
            larger = max(before, after)
            if larger > 0 and abs(before - after) >= share * larger:
                jumps.append({"t0": current[-1][0], "t1": sample[0], "from": current[-1][1], "to": sample[1]})
                segments.append(current)
                current = []
        current.append(sample)
    if current:
        segments.append(current)
    return {"segments": segments, "jumps": jumps}


class FilterModule(object):
    """celery_tune's filters."""

    def filters(self):
        return {
            "scrub_secrets": scrub_secrets,
            "celery_tune_state": celery_tune_state,
            "celery_tune_restorable": celery_tune_restorable,
            "celery_tune_audit_totals": celery_tune_audit_totals,
            "celery_tune_chart_segments": celery_tune_chart_segments,
        }
