# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RedisProbe's methods over every primary of a topology, found again after a failover."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.celery_ops.lean_results.plugins.module_utils._keyspace import TtlHistogram, TtlPass
from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_connection import (
    RedisModuleError,
    connect_node,
    make_client,
    parse_host_port,
    sentinel_params,
    server_version,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys import DEFAULT_PATTERN
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.errors import (
    ResultKeysWaitError,
    TopologyChanged,
    is_transient,
    quietly,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.expedite import (
    clamp_batch_size,
    merge_pacing,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.node import (
    EFFORT_MARKER_KEY,
    RedisProbe,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._text import as_text

# Counters of INFO that add up over primaries (each node expires and holds its own keys).
SUMMED_STATUS = ("used_memory", "expired_keys", "keys", "expires")


class TopologyProbe(object):
    """RedisProbe's methods over every primary of a topology.

    Keys live on primaries: a cluster's are spread over all of them (counts are summed, each
    node expedited on its own with pipelines, never a cross-slot script); with replication or
    Sentinel there is one, the current primary. After a lost connection, when a primary reports
    itself a replica (a failover demoted it), or when the Sentinel names another primary (a
    failover promoted one while the old primary still answers as a master, until Sentinel
    demotes it some seconds later), the next call finds the topology again with ``resolve()``,
    so the wait follows the current primary.
    ``active-expire-effort`` is raised per primary and each gets its own value back.
    """

    def __init__(self, resolve, params, pattern=DEFAULT_PATTERN, batch_size=1000, clock=time.monotonic,
                 results_only=True):
        self.resolve = resolve  # () -> a connected Topology
        self.results_only = results_only
        self.capped_before = 0  # by probes of a topology found before the current one
        self.params = params
        self.pattern = pattern
        self.batch_size, self.warnings = clamp_batch_size(batch_size)
        self.clock = clock
        self.topology = None
        self.probes = []  # [(Node, RedisProbe)] of the current primaries
        self.stale = True
        self.boosted = {}  # endpoint -> (node, effort before the boost)
        self.marker_warnings = []
        self.per_node = {}  # endpoint -> what the report shows per node
        self.topology_changes = []
        self._sentinel = None

    # -- the primaries, found again when stale
    def connect(self):
        """Find the topology now; RedisModuleError (not retried) when the first look fails."""
        self._adopt(self.resolve())
        return self

    def _adopt(self, topology):
        before = [node.endpoint for node in self.topology.primaries] if self.topology is not None else None
        self.capped_before += sum(probe.capped_so_far for _node, probe in self.probes)
        self.close()
        self.topology = topology
        scripts = not topology.cluster_enabled
        self.probes = [(node, RedisProbe(node.client, self.pattern, self.batch_size,
                                         server_version(node.client, self.params), self.clock, scripts,
                                         self.results_only))
                       for node in topology.primaries]
        self.stale = False
        now = [node.endpoint for node in topology.primaries]
        if before is not None and before != now:
            self.topology_changes.append(dict(primaries_before=before, primaries_after=now))
        for endpoint in now:
            self.per_node.setdefault(endpoint, dict(endpoint=endpoint, role="primary"))

    @property
    def cluster(self):
        return bool(self.topology is not None and self.topology.cluster_enabled)

    def _current(self):
        if self.stale:
            try:
                topology = self.resolve()
            except RedisModuleError as exc:
                raise TopologyChanged("cannot find the primaries again: %s" % exc)
            self._adopt(topology)
        return self.probes

    def _each(self, operation):
        """``operation(node, probe)`` on every current primary; a transient failure marks the topology stale."""
        results = []
        for node, probe in self._current():
            try:
                results.append(operation(node, probe))
            except Exception as exc:
                if is_transient(exc):
                    self.stale = True
                raise
        return results

    def close(self):
        if self.topology is not None:
            self.topology.close()
        if self._sentinel is not None:
            self._sentinel.close()
            self._sentinel = None

    def _sentinel_names(self):
        """The primary the Sentinel that named ours names now (None when it does not answer)."""
        if self._sentinel is None:
            host, port = parse_host_port(self.topology.sentinel, 26379)
            self._sentinel = make_client(sentinel_params(self.params, host, port))
        try:
            address = self._sentinel.sentinel_get_master_addr_by_name(self.params.get("sentinel_master"))
        except Exception:  # pylint: disable=broad-except  # a Sentinel away for a moment: the nodes still tell
            return None
        return "%s:%s" % (as_text(address[0]), int(address[1])) if address else None

    # -- RedisProbe's interface
    def count(self):
        counts = self._each(lambda node, probe: (node.endpoint, probe.count()))
        for endpoint, count in counts:
            self.per_node[endpoint]["count"] = count
        return sum(count for _endpoint, count in counts)

    def status(self):
        statuses = self._each(lambda node, probe: (node, probe.status()))
        demoted = [node.endpoint for node, status in statuses if status.get("role") not in (None, "master")]
        if demoted:
            self.stale = True
            raise TopologyChanged("%s is no longer a primary (a failover?)" % ", ".join(demoted))
        if self.topology.sentinel:
            named = self._sentinel_names()
            if named is not None and named != self.topology.primary.endpoint:
                self.stale = True
                raise TopologyChanged("the Sentinel names %s as primary now, not %s (a failover)"
                                      % (named, self.topology.primary.endpoint))
        summed = {}
        for name in SUMMED_STATUS:
            values = [status.get(name) for _node, status in statuses]
            summed[name] = sum(values) if all(value is not None for value in values) else None
        summed.update(run_id=",".join(str(status.get("run_id")) for _node, status in statuses),
                      client_id=tuple(status.get("client_id") for _node, status in statuses))
        return summed

    def active_expire_effort(self):
        """The lowest setting over the primaries (None when one has none: before Redis 6)."""
        values = self._each(lambda node, probe: probe.active_expire_effort())
        return None if any(value is None for value in values) else min(values)

    @property
    def capped_so_far(self):
        return self.capped_before + sum(probe.capped_so_far for _node, probe in self.probes)

    @property
    def skipped(self):
        return sum(probe.skipped for _node, probe in self.probes)

    def recorded_effort(self):
        """The original value a run kept in the server (the lowest over the primaries), or None."""
        values = [value for value in self._each(lambda node, probe: probe.recorded_effort()) if value is not None]
        return min(values) if values else None

    def set_active_expire_effort(self, value):
        """Set ``value`` on every current primary, remembering each one's own value the first time.

        The value remembered is the one kept in the server by a run that did not finish, if any
        (the current value is then that run's boost), else the current one, which is then kept there.
        """
        def boost(node, probe):
            if node.endpoint not in self.boosted:
                original = quietly(probe.recorded_effort)
                if original is None:
                    original = probe.active_expire_effort()
                if not quietly(lambda: probe.record_effort(original)) and not self.cluster:
                    self.marker_warnings.append("could not keep the original active-expire-effort in the "
                                                "server (key %s): a run killed before it restores cannot "
                                                "be undone by the next one" % EFFORT_MARKER_KEY)
                self.boosted[node.endpoint] = (node, original)
                self.per_node[node.endpoint]["active_expire_effort"] = original
            probe.set_active_expire_effort(value)
        self._each(boost)

    def restore_active_expire_effort(self):
        """Give every boosted node its own value back, also a node that is no primary any more."""
        current = dict((node.endpoint, probe) for node, probe in self._current())
        for endpoint, (node, previous) in sorted(self.boosted.items()):
            if endpoint in current:
                current[endpoint].set_active_expire_effort(previous)
                quietly(current[endpoint].forget_effort)
                continue
            client = connect_node(self.params, node.host, node.port)  # demoted by a failover
            try:
                client.config_set("active-expire-effort", previous)
            finally:
                client.close()
        self.boosted = {}

    def read_ttls(self, deadline=None, above=None):
        return self._merge(self._each(lambda node, probe: probe.read_ttls(deadline, above)))

    def expedite(self, cap_seconds, no_ttl_too=False, method="auto", deadline=None):
        if method == "lua" and self.cluster:
            raise ResultKeysWaitError("expedite_method: lua cannot run on a Redis Cluster: one SCAN batch holds keys "
                                      "of many slots and a script may touch only one (CROSSSLOT). Use auto or "
                                      "pipeline (PTTL and PEXPIRE pipelined per node)")

        def one(node, probe):
            passed = probe.expedite(cap_seconds, no_ttl_too, method, deadline)
            self.per_node[node.endpoint]["expedited"] = passed.capped
            return passed
        return self._merge(self._each(one))

    def _merge(self, passes):
        """One TtlPass from one per node: counts summed, histograms on the first pass's clock."""
        if len(passes) == 1:
            return passes[0]
        origin = min(passed.origin for passed in passes)
        histogram = TtlHistogram()
        for passed in passes:
            histogram.merge(passed.histogram, shift=passed.origin - origin)
        methods = set(passed.method for passed in passes)
        merged = TtlPass(sum(p.count for p in passes), sum(p.no_ttl for p in passes), histogram,
                         capped=sum(p.capped for p in passes),
                         method=methods.pop() if len(methods) == 1 else "pipeline",
                         seconds=self.clock() - origin, origin=origin, complete=all(p.complete for p in passes))
        aboves = [p.above for p in passes]
        merged.above = None if any(value is None for value in aboves) else sum(aboves)
        merged.pacing = merge_pacing([p.pacing for p in passes])
        return merged

    def report(self):
        """Per node (every primary the wait used): endpoint, role, last count, keys capped, effort before."""
        current = [node.endpoint for node in self.topology.primaries] if self.topology is not None else []
        nodes = []
        for endpoint in current + sorted(set(self.per_node) - set(current)):
            entry = dict(self.per_node[endpoint])
            if endpoint not in current:
                entry["role"] = "former primary"
            nodes.append(entry)
        return nodes


__all__ = ["TopologyProbe"]
