#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: result_keys_wait
short_description: Wait for old Celery result keys to expire in Redis, optionally capping their TTLs first, and verify the fall
version_added: 1.0.0
description:
  - After a shorter C(result_expires) is live, the old result keys still carry their old TTLs (a day
    by default). This module optionally caps those TTLs at O(max_ttl) (O(expedite)), computes from the
    TTLs when the target can be met and when the last old key expires, waits for that moment cheaply,
    and verifies with C(SCAN) that the key count has fallen.
  - Counts with C(SCAN) only, never C(DBSIZE) or C(INFO keyspace), which still count keys that expired
    but were not reclaimed yet. C(SCAN) also reclaims the expired keys it touches.
  - Before the forecast moment it does not count. After it, it reads C(INFO) every O(poll_interval) seconds
    (cheap) and runs a counting C(SCAN) only when the signals say the target may be met - the keys the TTL
    pass knows to have expired since the last count, or C(expired_keys) (C(INFO stats)) and the C(keys) and
    C(expires) of the database (C(INFO keyspace)) showing that enough keys went away - and at least every
    60 s, and once at the end of the wait for the verified count. Counting takes at most 20% of the wall
    time (a C(SCAN) of millions of keys is not free).
  - When no key has a TTL above O(max_ttl), nothing is left to expedite and the count meets the target,
    it answers at once with RV(nothing_to_wait=true), RV(met=true) and C(changed=false).
  - When the forecast is later than O(timeout) it returns at once with RV(met=false), the forecast and
    RV(retry_after); it never sleeps for a day. When the forecast fits in O(timeout) but the target is
    still not met at the end of the wait, the task fails (or returns RV(met=false) with
    O(fail_on_unmet=false)).
  - Survives a dropped connection or a Redis restart during the wait; it reconnects with backoff and
    records C(reconnected) events (with C(restarted)) in RV(timeline).
  - On a Redis Cluster (O(cluster=auto) finds it) every primary is scanned and the counts summed; each
    node is expedited on its own with pipelines (a script may not touch keys of several slots), and
    O(boost_active_expire) raises C(active-expire-effort) on every primary and restores each one's own value.
  - With replication or O(sentinel_hosts) the keys are counted and capped on the current primary. After a
    lost connection, or when the primary reports itself a replica (a failover demoted it), the module finds
    the primary again (Sentinel names the new one), re-applies the boost there, and records the change in
    RV(topology_changes).
author:
  - celery_ops maintainers (@celery-ops)
extends_documentation_fragment:
  - celery_ops.lean_results.redis_connection
attributes:
  check_mode:
    support: full
    description: Reads every TTL and reports the plan (RV(deadline), RV(would_expedite)) without capping, configuring or waiting.
  diff_mode:
    support: none
    description: Nothing is diffed; RV(expedited) and RV(boost) say what changed.
  async:
    support: full
    description: Works under C(async)/C(poll); the result, with RV(progress), arrives when the wait ends.
options:
  pattern:
    description:
      - C(SCAN MATCH) pattern of the result keys.
      - Refused unless it is a result-key pattern, one that holds C(celery-task-meta-) or
        C(celery-taskset-meta-) literally (V(celery-task-meta-*), V(myapp:celery-task-meta-*),
        V(*celery-taskset-meta-*), which also covers the chord counters C(.j)/C(.t)/C(.s)); see
        O(allow_non_result_pattern). V(*) or V(celery*) would also match the Celery queue.
      - Refused when it matches a Celery broker key (see RV(broker_keys)) in the database the module
        scans, always with O(expedite), otherwise unless O(allow_non_result_pattern).
    type: str
    default: celery-task-meta-*
  allow_non_result_pattern:
    description:
      - Use a O(pattern) that is not a result-key pattern (or, without O(expedite), one that matches
        broker keys), e.g. for results under a custom key scheme.
      - Even then O(expedite) never gives a TTL to a key without one whose name is not a Celery result
        key (C(celery-task-meta-<id>), C(celery-taskset-meta-<id>), any prefix); keys with a TTL that
        match are capped.
    type: bool
    default: false
  baseline:
    description:
      - The key count to compare the final count with. Either a number, or the whole registered result of
        M(celery_ops.lean_results.result_keys_info) (its C(count), C(no_ttl) and C(ttl.max) are used; with
        C(ttl.max) and without O(expedite), no TTL pass is needed at start).
      - When absent, the module counts and reads every TTL at start.
    type: raw
  max_ttl:
    description:
      - The new C(result_expires) in seconds. Keys whose TTL is above it are old.
      - Required with O(expedite), which caps every TTL above it to it.
    type: int
  expedite:
    description:
      - Cap the TTL of every matching key above O(max_ttl) to O(max_ttl), so the old keys are gone in
        O(max_ttl) seconds instead of their old TTL.
      - Idempotent; a key whose TTL is already at most O(max_ttl) is left alone.
    type: bool
    default: false
  expedite_no_ttl:
    description:
      - With O(expedite), also give keys without any TTL a TTL of O(max_ttl). Off by default, since a key
        without TTL may have been written so on purpose; such keys are counted in RV(no_ttl).
      - Only keys named like Celery results get a TTL (checked per key, in the Lua script and the
        pipeline alike); any other key is left as it is.
      - When it is off and the keys without a TTL alone put the target out of reach, the module fails
        before capping anything (from a RV(no_ttl) in O(baseline), else after one read-only TTL pass).
    type: bool
    default: false
  expedite_method:
    description:
      - V(lua) caps one C(SCAN) step in one atomic server-side script (C(SCAN), then per key C(PTTL), and
        C(PEXPIRE) when above the cap), so no key name travels to the client and back; it needs C(EVALSHA)
        and C(SCRIPT LOAD) and works on Redis 6 and later. The script times itself with C(TIME) when the ACL
        allows it, else its calls are paced by their reply time.
      - V(pipeline) pipelines C(PTTL) and C(PEXPIRE key ms LT) per batch (Redis 7.0+). Before Redis 7 there
        is no C(LT); it then reads the TTLs and pipelines plain C(PEXPIRE) for the keys above the cap, which
        a concurrent write of the same key could race.
      - V(auto) uses Lua, and the pipeline when scripts are refused (ACL, managed services) and on a Redis
        Cluster. V(lua) fails on a cluster.
    type: str
    choices: [auto, pipeline, lua]
    default: auto
  min_reduction:
    description:
      - Required ratio baseline/final, e.g. V(10) for a tenfold fall.
      - With O(target_count) too, both must hold. With neither, the module waits until the last old key
        expired and then requires any fall below the baseline.
    type: float
  target_count:
    description:
      - Highest acceptable final count.
    type: int
  timeout:
    description:
      - Longest run in seconds, the TTL pass and the expedite pass included. A forecast beyond it returns at
        once with RV(met=false) and RV(retry_after).
      - A pass that reaches it stops between two calls and the module reports how far it got, with
        RV(met=false), RV(reason=timeout), RV(expedite_complete=false) and the keys capped so far in
        RV(expedited) (a failure unless O(fail_on_unmet=false)). Capping is idempotent, so a second run
        goes on where it matters.
    type: int
    default: 600
  poll_interval:
    description:
      - Seconds between counts once the forecast moment is near. Stretched when a count takes more than
        a fifth of it.
    type: float
    default: 2.0
  boost_active_expire:
    description:
      - Raise C(active-expire-effort) to 10 during the wait (Redis reclaims expired keys faster, so memory
        falls sooner) and restore the previous value after, also on failure, after a Redis restart, and
        on C(SIGINT), C(SIGTERM) or C(SIGHUP).
      - C(CONFIG GET) and C(CONFIG SET) are checked before anything is changed (the check writes the
        current value back).
      - The value before the boost is kept in the server, in the key C(lean_results:active-expire-effort:original)
        (TTL 7 days, deleted on restore). A run killed before it could restore (C(SIGKILL), a lost
        controller) leaves it behind, and the next run restores that original rather than the boosted
        value; M(celery_ops.lean_results.redis_memory) with C(persist=rewrite) never writes the boosted value
        to disk while the key exists. Not kept on a Redis Cluster (the key's slot may be elsewhere).
    type: bool
    default: false
  batch_size:
    description:
      - The most keys per call while expediting (the C(COUNT) of one C(SCAN) step, one script call or one
        pipeline each).
      - For the Lua method it is a ceiling. Each call's batch is sized from the server time of the calls
        before it (the script measures itself with C(TIME), else its reply time counts), so that a call
        holds Redis for about 1 ms. It shrinks after a slow call and grows again after quick ones.
      - The pipeline method uses it as the batch (a pipeline does not hold Redis between the chunks it sends).
      - Above 10000 it is lowered to 10000 with a warning (one call of a million keys held Redis for seconds).
    type: int
    default: 1000
  fail_on_unmet:
    description:
      - Fail when the target is not met by the end of the wait. With V(false), return RV(met=false) instead.
      - A forecast beyond O(timeout) never fails; it returns RV(met=false) at once.
    type: bool
    default: true
notes:
  - A module cannot stream output. What happened during the wait is in RV(progress), RV(samples) and
    RV(events), shown with C(-v).
  - Counts without a script use C(SCAN); with scripts allowed (not on a cluster) a small script runs the
    C(SCAN) on the server and returns only the number of keys found.
  - Needs C(SCAN), C(INFO), C(PTTL), C(TYPE), C(SMEMBERS), C(LLEN), C(HLEN), C(ZCARD) (the broker-key
    search, also with C(SELECT) for other databases), C(PEXPIRE) (with O(expedite)), C(EVALSHA)/C(SCRIPT LOAD)
    (Lua method and the count; redis-py never sends C(EVAL)), C(CONFIG GET)/C(CONFIG SET) and
    C(GET)/C(SET)/C(DEL) of the key C(lean_results:active-expire-effort:original) (with
    O(boost_active_expire)), and optionally C(CLIENT ID) and C(TIME) (the expedite script times its calls).
seealso:
  - module: celery_ops.lean_results.result_keys_info
"""

EXAMPLES = r"""
- name: Measure before the lean config goes live
  celery_ops.lean_results.result_keys_info:
    login_host: redis.internal
  register: before

- name: Cap old TTLs to the new result_expires and wait for a tenfold fall
  celery_ops.lean_results.result_keys_wait:
    login_host: redis.internal
    baseline: "{{ before }}"
    max_ttl: 3600
    expedite: true
    min_reduction: 10
    timeout: 4000
    poll_interval: 10
    boost_active_expire: true
  register: fall

- name: Without expediting, ask whether the old keys are gone yet (returns at once if not)
  celery_ops.lean_results.result_keys_wait:
    login_host: redis.internal
    baseline: "{{ before.count }}"
    target_count: 5000
    timeout: 300
    fail_on_unmet: false
  register: check

- name: Report when to come back
  ansible.builtin.debug:
    msg: "not yet; run again after {{ check.retry_at }}"
  when: not check.met and check.retry_after is defined

- name: A long wait in the background, against the count measured before the change
  celery_ops.lean_results.result_keys_wait:
    login_host: redis.internal
    baseline: "{{ before }}"
    max_ttl: 600
    expedite: true
    min_reduction: 5
    timeout: 900
  async: 1000
  poll: 15
"""

RETURN = r"""
met:
  description:
    - Whether the target was met. V(false) with RV(retry_after) when the forecast is beyond O(timeout).
    - V(false) with RV(reason) C(nothing to verify) when the baseline has no key and a reduction or
      target was asked. A fall from nothing is never reported as met (likely a wrong pattern, db or key prefix).
    - In check mode, whether the target is met right now.
  returned: always
  type: bool
  sample: true
reason:
  description:
    - C(nothing to verify) when the baseline has no key and a reduction or target was asked.
    - C(timeout) when the TTL pass or the expedite pass reached O(timeout) before it was done.
  returned: when there was nothing to verify, or a pass stopped at the timeout
  type: str
  sample: nothing to verify
nothing_to_wait:
  description:
    - V(true) when no key has a TTL above O(max_ttl), nothing is left to expedite, and the count meets the
      target (or, without one, is below the baseline). The module then answered at once, without sleeping,
      with RV(met=true) and C(changed=false).
    - In check mode, whether a run would answer so.
  returned: always
  type: bool
  sample: false
expedite_complete:
  description:
    - Whether the expedite pass went over every key. V(false) when it stopped at O(timeout); RV(expedited)
      then counts the keys capped before it stopped, and the others keep their TTLs.
  returned: with O(expedite), unless check mode
  type: bool
  sample: true
baseline:
  description: Key count the fall is measured against (given, or counted at start).
  returned: always
  type: int
  sample: 200000
final:
  description: Last count (SCAN); null when a pass stopped at O(timeout) before anything was counted.
  returned: always
  type: int
  sample: 4100
reduction:
  description: 'Ratio baseline/final (a final of 0 divides by 1).'
  returned: always
  type: float
  sample: 48.78
target:
  description: Highest final count that meets the target (from O(target_count) and O(min_reduction)); null means any fall.
  returned: always
  type: int
  sample: 20000
elapsed:
  description: Seconds since the module started.
  returned: always
  type: float
  sample: 7.21
deadline:
  description: When the last old key expires (plus a short grace), the end of the wait unless O(timeout) is sooner.
  returned: always
  type: dict
  contains:
    seconds: {description: Seconds from the start of the module., type: float, returned: always}
    at: {description: The same moment as an ISO 8601 UTC timestamp., type: str, returned: always}
  sample: {seconds: 8.2, at: "2026-11-25T10:00:08Z"}
forecast:
  description: The computed forecast; new keys written meanwhile are not in it.
  returned: always
  type: dict
  contains:
    target_met_after: {description: 'Seconds from start when the target can first be met; null if never.', type: float, returned: always}
    last_expiry_after: {description: Seconds from start when the last key with a TTL expires., type: float, returned: always}
    reachable: {description: 'False when keys without TTL alone exceed the target.', type: bool, returned: always}
  sample: {target_met_after: 6.2, last_expiry_after: 6.2, reachable: true}
expedited:
  description: Number of keys whose TTL was capped (0 in check mode).
  returned: always
  type: int
  sample: 200000
would_expedite:
  description: Keys that O(expedite) would cap.
  returned: check mode
  type: int
  sample: 200000
plan:
  description: What a real run would do.
  returned: check mode
  type: dict
  sample: {would_expedite: 200000, wait_seconds: 6.2, boost_active_expire: false}
expedite_method:
  description: C(lua), C(pipeline) or C(pipeline-ttl-check) (Redis before 7); null without expediting.
  returned: always
  type: str
  sample: lua
no_ttl:
  description: Matching keys without TTL; they never expire unless O(expedite_no_ttl) gave them one.
  returned: always
  type: int
  sample: 0
samples:
  description:
    - The points of the keys and memory curves, C([t, count, used_memory]) (seconds from start, SCAN
      count, bytes), in time order.
    - Between counts, each C(INFO) read (every 5 s before the forecast, every O(poll_interval) after)
      adds C([t, null, used_memory]), memory only, since a count costs a SCAN.
  returned: always
  type: list
  elements: list
  sample: [[0.9, 204000, 61000000], [5.9, null, 60800000], [6.3, 4100, 9000000]]
events:
  description:
    - What happened, in time order, each C({t, event, ...}).
    - C(expedited) (C(capped), C(method), C(seconds), C(keys) seen, C(complete), and C(batch), how the calls
      were sized and how long they took, C({ceiling, largest, calls, p50_ms, p99_ms, slowest_ms, server_seconds})), C(boost) (C(active_expire_effort),
      C(previous), C(reapplied)), C(boost restored) and C(reconnected) (C(attempts), C(error), C(restarted)).
  returned: always
  type: list
  elements: dict
  sample: [{t: 0.9, event: expedited, capped: 200000, method: lua, seconds: 0.8, keys: 204000, complete: true},
           {t: 1.0, event: reconnected, attempts: 3, error: "ConnectionError: ...", restarted: true}]
timeline:
  description:
    - RV(samples) and RV(events) in one list, in time order (lists and dicts mixed).
    - Deprecated, kept for one release; use RV(samples) and RV(events).
  returned: always
  type: list
  elements: raw
  sample: [[0.9, 204000, 61000000], {t: 1.0, event: reconnected, attempts: 3, restarted: true}, [6.3, 4100, 9000000]]
progress:
  description: What the module did, one line per step (a module cannot stream; shown with -v).
  returned: always
  type: list
  elements: str
  sample: ["t=0.0s expediting: capping TTLs above 5s", "t=0.9s capped 200000 keys (lua) in 0.88s"]
retry_after:
  description: Seconds after which a run with the same O(timeout) can meet the target.
  returned: when the forecast is beyond O(timeout)
  type: int
  sample: 85801
retry_at:
  description: The same moment as an ISO 8601 UTC timestamp.
  returned: when the forecast is beyond O(timeout)
  type: str
  sample: "2026-11-26T09:50:01Z"
boost:
  description: C(active-expire-effort) before (C(previous)) and the value set during the wait (C(boosted_to)).
  returned: with O(boost_active_expire)
  type: dict
  sample: {previous: 1, boosted_to: 10}
nodes:
  description: The primaries the wait used; a primary demoted by a failover during the wait shows as C(former primary).
  returned: when connected
  type: list
  elements: dict
  contains:
    endpoint: {description: 'C(host:port) of the node (or C(unix:PATH)).', type: str, returned: always}
    role: {description: C(primary) or C(former primary)., type: str, returned: always}
    count: {description: Matching keys on the node at the last count., type: int, returned: when counted}
    expedited: {description: Keys whose TTL was capped on the node., type: int, returned: with O(expedite)}
    active_expire_effort: {description: The node's C(active-expire-effort) before the boost (restored after)., type: int, returned: when boosted}
  sample: [{endpoint: "10.0.0.11:6379", role: primary, count: 1370, expedited: 66000, active_expire_effort: 1}]
topology:
  description: The servers behind the connection options at the end (as in M(celery_ops.lean_results.result_keys_info)).
  returned: when connected
  type: dict
  sample: {mode: cluster, primaries: ["10.0.0.11:6379", "10.0.0.12:6379", "10.0.0.13:6379"], replicas: [], sentinel: null}
topology_changes:
  description: Each time the primaries were found somewhere else during the wait (a failover).
  returned: when connected
  type: list
  elements: dict
  sample: [{primaries_before: ["10.0.0.11:6379"], primaries_after: ["10.0.0.12:6379"]}]
broker_keys:
  description:
    - The Celery broker keys on the server, as M(celery_ops.lean_results.result_keys_info) and
      M(celery_ops.lean_results.redis_memory) report them. One finder looks in every database that
      C(INFO keyspace) lists (db 0 on a cluster), so the field means the same in all three modules; the
      RETURN of M(celery_ops.lean_results.result_keys_info) describes its keys.
    - O(pattern) is refused when it matches one of them in the database it scans.
  returned: when connected
  type: dict
  sample: {found: true, bindings: [_kombu.binding.celery], queues: [{name: celery, type: list, length: 3}],
           unacked: [], prefixes: [], databases: [0], total: 2, scan_calls: 1}
warnings:
  description: Things skipped, such as a boost on a server without C(active-expire-effort).
  returned: when there is something to warn about
  type: list
  elements: str
  sample: []
"""

from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_module import RedisModule
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys import DEFAULT_PATTERN
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait import EXPEDITE_METHODS
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait_run import (
    WAIT_FAILURES,
    check_options,
    open_probe,
    wait,
)


def main():
    shell = RedisModule.build(
        dict(
            pattern=dict(type="str", default=DEFAULT_PATTERN),
            baseline=dict(type="raw"),
            max_ttl=dict(type="int"),
            expedite=dict(type="bool", default=False),
            expedite_no_ttl=dict(type="bool", default=False),
            expedite_method=dict(type="str", default="auto", choices=list(EXPEDITE_METHODS)),
            min_reduction=dict(type="float"),
            target_count=dict(type="int"),
            timeout=dict(type="int", default=600),
            poll_interval=dict(type="float", default=2.0),
            boost_active_expire=dict(type="bool", default=False),
            batch_size=dict(type="int", default=1000),
            fail_on_unmet=dict(type="bool", default=True),
            allow_non_result_pattern=dict(type="bool", default=False),
        ),
        command="SCAN/PEXPIRE/CONFIG", connect=open_probe, failures=WAIT_FAILURES,
        required_if=[("expedite", True, ("max_ttl",))])
    shell.run(wait, check=check_options)


if __name__ == "__main__":
    main()
