# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The slice of one Redis server the wait needs: count, status, the TTL pass, expedite, the effort setting."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.celery_ops.lean_results.plugins.module_utils._keyspace import KeyCounter, read_pass
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys import DEFAULT_PATTERN
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.errors import is_transient
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait.expedite import (
    ExpeditePass,
    clamp_batch_size,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._text import as_text

# The value before a boost is kept in the server itself, so a run killed before it restored
# (SIGKILL, a lost host) leaves the truth behind: the next run restores it, never the boost.
EFFORT_MARKER_KEY = "lean_results:active-expire-effort:original"
EFFORT_MARKER_TTL = 7 * 86400


def client_db(client):
    """The database a client is connected to (0 when it does not say)."""
    try:
        return int(client.connection_pool.connection_kwargs.get("db") or 0)
    except (AttributeError, TypeError, ValueError):
        return 0


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
        self.batch_size, self.warnings = clamp_batch_size(batch_size)
        self.version = tuple(version)
        self.clock = clock
        # A cluster node refuses a script whose keys hash to several slots (CROSSSLOT), and one
        # SCAN batch spans thousands: there, TTLs are read and capped with pipelines only.
        self.scripts = scripts
        self.counter = KeyCounter(client, pattern, use_script=scripts)
        self.db = client_db(client)
        self._scripts = {}

    def script(self, source):
        """A registered script (redis-py loads it on first use and calls it by SHA)."""
        if source not in self._scripts:
            self._scripts[source] = self.client.register_script(source)
        return self._scripts[source]

    def count(self):
        return self.counter.count()

    def status(self):
        """One INFO (and CLIENT ID when allowed): memory, identity, and the O(1) expiry counters.

        {used_memory, run_id, client_id, role, expired_keys, keys, expires}: ``expired_keys`` from
        INFO stats, ``keys`` and ``expires`` of this database from INFO keyspace (0 when empty).
        """
        info = self.client.info()
        client_id = None
        try:
            client_id = self.client.client_id()
        except Exception as exc:  # pylint: disable=broad-except  # ACL without CLIENT ID: run_id still tells
            if is_transient(exc):
                raise
        keyspace = info.get("db%d" % self.db) or {}
        return dict(used_memory=info.get("used_memory"), run_id=as_text(info.get("run_id")),
                    client_id=client_id, role=as_text(info.get("role")), expired_keys=info.get("expired_keys"),
                    keys=keyspace.get("keys", 0) if "expired_keys" in info else None,
                    expires=keyspace.get("expires", 0) if "expired_keys" in info else None)

    def active_expire_effort(self):
        """The current setting, or None when the server has none (before Redis 6)."""
        reply = self.client.config_get("active-expire-effort")
        for name, value in reply.items():
            if as_text(name) == "active-expire-effort":
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

    def read_ttls(self, deadline=None, above=None):
        """Read-only pass: count, keys without TTL, when each key expires (as result_keys_info reads them).

        ``above``: also count the keys whose TTL is above that many seconds (``TtlPass.above``).
        """
        return read_pass(self.client, self.pattern, use_script=self.scripts, clock=self.clock, moments=True,
                         deadline=deadline, above=above)

    def expedite(self, cap_seconds, no_ttl_too=False, method="auto", deadline=None):
        """Cap every matching TTL above ``cap_seconds`` (and, if asked, give keys without one).

        ``lua``: one atomic script call per SCAN step, on the server. ``pipeline``: ``PTTL`` and
        ``PEXPIRE .. LT`` pipelined per batch (Redis 7+); before Redis 7 (no LT) ``PTTL`` then
        ``PEXPIRE`` of the keys found above the cap, which a concurrent write could race.
        ``auto``: Lua, or the pipeline when scripts are refused (ACL, managed services).
        Each call is paced to about a millisecond of server time; at ``deadline`` the pass stops.
        """
        return ExpeditePass(self, cap_seconds, no_ttl_too, deadline).run(method)


__all__ = ["EFFORT_MARKER_KEY", "EFFORT_MARKER_TTL", "RedisProbe", "client_db"]
