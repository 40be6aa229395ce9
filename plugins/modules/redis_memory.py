#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: redis_memory
short_description: Set Redis maxmemory and an eviction policy that cannot eat the Celery broker
version_added: 1.0.0
description:
  - Sets C(maxmemory), C(maxmemory-policy) and C(maxmemory-samples) at runtime with C(CONFIG SET),
    only when they differ from what C(CONFIG GET) reports (values are compared after
    normalising, so C(1gb), C(1024mb) and C(1073741824) are the same).
  - On Redis 7 and later all changes go in one atomic C(CONFIG SET); on Redis 6 they are set one
    by one and rolled back to the values before if a later one fails.
  - Persists them with C(CONFIG REWRITE) or by editing the server's config file
    (only the C(maxmemory*) lines; everything else stays byte for byte).
  - Refuses an C(allkeys-*) policy when any database of the server holds Celery broker keys
    (kombu bindings C(_kombu.binding.*) and C(_kombu.binding_permanent.*) behind any C(global_keyprefix),
    the queue lists they name, C(unacked), C(unacked_index) with their prefix, a bare C(celery) list),
    because such a policy silently evicts queued tasks. Refuses a O(maxmemory) below the memory
    already in use.
  - CONFIG is per node, so the values go to every node behind the connection options, replicas
    included, and a promoted replica comes up with the same limits. On a Redis Cluster
    (O(cluster=auto) finds it) that is every primary and every replica; with replication (found
    from C(INFO replication)) or Sentinel (O(sentinel_hosts)) the primary and every replica.
    Every node is read and checked before any is changed; RV(nodes) reports each one.
extends_documentation_fragment:
  - celery_ops.lean_results.redis_connection
attributes:
  check_mode:
    support: full
    description: Reads the current values and reports what would be set and persisted; changes nothing.
  diff_mode:
    support: full
    description:
      - Shows the runtime values before and after, and the config file when O(persist=file).
      - In the config file diff, C(requirepass), C(masterauth) and the passwords of C(user) lines are masked.
options:
  maxmemory:
    description:
      - Memory limit, in bytes or with a Redis unit. C(k), C(m), C(g) are powers of 10
        (C(1g) is 1000000000); C(kb), C(mb), C(gb) are powers of 2 (C(1gb) is 1073741824). Any case.
      - C(0) means no limit.
      - At most 18446744073709551615 bytes (2**64-1, what Redis 7+ and Valkey hold), or 9223372036854775807
        (2**63-1) on Redis 6.x; a larger value is refused before anything is set, since Redis would saturate
        it (or wrap it around, through a unit) and never report what was asked.
      - After setting, every node is read back; a node that stored another value than asked is put
        back as it was and the task fails, naming the node and the value.
      - Left alone when not given.
    type: str
  maxmemory_policy:
    description:
      - Eviction policy. With Redis also as the Celery broker, use a C(volatile-*) policy
        (C(volatile-ttl) evicts the result keys nearest to expiry first).
      - Validated against the server; C(allkeys-lrm) and C(volatile-lrm) need Redis 8.6 or later.
      - Left alone when not given.
      - One of C(noeviction), C(allkeys-lru), C(allkeys-lfu), C(allkeys-random), C(volatile-lru),
        C(volatile-lfu), C(volatile-random), C(volatile-ttl), C(allkeys-lrm), C(volatile-lrm).
    type: str
  maxmemory_samples:
    description:
      - Keys sampled per eviction (1 or more; Redis's default is 5, 10 comes close to true LRU). Left alone when not given.
      - A boolean (a YAML C(yes)) is refused, not taken as 1.
    type: int
  persist:
    description:
      - How the values survive a restart.
      - C(none) sets them at runtime only.
      - C(rewrite) runs C(CONFIG REWRITE) on every node; each must have been started from a config file.
        When the file (C(config_file) of C(INFO server)) is readable where the module runs, the runtime
        C(maxmemory*) values are compared with it first, a missing line counting as Redis's default
        (C(CONFIG REWRITE) writes no line for a default), and it is rewritten only when they differ.
      - While a M(celery_ops.lean_results.result_keys_wait) boost of C(active-expire-effort) is in place
        (its key C(lean_results:active-expire-effort:original) exists), the rewrite writes the value
        from before the boost, and the boost stays in place at runtime.
      - C(file) edits O(config_file) (or, with several nodes, each file of O(config_files)) on the host where the module runs (the Redis host).
    type: str
    choices: [none, rewrite, file]
    default: none
  config_file:
    description:
      - The server's config file, for O(persist=file), when the connection options lead to one node
        only. Existing C(maxmemory*) directive lines are replaced in place, missing ones appended at
        the end; nothing else changes.
      - With several nodes (a cluster, replicas) the module refuses it before changing anything; use
        O(config_files) or O(persist=rewrite).
    type: path
  config_files:
    description:
      - For O(persist=file) with several nodes, the config file of each node, as a mapping of the
        node's endpoint (C(host:port), as RV(nodes[].endpoint) shows it) to the file's path. It must
        name every node and nothing else. Each file is edited on the host where the module runs, so
        this fits nodes whose files that host can reach (all nodes on one host, or a shared path).
      - Mutually exclusive with O(config_file).
    type: dict
  backup:
    description:
      - With O(persist=file), keep a timestamped copy of O(config_file) before changing it.
    type: bool
    default: false
  allow_allkeys_with_broker:
    description:
      - Set an C(allkeys-*) policy even though the server holds Celery broker keys.
        Queued and unacknowledged tasks can then be evicted silently.
    type: bool
    default: false
  allow_below_used:
    description:
      - Set a O(maxmemory) below the server's current C(used_memory). Eviction (or C(OOM) errors)
        starts at once.
    type: bool
    default: false
notes:
  - A minimal ACL rule for this module is C(%R~* +ping +info +select +config|get +config|set +config|rewrite
    +scan +type +smembers +llen +zcard +hlen +exists +cluster|nodes), the same on every node (see docs/topologies.md).
    Redis 6.2 has no read-only key selectors (C(%R~), Redis 7.0+ and Valkey), so there use C(~*) in their place.
  - Managed services (ElastiCache, MemoryStore, Azure Cache for Redis) rename or block C(CONFIG);
    set these values through the service's parameter groups instead.
  - CONFIG is per node; the module sets every node it finds. A node added later (a new replica) needs another run.
  - If a node fails mid-way (a later node refuses CONFIG SET), the nodes already changed keep the new
    values and the message names them; running the task again finishes the job.
  - Warns when the headroom over the memory in use is under 20%, and when a policy is set while
    C(maxmemory) is 0 (no effect).
seealso:
  - module: celery_ops.lean_results.result_keys_info
  - name: Redis key eviction
    description: The eviction policies and how they choose keys.
    link: https://redis.io/docs/latest/develop/reference/eviction/
author:
  - celery_ops maintainers (@celery-ops)
"""

EXAMPLES = r"""
- name: Cap Redis at 1 GiB and evict only result keys (they have a TTL), persisted in redis.conf
  celery_ops.lean_results.redis_memory:
    login_host: redis.internal
    login_password: "{{ vault_redis_password }}"
    maxmemory: 1gb
    maxmemory_policy: volatile-ttl
    persist: rewrite

- name: Every node of a Redis Cluster (replicas too), as a least-privilege user
  celery_ops.lean_results.redis_memory:
    login_host: redis-cluster-1.internal
    login_user: lean_memory
    login_password: "{{ vault_lean_memory_password }}"
    maxmemory: 2gb
    maxmemory_policy: volatile-ttl
    persist: rewrite

- name: The primary Sentinel names and all its replicas, so a failover keeps the limits
  celery_ops.lean_results.redis_memory:
    sentinel_hosts: [sentinel-1.internal:26379, sentinel-2.internal:26379]
    sentinel_master: celery-results
    maxmemory: 1gb
    maxmemory_policy: volatile-ttl

- name: Same on a host whose Redis runs without CONFIG REWRITE, editing the file in place
  celery_ops.lean_results.redis_memory:
    login_unix_socket: /run/redis/redis-server.sock
    maxmemory: 1536mb
    maxmemory_policy: volatile-ttl
    maxmemory_samples: 10
    persist: file
    config_file: /etc/redis/redis.conf
    backup: true
  become: true

- name: Only report what is set (no option to change)
  celery_ops.lean_results.redis_memory:
    login_host: redis.internal
  register: memory
"""

RETURN = r"""
before:
  description: The values before the run on the primary (the first primary of a cluster), normalised (maxmemory in bytes); RV(nodes) has every node's.
  returned: success
  type: dict
  sample: {maxmemory: 0, maxmemory_policy: noeviction, maxmemory_samples: 5}
after:
  description: The values after the run on the primary (in check mode, what they would be).
  returned: success and when persisting fails
  type: dict
  sample: {maxmemory: 1073741824, maxmemory_policy: volatile-ttl, maxmemory_samples: 5}
changes:
  description: What was (or in check mode would be) set with CONFIG SET, on every node.
  returned: success
  type: list
  elements: dict
  sample: [{endpoint: "10.0.0.11:6379", parameter: maxmemory, before: 0, after: 1073741824}]
persisted:
  description: Whether the values are in the config file of every node after the run (false with O(persist=none) and in check mode).
  returned: success
  type: bool
  sample: true
persist:
  description: The persistence method used.
  returned: success
  type: str
  sample: rewrite
config_file:
  description:
    - 'The config file persisted to on the primary: O(config_file), or the server''s own with O(persist=rewrite) (empty when it has none).'
    - RV(nodes) has every node's.
  returned: when O(persist) is not C(none)
  type: str
  sample: /etc/redis/redis.conf
backup_file:
  description: The backup of O(config_file), when one was made.
  returned: when O(backup=true), the file changed and there is one node (else per node in RV(nodes))
  type: str
  sample: /etc/redis/redis.conf.12345.2026-11-25@10:00:00~
risks:
  description: Risks found (low headroom, policy without limit, allowed overrides); each is also an Ansible warning.
  returned: success
  type: list
  elements: str
  sample: ["maxmemory 1000000 leaves 5% headroom over the 950000 bytes in use (under 20%): ..."]
used_memory:
  description: C(used_memory) of the primary when the module ran, in bytes.
  returned: success
  type: int
  sample: 734003200
broker_keys:
  description: Celery broker keys found on the primaries, when an C(allkeys-*) policy made the module look.
  returned: when looked up
  type: dict
  sample: {found: true, bindings: [_kombu.binding.celery], queues: [{name: celery, type: list, length: 12}], unacked: [], total: 2, databases: [0]}
nodes:
  description: Every node, primaries first, with what was found and set.
  returned: success
  type: list
  elements: dict
  contains:
    endpoint: {description: 'C(host:port) of the node (or C(unix:PATH)).', type: str, returned: success}
    role: {description: C(primary) or C(replica)., type: str, returned: success}
    before: {description: The node's values before the run., type: dict, returned: success}
    after: {description: 'The node''s values after the run (in check mode, what they would be).', type: dict, returned: success}
    changed: {description: Whether the node's runtime values or its config file changed (would change)., type: bool, returned: success}
    used_memory: {description: C(used_memory) of the node., type: int, returned: success}
    config_file: {description: The node's config file persisted to., type: str, returned: when O(persist) is not C(none)}
    persisted: {description: Whether the values are in the node's config file., type: bool, returned: when O(persist) is not C(none)}
    backup_file: {description: The backup of the node's config file., type: str, returned: when one was made}
  sample:
    - endpoint: redis.internal:6379
      role: primary
      before: {maxmemory: 0, maxmemory_policy: noeviction, maxmemory_samples: 5}
      after: {maxmemory: 1073741824, maxmemory_policy: volatile-ttl, maxmemory_samples: 5}
      changed: true
      used_memory: 734003200
topology:
  description: The servers found behind the connection options (as in M(celery_ops.lean_results.result_keys_info)).
  returned: success
  type: dict
  sample: {mode: replicated, primaries: ["10.0.0.11:6379"], replicas: [{endpoint: "10.0.0.12:6379", primary: "10.0.0.11:6379"}], sentinel: null}
diff:
  description: The runtime values before and after (per node that changes, when there are several), and with O(persist=file) each config file that changes.
  returned: success
  type: list
  elements: dict
"""

from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_memory_run import MEMORY_FAILURES, set_memory
from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_module import RedisModule


def main():
    shell = RedisModule.build(
        dict(
            maxmemory=dict(type="str"),
            maxmemory_policy=dict(type="str"),
            maxmemory_samples=dict(type="int"),
            persist=dict(type="str", default="none", choices=["none", "rewrite", "file"]),
            config_file=dict(type="path"),
            config_files=dict(type="dict"),
            backup=dict(type="bool", default=False),
            allow_allkeys_with_broker=dict(type="bool", default=False),
            allow_below_used=dict(type="bool", default=False),
        ),
        command="INFO/SCAN", connect_replicas=True, failures=MEMORY_FAILURES,
        mutually_exclusive=[("config_file", "config_files")],
        required_if=[("persist", "file", ["config_file", "config_files"], True)])
    shell.run(set_memory)


if __name__ == "__main__":
    main()
