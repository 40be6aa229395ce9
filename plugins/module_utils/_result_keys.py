# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measure Celery result keys: count with SCAN, TTLs, memory, broker keys on the same server.

Counting uses SCAN, never KEYS (which blocks the server) and never DBSIZE or INFO keyspace
alone (they still count keys that expired but were not reclaimed yet).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
import random
import time

from ansible_collections.celery_ops.lean_results.plugins.module_utils._broker_keys import (
    find_broker_keys_on,
    find_topology_broker_keys,
)

DEFAULT_PATTERN = "celery-task-meta-*"
GROUP_PATTERN = "celery-taskset-meta-*"
SCAN_COUNT = 5000
FORECAST_HOURS = (1, 6, 24)

# TTL of many keys in one round trip; returns "ttl,ttl,..." so the client parses one string.
TTL_BATCH_SCRIPT = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('TTL', key) end
return table.concat(out, ',')
"""


def scan_keys(client, pattern, count=SCAN_COUNT):
    """Yield batches of keys matching ``pattern`` (bytes), one SCAN call per batch."""
    cursor = 0
    while True:
        cursor, keys = client.scan(cursor=cursor, match=pattern, count=count)
        if keys:
            yield keys
        if int(cursor) == 0:
            return


class Reservoir(object):
    """A uniform random sample of ``size`` items from a stream of unknown length.

    Algorithm L (Li, 1994): it draws random numbers only when an item is taken, so a stream
    of a million keys costs a few thousand draws rather than a million.
    """

    def __init__(self, size, rng=None):
        self.size = size
        self.rng = rng or random.Random()
        self.items = []
        self.seen = 0
        self._weight = 1.0
        self._next = 0

    def _advance(self):
        self._weight *= math.exp(math.log(self.rng.random() or 1e-12) / self.size)
        skip = math.floor(math.log(self.rng.random() or 1e-12) / math.log(1 - self._weight or 1e-12))
        self._next += skip + 1

    def offer(self, batch):
        if self.size <= 0:
            self.seen += len(batch)
            return
        start = self.seen
        self.seen += len(batch)
        index = 0
        if len(self.items) < self.size:
            take = min(self.size - len(self.items), len(batch))
            self.items.extend(batch[:take])
            index = take
            if len(self.items) == self.size:
                self._next = start + take - 1
                self._advance()
        while len(self.items) == self.size and self._next < self.seen:
            position = self._next - start
            if position >= index:
                self.items[self.rng.randrange(self.size)] = batch[position]
            self._advance()


def percentile(sorted_values, fraction):
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, int(math.ceil(fraction * len(sorted_values))))
    return sorted_values[rank - 1]


def ttl_summary(ttls):
    """{min, p50, p90, max} in seconds over keys that have a TTL."""
    ordered = sorted(ttls)
    return dict(
        min=ordered[0] if ordered else None,
        p50=percentile(ordered, 0.5),
        p90=percentile(ordered, 0.9),
        max=ordered[-1] if ordered else None,
    )


def forecast(ttls, no_ttl):
    """How many keys are still alive after 1 h, 6 h, 24 h, and when the last TTL runs out."""
    ordered = sorted(ttls)
    points = []
    for hours in FORECAST_HOURS:
        seconds = hours * 3600
        alive = len(ordered) - _count_at_most(ordered, seconds)
        points.append(dict(after="%dh" % hours, seconds=seconds, keys_alive=alive + no_ttl))
    last = ordered[-1] if ordered else 0
    points.append(dict(after="last expiry", seconds=last, keys_alive=no_ttl))
    return points


def _count_at_most(ordered, limit):
    """Number of values <= limit in an ascending list (binary search)."""
    low, high = 0, len(ordered)
    while low < high:
        middle = (low + high) // 2
        if ordered[middle] <= limit:
            low = middle + 1
        else:
            high = middle
    return low


class TtlReader(object):
    """TTL of many keys per round trip: a Lua batch where allowed, else a pipeline.

    Managed services and least-privilege ACL users often forbid EVAL; the pipeline gives the
    same answer at a higher client cost.
    """

    def __init__(self, client, use_script=True):
        self.client = client
        self.use_script = use_script
        self._script = None

    def ttls(self, keys):
        if self.use_script:
            try:
                if self._script is None:
                    self._script = self.client.register_script(TTL_BATCH_SCRIPT)
                packed = self._script(keys=keys)
                return [int(value) for value in packed.split(b",")] if packed else []
            except Exception as exc:  # NOPERM, unknown command, scripts disabled: fall back
                if not _is_script_refusal(exc):
                    raise
                self.use_script = False
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.ttl(key)
        return [int(value) for value in pipe.execute()]


def _is_script_refusal(exc):
    if type(exc).__name__ in ("NoPermissionError", "ClusterCrossSlotError"):
        return True
    text = str(exc).upper()
    return any(word in text for word in ("NOPERM", "NO PERMISSIONS", "UNKNOWN COMMAND", "NOSCRIPT",
                                         "DISABLED", "CROSSSLOT", "SAME SLOT",
                                         "CAN'T RUN THIS COMMAND"))


def count_keys(client, pattern, count=SCAN_COUNT):
    """Count keys matching ``pattern`` with SCAN only (the cheapest exact-enough count)."""
    total = 0
    for batch in scan_keys(client, pattern, count):
        total += len(batch)
    return total


def measure_result_keys(client, pattern=DEFAULT_PATTERN, sample=1000, rng=None, clock=time.monotonic,
                        use_script=True):
    """Count matching keys, read every TTL, and sample memory. Read-only.

    Returns count (live keys), no_ttl, ttl summary, memory estimate, forecast, scan_seconds.
    ``use_script=False`` reads TTLs with pipelines only: on a cluster node the keys of one SCAN
    batch hash to many slots, which one Lua call may not touch (CROSSSLOT).
    """
    started = clock()
    reservoir = Reservoir(sample, rng)
    reader = TtlReader(client, use_script)
    ttls = []
    no_ttl = 0
    count = 0
    for batch in scan_keys(client, pattern):
        live = []
        for key, ttl in zip(batch, reader.ttls(batch)):
            if ttl == -2:  # expired or deleted between SCAN and TTL
                continue
            live.append(key)
            if ttl == -1:
                no_ttl += 1
            else:
                ttls.append(ttl)
        count += len(live)
        reservoir.offer(live)
    scan_seconds = clock() - started
    memory = estimate_memory(client, reservoir.items, count)
    return dict(
        count=count,
        no_ttl=no_ttl,
        ttl=ttl_summary(ttls),
        forecast=forecast(ttls, no_ttl),
        memory=memory,
        scan_seconds=round(scan_seconds, 4),
        ttl_method="lua" if reader.use_script else "pipeline",
        ttls=ttls,
    )


def estimate_memory(client, sampled_keys, count):
    """Bytes the matching keys take: mean MEMORY USAGE of the sample, times the count.

    MEMORY USAGE counts the key, its value and its main-table entry, but not the entry in the
    expires table nor the hash-table buckets; we add both from MEMORY STATS when allowed.
    """
    usages = []
    if sampled_keys:
        pipe = client.pipeline(transaction=False)
        for key in sampled_keys:
            pipe.memory_usage(key, samples=0)
        usages = [value for value in pipe.execute(raise_on_error=False)
                  if isinstance(value, int)]
    per_key = float(sum(usages)) / len(usages) if usages else 0.0
    overhead = _table_overhead_per_key(client)
    if usages:
        per_key += overhead
    return dict(
        estimated_bytes=int(round(per_key * count)),
        bytes_per_key=int(round(per_key)),
        sampled=len(usages),
    )


def _table_overhead_per_key(client):
    """Per-key cost of the expires entry and bucket pointers, from MEMORY STATS (0 if refused)."""
    try:
        stats = client.memory_stats()
    except Exception:
        return 0.0
    total_overhead = 0.0
    for name, value in stats.items():
        name = name.decode() if isinstance(name, bytes) else name
        if not (name.startswith("db.") and isinstance(value, dict)):
            continue
        fields = dict((k.decode() if isinstance(k, bytes) else k, v) for k, v in value.items())
        main = fields.get("overhead.hashtable.main", 0)
        expires = fields.get("overhead.hashtable.expires", 0)
        total_overhead += main + expires
    keys = int(_stat(stats, "keys.count") or 0)
    if keys <= 0:
        return 0.0
    # The main table's dictEntry (24 bytes) is already inside MEMORY USAGE.
    return max(0.0, total_overhead / keys - 24.0)


def _stat(stats, name):
    value = stats.get(name)
    if value is None:
        value = stats.get(name.encode())
    return value


def find_broker_keys(client):
    """Celery broker structures (kombu) in the database ``client`` is connected to."""
    return find_broker_keys_on([client])


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


SERVER_STAT_FIELDS = (
    "total_commands_processed", "instantaneous_ops_per_sec", "total_net_input_bytes",
    "total_net_output_bytes", "instantaneous_input_kbps", "instantaneous_output_kbps",
    "expired_keys", "evicted_keys", "keyspace_hits", "keyspace_misses",
)


def server_stats(client):
    """Throughput and traffic counters from INFO stats, for before/after comparisons."""
    stats = client.info("stats")
    picked = dict((name, stats.get(name)) for name in SERVER_STAT_FIELDS)
    picked["uptime_in_seconds"] = client.info("server").get("uptime_in_seconds")
    return picked


def topology_result_keys_report(topology, pattern=DEFAULT_PATTERN, sample=1000, rng=None, clock=time.monotonic,
                                open_db=None):
    """Everything result_keys_info returns, over every primary of a topology.

    Keys live on primaries: each is scanned on its own and the counts are summed (a cluster
    spreads them over its primaries; replicas hold copies and are not counted). TTLs are read
    per node; on a cluster with pipelines, never a cross-slot Lua call. ``nodes`` reports each
    primary; top-level figures are the sums. ``broker_keys`` covers every database of the server
    (as redis_memory's guard sees it) when ``open_db(node, number)`` is given.
    """
    started = clock()
    primaries = topology.primaries
    is_cluster = getattr(topology, "cluster_enabled", topology.mode == "cluster")
    per_node_sample = int(math.ceil(float(sample) / len(primaries))) if sample > 0 else 0
    nodes, ttls, methods = [], [], set()
    count = no_ttl = group_results = dbsize = used_memory = estimated = sampled = 0
    maxmemories, policies = [], set()
    # Before our own SCAN and TTL reads: instantaneous_ops_per_sec and the kbps figures are
    # averages over the last seconds, and would otherwise report our measuring as the app's load.
    stats = [server_stats(node.client) for node in primaries]
    for node in primaries:
        client = node.client
        measured = measure_result_keys(client, pattern, per_node_sample, rng, clock, use_script=not is_cluster)
        ttls.extend(measured["ttls"])
        methods.add(measured["ttl_method"])
        groups = count_keys(client, GROUP_PATTERN) if pattern != GROUP_PATTERN else measured["count"]
        memory_info = client.info("memory")
        node_dbsize = client.dbsize()
        policy = _text(memory_info.get("maxmemory_policy"))
        nodes.append(dict(
            endpoint=node.endpoint, role=node.role, count=measured["count"], no_ttl=measured["no_ttl"],
            group_results=groups, dbsize=node_dbsize, used_memory=memory_info.get("used_memory"),
            maxmemory=memory_info.get("maxmemory"), maxmemory_policy=policy,
        ))
        count += measured["count"]
        no_ttl += measured["no_ttl"]
        group_results += groups
        dbsize += node_dbsize
        used_memory += memory_info.get("used_memory") or 0
        estimated += measured["memory"]["estimated_bytes"]
        sampled += measured["memory"]["sampled"]
        maxmemories.append(memory_info.get("maxmemory") or 0)
        policies.add(policy)
    if open_db is not None:
        broker_keys, _per_db, chord_keys = find_topology_broker_keys(topology, open_db)
    else:
        broker_keys, chord_keys = find_broker_keys_on([node.client for node in primaries])
    # A count of 0 verifies nothing: say where result-shaped keys are instead.
    elsewhere = locate_result_keys(primaries[0].client, pattern) if count == 0 else None
    return dict(
        elsewhere=elsewhere,
        warnings=[elsewhere["warning"]] if elsewhere else [],
        count=count,
        no_ttl=no_ttl,
        ttl=ttl_summary(ttls),
        forecast=forecast(ttls, no_ttl),
        memory=dict(estimated_bytes=estimated, bytes_per_key=int(round(float(estimated) / count)) if count else 0,
                    sampled=sampled),
        scan_seconds=round(clock() - started, 4),
        ttl_method=methods.pop() if len(methods) == 1 else "pipeline",
        pattern=pattern,
        group_results=group_results,
        chord_keys=chord_keys,
        broker_keys=broker_keys,
        dbsize=dbsize,
        used_memory=used_memory,
        # A cluster's capacity is the sum of its primaries' limits; one unlimited node makes it unlimited.
        maxmemory=sum(maxmemories) if all(maxmemories) else 0,
        maxmemory_policy=policies.pop() if len(policies) == 1 else "mixed",
        server_stats=_sum_stats(stats),
        nodes=nodes,
        topology=topology.describe(),
    )


# Where result-shaped keys are when the pattern finds none: a bounded SCAN (a few calls, never a
# full walk) for keys with Celery's task-meta name under any prefix, and INFO keyspace for other dbs.
LOCATE_PATTERN = "*celery-task-meta-*"
LOCATE_SCAN_CALLS = 20
LOCATE_SCAN_COUNT = 1000


def locate_result_keys(client, pattern, calls=LOCATE_SCAN_CALLS, count=LOCATE_SCAN_COUNT):
    """Result-shaped keys this pattern missed: {prefixes: {prefix: seen}, other_dbs: {dbN: keys}, warning}."""
    prefixes = {}
    cursor = 0
    for _call in range(calls):
        cursor, keys = client.scan(cursor=cursor, match=LOCATE_PATTERN, count=count)
        for key in keys:
            name = _text(key)
            prefix = name[:name.index("celery-task-meta-")]
            prefixes[prefix] = prefixes.get(prefix, 0) + 1
        if int(cursor) == 0:
            break
    db = (getattr(client, "connection_pool", None) and client.connection_pool.connection_kwargs.get("db")) or 0
    try:
        keyspace = client.info("keyspace")
    except Exception:  # pylint: disable=broad-except  # an ACL without INFO: the SCAN still answers
        keyspace = {}
    other_dbs = dict((name, (value or {}).get("keys", 0)) for name, value in sorted(keyspace.items())
                     if name.startswith("db") and name != "db%d" % int(db) and isinstance(value, dict))
    hints = ["prefix %r (%d seen)" % (prefix, seen) for prefix, seen in sorted(prefixes.items())]
    hints += ["%s holds %s keys" % (name, keys) for name, keys in other_dbs.items()]
    warning = "pattern %r matches no key in db %s%s" % (
        pattern, db, (": result-shaped keys are elsewhere: " + "; ".join(hints)) if hints
        else " and no result-shaped key was found under another prefix or in another db")
    return dict(prefixes=prefixes, other_dbs=other_dbs, db=int(db), warning=warning)


def _sum_stats(stats):
    if len(stats) == 1:
        return stats[0]
    summed = {}
    for name in stats[0]:
        values = [entry.get(name) for entry in stats if isinstance(entry.get(name), (int, float))]
        if name == "uptime_in_seconds":
            summed[name] = min(values) if values else None
        else:
            summed[name] = sum(values) if values else None
    return summed


__all__ = [
    "DEFAULT_PATTERN", "GROUP_PATTERN", "Reservoir", "TtlReader", "count_keys", "estimate_memory",
    "find_broker_keys", "find_broker_keys_on", "forecast", "locate_result_keys", "measure_result_keys", "percentile",
    "scan_keys", "server_stats", "topology_result_keys_report", "ttl_summary",
]
