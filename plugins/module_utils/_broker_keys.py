# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find the Celery broker's keys (kombu's Redis transport) on a server: the one finder.

Every module that could hurt the broker asks here first: redis_memory before an ``allkeys-*``
policy, result_keys_wait before it caps TTLs, result_keys_info to report them.

What kombu keeps in Redis, each name behind kombu's ``global_keyprefix`` P (default empty):

- ``P_kombu.binding.<exchange>`` (and ``P_kombu.binding_permanent.<exchange>``): a set whose
  members are ``routing_key SEP pattern SEP queue``;
- ``P<queue>``: the queue, a list (``P<queue> SEP <n>`` for priority steps);
- ``Punacked`` (hash), ``Punacked_index`` (zset), ``Punacked_mutex`` (string);
- a bare ``celery`` list, the default queue, even when no binding is left.

Cost: one SCAN pass per database with a server-side MATCH, so only candidate names travel;
then one pipelined TYPE per candidate name. No KEYS, no value is read except binding members.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.celery_ops.lean_results.plugins.module_utils._text import as_text

BINDING_MARK = b"_kombu.binding"
KOMBU_SEP = b"\x06\x16"
KOMBU_PRIORITY_STEPS = (3, 6, 9)
UNACKED_NAMES = (b"unacked", b"unacked_index", b"unacked_mutex")
DEFAULT_QUEUE = b"celery"
CHORD_PREFIX = b"chord-unlock-"
# One MATCH for bindings ("_k"), unacked* ("ck") and chord-unlock keys ("ch"), anywhere in the
# name (any prefix), which result keys (celery-task-meta-<hex id>) never contain.
SIDE_PATTERN = "*[_c][kh]*"
SCAN_COUNT = 5000
# At most this many binding sets are read (a server with more exchanges is still "found").
MAX_BINDINGS = 1000


def binding_prefix(key):
    """kombu's global_keyprefix of a binding key, or None when ``key`` is no binding.

    ``_kombu.binding.celery`` -> b"", ``app:_kombu.binding_permanent.x`` -> b"app:".
    """
    index = key.find(BINDING_MARK)
    if index < 0:
        return None
    rest = key[index + len(BINDING_MARK):]
    if not (rest.startswith(b".") or rest.startswith(b"_")):
        return None
    return key[:index]


def unacked_prefix(key):
    """The prefix of an ``unacked``/``unacked_index``/``unacked_mutex`` key, or None."""
    for name in sorted(UNACKED_NAMES, key=len, reverse=True):
        if key.endswith(name):
            return key[:-len(name)]
    return None


def scan_side_keys(client, count=SCAN_COUNT):
    """(bindings, unacked prefixes, chord keys, scan calls) from one SCAN pass of one client."""
    bindings, prefixes = [], set()
    chord_keys = calls = 0
    cursor = 0
    while True:
        cursor, keys = client.scan(cursor=cursor, match=SIDE_PATTERN, count=count)
        calls += 1
        for key in keys:
            if binding_prefix(key) is not None:
                bindings.append(key)
            elif key.startswith(CHORD_PREFIX):
                chord_keys += 1
            else:
                prefix = unacked_prefix(key)
                if prefix is not None:
                    prefixes.add(prefix)
        if int(cursor) == 0:
            return bindings, prefixes, chord_keys, calls


def candidate_names(queue_names, prefixes):
    """Every name a broker structure may have, given the queues and the prefixes seen."""
    names = []
    for prefix in sorted(prefixes):
        for queue in sorted(set(queue_names) | set([DEFAULT_QUEUE])):
            names.append(prefix + queue)
            names.extend(prefix + queue + KOMBU_SEP + str(step).encode() for step in KOMBU_PRIORITY_STEPS)
        names.extend(prefix + name for name in UNACKED_NAMES)
    seen, unique = set(), []
    for name in names:
        if name not in seen:
            seen.add(name)
            unique.append(name)
    return unique


def is_unacked_name(name):
    return unacked_prefix(name) is not None


def find_broker_keys_on(clients, count=SCAN_COUNT):
    """Broker structures on any of ``clients`` (the primaries of a topology, one database each).

    On a cluster a binding set and the queue it names live on different nodes: every candidate
    name is asked on every node, and a node that does not hold its slot answers MOVED, which
    here just means "not here". Returns (report, chord_keys).
    """
    bindings, prefixes = [], set([b""])
    chord_keys = calls = 0
    for client in clients:
        found, unacked, chords, scans = scan_side_keys(client, count)
        bindings.extend((client, key) for key in found)
        prefixes |= unacked
        chord_keys += chords
        calls += scans
    queue_names = set()
    for client, binding in bindings[:MAX_BINDINGS]:
        prefixes.add(binding_prefix(binding))
        # A live app may hold a key that merely carries the binding mark (or one that changed type
        # between SCAN and now): only a set has members to read; the name still counts as found.
        try:
            members = client.smembers(binding)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            if "WRONGTYPE" not in str(exc):
                raise
            members = ()
        for member in members:
            queue_names.add(member.split(KOMBU_SEP)[-1])
    candidates = candidate_names(queue_names, prefixes)
    order = dict((name, index) for index, name in enumerate(candidates))
    present = []
    for client in clients:
        pipe = client.pipeline(transaction=False)
        for name in candidates:
            pipe.type(name)
        for name, kind in zip(candidates, results_here(pipe)):
            kind = as_text(kind) if kind is not None else "none"
            if kind == "none":
                continue
            if not is_unacked_name(name) and kind != "list":
                continue  # a key that happens to share a queue's name but is no queue
            present.append((client, name, kind))
    present.sort(key=lambda item: order[item[1]])
    entries = []
    for client, name, kind in present:
        entries.append(dict(name=as_text(name), type=kind, length=_length(client, name, kind)))
    queues = [entry for entry in entries if not is_unacked_name(entry["name"].encode("utf-8", "replace"))]
    unacked = [entry for entry in entries if is_unacked_name(entry["name"].encode("utf-8", "replace"))]
    binding_names = sorted(as_text(key) for _client, key in bindings)
    return dict(
        found=bool(bindings or queues or unacked),
        bindings=binding_names,
        queues=queues,
        unacked=unacked,
        prefixes=sorted(as_text(prefix) for prefix in prefixes if prefix),
        total=len(bindings) + len(queues) + len(unacked),
        scan_calls=calls,
    ), chord_keys


def _length(client, name, kind):
    commands = {"list": client.llen, "zset": client.zcard, "hash": client.hlen}
    if kind not in commands:
        return 1
    try:
        return commands[kind](name)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        if "WRONGTYPE" not in str(exc):
            raise
        return 1  # the key changed type since TYPE (a live broker): it exists, its length is moot


def results_here(pipe):
    """Pipeline replies, with None for keys another cluster node holds (MOVED); other errors raise."""
    replies = []
    for reply in pipe.execute(raise_on_error=False):
        if isinstance(reply, Exception):
            if type(reply).__name__ in ("MovedError", "AskError") or str(reply).upper().startswith(("MOVED", "ASK ")):
                reply = None
            else:
                raise reply
        replies.append(reply)
    return replies


def databases_with_keys(client, default_db=0):
    """The database numbers INFO keyspace lists (``[default_db]`` when it lists none)."""
    keyspace = client.info("keyspace") or {}
    numbers = sorted(int(as_text(name)[2:]) for name in keyspace if as_text(name).startswith("db"))
    return numbers or [default_db]


def empty_report():
    return dict(found=False, bindings=[], queues=[], unacked=[], prefixes=[], total=0, scan_calls=0,
                databases=[])


def merge_reports(merged, report, database=None):
    """Add one database's (or node's) report into ``merged``."""
    merged["scan_calls"] += report.get("scan_calls", 0)
    if not report["found"]:
        return merged
    merged["found"] = True
    for field in ("bindings", "queues", "unacked"):
        merged[field].extend(report[field])
    merged["prefixes"] = sorted(set(merged["prefixes"]) | set(report.get("prefixes", [])))
    merged["total"] += report["total"]
    if database is not None and database not in merged["databases"]:
        merged["databases"].append(database)
        merged["databases"].sort()
    for database_seen in report.get("databases", []):
        if database_seen not in merged["databases"]:
            merged["databases"].append(database_seen)
            merged["databases"].sort()
    return merged


def find_broker_keys_in_databases(client, db, open_db):
    """The broker keys in every database of one server (eviction and a restart are server-wide).

    ``client`` is connected to ``db``; ``open_db(number)`` returns a client for another
    database (closed here). Returns (merged report, {db: report}, chord keys in ``db``).
    """
    merged = empty_report()
    per_db = {}
    chord_keys = 0
    for number in databases_with_keys(client, db):
        other = client if number == db else open_db(number)
        try:
            report, chords = find_broker_keys_on([other])
        finally:
            if other is not client:
                other.close()
        if number == db:
            chord_keys = chords
        per_db[number] = report
        merge_reports(merged, report, number)
    return merged, per_db, chord_keys


def find_topology_broker_keys(topology, open_db=None):
    """The broker keys of a whole topology; every module reports this same thing as broker_keys.

    A cluster: db 0 (its only database) of every primary, asked together (a binding and its
    queue sit on different nodes). Otherwise: every database INFO keyspace lists, on every
    primary (replicas hold copies). ``open_db(node, number)`` connects to another database of
    ``node`` (by default ``same_server_db``). Returns (report with ``databases``, {db: report} of
    the first primary, chord keys of the connected database).
    """
    open_db = open_db or same_server_db
    if topology.cluster_enabled:
        report, chord_keys = find_broker_keys_on([node.client for node in topology.primaries])
        report["databases"] = [0] if report["found"] else []
        return report, {0: report}, chord_keys
    merged = empty_report()
    first_per_db, chord_keys = None, 0
    for node in topology.primaries:
        connected = node_db(node)
        found, per_db, chords = find_broker_keys_in_databases(
            node.client, connected, lambda number, node=node: open_db(node, number))
        if first_per_db is None:
            first_per_db, chord_keys = per_db, chords
        merge_reports(merged, found)
    return merged, first_per_db or {}, chord_keys


def same_server_db(node, number):
    """A client like ``node``'s (same class, same connection settings), on database ``number``."""
    pool = node.client.connection_pool
    kwargs = dict(pool.connection_kwargs, db=number)
    return type(node.client)(connection_pool=type(pool)(connection_class=pool.connection_class, **kwargs))


def node_db(node):
    """The database a node's client is connected to."""
    try:
        return int(node.client.connection_pool.connection_kwargs.get("db") or 0)
    except (AttributeError, TypeError, ValueError):
        return 0


# -- Redis glob patterns ------------------------------------------------------------------------

def glob_regex(pattern):
    """A compiled regex (bytes) that matches what Redis's stringmatchlen() matches for ``pattern``."""
    if isinstance(pattern, str):
        pattern = pattern.encode("utf-8")
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index:index + 1]
        if char == b"*":
            out.append(b".*")
        elif char == b"?":
            out.append(b".")
        elif char == b"\\" and index + 1 < len(pattern):
            index += 1
            out.append(re.escape(pattern[index:index + 1]))
        elif char == b"[":
            end = index + 1
            negate = pattern[end:end + 1] == b"^"
            if negate:
                end += 1
            body = []
            while end < len(pattern) and pattern[end:end + 1] != b"]":
                piece = pattern[end:end + 1]
                if piece == b"\\" and end + 1 < len(pattern):
                    end += 1
                    body.append(re.escape(pattern[end:end + 1]))
                elif pattern[end + 1:end + 2] == b"-" and end + 2 < len(pattern) and pattern[end + 2:end + 3] != b"]":
                    low, high = sorted((pattern[end:end + 1], pattern[end + 2:end + 3]))
                    body.append(re.escape(low) + b"-" + re.escape(high))
                    end += 2
                else:
                    body.append(re.escape(piece))
                end += 1
            out.append(b"[" + (b"^" if negate else b"") + b"".join(body) + b"]" if body else b"(?!)")
            index = end
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile(b"^" + b"".join(out) + b"$", re.DOTALL)


def broker_names(report):
    """Every broker key name in a report (bindings, queues, unacked)."""
    names = list(report.get("bindings", []))
    names += [entry["name"] for entry in report.get("queues", []) + report.get("unacked", [])]
    return names


def names_matching(pattern, names):
    regex = glob_regex(pattern)
    return [name for name in names if regex.match(name.encode("utf-8", "replace") if isinstance(name, str) else name)]


# -- result keys ------------------------------------------------------------------------------

# A Celery result key: [prefix]celery-task-meta-<id>, [prefix]celery-taskset-meta-<id>, and the
# chord counters [prefix]celery-taskset-meta-<id>.j/.t/.s (celery/backends/redis.py).
RESULT_MARKS = (b"celery-task-meta-", b"celery-taskset-meta-")


def is_result_key(key):
    """Whether ``key`` has the shape of a Celery result key (a mark followed by an id)."""
    if isinstance(key, str):
        key = key.encode("utf-8", "replace")
    for mark in RESULT_MARKS:
        index = key.find(mark)
        if index >= 0 and len(key) > index + len(mark):
            return True
    return False


def is_result_pattern(pattern):
    """Whether every key ``pattern`` matches is a result key: it holds a mark literally."""
    if isinstance(pattern, str):
        pattern = pattern.encode("utf-8", "replace")
    for mark in RESULT_MARKS:
        index = pattern.find(mark)
        if index < 0:
            continue
        before = pattern[:index]
        # the mark must be literal: not inside a [...] class or after an escape
        if before.count(b"[") > before.count(b"]") or before.endswith(b"\\"):
            continue
        rest = pattern[index + len(mark):]
        if rest:  # something (an id, or * / ?) must follow
            return True
    return False


def summary(report, limit=6):
    """'celery (list, 25), unacked (hash, 1), _kombu.binding.celery' for messages."""
    parts = ["%s (%s, %s)" % (item["name"], item["type"], item["length"])
             for item in report.get("queues", []) + report.get("unacked", [])]
    parts += report.get("bindings", [])
    return ", ".join(parts[:limit]) + (", ..." if len(parts) > limit else "")


__all__ = [
    "CHORD_PREFIX", "KOMBU_SEP", "RESULT_MARKS", "SIDE_PATTERN", "binding_prefix", "broker_names",
    "candidate_names", "databases_with_keys", "empty_report", "find_broker_keys_in_databases",
    "find_broker_keys_on", "find_topology_broker_keys", "glob_regex", "is_result_key", "is_result_pattern", "merge_reports",
    "names_matching", "results_here", "same_server_db", "scan_side_keys", "summary", "unacked_prefix",
]
