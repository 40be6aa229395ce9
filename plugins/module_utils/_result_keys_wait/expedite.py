# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The expedite pass: cap every old TTL of one node, in calls paced by the server time they take.

A Lua call holds the server while it runs (nothing else is served meanwhile), so each call's
batch is sized from the server time of the calls before it, to stay near ``CALL_BUDGET``. The
option ``batch_size`` is the ceiling of that batch, itself capped at ``MAX_BATCH_SIZE``. A
deadline stops the pass between two calls; the pass then says how far it got.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import math

from ansible_collections.celery_ops.lean_results.plugins.module_utils._broker_keys import (
    is_result_key,
    is_result_pattern,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._keyspace import (
    TtlHistogram,
    TtlPass,
    is_script_refusal,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._text import as_text

# Server time one call may take: a GET arriving meanwhile waits at most about this long.
CALL_BUDGET = 0.001
# Aim a little below the budget: what one SCAN step finds (and so costs) varies from call to call.
BUDGET_HEADROOM = 0.9
# batch_size above this is clamped (with a warning): 10,000 keys already take some milliseconds.
MAX_BATCH_SIZE = 10000
MIN_BATCH_SIZE = 16
FIRST_BATCH_SIZE = 100

# One call caps one SCAN step on the server: SCAN, then per key PTTL and, above the cap, PEXPIRE.
# No key name travels to the client and back. It needs no LT (works before Redis 7) and never
# gives a TTL to a key that has none unless asked (ARGV[5] = '1'). A key whose name is not a
# Celery result key ([prefix]celery-task-meta-<id>, [prefix]celery-taskset-meta-<id>[.j/.t/.s])
# is never given a TTL, and with ARGV[6] = '1' (unless allow_non_result_pattern) never capped.
# ARGV[7] = '0' says the pattern holds a mark literally (a result-key pattern): a key that does not
# end in '-' then has something after its mark, so it is a result key without a search.
# Returns the next cursor, capped, no_ttl, gone, the remaining TTLs as a histogram
# "tenths-of-seconds:count,..." (tiny after a cap: nearly all equal), skipped, keys seen, and
# the microseconds the call took by the server's own clock (TIME), which paces the next call; -1
# when TIME is refused (an ACL without +time): the client then paces by the reply time.
EXPEDITE_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local function micros()
  local now = redis.pcall('TIME')
  if now.err then return nil end
  return now[1] * 1000000 + now[2]
end
local started = micros()
local scanned = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
local cap = tonumber(ARGV[4])
local fix_no_ttl = ARGV[5] == '1'
local results_only = ARGV[6] ~= '0'
local check_names = ARGV[7] ~= '0'
local marks = {'celery-task-meta-', 'celery-taskset-meta-'}
local capped, no_ttl, gone, skipped = 0, 0, 0, 0
local hist = {}
local function is_result(key)
  for i = 1, #marks do
    local _, last = string.find(key, marks[i], 1, true)
    if last and last < #key then return true end
  end
  return false
end
for _, key in ipairs(scanned[2]) do
  local ttl = redis.call('PTTL', key)
  if ttl == -2 then
    gone = gone + 1
  else
    local result_key = (not check_names and string.byte(key, -1) ~= 45) or is_result(key)
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
local ended = micros()
return {scanned[1], capped, no_ttl, gone, table.concat(out, ','), skipped, #scanned[2],
        started and ended and (ended - started) or -1}
"""


def clamp_batch_size(value):
    """(batch size to use, warnings): at most MAX_BATCH_SIZE, at least 1."""
    if value > MAX_BATCH_SIZE:
        return MAX_BATCH_SIZE, ["batch_size %d is above the safe ceiling %d (a larger batch holds Redis for "
                                "milliseconds per call): %d used" % (value, MAX_BATCH_SIZE, MAX_BATCH_SIZE)]
    return max(1, value), []


class Pacer(object):
    """The size of the next call's batch, so that a call takes about ``budget`` seconds of server time.

    Time grows with the batch, so the next size is the last one scaled by budget/time (with
    headroom). It shrinks at once after a slow call (at most fourfold: a server preempted once by
    a busy host is no reason to crawl), grows at most twofold after a quick one, and stays between
    ``floor`` and ``ceiling``.
    """

    def __init__(self, ceiling, budget=CALL_BUDGET, floor=MIN_BATCH_SIZE, first=FIRST_BATCH_SIZE, fixed=False):
        self.ceiling = max(1, int(ceiling))
        self.floor = max(1, min(int(floor), self.ceiling))
        self.budget = budget
        self.fixed = fixed  # the ceiling for every call, timed for the report only
        self.size = self.ceiling if fixed else max(self.floor, min(int(first), self.ceiling))
        self.calls = 0
        self.slowest = 0.0
        self.largest = self.size
        self.server_seconds = 0.0
        self.durations = collections.Counter()  # tenths of a millisecond: a few hundred entries at most

    def record(self, seconds):
        """The call just made with ``size`` took ``seconds`` of server time: size the next one."""
        self.calls += 1
        self.server_seconds += seconds
        self.slowest = max(self.slowest, seconds)
        self.durations[int(math.ceil(seconds * 10000))] += 1
        if self.fixed:
            return self.size
        wanted = self.size * 2.0
        if seconds > 0:
            wanted = max(self.size / 4.0, min(wanted, self.size * self.budget * BUDGET_HEADROOM / seconds))
        self.size = int(max(self.floor, min(self.ceiling, wanted)))
        self.largest = max(self.largest, self.size)
        return self.size

    def percentile_ms(self, fraction):
        """The call time (ms, to 0.1 ms) that ``fraction`` of the calls took at most."""
        if not self.calls:
            return None
        rank, seen = max(1, int(math.ceil(fraction * self.calls))), 0
        for tenths in sorted(self.durations):
            seen += self.durations[tenths]
            if seen >= rank:
                return tenths / 10.0
        return None

    def report(self):
        return dict(ceiling=self.ceiling, largest=self.largest, calls=self.calls, p50_ms=self.percentile_ms(0.5),
                    p99_ms=self.percentile_ms(0.99), slowest_ms=round(self.slowest * 1000, 3),
                    server_seconds=round(self.server_seconds, 3))


class ExpeditePass(object):
    """One expedite pass over the keys of one node (``probe``: its client, pattern, clock, version)."""

    def __init__(self, probe, cap_seconds, no_ttl_too=False, deadline=None):
        self.probe = probe
        self.client = probe.client
        self.clock = probe.clock
        self.cap_ms = int(cap_seconds * 1000)
        self.no_ttl_too = no_ttl_too
        self.deadline = deadline
        self.started = self.clock()
        self.count = self.no_ttl = self.capped = 0
        self.histogram = TtlHistogram()
        self.pacer = Pacer(probe.batch_size)
        # Under a result-key pattern (celery-task-meta-*, ...) every key holds a mark: only a key
        # ending in "-" (the bare mark, "celery-task-meta-" with no id) needs the search.
        self.names_are_results = is_result_pattern(probe.pattern)

    def run(self, method="auto"):
        """Lua, or the pipeline: when asked, or (``auto``) when scripts are refused or off."""
        use = "lua" if method == "lua" or (method == "auto" and self.probe.scripts) else "pipeline"
        complete = None
        if use == "lua":
            try:
                complete = self._lua_pass()
            except Exception as exc:  # pylint: disable=broad-except  # refused: the pipeline does it
                if method == "lua" or not is_script_refusal(exc):
                    raise
                use = "pipeline"
        if complete is None:
            # A pipeline does not hold the server as a script does (Redis serves other clients between
            # the chunks it reads): every batch is the ceiling, timed for the report only.
            self.pacer = Pacer(self.probe.batch_size, fixed=True)
            complete = self._pipeline_pass()
        if use == "pipeline" and self.probe.version < (7, 0, 0):
            use = "pipeline-ttl-check"
        passed = TtlPass(self.count, self.no_ttl, self.histogram, capped=self.capped, method=use,
                         seconds=self.clock() - self.started, origin=self.started, complete=complete)
        passed.pacing = self.pacer.report()
        return passed

    def _out_of_time(self):
        return self.deadline is not None and self.clock() >= self.deadline

    def _add_capped(self, capped):
        self.capped += capped
        self.probe.capped_so_far += capped  # kept on the probe: a failure half-way must say what was done

    def _lua_pass(self):
        script = self.probe.script(EXPEDITE_SCRIPT)
        options = [self.cap_ms, 1 if self.no_ttl_too else 0, 1 if self.probe.results_only else 0,
                   0 if self.names_are_results else 1]
        cursor = 0
        while True:
            if self._out_of_time():
                return False
            sent = self.clock()
            reply = script(args=[cursor, self.probe.pattern, self.pacer.size] + options)
            replied = self.clock() - sent
            cursor = int(reply[0])
            capped, no_ttl, gone, packed, skipped, seen, micros = reply[1:8]
            self._add_capped(int(capped))
            self.probe.skipped += int(skipped)
            self.no_ttl += int(no_ttl)
            self.count += int(seen) - int(gone)
            offset = self.clock() - self.started
            for pair in as_text(packed).split(","):
                if pair:
                    tenths, keys = pair.split(":")
                    self.histogram.add(offset + int(tenths) / 10.0, int(keys))
            self.pacer.record(int(micros) / 1e6 if int(micros) >= 0 else replied)
            if cursor == 0:
                return True

    def _pipeline_pass(self):
        """SCAN on the client, then PTTL and PEXPIRE pipelined per batch (timed by the reply)."""
        cursor = 0
        while True:
            if self._out_of_time():
                return False
            cursor, batch = self.client.scan(cursor=cursor, match=self.probe.pattern, count=self.pacer.size)
            if batch:
                began = self.clock()
                self._pipeline_batch(batch)
                self.pacer.record(self.clock() - began)
            if int(cursor) == 0:
                return True

    def _pipeline_batch(self, batch):
        others = [key for key in batch if (key.endswith(b"-") or not self.names_are_results) and not is_result_key(key)]
        if others:  # never a TTL for them; capped only when the pattern was explicitly allowed
            batch = [key for key in batch if is_result_key(key)]
            self._pipeline_others(others)
        if not batch:
            return
        cap_ms = self.cap_ms
        has_lt = self.probe.version >= (7, 0, 0)
        pipe = self.client.pipeline(transaction=False)
        if self.no_ttl_too and has_lt:
            # One round trip: the TTL before, and the idempotent cap (LT also caps "no TTL").
            for key in batch:
                pipe.execute_command("PTTL", key)
                pipe.execute_command("PEXPIRE", key, cap_ms, "LT")
            replies = pipe.execute()
            offset = self.clock() - self.started
            for ttl, flag in zip(replies[0::2], replies[1::2]):
                ttl = int(ttl)
                if ttl == -2:
                    continue
                self.count += 1
                if ttl == -1:
                    self.no_ttl += 1
                self._add_capped(int(flag))
                self.histogram.add(offset + (cap_ms if int(flag) else ttl) / 1000.0)
            return
        for key in batch:
            pipe.execute_command("PTTL", key)
        ttls = [int(value) for value in pipe.execute()]
        offset = self.clock() - self.started
        to_cap = []
        for key, ttl in zip(batch, ttls):
            if ttl == -2:
                continue
            self.count += 1
            if ttl == -1:
                self.no_ttl += 1
                if not self.no_ttl_too:
                    continue
            if ttl == -1 or ttl > cap_ms:
                to_cap.append((key, ttl))
            else:
                self.histogram.add(offset + ttl / 1000.0)
        if not to_cap:
            return
        pipe = self.client.pipeline(transaction=False)
        for key, ttl in to_cap:
            if has_lt and ttl != -1:
                pipe.execute_command("PEXPIRE", key, cap_ms, "LT")
            else:
                pipe.execute_command("PEXPIRE", key, cap_ms)
        replies = pipe.execute()
        offset = self.clock() - self.started
        for (_key, ttl), flag in zip(to_cap, replies):
            self._add_capped(int(flag))
            self.histogram.add(offset + (cap_ms if int(flag) else ttl) / 1000.0)

    def _pipeline_others(self, keys):
        """Keys not named like results: counted; capped (never given a TTL) only if allowed."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.execute_command("PTTL", key)
        ttls = [int(value) for value in pipe.execute()]
        offset = self.clock() - self.started
        to_cap = []
        results_only = self.probe.results_only
        for key, ttl in zip(keys, ttls):
            if ttl == -2:
                continue
            self.count += 1
            if ttl == -1:
                self.no_ttl += 1
                self.probe.skipped += 1
            elif results_only or ttl <= self.cap_ms:
                self.probe.skipped += 1 if results_only else 0
                self.histogram.add(offset + ttl / 1000.0)
            else:
                to_cap.append((key, ttl))
        if not to_cap:
            return
        pipe = self.client.pipeline(transaction=False)
        for key, _ttl in to_cap:
            pipe.execute_command("PEXPIRE", key, self.cap_ms)
        for (_key, ttl), flag in zip(to_cap, pipe.execute()):
            self._add_capped(int(flag))
            self.histogram.add(offset + (self.cap_ms if int(flag) else ttl) / 1000.0)


def merge_pacing(reports):
    """One pacing report from one per node."""
    reports = [report for report in reports if report]
    if not reports:
        return None
    if len(reports) == 1:
        return reports[0]
    merged = dict(ceiling=max(r["ceiling"] for r in reports), largest=max(r["largest"] for r in reports),
                  calls=sum(r["calls"] for r in reports), slowest_ms=max(r["slowest_ms"] for r in reports),
                  server_seconds=round(sum(r["server_seconds"] for r in reports), 3))
    for name in ("p50_ms", "p99_ms"):  # per node; the slowest node's figure stands for all
        values = [r[name] for r in reports if r.get(name) is not None]
        merged[name] = max(values) if values else None
    return merged


__all__ = [
    "CALL_BUDGET", "EXPEDITE_SCRIPT", "ExpeditePass", "MAX_BATCH_SIZE", "Pacer", "clamp_batch_size", "merge_pacing",
]
