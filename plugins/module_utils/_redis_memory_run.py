# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run of the redis_memory module: inspect every node, guard, set, persist, report.

The pieces (parsing, guards, CONFIG SET, the config-file edit) live in _redis_memory; this
file strings them together in the order that keeps a refusal free of side effects, and
declares what a failure still returns.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_memory import (
    PARAMETERS,
    RedisMemoryError,
    apply_nodes,
    file_targets,
    find_topology_broker_keys,
    guard_nodes,
    inspect_nodes,
    needs_broker_lookup,
    persist_rewrite_node,
    redis_value,
    rewrite_config,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_module import Failure
from ansible_collections.celery_ops.lean_results.plugins.module_utils._safe_file import (
    SafeFileError,
    read_regular,
    replace,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._secrets import mask_redis_conf

# What a refusal or a failure still reports: what was found, and what was set before it.
KEPT_ON_FAILURE = ("before", "changes", "used_memory", "nodes", "topology")


def _runtime_text(values):
    return "".join("%s %s\n" % (name, values[option]) for option, name in PARAMETERS if option in values)


def _spellings(params, wanted):
    """How to write each value into a config file: as the user typed it, else normalised."""
    texts = dict((option, redis_value(value)) for option, value in wanted.items())
    if "maxmemory" in wanted:
        texts["maxmemory"] = str(params["maxmemory"]).strip().lower()
    return texts


def _read_if_readable(path):
    if not (path and os.access(path, os.R_OK)):
        return None
    with open(path, "rb") as handle:
        return handle.read()


def persist_file(path, wanted, texts, check_mode, backup=None):
    """Edit one config file (the shared safe write); returns result fields and a diff.

    The file goes through _safe_file: a device, FIFO or directory is refused, a symlink is
    followed, the write keeps mode/owner/group and is refused when the file changed meanwhile.
    ``backup(path)`` (AnsibleModule.backup_local) keeps a copy first and returns its name.
    The diff masks requirepass, masterauth and ACL passwords.
    """
    try:
        snapshot = read_regular(path)
    except SafeFileError as exc:
        raise RedisMemoryError("cannot read config file %s: %s" % (path, exc))
    source = snapshot.data
    updated = rewrite_config(source, wanted, texts)
    result = dict(config_file=path, persisted=not check_mode or updated == source,
                  file_changed=updated != source)
    diff = dict(before_header=path, after_header=path,
                before=mask_redis_conf(source.decode("utf-8", "replace")),
                after=mask_redis_conf(updated.decode("utf-8", "replace")))
    if updated == source or check_mode:
        return result, diff
    if backup is not None:
        result["backup_file"] = backup(snapshot.real)
    try:
        replace(snapshot, updated)
    except (SafeFileError, OSError) as exc:
        raise RedisMemoryError("cannot write config file %s: %s" % (path, exc))
    return result, diff


def _change_list(plans):
    return [dict(endpoint=item.endpoint, parameter=option, before=old, after=new)
            for item in plans for option, old, new in item.changes]


def _runtime_diffs(plans):
    several = len(plans) > 1
    return [dict(before_header="CONFIG (runtime)" + (" " + item.endpoint if several else ""),
                 after_header="CONFIG (runtime)" + (" " + item.endpoint if several else ""),
                 before=_runtime_text(item.before), after=_runtime_text(item.after))
            for item in plans if item.changes or not several]


def set_memory(shell, topology, result):
    """Inspect every node, guard, set, persist, filling ``result`` as it goes (RedisMemoryError on refusal)."""
    params = shell.params
    result.update(changed=False, persist=params["persist"], persisted=False, topology=topology.describe())
    plans = inspect_nodes(topology, params)
    primary = plans[0]
    result.update(before=primary.before, after=primary.after, used_memory=primary.used_memory,
                  changes=_change_list(plans))
    broker = None
    if any(needs_broker_lookup(item.before, item.wanted) for item in plans):
        broker = find_topology_broker_keys(topology, plans)
        result["broker_keys"] = broker
    result["risks"] = guard_nodes(plans, broker, params["allow_allkeys_with_broker"], params["allow_below_used"])
    targets = None
    if params["persist"] == "file":  # refuse a missing or partial mapping before changing anything
        targets = file_targets(plans, params["config_file"], params["config_files"])

    if not shell.check_mode:
        try:
            apply_nodes(plans)
        finally:
            result["nodes"] = [item.report() for item in plans]
    result.update(after=primary.after, nodes=[item.report() for item in plans])
    result["changed"] = any(item.changes for item in plans)
    diffs = _runtime_diffs(plans)
    if params["persist"] != "none":
        _persist(shell, plans, targets, result, diffs)
    result["diff"] = diffs
    for warning in result["risks"]:
        shell.warn(warning)


def _persist(shell, plans, targets, result, diffs):
    """Persist every node's values as ``persist`` says; per node and overall fields in ``result``."""
    params = shell.params
    backup = shell.module.backup_local if params["backup"] else None
    persisted_everywhere = True
    for item, node_result in zip(plans, result["nodes"]):
        if params["persist"] == "rewrite":
            persisted = persist_rewrite_node(item, shell.check_mode, shell.warn, _read_if_readable)
        else:
            persisted, file_diff = persist_file(targets[item.endpoint], item.wanted,
                                                _spellings(params, item.wanted), shell.check_mode, backup)
            if persisted["file_changed"]:
                diffs.append(file_diff)
        file_changed = persisted.pop("file_changed")
        node_result.update(persisted)
        node_result["changed"] = node_result["changed"] or file_changed
        result["changed"] = result["changed"] or file_changed
        persisted_everywhere = persisted_everywhere and persisted["persisted"]
    first = result["nodes"][0]
    result.update(persisted=persisted_everywhere, config_file=first.get("config_file", ""))
    if "backup_file" in first and len(plans) == 1:
        result["backup_file"] = first["backup_file"]


def _after_persisting_failed(_shell, _topology, result, exc):
    """The runtime values were set and only persisting failed: say what is in place now."""
    if "after" not in exc.details:
        return {}
    return dict(after=exc.details["after"], changed=bool(result.get("changes")), persisted=False)


MEMORY_FAILURES = (Failure(RedisMemoryError, kept=KEPT_ON_FAILURE, describe=_after_persisting_failed),)


__all__ = ["KEPT_ON_FAILURE", "MEMORY_FAILURES", "persist_file", "set_memory"]
