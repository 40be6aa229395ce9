#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: result_keys_info
short_description: Count Celery result keys in Redis, with their TTLs, memory and expiry forecast
version_added: 1.0.0
description:
  - Counts the keys that match O(pattern) (Celery's result keys by default) with C(SCAN), never
    C(KEYS), and reads the TTL of every one of them, so RV(count) and RV(no_ttl) are exact.
  - Estimates the memory they take from C(MEMORY USAGE) of a random sample.
  - Reports beside them the group results (C(celery-taskset-meta-*)), chord counters
    (C(chord-unlock-*)) and the Celery broker structures (kombu queues, C(_kombu.binding.*),
    C(unacked), C(unacked_index)) found on the same server.
  - On a Redis Cluster (O(cluster=auto) detects it) it scans every primary and sums; with
    O(sentinel_hosts) it measures the primary Sentinel names now, so it follows a failover.
    Replicas hold copies and are listed in RV(topology), not counted.
  - Read-only; in check mode it measures just the same.
extends_documentation_fragment:
  - celery_ops.lean_results.redis_connection
attributes:
  check_mode:
    support: full
    description: The module changes nothing, so check mode measures as a normal run does.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
options:
  pattern:
    description:
      - C(SCAN MATCH) pattern of the keys to measure.
    type: str
    default: celery-task-meta-*
  sample:
    description:
      - How many randomly chosen keys to size with C(MEMORY USAGE). C(0) skips the memory estimate.
    type: int
    default: 1000
notes:
  - Memory stays flat in the number of keys (one C(SCAN) batch at a time, a sample of O(sample) keys, and
    a histogram of the TTLs of at most about 10 MB); under 50 MB peak RSS was measured over 5 million keys.
  - TTLs are read in batches with a small Lua script where C(EVAL) is allowed, else in pipelines;
    the count comes from C(SCAN), which also reclaims expired keys it touches. On a cluster, TTLs
    are read with pipelines per node (one Lua call may not touch keys of several slots).
  - Minimal ACL rule for this module (the same on every node of a cluster or replicated set),
    C(~* +scan +ttl +type +llen +zcard +hlen +exists +smembers +dbsize +info +ping +memory|usage
    +memory|stats +evalsha +script|load +cluster|nodes) (redis-py runs the TTL batch with
    C(SCRIPT LOAD) and C(EVALSHA), never C(EVAL)). See docs/topologies.md.
seealso:
  - module: celery_ops.lean_results.result_keys_wait
  - module: celery_ops.lean_results.redis_memory
author:
  - celery_ops maintainers (@celery-ops)
"""

EXAMPLES = r"""
- name: Measure the Celery result backend before tuning
  celery_ops.lean_results.result_keys_info:
    login_host: redis.internal
    login_password: "{{ vault_redis_password }}"
  register: before

- name: Show how many result keys never expire
  ansible.builtin.debug:
    msg: "{{ before.count }} result keys, {{ before.no_ttl }} without TTL, ~{{ before.memory.estimated_bytes }} bytes"

- name: Measure a Redis Cluster (every primary) as a least-privilege user over TLS
  celery_ops.lean_results.result_keys_info:
    login_host: redis-node-1.internal
    login_user: lean_reader
    login_password: "{{ vault_lean_reader_password }}"
    tls: true
    ca_certs: /etc/pki/redis/ca.crt

- name: Measure the current primary that Sentinel names
  celery_ops.lean_results.result_keys_info:
    sentinel_hosts: [sentinel-1.internal:26379, sentinel-2.internal:26379]
    sentinel_master: celery-results

- name: Measure group results on a unix socket, memory sample of 200 keys
  celery_ops.lean_results.result_keys_info:
    login_unix_socket: /run/redis/redis.sock
    pattern: celery-taskset-meta-*
    sample: 200
"""

RETURN = r"""
count:
  description: Number of keys matching O(pattern) (counted with SCAN; expired keys excluded).
  returned: success
  type: int
  sample: 1250000
no_ttl:
  description: Matching keys without a TTL; they will never expire on their own.
  returned: success
  type: int
  sample: 0
ttl:
  description:
    - TTL in seconds over the matching keys that have one (null when none has), as C(TTL) reports it.
    - Exact, from a histogram of whole seconds whose size follows the distinct TTLs, not the key count.
      Beyond 100,000 distinct values (more than a day of seconds) the step doubles (2 s, 4 s, ...) and a
      figure may then be up to one step above the exact one; RV(forecast) counts such keys as alive up to
      the end of their step.
  returned: success
  type: dict
  contains:
    min: {description: Shortest TTL., type: int, returned: success}
    p50: {description: Median TTL., type: int, returned: success}
    p90: {description: 90th percentile TTL., type: int, returned: success}
    max: {description: 'Longest TTL; the last key expires then.', type: int, returned: success}
  sample: {min: 3, p50: 43100, p90: 77800, max: 86399}
memory:
  description: Estimated memory of the matching keys.
  returned: success
  type: dict
  contains:
    estimated_bytes: {description: Bytes for all matching keys., type: int, returned: success}
    bytes_per_key: {description: 'Mean bytes per key in the sample, with table overhead.', type: int, returned: success}
    sampled: {description: Keys sized with MEMORY USAGE., type: int, returned: success}
  sample: {estimated_bytes: 312500000, bytes_per_key: 250, sampled: 1000}
forecast:
  description: Keys still alive after 1 h, 6 h and 24 h, and when the last TTL runs out.
  returned: success
  type: list
  elements: dict
  sample:
    - {after: 1h, seconds: 3600, keys_alive: 1190000}
    - {after: 6h, seconds: 21600, keys_alive: 940000}
    - {after: 24h, seconds: 86400, keys_alive: 0}
    - {after: last expiry, seconds: 86399, keys_alive: 0}
elsewhere:
  description:
    - When O(pattern) matches no key, where result-shaped keys are instead (a warning says it too).
    - C(prefixes) seen by a bounded SCAN for C(*celery-task-meta-*) (20 calls of COUNT 1000, not a
      full walk), C(other_dbs) with keys from INFO keyspace, and C(db) that was looked at.
    - V(null) when the pattern matched keys.
  returned: success
  type: dict
  sample: {prefixes: {"billing:": 120}, other_dbs: {db2: 4100}, db: 0}
broker_keys:
  description:
    - Celery broker structures (kombu's Redis transport) on the same server, in every database that
      C(INFO keyspace) lists (db 0 on a cluster), found by the one finder that
      M(celery_ops.lean_results.result_keys_wait) and M(celery_ops.lean_results.redis_memory) use (the
      same field with the same meaning in all three). Their presence makes C(allkeys-*) eviction unsafe.
    - Found with any kombu C(global_keyprefix) (C(*_kombu.binding.*), C(*_kombu.binding_permanent.*)),
      with the queue lists the bindings name (and their priority steps), C(unacked), C(unacked_index),
      C(unacked_mutex) with their prefix, and a bare C(celery) list.
  returned: success
  type: dict
  contains:
    found: {description: Whether any broker key exists., type: bool, returned: always}
    bindings: {description: Binding set names., type: list, elements: str, returned: always}
    queues: {description: 'Queue lists: C(name), C(type), C(length).', type: list, elements: dict, returned: always}
    unacked: {description: 'C(unacked*) structures: C(name), C(type), C(length).', type: list, elements: dict, returned: always}
    prefixes: {description: The kombu C(global_keyprefix) values seen (empty for none)., type: list, elements: str, returned: always}
    databases: {description: Databases holding broker keys., type: list, elements: int, returned: always}
    total: {description: Number of broker keys found., type: int, returned: always}
    scan_calls: {description: SCAN calls the search took (one pass per database)., type: int, returned: always}
  sample:
    found: true
    bindings: [_kombu.binding.celery]
    queues: [{name: celery, type: list, length: 12}]
    unacked: [{name: unacked, type: hash, length: 2}]
    prefixes: []
    databases: [0]
    total: 4
    scan_calls: 1
group_results:
  description: Number of group result keys (C(celery-taskset-meta-*)).
  returned: success
  type: int
  sample: 120
chord_keys:
  description: Number of chord counter keys (C(chord-unlock-*)).
  returned: success
  type: int
  sample: 4
dbsize:
  description: DBSIZE of the database; it may still count expired keys not reclaimed yet.
  returned: success
  type: int
  sample: 2500000
used_memory:
  description: C(used_memory) from INFO memory, in bytes.
  returned: success
  type: int
  sample: 734003200
maxmemory:
  description: C(maxmemory) from INFO memory, in bytes (0 is no limit).
  returned: success
  type: int
  sample: 0
maxmemory_policy:
  description: Current eviction policy.
  returned: success
  type: str
  sample: noeviction
scan_seconds:
  description: Seconds spent counting and reading TTLs.
  returned: success
  type: float
  sample: 1.82
ttl_method:
  description: How TTLs were read, C(lua) batches or C(pipeline) (when EVAL is not allowed).
  returned: success
  type: str
  sample: lua
server_stats:
  description:
    - Counters from C(INFO stats), read before the measure starts so the C(instantaneous_*)
      figures show the application's load rather than this module's SCAN; compare commands/s and
      network bytes before and after a change (divide deltas of the C(total_*) counters by time).
  returned: success
  type: dict
  sample:
    total_commands_processed: 81234567
    instantaneous_ops_per_sec: 5120
    total_net_input_bytes: 12345678901
    total_net_output_bytes: 2345678901
    instantaneous_input_kbps: 812.4
    instantaneous_output_kbps: 95.1
    expired_keys: 120344
    evicted_keys: 0
    keyspace_hits: 100
    keyspace_misses: 3
    uptime_in_seconds: 86400
pattern:
  description: The pattern measured.
  returned: success
  type: str
  sample: celery-task-meta-*
nodes:
  description:
    - One entry per primary measured (one for a single server, every primary of a cluster); the
      top-level figures are their sums.
  returned: success
  type: list
  elements: dict
  contains:
    endpoint: {description: 'C(host:port) of the node (or C(unix:PATH)).', type: str, returned: success}
    role: {description: Always C(primary); keys are counted on primaries., type: str, returned: success}
    count: {description: Matching keys on this node., type: int, returned: success}
    no_ttl: {description: Matching keys without TTL on this node., type: int, returned: success}
    group_results: {description: Group result keys on this node., type: int, returned: success}
    dbsize: {description: DBSIZE of this node., type: int, returned: success}
    used_memory: {description: C(used_memory) of this node., type: int, returned: success}
    maxmemory: {description: C(maxmemory) of this node., type: int, returned: success}
    maxmemory_policy: {description: Eviction policy of this node., type: str, returned: success}
  sample:
    - {endpoint: "10.0.0.11:6379", role: primary, count: 416512, no_ttl: 0, group_results: 40, dbsize: 833020,
       used_memory: 244318208, maxmemory: 0, maxmemory_policy: noeviction}
topology:
  description: The servers found behind the connection options.
  returned: success
  type: dict
  contains:
    mode: {description: 'C(standalone), C(replicated) (a primary with replicas) or C(cluster).', type: str, returned: success}
    primaries: {description: Endpoints of the primaries., type: list, elements: str, returned: success}
    replicas: {description: 'Replicas, each with C(endpoint) and the C(primary) it follows.', type: list, elements: dict, returned: success}
    sentinel: {description: The Sentinel that named the primary (null without O(sentinel_hosts))., type: str, returned: success}
  sample:
    mode: replicated
    primaries: ["10.0.0.11:6379"]
    replicas: [{endpoint: "10.0.0.12:6379", primary: "10.0.0.11:6379"}]
    sentinel: "10.0.0.21:26379"
"""

from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_module import RedisModule
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys import DEFAULT_PATTERN
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_info_run import check_sample, measure


def main():
    shell = RedisModule.build(
        dict(
            pattern=dict(type="str", default=DEFAULT_PATTERN),
            sample=dict(type="int", default=1000),
        ),
        command="SCAN/TTL")
    shell.run(measure, check=check_sample)


if __name__ == "__main__":
    main()
