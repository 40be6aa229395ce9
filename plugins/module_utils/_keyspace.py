# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One pass over the keys of a pattern: SCAN, the TTL of every key, a bounded histogram.

result_keys_info and result_keys_wait walk the keyspace the same way, here:

- ``scan_keys`` and ``count_keys``: SCAN only, never KEYS (which blocks the server) and never
  DBSIZE or INFO keyspace alone (they still count keys that expired but were not reclaimed).
  ``count_keys`` can count on the server with a small script, so no key name travels.
- ``read_pass``: SCAN plus the TTL of every key, batched (one Lua call per SCAN batch where
  scripts are allowed, else a pipeline), into a ``TtlHistogram``.
- ``TtlHistogram``: keys per TTL or per expiry moment, in flat arrays whose size follows the range
  of the values (at most ``MAX_BUCKETS`` seconds before the step doubles), never the number of keys.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import array
import bisect
import collections
import math
import time

SCAN_COUNT = 5000
# Below this many seconds a value is kept to 0.1 s: the wait wakes on such moments.
FINE_LIMIT = 120.0
# Whole-second buckets before the coarse step doubles: more than a day, so the TTLs Celery writes
# by default (result_expires of one day) stay exact. 800 KB of integers.
MAX_BUCKETS = 100000

# TTL of many keys in one round trip; "ttl,ttl,..." so the client parses one string. TTL, not
# PTTL: the documented least-privilege ACL rules grant +ttl.
TTL_BATCH_SCRIPT = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('TTL', key) end
return table.concat(out, ',')
"""

# A count without the key names: the server walks, the client gets a number per call. A script
# may run SCAN since Redis 5 (effects replication); where it may not, the client falls back.
COUNT_SCRIPT = """
local reply = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
return {reply[1], #reply[2]}
"""


def plain_number(value):
    """An int when the value is whole (TTLs are reported as whole seconds), else the float."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class TtlHistogram(object):
    """Keys per value in seconds (a TTL, or an expiry moment), each value rounded up.

    Values below ``FINE_LIMIT`` are rounded up to 0.1 s, others to ``step`` seconds (1 at first),
    and counted in two flat arrays of integers: its size follows the range of values, never the
    number of keys. Whole-second TTLs, as Redis's TTL reports them, are therefore kept exactly,
    and so are percentiles over them, up to ``max_buckets`` seconds (more than a day). Beyond
    that ``step`` doubles (2 s, 4 s, ...) and every value is rounded up to it: a percentile is
    then at most ``step`` seconds late, a key at most ``step`` seconds longer alive. About 1 MB.
    """

    def __init__(self, max_buckets=MAX_BUCKETS):
        self.fine = array.array("q", [0]) * (int(FINE_LIMIT * 10) + 1)  # index: tenths of a second
        self.coarse = array.array("q")  # index i: values in ((i - 1) * step, i * step]
        self.step = 1
        self.max_buckets = max_buckets
        self.total = 0
        self._index = None  # (values, cumulative counts) of the non-empty buckets, rebuilt after a change

    def bucket(self, seconds):
        """The value ``seconds`` is kept as (rounded up)."""
        if seconds < FINE_LIMIT:
            return math.ceil(round(seconds * 10, 6)) / 10.0
        return float(math.ceil(round(seconds / self.step, 6)) * self.step)

    def add(self, seconds, keys=1):
        self._index = None
        self.total += keys
        if seconds < FINE_LIMIT:
            self.fine[max(0, int(math.ceil(round(seconds * 10, 6))))] += keys
            return self
        index = int(math.ceil(round(seconds / self.step, 6)))
        while index >= self.max_buckets:
            self._coarsen()
            index = int(math.ceil(round(seconds / self.step, 6)))
        if index >= len(self.coarse):
            self.coarse.extend(array.array("q", [0]) * (index + 1 - len(self.coarse)))
        self.coarse[index] += keys
        return self

    def _coarsen(self):
        """Double the step: bucket i of the new step holds buckets 2i - 1 and 2i of the old one."""
        old = self.coarse
        merged = array.array("q", [0]) * ((len(old) + 1) // 2 + 1)
        for index, keys in enumerate(old):
            if keys:
                merged[(index + 1) // 2] += keys
        self.coarse = merged
        self.step *= 2

    def extend(self, values):
        for value, keys in collections.Counter(values).items():
            self.add(value, keys)
        return self

    @property
    def counts(self):
        """{value: keys} of the non-empty buckets."""
        values, cumulative = self._sorted()
        counts, before = {}, 0
        for value, running in zip(values, cumulative):
            counts[value] = counts.get(value, 0) + running - before
            before = running
        return counts

    def merge(self, other, shift=0.0):
        """Add every key of ``other``, its values moved by ``shift`` seconds."""
        for value, keys in other.counts.items():
            self.add(value + shift, keys)
        return self

    def capped(self, cap, extra=0):
        """A copy where every value above ``cap`` is ``cap``, plus ``extra`` keys at ``cap``."""
        view = TtlHistogram(self.max_buckets)
        for value, keys in self.counts.items():
            view.add(min(value, cap), keys)
        if extra:
            view.add(cap, extra)
        return view

    def _sorted(self):
        if self._index is None:
            values, cumulative, running = array.array("d"), array.array("q"), 0
            for index, keys in enumerate(self.fine):
                if keys:
                    running += keys
                    values.append(index / 10.0)
                    cumulative.append(running)
            for index, keys in enumerate(self.coarse):
                if keys:
                    running += keys
                    values.append(float(index * self.step))
                    cumulative.append(running)
            self._index = (values, cumulative)
        return self._index

    @property
    def buckets(self):
        """Integers held: the size of the histogram, whatever the number of keys."""
        return len(self.fine) + len(self.coarse)

    @property
    def min(self):
        values = self._sorted()[0]
        return values[0] if values else None

    @property
    def max(self):
        values = self._sorted()[0]
        return values[-1] if values else None

    def above(self, limit):
        """Keys whose value is above ``limit`` (alive after the moment ``limit``)."""
        values, cumulative = self._sorted()
        index = bisect.bisect_right(values, limit)
        return self.total - (cumulative[index - 1] if index else 0)

    def time_until_at_most(self, allowed):
        """The first value after which at most ``allowed`` keys remain (0 when already so)."""
        if self.total <= allowed:
            return 0
        values, cumulative = self._sorted()
        return values[bisect.bisect_left(cumulative, self.total - allowed)]

    def percentile(self, fraction):
        """Nearest-rank percentile (None when empty), as over the sorted list of every value."""
        if not self.total:
            return None
        rank = max(1, int(math.ceil(fraction * self.total)))
        values, cumulative = self._sorted()
        return values[bisect.bisect_left(cumulative, rank)]

    def summary(self):
        """{min, p50, p90, max} in seconds (None each when empty)."""
        return dict(min=plain_number(self.min), p50=plain_number(self.percentile(0.5)),
                    p90=plain_number(self.percentile(0.9)), max=plain_number(self.max))


class TtlPass(object):
    """What one pass over the keys found: live count, keys without TTL, their TTLs, capped keys.

    ``histogram`` holds TTLs in seconds, or expiry moments in seconds after ``origin`` (a clock
    value; without one they count from the end of the pass). ``complete`` is False when the pass
    stopped at its deadline: the figures then cover the keys seen so far.
    """

    def __init__(self, count, no_ttl, histogram, capped=0, method=None, seconds=0.0, origin=None, complete=True):
        self.origin = origin
        self.count = count
        self.no_ttl = no_ttl
        self.histogram = histogram
        self.capped = capped
        self.method = method
        self.seconds = seconds
        self.complete = complete
        self.above = None  # keys whose TTL was above a limit asked for, when one was
        self.pacing = None  # how an expedite pass sized its calls (Pacer.report)


def scan_keys(client, pattern, count=SCAN_COUNT):
    """Yield batches of keys matching ``pattern`` (bytes), one SCAN call per batch."""
    cursor = 0
    while True:
        cursor, keys = client.scan(cursor=cursor, match=pattern, count=count)
        if keys:
            yield keys
        if int(cursor) == 0:
            return


def is_script_refusal(exc):
    """A script refused (ACL, scripting disabled, a cluster's CROSSSLOT) rather than a failure."""
    if type(exc).__name__ in ("NoPermissionError", "ClusterCrossSlotError"):
        return True
    text = str(exc).upper()
    return any(word in text for word in ("NOPERM", "NO PERMISSIONS", "UNKNOWN COMMAND", "NOSCRIPT",
                                         "DISABLED", "CROSSSLOT", "SAME SLOT", "NOT ALLOWED FROM SCRIPT",
                                         "CAN'T RUN THIS COMMAND"))


class KeyCounter(object):
    """Counts the keys of a pattern with SCAN, on the server where a script is allowed.

    The script sends back a number per SCAN call instead of every key name: nothing to parse on
    the client, which matters without hiredis (redis-py's pure-Python parser). Where scripts are
    refused (ACL, managed services, a cluster node), plain SCAN gives the same count.
    """

    def __init__(self, client, pattern, use_script=True, count=SCAN_COUNT):
        self.client = client
        self.pattern = pattern
        self.use_script = use_script
        self.scan_count = count
        self._script = None

    @property
    def method(self):
        return "lua" if self.use_script else "scan"

    def count(self):
        if self.use_script:
            try:
                return self._count_on_server()
            except Exception as exc:  # pylint: disable=broad-except  # refused: count with plain SCAN
                if not is_script_refusal(exc):
                    raise
                self.use_script = False
        total = 0
        for batch in scan_keys(self.client, self.pattern, self.scan_count):
            total += len(batch)
        return total

    def _count_on_server(self):
        if self._script is None:
            self._script = self.client.register_script(COUNT_SCRIPT)
        total, cursor = 0, 0
        while True:
            cursor, found = self._script(args=[cursor, self.pattern, self.scan_count])
            total += int(found)
            if int(cursor) == 0:
                return total


def count_keys(client, pattern, count=SCAN_COUNT, use_script=False):
    """Count keys matching ``pattern`` with SCAN only; ``use_script`` counts on the server."""
    return KeyCounter(client, pattern, use_script, count).count()


class TtlReader(object):
    """TTL of many keys per round trip: a Lua batch where allowed, else a pipeline.

    Managed services and least-privilege ACL users often forbid EVALSHA; the pipeline gives the
    same answer at a higher client cost. On a cluster node the keys of one SCAN batch hash to
    many slots, which one Lua call may not touch (CROSSSLOT): pipelines only there.
    """

    def __init__(self, client, use_script=True):
        self.client = client
        self.use_script = use_script
        self._script = None

    @property
    def method(self):
        return "lua" if self.use_script else "pipeline"

    def ttls(self, keys):
        if self.use_script:
            try:
                if self._script is None:
                    self._script = self.client.register_script(TTL_BATCH_SCRIPT)
                packed = self._script(keys=keys)
                return [int(value) for value in packed.split(b",")] if packed else []
            except Exception as exc:  # pylint: disable=broad-except  # refused: the pipeline answers
                if not is_script_refusal(exc):
                    raise
                self.use_script = False
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.ttl(key)
        return [int(value) for value in pipe.execute()]


def read_pass(client, pattern, use_script=True, clock=time.monotonic, moments=False, on_keys=None, deadline=None,
              above=None, count=SCAN_COUNT):
    """One SCAN over ``pattern`` with the TTL of every key; read-only. Returns a TtlPass.

    ``moments=False``: the histogram holds each TTL in whole seconds, as TTL reports it (exact
    percentiles). ``moments=True``: it holds when each key expires, in seconds after the start
    of the pass: each batch's TTLs count from when they were read, plus half a second, since TTL
    rounds to the nearest second and a key must never be forecast gone before it is. ``on_keys(live_keys)`` sees every batch of live keys (a
    sample for MEMORY USAGE). ``above``: count the keys whose TTL, when read, is above that many
    seconds (``TtlPass.above``; exact, where the moments are rounded). At ``deadline`` (a ``clock``
    value) the pass stops, incomplete.
    """
    origin = clock()
    over = 0
    reader = TtlReader(client, use_script)
    histogram = TtlHistogram()
    live = no_ttl = 0
    complete = True
    for batch in scan_keys(client, pattern, count):
        ttls = reader.ttls(batch)
        offset = clock() - origin
        tally = collections.Counter(ttls)
        gone = tally.pop(-2, 0)
        no_ttl += tally.pop(-1, 0)
        live += len(batch) - gone
        # Tallied first (at C speed): one histogram entry per distinct TTL rather than per key.
        for seconds, keys in tally.items():
            if above is not None and seconds > above:
                over += keys
            histogram.add(offset + seconds + 0.5 if moments else seconds, keys)
        if on_keys is not None:
            on_keys(batch if not gone else [key for key, ttl in zip(batch, ttls) if ttl != -2])
        if deadline is not None and clock() >= deadline:
            complete = False
            break
    passed = TtlPass(live, no_ttl, histogram, method=reader.method, seconds=clock() - origin, origin=origin,
                     complete=complete)
    passed.above = None if above is None else over
    return passed


__all__ = [
    "COUNT_SCRIPT", "FINE_LIMIT", "KeyCounter", "MAX_BUCKETS", "TTL_BATCH_SCRIPT", "SCAN_COUNT", "TtlHistogram",
    "TtlPass", "TtlReader", "count_keys", "is_script_refusal", "plain_number", "read_pass", "scan_keys",
]
