# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait for old Celery result keys to expire, then verify the fall.

Three parts, each testable on its own:

- ``RedisProbe``: the slice of Redis the wait needs (count with SCAN, a status read, the
  ``active-expire-effort`` setting, a TTL pass, and the expedite pass that caps old TTLs);
  ``TopologyProbe``: the same over every primary of a cluster or the current primary Sentinel
  names, found again after a lost connection or a failover.
- ``plan_wait``: pure arithmetic; from TTLs (or a ``result_keys_info`` summary) it computes when
  the target can be met and when the last old key expires.
- ``wait_for_fall``: the loop, with an injectable monotonic clock, sleep and wall clock. It sleeps
  until the forecast says the target can be met, then polls; it never sleeps past ``timeout``,
  and returns at once (``met: false``, ``retry_after``) when the forecast is beyond it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import math
import time

from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_connection import (
    RedisModuleError,
    connect_node,
    make_client,
    parse_host_port,
    sentinel_params,
    server_version,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._broker_keys import (
    broker_names,
    find_topology_broker_keys,
    is_result_key,
    is_result_pattern,
    names_matching,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys import (
    DEFAULT_PATTERN,
    TtlReader,
    _is_script_refusal,
    count_keys,
    scan_keys,
)

BOOST_EFFORT = 10
# The value before a boost is kept in the server itself, so a run killed before it restored
# (SIGKILL, a lost host) leaves the truth behind: the next run restores it, never the boost.
EFFORT_MARKER_KEY = "lean_results:active-expire-effort:original"
EFFORT_MARKER_TTL = 7 * 86400
BOOST_REFUSED = ("boost_active_expire needs CONFIG GET and CONFIG SET of active-expire-effort; nothing was "
                 "changed (grant +config|get +config|set, or set boost_active_expire: false)")
# Counting may take at most this share of wall time: with millions of keys to SCAN, the interval
# stretches rather than keep the server busy. Measured on the fastest count seen, which is the
# walk over the keyspace; a slower count is reclaiming expired keys, work Redis owes anyway.
MAX_POLL_DUTY = 0.2
# Wake this long after the forecast moment (TTLs are rounded up to whole seconds already).
WAKE_AFTER_FORECAST = 0.05
# Between polls, a status read (INFO) this often notices restarts and re-applies the boost.
HEARTBEAT_SECONDS = 5.0
# Before the forecast, a full count at most this often, for the timeline.
QUIET_SAMPLE_MIN_SECONDS = 60.0
# Moments closer than this are the same moment (float sums of sleeps do not add up exactly).
CLOCK_SLACK = 1e-6
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 2.0
EXPEDITE_METHODS = ("auto", "pipeline", "lua")

# Atomic cap of a batch: TTL check then PEXPIRE, so it needs no LT (works before Redis 7) and
# never gives a TTL to a key that has none unless asked. A key whose name is not a Celery result
# key ([prefix]celery-task-meta-<id>, [prefix]celery-taskset-meta-<id>[.j/.t/.s]) is never given a
# TTL, and with ARGV[3] = '1' (unless allow_non_result_pattern) never capped either. Returns capped, no_ttl, gone, and the
# remaining TTLs as a histogram "tenths-of-seconds:count,..." (tiny after a cap: nearly all equal).
EXPEDITE_SCRIPT = """
local cap = tonumber(ARGV[1])
local fix_no_ttl = ARGV[2] == '1'
local results_only = ARGV[3] ~= '0'
local capped, no_ttl, gone, skipped = 0, 0, 0, 0
local hist = {}
local function is_result(key)
  for _, mark in ipairs({'celery-task-meta-', 'celery-taskset-meta-'}) do
    local _, last = string.find(key, mark, 1, true)
    if last and last < #key then return true end
  end
  return false
end
for _, key in ipairs(KEYS) do
  local ttl = redis.call('PTTL', key)
  local result_key = is_result(key)
  if ttl == -2 then
    gone = gone + 1
  else
    if not result_key and (results_only or ttl == -1) then
      skipped = skipped + 1
      if ttl == -1 then no_ttl = no_ttl + 1 end
    elseif ttl == -1 then
      no_ttl = no_ttl + 1
      if fix_no_ttl then
        redis.call('PEXPIRE', key, cap)
        capped = capped + 1
        ttl = cap
      end
    elseif ttl > cap then
      redis.call('PEXPIRE', key, cap)
      capped = capped + 1
      ttl = cap
    end
    if ttl >= 0 then
      local tenths = math.floor((ttl + 99) / 100)
      hist[tenths] = (hist[tenths] or 0) + 1
    end
  end
end
local out = {}
for tenths, n in pairs(hist) do out[#out + 1] = tenths .. ':' .. n end
return {capped, no_ttl, gone, table.concat(out, ','), skipped}
"""


class ResultKeysWaitError(Exception):
    """The wait failed; ``result`` carries the timeline and figures for the report.

    ``cause`` is the Redis error behind it, when there is one (the module words it).
    """

    def __init__(self, msg, result=None):
        super(ResultKeysWaitError, self).__init__(msg)
        self.result = result or {}
        self.cause = None
        self.context = None  # what the module says around its wording of ``cause``


class WaitInterrupted(BaseException):
    """SIGTERM or SIGHUP during the wait: unwind (restoring active-expire-effort), then report.

    A BaseException, like the KeyboardInterrupt of SIGINT, so no ``except Exception`` swallows it.
    """

    def __init__(self, signal_name):
        super(WaitInterrupted, self).__init__(signal_name)
        self.signal_name = signal_name


# -- the slice of Redis the wait needs ---------------------------------------------------------

class TtlHistogram(object):
    """When keys expire, as {seconds: keys}, rounded up: to 0.1 s within two minutes, else to 1 s.

    A million equal TTLs take one entry; a day of spread TTLs at most 86,400.
    """

    def __init__(self):
        self.counts = {}

    def add(self, seconds, keys=1):
        if seconds < 120:
            seconds = math.ceil(round(seconds * 10, 6)) / 10.0
        else:
            seconds = float(math.ceil(seconds))
        self.counts[seconds] = self.counts.get(seconds, 0) + keys

    def extend(self, ttls):
        for seconds in ttls:
            self.add(seconds)
        return self

    @property
    def total(self):
        return sum(self.counts.values())

    @property
    def max(self):
        return max(self.counts) if self.counts else None

    def above(self, limit):
        return sum(n for seconds, n in self.counts.items() if seconds > limit)

    def time_until_at_most(self, allowed):
        """Seconds until at most ``allowed`` of these keys are alive (0 when already so)."""
        alive = self.total
        if alive <= allowed:
            return 0
        for seconds in sorted(self.counts):
            alive -= self.counts[seconds]
            if alive <= allowed:
                return seconds
        return 0


class TtlPass(object):
    """What one pass over the keys found: live count, keys without TTL, TTLs, capped keys.

    ``histogram`` holds expiry moments in seconds after ``origin`` (a clock value); without an
    origin they count from the end of the pass.
    """

    def __init__(self, count, no_ttl, histogram, capped=0, method=None, seconds=0.0, origin=None):
        self.origin = origin
        self.count = count
        self.no_ttl = no_ttl
        self.histogram = histogram
        self.capped = capped
        self.method = method
        self.seconds = seconds


class RedisProbe(object):
    """Everything ``wait_for_fall`` asks of Redis, on one client (bytes, as ``connect`` returns).

    A stand-in with the same methods is all a unit test needs.
    """

    def __init__(self, client, pattern=DEFAULT_PATTERN, batch_size=1000, version=(7, 0, 0),
                 clock=time.monotonic, scripts=True, results_only=True):
        self.client = client
        # Cap only keys named like Celery results (allow_non_result_pattern lifts it for keys with a
        # TTL); a key without a TTL that is no result key is never given one.
        self.results_only = results_only
        # Keys capped so far, also when a pass fails half-way (a failure must say what was done).
        self.capped_so_far = 0
        self.skipped = 0
        self.pattern = pattern
        self.batch_size = batch_size
        self.version = tuple(version)
        self.clock = clock
        # A cluster node refuses a script whose keys hash to several slots (CROSSSLOT), and one
        # SCAN batch spans thousands: there, TTLs are read and capped with pipelines only.
        self.scripts = scripts
        self._script = None

    def count(self):
        return count_keys(self.client, self.pattern)

    def status(self):
        """{used_memory, run_id, client_id, role}: one INFO plus CLIENT ID (when allowed)."""
        info = self.client.info()
        client_id = None
        try:
            client_id = self.client.client_id()
        except Exception as exc:  # ACL without CLIENT ID: restarts are still seen by run_id
            if _is_transient(exc):
                raise
        return dict(used_memory=info.get("used_memory"), run_id=_text(info.get("run_id")),
                    client_id=client_id, role=_text(info.get("role")))

    def active_expire_effort(self):
        """The current setting, or None when the server has none (before Redis 6)."""
        reply = self.client.config_get("active-expire-effort")
        for name, value in reply.items():
            if _text(name) == "active-expire-effort":
                return int(value)
        return None

    def set_active_expire_effort(self, value):
        self.client.config_set("active-expire-effort", value)

    # The value before the boost, kept in the server (a key with a TTL); None on a cluster node,
    # where the key's slot may belong to another node.
    def recorded_effort(self):
        if not self.scripts:
            return None
        value = self.client.get(EFFORT_MARKER_KEY)
        try:
            return None if value is None else int(value)
        except ValueError:
            return None

    def record_effort(self, value):
        """Keep ``value`` as the original unless one is kept already; False on a cluster node."""
        if not self.scripts:
            return False
        self.client.set(EFFORT_MARKER_KEY, int(value), ex=EFFORT_MARKER_TTL, nx=True)
        return True

    def forget_effort(self):
        if self.scripts:
            self.client.delete(EFFORT_MARKER_KEY)

    def read_ttls(self):
        """Read-only pass: count, keys without TTL, and every TTL (as result_keys_info does)."""
        origin = self.clock()
        reader = TtlReader(self.client, use_script=self.scripts)
        histogram = TtlHistogram()
        count = no_ttl = 0
        for batch in scan_keys(self.client, self.pattern):
            ttls = reader.ttls(batch)
            offset = self.clock() - origin  # each batch's TTLs count from when they were read
            for ttl in ttls:
                if ttl == -2:
                    continue
                count += 1
                if ttl == -1:
                    no_ttl += 1
                else:
                    histogram.add(offset + ttl)
        return TtlPass(count, no_ttl, histogram, method="lua" if reader.use_script else "pipeline",
                       seconds=self.clock() - origin, origin=origin)

    def expedite(self, cap_seconds, no_ttl_too=False, method="auto"):
        """Cap every matching TTL above ``cap_seconds`` (and, if asked, give keys without one).

        ``lua``: one atomic script call per SCAN batch. ``pipeline``: ``PTTL`` and ``PEXPIRE ..
        LT`` pipelined per batch (Redis 7+); before Redis 7 (no LT) ``PTTL`` then ``PEXPIRE`` of
        the keys found above the cap, which a concurrent write could race. ``auto``: Lua, or the
        pipeline when scripts are refused (ACL, managed services).
        """
        started = self.clock()
        cap_ms = int(cap_seconds * 1000)
        totals = dict(count=0, no_ttl=0, capped=0)
        histogram = TtlHistogram()
        use = "lua" if method == "lua" or (method == "auto" and self.scripts) else "pipeline"
        for batch in scan_keys(self.client, self.pattern, count=self.batch_size):
            if use == "lua":
                try:
                    self._lua_batch(batch, cap_ms, no_ttl_too, totals, histogram, started)
                    continue
                except Exception as exc:
                    if method == "lua" or not _is_script_refusal(exc):
                        raise
                    use = "pipeline"
            self._pipeline_batch(batch, cap_ms, no_ttl_too, totals, histogram, started)
        if use == "pipeline" and self.version < (7, 0, 0):
            use = "pipeline-ttl-check"
        return TtlPass(totals["count"], totals["no_ttl"], histogram, capped=totals["capped"],
                       method=use, seconds=self.clock() - started, origin=started)

    def _lua_batch(self, batch, cap_ms, no_ttl_too, totals, histogram, origin):
        if self._script is None:
            self._script = self.client.register_script(EXPEDITE_SCRIPT)
        reply = self._script(keys=batch, args=[cap_ms, 1 if no_ttl_too else 0, 1 if self.results_only else 0])
        capped, no_ttl, gone, packed = reply[:4]
        self.skipped += int(reply[4]) if len(reply) > 4 else 0
        self.capped_so_far += int(capped)
        totals["capped"] += int(capped)
        totals["no_ttl"] += int(no_ttl)
        totals["count"] += len(batch) - int(gone)
        offset = self.clock() - origin
        for pair in _text(packed).split(","):
            if pair:
                tenths, keys = pair.split(":")
                histogram.add(offset + int(tenths) / 10.0, int(keys))

    def _pipeline_batch(self, batch, cap_ms, no_ttl_too, totals, histogram, origin):
        others = [key for key in batch if not is_result_key(key)]
        if others:  # never a TTL for them; capped only when the pattern was explicitly allowed
            batch = [key for key in batch if is_result_key(key)]
            self._pipeline_others(others, cap_ms, totals, histogram, origin)
        if not batch:
            return
        has_lt = self.version >= (7, 0, 0)
        pipe = self.client.pipeline(transaction=False)
        if no_ttl_too and has_lt:
            # One round trip: the TTL before, and the idempotent cap (LT also caps "no TTL").
            for key in batch:
                pipe.execute_command("PTTL", key)
                pipe.execute_command("PEXPIRE", key, cap_ms, "LT")
            replies = pipe.execute()
            offset = self.clock() - origin
            before, capped_flags = replies[0::2], replies[1::2]
            for ttl, flag in zip(before, capped_flags):
                ttl = int(ttl)
                if ttl == -2:
                    continue
                totals["count"] += 1
                if ttl == -1:
                    totals["no_ttl"] += 1
                totals["capped"] += int(flag)
                self.capped_so_far += int(flag)
                histogram.add(offset + (cap_ms if int(flag) else ttl) / 1000.0)
            return
        for key in batch:
            pipe.execute_command("PTTL", key)
        ttls = [int(value) for value in pipe.execute()]
        offset = self.clock() - origin
        to_cap = []
        for key, ttl in zip(batch, ttls):
            if ttl == -2:
                continue
            totals["count"] += 1
            if ttl == -1:
                totals["no_ttl"] += 1
                if not no_ttl_too:
                    continue
            if ttl == -1 or ttl > cap_ms:
                to_cap.append((key, ttl))
            else:
                histogram.add(offset + ttl / 1000.0)
        if not to_cap:
            return
        pipe = self.client.pipeline(transaction=False)
        for key, ttl in to_cap:
            if has_lt and ttl != -1:
                pipe.execute_command("PEXPIRE", key, cap_ms, "LT")
            else:
                pipe.execute_command("PEXPIRE", key, cap_ms)
        replies = pipe.execute()
        offset = self.clock() - origin
        for (key, ttl), flag in zip(to_cap, replies):
            totals["capped"] += int(flag)
            self.capped_so_far += int(flag)
            histogram.add(offset + (cap_ms if int(flag) else ttl) / 1000.0)

    def _pipeline_others(self, keys, cap_ms, totals, histogram, origin):
        """Keys not named like results: counted; capped (never given a TTL) only if allowed."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.execute_command("PTTL", key)
        ttls = [int(value) for value in pipe.execute()]
        offset = self.clock() - origin
        to_cap = []
        for key, ttl in zip(keys, ttls):
            if ttl == -2:
                continue
            totals["count"] += 1
            if ttl == -1:
                totals["no_ttl"] += 1
                self.skipped += 1
            elif self.results_only or ttl <= cap_ms:
                self.skipped += 1 if self.results_only else 0
                histogram.add(offset + ttl / 1000.0)
            else:
                to_cap.append((key, ttl))
        if not to_cap:
            return
        pipe = self.client.pipeline(transaction=False)
        for key, _ttl in to_cap:
            pipe.execute_command("PEXPIRE", key, cap_ms)
        for (key, ttl), flag in zip(to_cap, pipe.execute()):
            totals["capped"] += int(flag)
            self.capped_so_far += int(flag)
            histogram.add(offset + (cap_ms if int(flag) else ttl) / 1000.0)


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _quietly(operation):
    """``operation()``, or None when Redis refuses it (an ACL without GET/SET on our key, MOVED)."""
    try:
        return operation()
    except Exception as exc:
        if _is_transient(exc):
            raise
        return None


def _is_transient(exc):
    """A dropped connection, a timeout, or a server still loading its data after a restart."""
    names = set(klass.__name__ for klass in type(exc).__mro__)
    return bool(names & set(("ConnectionError", "TimeoutError", "BusyLoadingError")))


class TopologyChanged(ConnectionError):
    """The primaries are not where they were (failover, lost node): find them again and retry.

    A ConnectionError, so the wait treats it like a dropped connection (backoff, retry).
    """


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
        self.batch_size = batch_size
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
                if _is_transient(exc):
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
        except Exception:  # a Sentinel away for a moment: the data nodes still say where they stand
            return None
        return "%s:%s" % (_text(address[0]), int(address[1])) if address else None

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
        used = [status.get("used_memory") for _node, status in statuses]
        return dict(used_memory=sum(used) if all(value is not None for value in used) else None,
                    run_id=",".join(str(status.get("run_id")) for _node, status in statuses),
                    client_id=tuple(status.get("client_id") for _node, status in statuses))

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
                original = _quietly(probe.recorded_effort)
                if original is None:
                    original = probe.active_expire_effort()
                if not _quietly(lambda: probe.record_effort(original)) and not self.cluster:
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
                _quietly(current[endpoint].forget_effort)
                continue
            client = connect_node(self.params, node.host, node.port)  # demoted by a failover
            try:
                client.config_set("active-expire-effort", previous)
            finally:
                client.close()
        self.boosted = {}

    def read_ttls(self):
        return self._merge(self._each(lambda node, probe: probe.read_ttls()))

    def expedite(self, cap_seconds, no_ttl_too=False, method="auto"):
        if method == "lua" and self.cluster:
            raise ResultKeysWaitError("expedite_method: lua cannot run on a Redis Cluster: one SCAN batch holds keys "
                                      "of many slots and a script may touch only one (CROSSSLOT). Use auto or "
                                      "pipeline (PTTL and PEXPIRE pipelined per node)")

        def one(node, probe):
            passed = probe.expedite(cap_seconds, no_ttl_too, method)
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
            shift = passed.origin - origin
            for seconds, keys in passed.histogram.counts.items():
                histogram.add(shift + seconds, keys)
        methods = set(passed.method for passed in passes)
        return TtlPass(sum(p.count for p in passes), sum(p.no_ttl for p in passes), histogram,
                       capped=sum(p.capped for p in passes),
                       method=methods.pop() if len(methods) == 1 else "pipeline",
                       seconds=self.clock() - origin, origin=origin)

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


# -- what the pattern may touch -----------------------------------------------------------------

def guard_pattern(probe, pattern, db, open_db, allow_non_result_pattern=False, expedite=False):
    """Refuse, before anything is read or changed, a pattern that reaches beyond result keys.

    A pattern matching a broker key (in the database the wait scans) is refused outright with
    expedite (no reason to cap a queue's TTL), and without expedite unless allowed; a pattern that
    is not a result-key pattern (``*celery-task-meta-*``, ``*celery-taskset-meta-*``, which also
    covers the chord counters) unless allowed. Returns the broker keys of the whole topology (the
    ``broker_keys`` every module reports).
    """
    broker, per_db, _chords = find_topology_broker_keys(probe.topology, open_db)
    here = per_db.get(0 if probe.topology.cluster_enabled else db) or {}
    matching = names_matching(pattern, broker_names(here))
    if matching and (expedite or not allow_non_result_pattern):
        raise ResultKeysWaitError(
            "refusing pattern %r: it matches Celery broker keys (%s)%s, and %s. Use the result-key pattern, "
            "e.g. celery-task-meta-* (with your global_keyprefix in front, if any)"
            % (pattern, ", ".join(sorted(matching)[:6]) + (", ..." if len(matching) > 6 else ""),
               " in db %s" % db if db else "",
               "expedite would give queued tasks a TTL" if expedite else
               "they would count as result keys (set allow_non_result_pattern: true to count them anyway)"),
            dict(broker_keys=broker, expedited=0))
    if not allow_non_result_pattern and not is_result_pattern(pattern):
        raise ResultKeysWaitError(
            "refusing pattern %r: it is not a Celery result-key pattern, so it may match keys that are not "
            "results (a queue, sessions, ...). A result pattern holds celery-task-meta- or "
            "celery-taskset-meta- literally, e.g. celery-task-meta-* or myapp:celery-task-meta-*. Set "
            "allow_non_result_pattern: true to use it anyway (keys without a TTL that are not named like "
            "results are still never given one)" % pattern, dict(broker_keys=broker, expedited=0))
    return broker


# -- pure planning -------------------------------------------------------------------------------

def parse_baseline(value):
    """The ``baseline`` option: None, an int count, or the whole ``result_keys_info`` result.

    Returns {count, ttl_max, no_ttl} (the latter two None when unknown) or None.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ResultKeysWaitError("baseline must be a key count or the result of result_keys_info, got %r" % value)
    if isinstance(value, dict):
        if "count" not in value:
            raise ResultKeysWaitError("baseline is a dict without 'count': pass the registered result of "
                                      "result_keys_info, or a plain count")
        ttl = value.get("ttl") or {}
        return dict(count=_as_int(value["count"], "baseline.count"),
                    ttl_max=None if ttl.get("max") is None else _as_int(ttl["max"], "baseline.ttl.max"),
                    no_ttl=None if value.get("no_ttl") is None else _as_int(value["no_ttl"], "baseline.no_ttl"))
    return dict(count=_as_int(value, "baseline"), ttl_max=None, no_ttl=None)


def _as_int(value, name):
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ResultKeysWaitError("%s must be a whole number of keys, got %r" % (name, value))
    if number < 0:
        raise ResultKeysWaitError("%s must not be negative, got %d" % (name, number))
    return number


def target_for(baseline_count, min_reduction=None, target_count=None):
    """Highest final count that meets the target, or None when no target was set."""
    limits = []
    if target_count is not None:
        limits.append(target_count)
    if min_reduction is not None:
        limits.append(int(math.floor(baseline_count / float(min_reduction))))
    return min(limits) if limits else None


def reduction(baseline_count, final_count):
    """baseline / final; a final of 0 divides by 1, so the ratio stays a finite number."""
    return round(float(baseline_count) / max(final_count, 1), 3)


def is_met(baseline_count, final_count, target):
    if target is None:  # no explicit target: the count must have fallen
        return final_count < baseline_count or final_count == 0
    return final_count <= target


def plan_wait(at, histogram, persistent, target, ttl_max=None):
    """When the target can first be met, and when the last key with a TTL expires.

    ``at``: seconds since start when the TTLs were read; ``histogram``: their TTLs (or None with
    only ``ttl_max`` known); ``persistent``: keys that will never expire. New keys written
    meanwhile are unknown, so the forecast is the earliest moment, not a promise.
    Returns {target_met_after, last_expiry_after, reachable}.
    """
    if histogram is not None and histogram.total:
        last = histogram.max
    else:
        last = ttl_max or 0
    last_expiry_after = at + last
    if target is None:
        return dict(target_met_after=last_expiry_after, last_expiry_after=last_expiry_after, reachable=True)
    if persistent > target:
        return dict(target_met_after=None, last_expiry_after=last_expiry_after, reachable=False)
    if histogram is not None and histogram.total:
        when = at + histogram.time_until_at_most(target - persistent)
    else:
        when = last_expiry_after
    return dict(target_met_after=when, last_expiry_after=last_expiry_after, reachable=True)


def iso_timestamp(epoch):
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


# -- the wait ------------------------------------------------------------------------------------

class WaitSettings(object):
    """The module options the wait uses (a plain object, so tests build it in one line)."""

    def __init__(self, baseline=None, max_ttl=None, expedite=False, expedite_no_ttl=False,
                 expedite_method="auto", min_reduction=None, target_count=None, timeout=600,
                 poll_interval=2.0, boost_active_expire=False, fail_on_unmet=True, check_mode=False,
                 allow_non_result_pattern=False):
        self.baseline = baseline
        self.max_ttl = max_ttl
        self.expedite = expedite
        self.expedite_no_ttl = expedite_no_ttl
        self.expedite_method = expedite_method
        self.min_reduction = min_reduction
        self.target_count = target_count
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.boost_active_expire = boost_active_expire
        self.fail_on_unmet = fail_on_unmet
        self.check_mode = check_mode
        self.allow_non_result_pattern = allow_non_result_pattern

    def validate(self):
        """Refuse any option that could cap keys and then fail: every check before a side effect."""
        for name, whole in (("max_ttl", True), ("min_reduction", False), ("target_count", True),
                            ("timeout", True), ("poll_interval", False)):
            check_number(name, getattr(self, name), whole)
        if self.expedite and self.max_ttl is None:
            raise ResultKeysWaitError("expedite needs max_ttl: the TTL (the new result_expires) to cap old keys at")
        if self.max_ttl is not None and self.max_ttl < 1:
            raise ResultKeysWaitError("max_ttl must be at least 1 second, got %s" % self.max_ttl)
        if self.min_reduction is not None and self.min_reduction < 1:
            raise ResultKeysWaitError("min_reduction is the ratio baseline/final and must be 1 or more, got %s"
                                      % self.min_reduction)
        if self.target_count is not None and self.target_count < 0:
            raise ResultKeysWaitError("target_count must be 0 or more, got %d" % self.target_count)
        if self.timeout < 0:
            raise ResultKeysWaitError("timeout must be 0 or more seconds, got %s" % self.timeout)
        if self.poll_interval <= 0:
            raise ResultKeysWaitError("poll_interval must be more than 0 seconds, got %s" % self.poll_interval)
        if self.expedite_method not in EXPEDITE_METHODS:
            raise ResultKeysWaitError("expedite_method must be one of %s" % ", ".join(EXPEDITE_METHODS))
        return self


class _Wait(object):
    """One run of the wait: the state the loop shares (timeline, boost, connection identity)."""

    def __init__(self, probe, settings, clock, sleep, wall):
        self.probe = probe
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.started = clock()
        self.started_wall = wall()
        self.timeline = []
        self.progress = []
        self.warnings = []
        self.identity = None
        self.pending_reconnect = None
        self.boost_previous = None
        self.boost_touched = False
        self.boost_applied = False
        self.hard_end = float(settings.timeout)
        self.last_count = None
        self.fastest_poll_seconds = None

    def elapsed(self):
        return self.clock() - self.started

    def note(self, text):
        self.progress.append("t=%.1fs %s" % (self.elapsed(), text))

    def event(self, name, **fields):
        entry = dict(t=round(self.elapsed(), 3), event=name)
        entry.update(fields)
        self.timeline.append(entry)
        return entry

    # Every Redis call of the loop goes through here: transient failures are retried with backoff
    # until the end of the wait, and the recovery is written to the timeline.
    def call(self, operation):
        failures = 0
        first_error = None
        delay = BACKOFF_FIRST
        while True:
            try:
                value = operation()
            except Exception as exc:
                if not _is_transient(exc):
                    raise
                failures += 1
                first_error = first_error or "%s: %s" % (type(exc).__name__, exc)
                if self.elapsed() + delay > max(self.hard_end, 0) + BACKOFF_MAX * 5:
                    raise ResultKeysWaitError(
                        "lost the connection to Redis and could not get it back before the end of the wait "
                        "(%d attempts, first error %s)" % (failures, first_error))
                self.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            if failures:
                self.pending_reconnect = self.event("reconnected", attempts=failures, error=first_error,
                                                    restarted=None)
                self.note("reconnected after %d failed attempts (%s)" % (failures, first_error))
            return value

    def check_identity(self):
        """Notice a restart (new run_id) or a silently re-opened connection (new client id)."""
        status = self.call(self.probe.status)
        identity = (status.get("run_id"), status.get("client_id"))
        pending, self.pending_reconnect = self.pending_reconnect, None
        if self.identity is not None and (identity != self.identity or pending is not None):
            restarted = identity[0] != self.identity[0]
            if pending is None:  # the client re-opened its connection by itself
                pending = self.event("reconnected", attempts=0, error=None, restarted=None)
            pending["restarted"] = restarted
            if restarted:
                self.note("the server restarted (new run_id)")
                self.reapply_boost()
        self.identity = identity
        return status

    def sample(self, count=None):
        """Count (unless a pass just counted) and read the status; one timeline entry."""
        if count is None:
            started = self.clock()
            count = self.call(self.probe.count)
            took = self.clock() - started
            if self.fastest_poll_seconds is None or took < self.fastest_poll_seconds:
                self.fastest_poll_seconds = took
        status = self.check_identity()
        self.last_count = count
        self.timeline.append([round(self.elapsed(), 3), count, status.get("used_memory")])
        return count

    # -- active-expire-effort, restored on every exit path
    def recorded_effort(self):
        recorded = getattr(self.probe, "recorded_effort", None)
        return None if recorded is None else self.call(lambda: _quietly(recorded))

    def apply_boost(self):
        current = self.call(self.probe.active_expire_effort)
        if current is None:
            self.warnings.append("boost_active_expire ignored: this server has no active-expire-effort (Redis 6+)")
            return
        recorded = self.recorded_effort()
        previous = current if recorded is None else recorded
        if recorded is not None and recorded != current:
            self.note("active-expire-effort is %d, but a run that did not finish kept %d as the original: "
                      "%d is restored at the end" % (current, recorded, recorded))
        self.boost_previous = previous
        if current >= BOOST_EFFORT and recorded is None:
            self.note("active-expire-effort already %d" % current)
            return
        self.call(lambda: self.probe.set_active_expire_effort(BOOST_EFFORT))
        self.boost_applied = self.boost_touched = True
        for text in getattr(self.probe, "marker_warnings", []):
            if text not in self.warnings:
                self.warnings.append(text)
        self.event("boost", active_expire_effort=BOOST_EFFORT, previous=previous)
        self.note("active-expire-effort %d -> %d" % (previous, BOOST_EFFORT))

    def check_boost_access(self):
        """Before any side effect: CONFIG GET and SET of active-expire-effort must be allowed.

        SET writes the value the server already has, so the check changes nothing.
        """
        try:
            current = self.probe.active_expire_effort()
            if current is not None:
                self.probe.set_active_expire_effort(current)
        except Exception as exc:
            if _is_transient(exc):
                raise
            error = ResultKeysWaitError("%s: %s" % (BOOST_REFUSED, exc))
            error.cause, error.context = exc, BOOST_REFUSED
            raise error
        return current

    def reapply_boost(self):
        if not self.boost_applied:
            return
        current = self.call(self.probe.active_expire_effort)
        if current != BOOST_EFFORT:
            self.call(lambda: self.probe.set_active_expire_effort(BOOST_EFFORT))
            self.event("boost", active_expire_effort=BOOST_EFFORT, previous=current, reapplied=True)

    def restore_boost(self):
        if not self.boost_applied:
            return None
        restore = getattr(self.probe, "restore_active_expire_effort", None)  # per node, on a topology
        try:
            self.call(restore or (lambda: self.probe.set_active_expire_effort(self.boost_previous)))
        except Exception as exc:  # never hide the wait's own outcome behind a restore failure
            self.warnings.append("could not restore active-expire-effort to %s: %s" % (self.boost_previous, exc))
            return False
        self.event("boost restored", active_expire_effort=self.boost_previous)
        return True


def check_number(name, value, whole):
    """A real, finite number (never a bool: YAML ``yes`` is not 1), or ResultKeysWaitError."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResultKeysWaitError("%s must be a %s, got %r (%s)" % (
            name, "whole number" if whole else "number", value, type(value).__name__))
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise ResultKeysWaitError("%s must be a finite number, got %r" % (name, value))
    if whole and value != int(value):
        raise ResultKeysWaitError("%s must be a whole number, got %r" % (name, value))


def wait_for_fall(probe, settings, clock=time.monotonic, sleep=time.sleep, wall=time.time):
    """Plan, optionally expedite, wait and verify. Returns the result dict.

    Raises ResultKeysWaitError (with ``result``) when the target is not met by the deadline and
    ``fail_on_unmet`` is set, when the target can never be met, when Redis stays away or
    refuses a command, and on SIGTERM/SIGHUP (WaitInterrupted). Whatever the failure,
    ``active-expire-effort`` is restored first, and the result says what was done
    (``changed``, ``expedited``).
    """
    settings.validate()
    state = _Wait(probe, settings, clock, sleep, wall)
    baseline = parse_baseline(settings.baseline)
    error = None
    try:
        return _run(state, baseline)
    except ResultKeysWaitError as exc:
        error = exc
    except WaitInterrupted as exc:
        error = ResultKeysWaitError("interrupted by %s" % exc.signal_name)
        error.interrupted = exc
    except Exception as exc:  # a Redis refusal mid-way (NOPERM, OOM, ...): report what was done
        error = ResultKeysWaitError("%s: %s" % (type(exc).__name__, exc))
        error.cause = exc
    finally:
        if state.boost_applied:
            state.restore_boost()
            state.boost_applied = False
    merged = _summary(state, baseline and baseline["count"], None, None, None)
    merged.update(error.result)
    capped = int(getattr(probe, "capped_so_far", 0) or 0)
    merged["expedited"] = max(capped, merged.get("expedited") or 0)
    merged["changed"] = bool(state.boost_touched or merged["expedited"])
    error.result = merged
    raise error


def _unreachable_message(persistent, target):
    return ("the target can never be met by waiting: %d keys have no TTL and never expire, but the target allows "
            "at most %s keys. Give them a TTL (expedite with expedite_no_ttl: true) or allow more keys"
            % (persistent, target))


def _preconditions(state, baseline):
    """What must hold before the first side effect (a capped TTL, a boost); raises, changing nothing.

    CONFIG access for the boost, and a target that keys without a TTL do not alone put out of
    reach (with expedite but without expedite_no_ttl). The latter needs the no-TTL count: from a
    result_keys_info baseline, else one read-only TTL pass first.
    """
    settings = state.settings
    if settings.check_mode:
        return
    if settings.boost_active_expire:
        state.call(state.check_boost_access)
    has_target = settings.min_reduction is not None or settings.target_count is not None
    if not (settings.expedite and not settings.expedite_no_ttl and has_target):
        return
    if baseline is not None and baseline["no_ttl"] is not None:
        count, no_ttl = baseline["count"], baseline["no_ttl"]
    else:
        passed = state.call(state.probe.read_ttls)
        count = baseline["count"] if baseline is not None else passed.count
        no_ttl = passed.no_ttl
    target = target_for(count, settings.min_reduction, settings.target_count)
    if target is not None and no_ttl > target:
        state.note("precondition: %d keys without a TTL exceed the target %s; nothing was capped" % (no_ttl, target))
        raise ResultKeysWaitError(_unreachable_message(no_ttl, target) + " (nothing was capped)", dict(
            baseline=count, target=target, no_ttl=no_ttl, expedited=0,
            forecast=dict(target_met_after=None, last_expiry_after=None, reachable=False)))


def _run(state, baseline):
    settings = state.settings
    if settings.boost_active_expire and settings.check_mode:
        state.boost_previous = state.call(state.probe.active_expire_effort)
    _preconditions(state, baseline)

    # 1. One pass over the keys: cap old TTLs, or read them (a dict baseline already has them).
    passed = None
    if settings.expedite and not settings.check_mode:
        state.note("expediting: capping TTLs above %ss" % settings.max_ttl)
        passed = state.call(lambda: state.probe.expedite(settings.max_ttl, settings.expedite_no_ttl,
                                                         settings.expedite_method))
        state.event("expedited", capped=passed.capped, method=passed.method, seconds=round(passed.seconds, 3))
        state.note("capped %d keys (%s) in %.2fs" % (passed.capped, passed.method, passed.seconds))
    elif baseline is None or baseline["ttl_max"] is None or settings.check_mode:
        passed = state.call(state.probe.read_ttls)
    read_at = state.elapsed()
    if passed is not None and passed.origin is not None:
        read_at = passed.origin - state.started
    baseline_count = baseline["count"] if baseline is not None else passed.count
    state.check_identity()
    if baseline_count == 0 and (settings.min_reduction is not None or settings.target_count is not None):
        # A fall from nothing is no fall: the pattern, the db or the prefix is likely wrong.
        result = _summary(state, 0, passed.count if passed else None, False, None)
        result.update(reason="nothing to verify",
                      msg="nothing to verify: the baseline has no result key (check the pattern, the db and "
                          "the key prefix; result_keys_info says where result-shaped keys are)")
        if settings.fail_on_unmet:
            raise ResultKeysWaitError(result["msg"], result)
        return result

    histogram = passed.histogram if passed else None
    no_ttl = passed.no_ttl if passed else baseline["no_ttl"] or 0
    would_cap = 0
    if settings.check_mode and settings.expedite:
        would_cap = histogram.above(settings.max_ttl) + (no_ttl if settings.expedite_no_ttl else 0)
        capped_view = TtlHistogram()
        for seconds, keys in histogram.counts.items():
            capped_view.add(min(seconds, settings.max_ttl), keys)
        if settings.expedite_no_ttl:
            capped_view.add(settings.max_ttl, no_ttl)
        histogram = capped_view
    persistent = 0 if (settings.expedite and settings.expedite_no_ttl) else no_ttl
    target = target_for(baseline_count, settings.min_reduction, settings.target_count)
    plan = plan_wait(read_at, histogram, persistent, target,
                     ttl_max=None if histogram is not None else baseline["ttl_max"])
    grace = 1.0 + 2 * settings.poll_interval
    deadline = plan["last_expiry_after"] + grace
    state.hard_end = min(float(settings.timeout), deadline)
    extra = dict(
        target=target,
        no_ttl=no_ttl,
        expedited=passed.capped if passed else 0,
        expedite_method=passed.method if passed and settings.expedite and not settings.check_mode else None,
        deadline=dict(seconds=round(deadline, 3), at=iso_timestamp(state.started_wall + deadline)),
        forecast=dict(target_met_after=None if plan["target_met_after"] is None else round(plan["target_met_after"], 3),
                      last_expiry_after=round(plan["last_expiry_after"], 3), reachable=plan["reachable"]),
    )

    first = passed.count if passed else None
    if settings.check_mode:
        first = first if first is not None else state.call(state.probe.count)
        state.timeline.append([round(state.elapsed(), 3), first, None])
        met = is_met(baseline_count, first, target)
        result = _summary(state, baseline_count, first, met, target)
        result.update(extra)
        result.update(changed=bool(would_cap) or bool(settings.boost_active_expire and state.boost_previous is not None
                                                      and state.boost_previous < BOOST_EFFORT),
                      would_expedite=would_cap, expedited=0,
                      plan=dict(would_expedite=would_cap, wait_seconds=_wait_seconds(plan, settings),
                                boost_active_expire=bool(settings.boost_active_expire)))
        state.note("check mode: would cap %d keys, forecast %s" % (would_cap, extra["forecast"]))
        return result

    if not plan["reachable"]:
        raise ResultKeysWaitError(_unreachable_message(persistent, target), extra)

    if plan["target_met_after"] > settings.timeout:
        retry_after = int(math.ceil(plan["target_met_after"] - settings.timeout)) + 1
        count_now = first if first is not None else state.call(state.probe.count)
        state.timeline.append([round(state.elapsed(), 3), count_now, None])
        state.note("forecast %.0fs is beyond timeout %ss: returning at once" % (plan["target_met_after"], settings.timeout))
        result = _summary(state, baseline_count, count_now, False, target)
        result.update(extra)
        result["changed"] = state.boost_touched or bool(extra["expedited"])
        result.update(retry_after=retry_after, retry_at=iso_timestamp(wall_now(state) + retry_after),
                      msg="the forecast (target met after %.0fs) is beyond timeout (%ss): run again in %ds, "
                          "or raise timeout" % (plan["target_met_after"], settings.timeout, retry_after))
        return result

    # 2. The wait: quiet until the forecast, then poll until met or the end.
    if settings.boost_active_expire:
        state.apply_boost()
    wake = max(0.0, plan["target_met_after"] + WAKE_AFTER_FORECAST)
    state.note("sleeping until t=%.1fs, then polling every %ss until t=%.1fs"
               % (wake, settings.poll_interval, state.hard_end))
    quiet_every = max(QUIET_SAMPLE_MIN_SECONDS, wake / 10.0)

    def done(count, now):
        return is_met(baseline_count, count, target) and (target is not None or now >= plan["last_expiry_after"])

    count = state.sample(first)  # the pass just counted: no second walk over the keyspace
    counted_at = now = state.elapsed()
    met = done(count, now)
    next_heartbeat = now + HEARTBEAT_SECONDS
    while not met and now < state.hard_end - CLOCK_SLACK:
        if now < wake - CLOCK_SLACK:
            next_count = min(wake, counted_at + quiet_every)
        else:
            next_count = counted_at + max(settings.poll_interval, (state.fastest_poll_seconds or 0.0) / MAX_POLL_DUTY)
        next_count = min(next_count, state.hard_end)
        if next_heartbeat < next_count:
            _sleep_until(state, next_heartbeat)
            status = state.check_identity()
            now = state.elapsed()
            # INFO was read anyway: its used_memory makes a point of the memory curve. The count
            # stays None (it would take a SCAN), so charts draw keys from the counted samples only.
            state.timeline.append([round(now, 3), None, status.get("used_memory")])
            next_heartbeat = now + HEARTBEAT_SECONDS
            continue
        _sleep_until(state, next_count)
        count = state.sample()
        counted_at = now = state.elapsed()
        next_heartbeat = now + HEARTBEAT_SECONDS
        met = done(count, now)

    result = _summary(state, baseline_count, count, met, target)
    result.update(extra)
    result["changed"] = state.boost_touched or bool(extra["expedited"])
    if met:
        state.note("met: %s -> %s keys" % (baseline_count, count))
        return result
    message = ("the target was not met by the deadline: %d keys after %.1fs, baseline %d (reduction %.2f), "
               "target %s" % (count, state.elapsed(), baseline_count, reduction(baseline_count, count),
                              "a fall below the baseline" if target is None else "at most %s keys" % target))
    if settings.fail_on_unmet:
        raise ResultKeysWaitError(message, result)
    result["msg"] = message
    return result


def _sleep_until(state, moment):
    pause = moment - state.elapsed()
    if pause > CLOCK_SLACK:
        state.sleep(pause)


def wall_now(state):
    return state.started_wall + state.elapsed()


def _wait_seconds(plan, settings):
    if plan["target_met_after"] is None:
        return None
    return round(min(plan["target_met_after"], float(settings.timeout)), 3)


def _summary(state, baseline_count, final_count, met, target):
    result = dict(
        met=met,
        baseline=baseline_count,
        final=final_count,
        reduction=None if baseline_count is None or final_count is None else reduction(baseline_count, final_count),
        target=target,
        elapsed=round(state.elapsed(), 3),
        timeline=state.timeline,
        progress=state.progress,
        warnings=state.warnings,
        boost=None if state.boost_previous is None else dict(
            previous=state.boost_previous, boosted_to=BOOST_EFFORT if state.boost_applied else None),
        changed=bool(state.boost_touched),
    )
    return result


__all__ = [
    "BOOST_EFFORT", "EFFORT_MARKER_KEY", "EXPEDITE_METHODS", "EXPEDITE_SCRIPT", "RedisProbe", "WaitInterrupted",
    "check_number", "guard_pattern", "ResultKeysWaitError", "TopologyChanged",
    "TopologyProbe", "TtlHistogram", "TtlPass", "WaitSettings", "iso_timestamp", "is_met", "parse_baseline", "plan_wait", "reduction", "target_for",
    "wait_for_fall",
]
