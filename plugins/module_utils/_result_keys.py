# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measure Celery result keys: count with SCAN, TTLs, memory, broker keys on the same server.

The walk over the keys is the keyspace layer's (``_keyspace.read_pass``): SCAN, the TTL of every
key, and a histogram whose size follows the distinct TTLs, not the key count, so memory stays
flat at millions of keys. Here: the memory sample, the forecast and the per-topology report.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
import random
import time

from ansible_collections.celery_ops.lean_results.plugins.module_utils._broker_keys import find_topology_broker_keys
from ansible_collections.celery_ops.lean_results.plugins.module_utils._keyspace import (
    TtlHistogram,
    count_keys,
    read_pass,
    scan_keys,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._text import as_text

DEFAULT_PATTERN = "celery-task-meta-*"
GROUP_PATTERN = "celery-taskset-meta-*"
FORECAST_HOURS = (1, 6, 24)


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


def _histogram(ttls):
    return ttls if isinstance(ttls, TtlHistogram) else TtlHistogram().extend(ttls)


def ttl_summary(ttls):
    """{min, p50, p90, max} in seconds over keys that have a TTL (a TtlHistogram or the TTLs)."""
    return _histogram(ttls).summary()


def forecast(ttls, no_ttl):
    """How many keys are still alive after 1 h, 6 h, 24 h, and when the last TTL runs out."""
    histogram = _histogram(ttls)
    points = []
    for hours in FORECAST_HOURS:
        seconds = hours * 3600
        points.append(dict(after="%dh" % hours, seconds=seconds, keys_alive=histogram.above(seconds) + no_ttl))
    last = ttl_summary(histogram)["max"] or 0
    points.append(dict(after="last expiry", seconds=last, keys_alive=no_ttl))
    return points


def measure_result_keys(client, pattern=DEFAULT_PATTERN, sample=1000, rng=None, clock=time.monotonic,
                        use_script=True):
    """Count matching keys, read every TTL, and sample memory. Read-only.

    Returns count (live keys), no_ttl, ttl summary, memory estimate, forecast, scan_seconds, and
    ``histogram`` (the TTLs, for a sum over nodes). ``use_script=False`` reads TTLs with
    pipelines only: on a cluster node the keys of one SCAN batch hash to many slots, which one
    Lua call may not touch (CROSSSLOT).
    """
    reservoir = Reservoir(sample, rng)
    passed = read_pass(client, pattern, use_script=use_script, clock=clock, on_keys=reservoir.offer)
    memory = estimate_memory(client, reservoir.items, passed.count)
    return dict(
        count=passed.count,
        no_ttl=passed.no_ttl,
        ttl=ttl_summary(passed.histogram),
        forecast=forecast(passed.histogram, passed.no_ttl),
        memory=memory,
        scan_seconds=round(passed.seconds, 4),
        ttl_method=passed.method,
        histogram=passed.histogram,
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
    primary; top-level figures are the sums, and the TTL figures come from the nodes' histograms
    added up (exact, as over one list of every TTL). ``broker_keys`` is the one finder's report
    (``find_topology_broker_keys``): every database of the server, as result_keys_wait and
    redis_memory see it; ``open_db(node, number)`` connects to another database (by default a
    client like the node's, on that database).
    """
    started = clock()
    primaries = topology.primaries
    is_cluster = getattr(topology, "cluster_enabled", topology.mode == "cluster")
    per_node_sample = int(math.ceil(float(sample) / len(primaries))) if sample > 0 else 0
    nodes, methods = [], set()
    histogram = TtlHistogram()
    count = no_ttl = group_results = dbsize = used_memory = estimated = sampled = 0
    maxmemories, policies = [], set()
    # Before our own SCAN and TTL reads: instantaneous_ops_per_sec and the kbps figures are
    # averages over the last seconds, and would otherwise report our measuring as the app's load.
    stats = [server_stats(node.client) for node in primaries]
    for node in primaries:
        client = node.client
        measured = measure_result_keys(client, pattern, per_node_sample, rng, clock, use_script=not is_cluster)
        histogram.merge(measured["histogram"])
        methods.add(measured["ttl_method"])
        groups = count_keys(client, GROUP_PATTERN) if pattern != GROUP_PATTERN else measured["count"]
        memory_info = client.info("memory")
        node_dbsize = client.dbsize()
        policy = as_text(memory_info.get("maxmemory_policy"))
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
    broker_keys, _per_db, chord_keys = find_topology_broker_keys(topology, open_db)
    # A count of 0 verifies nothing: say where result-shaped keys are instead.
    elsewhere = locate_result_keys(primaries[0].client, pattern) if count == 0 else None
    return dict(
        elsewhere=elsewhere,
        warnings=[elsewhere["warning"]] if elsewhere else [],
        count=count,
        no_ttl=no_ttl,
        ttl=ttl_summary(histogram),
        forecast=forecast(histogram, no_ttl),
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
            name = as_text(key)
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
    "DEFAULT_PATTERN", "GROUP_PATTERN", "Reservoir", "count_keys", "estimate_memory",
    "forecast", "locate_result_keys", "measure_result_keys", "percentile", "scan_keys", "server_stats",
    "topology_result_keys_report", "ttl_summary",
]
