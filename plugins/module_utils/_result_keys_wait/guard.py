# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the pattern may touch: refused before anything is read or changed when it reaches the broker."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.celery_ops.lean_results.plugins.module_utils._broker_keys import (
    broker_names,
    find_topology_broker_keys,
    is_result_pattern,
    names_matching,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.errors import ResultKeysWaitError


def guard_pattern(probe, pattern, db, open_db, allow_non_result_pattern=False, expedite=False):
    """Refuse, before anything is read or changed, a pattern that reaches beyond result keys.

    A pattern matching a broker key (in the database the wait scans) is refused outright with
    expedite (no reason to cap a queue's TTL), and without expedite unless allowed; a pattern that
    is not a result-key pattern (``*celery-task-meta-*``, ``*celery-taskset-meta-*``, which also
    covers the chord counters) unless allowed. Returns the broker keys of the whole topology (the
    ``broker_keys`` every module reports).
    """
    broker, per_db, _chords = find_topology_broker_keys(probe.topology, open_db)
    here = per_db.get(0 if probe.topology.cluster_enabled else db) or {}
    matching = names_matching(pattern, broker_names(here))
    if matching and (expedite or not allow_non_result_pattern):
        raise ResultKeysWaitError(
            "refusing pattern %r: it matches Celery broker keys (%s)%s, and %s. Use the result-key pattern, "
            "e.g. celery-task-meta-* (with your global_keyprefix in front, if any)"
            % (pattern, ", ".join(sorted(matching)[:6]) + (", ..." if len(matching) > 6 else ""),
               " in db %s" % db if db else "",
               "expedite would give queued tasks a TTL" if expedite else
               "they would count as result keys (set allow_non_result_pattern: true to count them anyway)"),
            dict(broker_keys=broker, expedited=0))
    if not allow_non_result_pattern and not is_result_pattern(pattern):
        raise ResultKeysWaitError(
            "refusing pattern %r: it is not a Celery result-key pattern, so it may match keys that are not "
            "results (a queue, sessions, ...). A result pattern holds celery-task-meta- or "
            "celery-taskset-meta- literally, e.g. celery-task-meta-* or myapp:celery-task-meta-*. Set "
            "allow_non_result_pattern: true to use it anyway (keys without a TTL that are not named like "
            "results are still never given one)" % pattern, dict(broker_keys=broker, expedited=0))
    return broker


__all__ = ["guard_pattern"]
