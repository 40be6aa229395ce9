# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait for old Celery result keys to expire, then verify the fall.

The package, by concern (``wait_for_fall`` is the entry the module calls):

- planning: ``planning`` (options, baseline, target, the forecast from a TTL histogram, the
  verdict's arithmetic), ``outcomes`` (every answer the wait gives, built in one place),
  ``recount`` (the cheap wait: when a counting SCAN is worth it, from O(1) signals);
- probing: ``node`` (one server: count, status, TTL pass, effort setting), ``expedite`` (the pass
  that caps old TTLs, paced by server time), ``topology`` (every primary, found again after a
  failover), ``guard`` (what the pattern may touch), ``boost`` (active-expire-effort, restored);
- the run: ``state`` (clock, samples, events, retries over a lost connection), ``wait`` (the
  real run and its loop) and ``check_mode`` (its own path: it reads and plans, never changes).

The TTL histogram and the pass over the keys are the keyspace layer's (``_keyspace``), shared
with result_keys_info.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.celery_ops.lean_results.plugins.module_utils._keyspace import TtlHistogram, TtlPass
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.boost import BOOST_EFFORT
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.errors import (
    ResultKeysWaitError,
    TopologyChanged,
    WaitInterrupted,
    check_number,
    is_transient,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.expedite import (
    CALL_BUDGET,
    EXPEDITE_SCRIPT,
    MAX_BATCH_SIZE,
    Pacer,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.guard import guard_pattern
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.node import (
    EFFORT_MARKER_KEY,
    RedisProbe,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.planning import (
    EXPEDITE_METHODS,
    WaitSettings,
    is_met,
    iso_timestamp,
    parse_baseline,
    plan_wait,
    reduction,
    target_for,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.recount import (
    RecountPolicy,
    gone_between,
    may_be_met,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.topology import TopologyProbe
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.wait import wait_for_fall

__all__ = [
    "BOOST_EFFORT", "CALL_BUDGET", "EFFORT_MARKER_KEY", "EXPEDITE_METHODS", "EXPEDITE_SCRIPT", "MAX_BATCH_SIZE",
    "Pacer", "RecountPolicy", "RedisProbe", "ResultKeysWaitError", "TopologyChanged", "TopologyProbe",
    "TtlHistogram", "TtlPass", "WaitInterrupted", "WaitSettings", "check_number", "gone_between", "guard_pattern",
    "is_met", "is_transient", "iso_timestamp", "may_be_met", "parse_baseline", "plan_wait", "reduction",
    "target_for", "wait_for_fall",
]
