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
    (kombu queue lists, C(_kombu.binding.*), C(unacked), C(unacked_index)), because such a policy
    silently evicts queued tasks. Refuses a O(maxmemory) below the memory already in use.
author:
  - celery_ops maintainers (@celery-ops)
extends_documentation_fragment:
  - celery_ops.lean_results.redis_connection
attributes:
  check_mode:
    support: full
    description: Reads the current values and reports what would be set and persisted; changes nothing.
  diff_mode:
    support: full
    description: Shows the runtime values before and after, and the config file when O(persist=file).
options:
  maxmemory:
    description:
      - Memory limit, in bytes or with a Redis unit. C(k), C(m), C(g) are powers of 10
        (C(1g) is 1000000000); C(kb), C(mb), C(gb) are powers of 2 (C(1gb) is 1073741824). Any case.
      - C(0) means no limit.
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
    type: int
  persist:
    description:
      - How the values survive a restart.
      - C(none) sets them at runtime only.
      - C(rewrite) runs C(CONFIG REWRITE); the server must have been started from a config file.
        When the file is readable where the module runs, it is compared first and rewritten only
        when it lags behind.
      - C(file) edits O(config_file) on the host where the module runs (the Redis host).
    type: str
    choices: [none, rewrite, file]
    default: none
  config_file:
    description:
      - The server's config file, for O(persist=file). Existing C(maxmemory*) directive lines are
        replaced in place, missing ones appended at the end; nothing else changes.
    type: path
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
  - A minimal ACL rule for this module is C(+ping +info +config|get +config|set +config|rewrite +select
    +scan +type +smembers +llen +zcard +hlen +exists %R~*) (add C(+hello) for O(protocol=3)).
  - Managed services (ElastiCache, MemoryStore, Azure Cache for Redis) rename or block C(CONFIG);
    set these values through the service's parameter groups instead.
  - CONFIG is per node. This version handles the one node it connects to (RV(nodes) has one entry).
  - Warns when the headroom over the memory in use is under 20%, and when a policy is set while
    C(maxmemory) is 0 (no effect).
seealso:
  - module: celery_ops.lean_results.result_keys_info
  - name: Redis key eviction
    description: The eviction policies and how they choose keys.
    link: https://redis.io/docs/latest/develop/reference/eviction/
"""

EXAMPLES = r"""
- name: Cap Redis at 1 GiB and evict only result keys (they have a TTL), persisted in redis.conf
  celery_ops.lean_results.redis_memory:
    login_host: redis.internal
    login_password: "{{ vault_redis_password }}"
    maxmemory: 1gb
    maxmemory_policy: volatile-ttl
    persist: rewrite

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
  description: The values before the run, normalised (maxmemory in bytes).
  returned: success
  type: dict
  sample: {maxmemory: 0, maxmemory_policy: noeviction, maxmemory_samples: 5}
after:
  description: The values after the run (in check mode, what they would be).
  returned: success and when persisting fails
  type: dict
  sample: {maxmemory: 1073741824, maxmemory_policy: volatile-ttl, maxmemory_samples: 5}
changes:
  description: What was (or in check mode would be) set with CONFIG SET.
  returned: success
  type: list
  elements: dict
  sample: [{parameter: maxmemory, before: 0, after: 1073741824}]
persisted:
  description: Whether the values are in the config file after the run (false with O(persist=none) and in check mode).
  returned: success
  type: bool
  sample: true
persist:
  description: The persistence method used.
  returned: success
  type: str
  sample: rewrite
config_file:
  description: 'The config file persisted to: O(config_file), or the server''s own with O(persist=rewrite) (empty when it has none).'
  returned: when O(persist) is not C(none)
  type: str
  sample: /etc/redis/redis.conf
backup_file:
  description: The backup of O(config_file), when one was made.
  returned: when O(backup=true) and the file changed
  type: str
  sample: /etc/redis/redis.conf.12345.2026-11-25@10:00:00~
risks:
  description: Risks found (low headroom, policy without limit, allowed overrides); each is also an Ansible warning.
  returned: success
  type: list
  elements: str
  sample: ["maxmemory 1000000 leaves 5% headroom over the 950000 bytes in use (under 20%): ..."]
used_memory:
  description: C(used_memory) of the server when the module ran, in bytes.
  returned: success
  type: int
  sample: 734003200
broker_keys:
  description: Celery broker keys found, when an C(allkeys-*) policy made the module look.
  returned: when looked up
  type: dict
  sample: {found: true, bindings: [_kombu.binding.celery], queues: [{name: celery, type: list, length: 12}], unacked: [], total: 2, databases: [0]}
nodes:
  description: Per node, what was found and set.
  returned: success
  type: list
  elements: dict
  sample:
    - endpoint: redis.internal:6379
      role: master
      before: {maxmemory: 0, maxmemory_policy: noeviction, maxmemory_samples: 5}
      after: {maxmemory: 1073741824, maxmemory_policy: volatile-ttl, maxmemory_samples: 5}
      changed: true
diff:
  description: The runtime values before and after, and with O(persist=file) the config file.
  returned: success
  type: list
  elements: dict
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_connection import (
    HAS_REDIS,
    REDIS_IMPORT_ERROR,
    RedisModuleError,
    connect,
    describe_endpoint,
    describe_redis_error,
    redis_connection_argument_spec,
    server_version,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_memory import (
    PARAMETERS,
    RedisMemoryError,
    apply_changes,
    check_guards,
    config_file_matches,
    config_rewrite,
    find_broker_keys_everywhere,
    needs_broker_lookup,
    normalise_wanted,
    plan,
    read_config,
    redis_value,
    rewrite_config,
)


def _runtime_text(values):
    return "".join("%s %s\n" % (name, values[option]) for option, name in PARAMETERS if option in values)


def _spellings(params, wanted):
    """How to write each value into a config file: as the user typed it, else normalised."""
    texts = dict((option, redis_value(option, value)) for option, value in wanted.items())
    if "maxmemory" in wanted:
        texts["maxmemory"] = str(params["maxmemory"]).strip().lower()
    return texts


def _server_config_file(client):
    path = client.info("server").get("config_file") or ""
    return path.decode() if isinstance(path, bytes) else path


def persist_rewrite(module, client, wanted, after, changes):
    """CONFIG REWRITE unless the server's file, readable here, already holds the values."""
    path = _server_config_file(client)
    result = dict(config_file=path, persisted=False, file_changed=False)
    if path and os.access(path, os.R_OK):
        with open(path, "rb") as handle:
            if config_file_matches(handle.read(), wanted):
                result["persisted"] = True
                return result
    if module.check_mode:
        if not path:
            module.warn("CONFIG REWRITE would fail: the server runs without a config file")
        result["file_changed"] = bool(path and os.access(path, os.R_OK))
        return result
    config_rewrite(client, module.params, after)
    result["persisted"] = True
    result["file_changed"] = bool(path and os.access(path, os.R_OK))
    return result


def persist_file(module, wanted, texts):
    """Edit config_file in place (safe write, optional backup); returns result fields and a diff."""
    path = module.params["config_file"]
    try:
        with open(path, "rb") as handle:
            source = handle.read()
    except (IOError, OSError) as exc:
        raise RedisMemoryError("cannot read config_file %s: %s" % (path, exc))
    updated = rewrite_config(source, wanted, texts)
    result = dict(config_file=path, persisted=not module.check_mode or updated == source,
                  file_changed=updated != source)
    diff = dict(before_header=path, after_header=path,
                before=source.decode("utf-8", "replace"), after=updated.decode("utf-8", "replace"))
    if updated == source or module.check_mode:
        return result, diff
    if module.params["backup"]:
        result["backup_file"] = module.backup_local(path)
    fd, temp = tempfile.mkstemp(prefix=".redis_memory.", dir=os.path.dirname(os.path.abspath(path)))
    with os.fdopen(fd, "wb") as handle:
        handle.write(updated)
    module.atomic_move(temp, os.path.abspath(path))
    return result, diff


def _node_role(client):
    role = client.info("replication").get("role", "master")
    return role.decode() if isinstance(role, bytes) else role


def main():
    argument_spec = redis_connection_argument_spec()
    argument_spec.update(
        maxmemory=dict(type="str"),
        maxmemory_policy=dict(type="str"),
        maxmemory_samples=dict(type="int"),
        persist=dict(type="str", default="none", choices=["none", "rewrite", "file"]),
        config_file=dict(type="path"),
        backup=dict(type="bool", default=False),
        allow_allkeys_with_broker=dict(type="bool", default=False),
        allow_below_used=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("persist", "file", ["config_file"])])
    if not HAS_REDIS:
        module.fail_json(msg=missing_required_lib("redis"), exception=REDIS_IMPORT_ERROR)
    params = module.params
    result = dict(changed=False, persist=params["persist"], persisted=False)
    try:
        client = connect(params)
        version = server_version(client, params)
        before = read_config(client, params)
        result["before"] = before
        wanted = normalise_wanted(params, version)
        used_memory = client.info("memory").get("used_memory")
        broker = None
        if needs_broker_lookup(before, wanted):
            broker = find_broker_keys_everywhere(client, params)
            result["broker_keys"] = broker
        warnings = check_guards(before, wanted, used_memory, broker,
                                params["allow_allkeys_with_broker"], params["allow_below_used"])
        changes = plan(before, wanted)
        after = dict(before, **wanted)
        result.update(before=before, after=after, used_memory=used_memory,
                      changes=[dict(parameter=option, before=old, after=new) for option, old, new in changes])
        if changes and not module.check_mode:
            apply_changes(client, params, changes, version)
            after = read_config(client, params)
            result["after"] = after
        result["changed"] = bool(changes)
        diffs = [dict(before_header="CONFIG (runtime)", after_header="CONFIG (runtime)",
                      before=_runtime_text(before), after=_runtime_text(after))]
        if params["persist"] == "rewrite":
            persisted = persist_rewrite(module, client, wanted, after, changes)
            file_changed = persisted.pop("file_changed")
            result["changed"] = result["changed"] or file_changed
            result.update(persisted)
        elif params["persist"] == "file":
            persisted, file_diff = persist_file(module, wanted, _spellings(params, wanted))
            file_changed = persisted.pop("file_changed")
            result["changed"] = result["changed"] or file_changed
            result.update(persisted)
            diffs.append(file_diff)
        result["diff"] = diffs
        result["nodes"] = [dict(endpoint=describe_endpoint(params), role=_node_role(client),
                                before=before, after=result["after"], changed=bool(changes))]
    except RedisMemoryError as exc:
        fail = dict((key, value) for key, value in result.items() if key in ("before", "changes", "used_memory"))
        if "after" in exc.details:  # the runtime values were set; only persisting failed
            fail.update(after=exc.details["after"], changed=bool(result.get("changes")), persisted=False)
        module.fail_json(msg=str(exc), **fail)
    except RedisModuleError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # a Redis error mid-way: same readable mapping as at connect
        module.fail_json(msg=describe_redis_error(exc, params, command="INFO/SCAN"))
    for warning in warnings:
        module.warn(warning)
    result["risks"] = warnings
    module.exit_json(**result)


if __name__ == "__main__":
    main()
