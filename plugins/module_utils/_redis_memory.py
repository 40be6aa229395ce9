# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""maxmemory and its eviction policy: parse, validate, guard, apply, persist.

Pure functions where possible (units, policies, the plan, the guards, the config-file edit);
the few that talk to Redis take a client and the connection params, nothing more.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_connection import (
    RedisModuleError,
    as_text,
    connect,
    describe_redis_error,
    params_for_node,
    server_version,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._broker_keys import (
    find_topology_broker_keys as find_broker_keys_of_topology,
    summary as broker_key_summary,
)

# Option name -> Redis parameter; the option names are also the keys of before/after.
PARAMETERS = (
    ("maxmemory", "maxmemory"),
    ("maxmemory_policy", "maxmemory-policy"),
    ("maxmemory_samples", "maxmemory-samples"),
)
REDIS_NAME = dict(PARAMETERS)
OPTION_NAME = dict((redis_name, option) for option, redis_name in PARAMETERS)

CLASSIC_POLICIES = (
    "noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
    "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
)
LRM_POLICIES = ("allkeys-lrm", "volatile-lrm")
LRM_SINCE = (8, 6, 0)

# Redis's memtoull(): k/m/g are powers of 10, kb/mb/gb powers of 2, any case, no space.
UNIT_FACTORS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1024,
    "m": 1000 ** 2, "mb": 1024 ** 2,
    "g": 1000 ** 3, "gb": 1024 ** 3,
}
MEMORY_RE = re.compile(r"^([0-9]+)([a-zA-Z]*)$")

HEADROOM_MIN = 0.20
# Redis 7.0+ (and Valkey) keeps maxmemory in an unsigned 64-bit integer; Redis 6.x parses it as a
# signed one (measured on 6.2.16: 2**64-1 is stored as 2**63-1). A bigger value is saturated (or
# wraps, through a unit), so the server would never report what was asked and every run would "change".
MAXMEMORY_LIMIT = 2 ** 64 - 1
MAXMEMORY_LIMIT_REDIS6 = 2 ** 63 - 1
# What Redis assumes for a directive missing from its config file (CONFIG REWRITE drops such lines).
DEFAULTS = dict(maxmemory=0, maxmemory_policy="noeviction", maxmemory_samples=5)
# result_keys_wait keeps the active-expire-effort from before its boost here (_result_keys_wait.py).
EFFORT_MARKER_KEY = "lean_results:active-expire-effort:original"

# What the module sends, and so all an ACL user needs (docs/topologies.md gives the same rule):
# PING, INFO, CONFIG GET/SET/REWRITE, and for the broker guard SELECT (other databases), SCAN,
# SMEMBERS, TYPE, LLEN, ZCARD, HLEN, EXISTS; CLUSTER NODES on a cluster. Keys are only read.
MINIMAL_ACL = ("%R~* +ping +info +select +config|get +config|set +config|rewrite +scan +type "
               "+smembers +llen +zcard +hlen +exists +cluster|nodes")
# Redis 6.2 has no read-only key selectors (%R~, Redis 7.0+; Valkey has them): there, ~* instead.
MINIMAL_ACL_REDIS6 = MINIMAL_ACL.replace("%R~*", "~*")
CONFIG_PERMISSIONS = "+config|get +config|set (and +config|rewrite for persist: rewrite)"


class RedisMemoryError(Exception):
    """A refusal or failure of redis_memory, worded for an operator.

    ``details`` carries what the result must still report (e.g. the runtime values that
    were set before persisting failed).
    """

    def __init__(self, message, **details):
        super(RedisMemoryError, self).__init__(message)
        self.details = details


# -- values ---------------------------------------------------------------------------------

def maxmemory_limit(version):
    """The largest maxmemory the server of ``version`` (its redis_version) stores as given."""
    return MAXMEMORY_LIMIT if tuple(version) >= (7, 0, 0) else MAXMEMORY_LIMIT_REDIS6


def parse_wanted_memory(value, version=(7, 0, 0)):
    """parse_memory() for a value to set: refuses what the server of ``version`` cannot hold."""
    count = parse_memory(value)
    limit = maxmemory_limit(version)
    if count > limit:
        raise RedisMemoryError("maxmemory %s is %d bytes, more than Redis can hold (%d, %s on this server); it "
                               "would be saturated or wrap around. Use a value up to that, or 0 for no limit"
                               % (str(value).strip(), count, limit,
                                  "2**64-1" if limit == MAXMEMORY_LIMIT else "2**63-1"))
    return count


def parse_memory(value):
    """Bytes for a Redis memory value: ``1073741824``, ``1gb`` (2**30), ``1g`` (10**9)."""
    if isinstance(value, bool):
        raise RedisMemoryError("maxmemory must be bytes or a Redis unit like 512mb, got %r" % (value,))
    if isinstance(value, int):
        if value < 0:
            raise RedisMemoryError("maxmemory cannot be negative, got %d" % value)
        return value
    text = str(value).strip()
    match = MEMORY_RE.match(text)
    unit = match.group(2).lower() if match else None
    if not match or unit not in UNIT_FACTORS:
        raise RedisMemoryError(
            "maxmemory %r is not a Redis memory value: use bytes (1073741824) or a number with "
            "one of the units k, m, g (powers of 10) or kb, mb, gb (powers of 2), e.g. 1gb" % (text,))
    return int(match.group(1)) * UNIT_FACTORS[unit]


def format_bytes(count):
    """A short human reading of a byte count, for messages only."""
    for unit, size in (("gb", 1024 ** 3), ("mb", 1024 ** 2), ("kb", 1024)):
        if count >= size:
            return "%.1f%s" % (float(count) / size, unit)
    return "%db" % count


def supported_policies(version):
    """Eviction policies the server of ``version`` (major, minor, patch) accepts."""
    if tuple(version) >= LRM_SINCE:
        return CLASSIC_POLICIES + LRM_POLICIES
    return CLASSIC_POLICIES


def validate_policy(policy, version):
    """The policy in lower case, or an error that lists what this server supports."""
    name = str(policy).strip().lower()
    allowed = supported_policies(version)
    if name in allowed:
        return name
    shown = ".".join(str(part) for part in version)
    if name in LRM_POLICIES:
        raise RedisMemoryError("maxmemory_policy %s needs Redis 8.6 or later; this server is %s. "
                               "Supported here: %s" % (name, shown, ", ".join(allowed)))
    raise RedisMemoryError("maxmemory_policy %r is not an eviction policy of Redis %s; choose one of: %s"
                           % (policy, shown, ", ".join(allowed)))


def normalise_wanted(params, version):
    """The requested values, normalised: {option: value} for the options given."""
    wanted = {}
    if params.get("maxmemory") is not None:
        wanted["maxmemory"] = parse_wanted_memory(params["maxmemory"], version)
    if params.get("maxmemory_policy") is not None:
        wanted["maxmemory_policy"] = validate_policy(params["maxmemory_policy"], version)
    if params.get("maxmemory_samples") is not None:
        samples = params["maxmemory_samples"]
        if isinstance(samples, bool) or not isinstance(samples, int):  # YAML yes is no count (Redis checks the range)
            raise RedisMemoryError("maxmemory_samples must be a whole number, got %r" % (samples,))
        wanted["maxmemory_samples"] = samples
    return wanted


def normalise_config(raw):
    """{option: value} from a CONFIG GET reply (a dict of bytes or str)."""
    values = dict((as_text(name).lower(), as_text(value)) for name, value in raw.items())
    current = {}
    for option, redis_name in PARAMETERS:
        if redis_name not in values:
            continue
        value = values[redis_name]
        if option == "maxmemory":
            current[option] = parse_memory(value)
        elif option == "maxmemory_samples":
            current[option] = int(value)
        else:
            current[option] = value.lower()
    return current


def plan(current, wanted):
    """The changes that make ``current`` match ``wanted``: [(option, before, after)], in order."""
    return [(option, current.get(option), wanted[option])
            for option, _redis_name in PARAMETERS
            if option in wanted and current.get(option) != wanted[option]]


def redis_value(value):
    """A normalised value as CONFIG SET takes it."""
    return str(value)


# -- guards ---------------------------------------------------------------------------------

def broker_summary(broker):
    """'celery (list, 25), unacked (hash, 1)' for messages."""
    return broker_key_summary(broker)


def check_guards(current, wanted, used_memory, broker=None, allow_allkeys_with_broker=False,
                 allow_below_used=False):
    """Refuse what would hurt (RedisMemoryError); return warnings for what merely looks risky.

    ``broker`` is find_broker_keys()'s report (None when not looked up); ``used_memory`` the
    server's INFO used_memory.
    """
    warnings = []
    final = dict(current, **wanted)
    policy = final.get("maxmemory_policy") or "noeviction"
    maxmemory = final.get("maxmemory") or 0
    broker_found = bool(broker and broker.get("found"))

    if wanted.get("maxmemory_policy", "").startswith("allkeys-") and broker_found:
        if not allow_allkeys_with_broker:
            raise RedisMemoryError(
                "refusing maxmemory_policy %s: this server also holds Celery broker keys (%s). An "
                "allkeys-* policy evicts queued and unacknowledged tasks silently when memory runs "
                "out. Use a volatile-* policy (volatile-ttl evicts result keys, which have a TTL, "
                "first), or set allow_allkeys_with_broker: true if losing tasks is acceptable"
                % (policy, broker_summary(broker)))
        warnings.append("maxmemory_policy %s with Celery broker keys on the same server: queued tasks "
                        "can be evicted (allowed by allow_allkeys_with_broker)" % policy)
    elif "maxmemory_policy" not in wanted and policy.startswith("allkeys-") and broker_found:
        warnings.append("the current policy %s can evict the Celery broker keys on this server "
                        "(%s); consider volatile-ttl" % (policy, broker_summary(broker)))

    changing_limit = "maxmemory" in wanted and wanted["maxmemory"] != current.get("maxmemory")
    if maxmemory and used_memory is not None:
        if maxmemory < used_memory:
            if changing_limit and not allow_below_used:
                raise RedisMemoryError(
                    "refusing maxmemory %d (%s): the server already uses %d bytes (%s), so eviction "
                    "(or OOM errors under noeviction/volatile-*) would start at once. Raise the "
                    "value, free memory first, or set allow_below_used: true"
                    % (maxmemory, format_bytes(maxmemory), used_memory, format_bytes(used_memory)))
            warnings.append("maxmemory %d is below used_memory %d: Redis evicts (or refuses writes "
                            "with OOM) until usage falls under the limit" % (maxmemory, used_memory))
        elif maxmemory < used_memory * (1 + HEADROOM_MIN):
            warnings.append("maxmemory %d leaves %.0f%% headroom over the %d bytes in use (under "
                            "%d%%): a burst of results will hit the limit soon"
                            % (maxmemory, 100.0 * (maxmemory - used_memory) / max(used_memory, 1),
                               used_memory, int(HEADROOM_MIN * 100)))

    if maxmemory == 0 and "maxmemory_policy" in wanted and policy != "noeviction":
        warnings.append("maxmemory_policy %s has no effect while maxmemory is 0 (no limit); set "
                        "maxmemory too" % policy)
    return warnings


def needs_broker_lookup(current, wanted):
    policy = wanted.get("maxmemory_policy") or current.get("maxmemory_policy") or ""
    return policy.startswith("allkeys-")


# -- talking to Redis -----------------------------------------------------------------------

def describe_config_error(exc, params, command, changes=()):
    """A CONFIG failure as an operator needs to read it."""
    raw = str(exc)
    upper = raw.upper()
    base = describe_redis_error(exc, params, command=command)
    if "NOPERM" in upper or type(exc).__name__ == "NoPermissionError" or "NO PERMISSIONS" in upper:
        return ("%s. redis_memory needs %s; a minimal rule for this module: %s (on Redis 6.2, which "
                "has no %%R~ read-only key selectors: %s)" % (base, CONFIG_PERMISSIONS, MINIMAL_ACL,
                                                              MINIMAL_ACL_REDIS6))
    if "UNKNOWN COMMAND" in upper:
        return ("%s. Managed services (ElastiCache, MemoryStore, Azure Cache, ...) set maxmemory and "
                "the eviction policy through their own API (parameter groups), not CONFIG" % base)
    if type(exc).__name__ == "ResponseError" and command.upper().startswith("CONFIG SET"):
        named = re.findall(r"'(maxmemory[-a-z]*)'", raw, flags=re.IGNORECASE)
        rejected = [change for change in changes if REDIS_NAME[change[0]] in [n.lower() for n in named]]
        rejected = rejected or list(changes)
        what = ", ".join("%s %s" % (REDIS_NAME[option], redis_value(after))
                         for option, _before, after in rejected)
        return "Redis rejected %s: %s" % (what, describe_redis_error(exc, params, command=command))
    return base


def read_config(client, params):
    """The current {option: value} from CONFIG GET maxmemory* (one round trip, any version)."""
    try:
        raw = client.config_get("maxmemory*")
    except Exception as exc:
        raise RedisMemoryError(describe_config_error(exc, params, "CONFIG GET"))
    return normalise_config(raw)


def apply_changes(client, params, changes, version):
    """CONFIG SET the changes: one atomic call on Redis 7+, else one by one with roll-back."""
    if not changes:
        return
    pairs = [(REDIS_NAME[option], redis_value(after)) for option, _before, after in changes]
    if tuple(version) >= (7, 0, 0):
        args = []
        for name, value in pairs:
            args += [name, value]
        try:
            client.execute_command("CONFIG", "SET", *args)
        except Exception as exc:
            raise RedisMemoryError(describe_config_error(exc, params, "CONFIG SET", changes)
                                   + " (nothing was changed: CONFIG SET is atomic on Redis 7+)")
        return
    done = []
    for change, (name, value) in zip(changes, pairs):
        try:
            client.execute_command("CONFIG", "SET", name, value)
        except Exception as exc:
            message = describe_config_error(exc, params, "CONFIG SET", [change])
            raise RedisMemoryError(message + _roll_back(client, done))
        done.append(change)


def _roll_back(client, done):
    """Undo the changes already made (newest first); a sentence for the error message."""
    if not done:
        return " (nothing was changed)"
    failed = []
    for option, before, _after in reversed(done):
        try:
            client.execute_command("CONFIG", "SET", REDIS_NAME[option], redis_value(before))
        except Exception as exc:  # keep rolling back the others
            failed.append("%s (%s)" % (REDIS_NAME[option], exc))
    names = ", ".join(REDIS_NAME[option] for option, _b, _a in done)
    if failed:
        return " (roll-back FAILED for %s; check the server)" % ", ".join(failed)
    return " (rolled back %s to the values before)" % names


def config_rewrite(client, params, after):
    """CONFIG REWRITE; without a config file say clearly that the runtime values ARE set."""
    try:
        client.config_rewrite()
    except Exception as exc:
        message = describe_config_error(exc, params, "CONFIG REWRITE")
        if "CONFIG FILE" in str(exc).upper():
            message = ("the runtime values ARE set (%s) but cannot be persisted: %s. Use persist: "
                       "file with the server's config_file, or start Redis from a config file"
                       % (describe_values(after), message))
        raise RedisMemoryError(message, after=after)


def describe_values(values):
    return ", ".join("%s %s" % (REDIS_NAME[option], values[option])
                     for option, _name in PARAMETERS if option in values)


# -- the config file ------------------------------------------------------------------------

DIRECTIVE_RE = re.compile(br"^(\s*)(maxmemory(?:-policy|-samples)?)(\s+)(\S.*?)?(\s*)$", re.IGNORECASE)


def _split_value(raw):
    """The value of a directive line, without the quotes Redis's sdssplitargs accepts."""
    value = (raw or b"").strip()
    if len(value) >= 2 and value[:1] in (b'"', b"'") and value[-1:] == value[:1]:
        value = value[1:-1]
    return value.decode("utf-8", "replace")


def _same(option, file_value, wanted):
    try:
        if option == "maxmemory":
            return parse_memory(file_value) == wanted
        if option == "maxmemory_samples":
            return int(file_value) == wanted
    except (RedisMemoryError, ValueError):
        return False
    return file_value.lower() == wanted


def read_config_values(source):
    """{option: text} of the maxmemory* directives in a config file (the last one wins)."""
    found = {}
    for line in source.splitlines():
        match = DIRECTIVE_RE.match(line.lstrip(b"\xef\xbb\xbf"))
        if match:
            found[OPTION_NAME[match.group(2).decode().lower()]] = _split_value(match.group(4))
    return found


def rewrite_config(source, wanted, texts=None):
    """``source`` (bytes) with the maxmemory* directives set to ``wanted`` {option: value}.

    Existing directive lines are replaced in place (every active one, so none contradicts);
    missing ones are appended at the end; every other byte stays as it was. ``texts`` gives
    the spelling to write per option (e.g. ``1gb`` as the user typed it); a line whose value
    already means the wanted one is left alone.
    """
    texts = texts or {}
    lines = source.splitlines(True)
    newline = b"\r\n" if b"\r\n" in source else b"\n"
    seen = set()
    for index, line in enumerate(lines):
        body = line.rstrip(b"\r\n")
        ending = line[len(body):]
        bom = b"\xef\xbb\xbf" if index == 0 and body.startswith(b"\xef\xbb\xbf") else b""
        match = DIRECTIVE_RE.match(body[len(bom):])
        if not match:
            continue
        option = OPTION_NAME[match.group(2).decode().lower()]
        if option not in wanted:
            continue
        seen.add(option)
        if _same(option, _split_value(match.group(4)), wanted[option]):
            continue
        value = texts.get(option, str(wanted[option])).encode()
        lines[index] = bom + match.group(1) + match.group(2) + match.group(3) + value + ending
    missing = [option for option, _name in PARAMETERS if option in wanted and option not in seen]
    if missing:
        if lines and not lines[-1].endswith((b"\n", b"\r")):
            lines[-1] += newline
        for option in missing:
            lines.append(("%s %s" % (REDIS_NAME[option], texts.get(option, wanted[option]))).encode()
                         + newline)
    return b"".join(lines)


def config_file_matches(source, wanted):
    """Whether the file already sets every wanted value (so nothing needs persisting)."""
    found = read_config_values(source)
    return all(option in found and _same(option, found[option], value) for option, value in wanted.items())


def config_file_holds(source, runtime):
    """Whether the file means the ``runtime`` values, a missing directive counting as its default.

    What CONFIG REWRITE would leave: it writes no line for a value at its default, so comparing
    only the lines present would find a fresh rewrite "out of date" on every run.
    """
    found = read_config_values(source)
    for option, value in runtime.items():
        if option in found:
            if not _same(option, found[option], value):
                return False
        elif value != DEFAULTS.get(option):
            return False
    return True


# -- every node of a topology ---------------------------------------------------------------
#
# CONFIG is per node. A setting meant to outlive a failover goes to every node, replicas
# included: a promoted replica must come up with the limits of the primary it replaces.

class NodePlan(object):
    """One node: where it is, what it has, what it will get."""

    def __init__(self, node, params, version, before, used_memory, wanted):
        self.node = node
        self.params = params  # connection options aimed at this node (for messages, other dbs)
        self.version = version
        self.before = before
        self.used_memory = used_memory
        self.wanted = wanted
        self.changes = plan(before, wanted)
        self.after = dict(before, **wanted)
        self.warnings = []

    @property
    def endpoint(self):
        return self.node.endpoint

    @property
    def role(self):
        return self.node.role

    @property
    def client(self):
        return self.node.client

    def report(self):
        return dict(endpoint=self.endpoint, role=self.role, before=self.before, after=self.after,
                    changed=bool(self.changes), used_memory=self.used_memory)


def inspect_nodes(topology, params):
    """A NodePlan per node of the topology (primaries first); reads only."""
    plans = []
    for node in topology.nodes:
        options = params_for_node(params, node)
        version = server_version(node.client, options)
        before = read_config(node.client, options)
        wanted = normalise_wanted(params, version)
        try:
            used_memory = node.client.info("memory").get("used_memory")
        except Exception as exc:
            raise RedisMemoryError(describe_redis_error(exc, options, command="INFO"))
        plans.append(NodePlan(node, options, version, before, used_memory, wanted))
    return plans


def find_topology_broker_keys(topology, plans):
    """Broker keys on any primary: every database of a plain server, db 0 of a cluster."""
    by_endpoint = dict((item.endpoint, item.params) for item in plans)

    def open_db(node, number):
        return connect(dict(by_endpoint.get(node.endpoint, plans[0].params), db=number))
    return find_broker_keys_of_topology(topology, open_db)[0]


def guard_nodes(plans, broker, allow_allkeys_with_broker=False, allow_below_used=False):
    """check_guards() on every node before any is changed; warnings name the node when several.

    The broker guard uses the keys found on the primaries (replicas hold copies of them);
    the used_memory guard each node's own figure.
    """
    several = len(plans) > 1
    for item in plans:
        try:
            item.warnings = check_guards(item.before, item.wanted, item.used_memory, broker,
                                         allow_allkeys_with_broker, allow_below_used)
        except RedisMemoryError as exc:
            if several:
                raise RedisMemoryError("%s (%s): %s" % (item.endpoint, item.role, exc), **exc.details)
            raise
    # what every node warns about (the broker) is said once; the rest names its node
    shared = [text for text in plans[0].warnings if all(text in item.warnings for item in plans)]
    warnings = list(shared)
    for item in plans:
        warnings += ["%s: %s" % (item.endpoint, text) for text in item.warnings if text not in shared]
    return warnings


def apply_nodes(plans):
    """CONFIG SET on every node that needs it, then read back; a failure says which nodes are set."""
    done = []
    for item in plans:
        if not item.changes:
            continue
        try:
            apply_changes(item.client, item.params, item.changes, item.version)
        except RedisMemoryError as exc:
            if len(plans) > 1:
                already = ", ".join(done) if done else "none"
                raise RedisMemoryError("%s (%s): %s. Nodes already changed: %s; run the task again once "
                                       "the cause is fixed" % (item.endpoint, item.role, exc, already))
            raise
        item.after = read_config(item.client, item.params)
        done.append(item.endpoint)
        _check_stored(item, done, several=len(plans) > 1)
    return done


def _check_stored(item, done, several):
    """The server must report what was set; one that stored something else (saturated, rounded)
    would make every later run "change": put the node back and refuse, naming the value."""
    differs = [(option, item.wanted[option], item.after.get(option)) for option in sorted(item.wanted)
               if item.after.get(option) != item.wanted[option]]
    if not differs:
        return
    rolled_back = _roll_back(item.client, item.changes)
    item.after = dict(item.before)
    done.remove(item.endpoint)
    what = "; ".join("%s %s was stored as %s" % (REDIS_NAME[option], wanted, stored)
                     for option, wanted, stored in differs)
    where = "%s (%s): " % (item.endpoint, item.role) if several else ""
    raise RedisMemoryError("%sthe server does not hold the value asked: %s%s. Nodes changed and kept: %s"
                           % (where, what, rolled_back, ", ".join(done) if done else "none"))


def file_targets(plans, config_file=None, config_files=None):
    """{endpoint: path} for persist: file, or RedisMemoryError before anything is changed.

    One ``config_file`` fits one node only; with several nodes ``config_files`` must map
    every node's endpoint to its file (each edited on the host where the module runs).
    """
    config_files = dict(config_files or {})
    endpoints = [item.endpoint for item in plans]
    if len(plans) == 1 and not config_files:
        return {endpoints[0]: config_file}
    if not config_files:
        raise RedisMemoryError(
            "persist: file edits one config_file, but the servers behind the connection options are %d "
            "nodes (%s), and CONFIG is per node. Give config_files, a mapping of every node's endpoint "
            "to its config file, or use persist: rewrite (CONFIG REWRITE on every node)"
            % (len(plans), ", ".join(endpoints)))
    missing = [endpoint for endpoint in endpoints if endpoint not in config_files]
    unknown = sorted(set(config_files) - set(endpoints))
    if missing or unknown:
        raise RedisMemoryError(
            "config_files must name every node exactly: missing %s%s (the nodes are %s)"
            % (", ".join(missing) or "none", "; not a node: %s" % ", ".join(unknown) if unknown else "",
               ", ".join(endpoints)))
    return dict((endpoint, config_files[endpoint]) for endpoint in endpoints)


def server_config_file(client, params):
    """The config file the server was started from ('' when none)."""
    try:
        path = client.info("server").get("config_file") or ""
    except Exception as exc:
        raise RedisMemoryError(describe_redis_error(exc, params, command="INFO"))
    return as_text(path)


def recorded_effort(item, open_db=None):
    """The active-expire-effort a boosting wait kept in the server (any database), or None."""
    open_db = open_db or (lambda number: connect(dict(item.params, db=number)))
    db = item.params.get("db") or 0
    keyspace = item.client.info("keyspace") or {}
    numbers = sorted(int(as_text(name)[2:]) for name in keyspace if as_text(name).startswith("db"))
    for number in [db] + [n for n in numbers if n != db]:
        client = item.client if number == db else open_db(number)
        try:
            value = client.get(EFFORT_MARKER_KEY)
        finally:
            if client is not item.client:
                client.close()
        if value is not None:
            try:
                return int(value)
            except ValueError:
                return None
    return None


class original_effort_on_disk(object):
    """Around CONFIG REWRITE: the file gets the effort from before a wait's boost, never the boost.

    While a wait (running, or killed before it restored) has raised active-expire-effort, the
    original is set back for the rewrite and the boost re-applied right after, so a running wait
    keeps its boost and the file keeps the true value.
    """

    def __init__(self, item, warn):
        self.item, self.warn = item, warn
        self.boosted = None

    def __enter__(self):
        try:
            original = recorded_effort(self.item)
            if original is None:
                return self
            raw = self.item.client.config_get("active-expire-effort")
            current = int(dict((as_text(name), as_text(value)) for name, value in raw.items())["active-expire-effort"])
        except Exception as exc:  # an ACL without GET: say so, the rewrite goes on
            self.warn("could not check for a boosted active-expire-effort before CONFIG REWRITE on %s (%s); "
                      "if a result_keys_wait boost is running, the file may get the boosted value"
                      % (self.item.endpoint, exc))
            return self
        if current != original:
            self.item.client.config_set("active-expire-effort", original)
            self.boosted = current
        return self

    def __exit__(self, *exc_info):
        if self.boosted is not None:
            self.item.client.config_set("active-expire-effort", self.boosted)
        return False


def persist_rewrite_node(item, check_mode, warn, read_file):
    """CONFIG REWRITE on one node unless its file, readable here, already holds the values.

    ``read_file(path)`` returns the file's bytes or None when it is not readable here.
    Returns {config_file, persisted, file_changed}.
    """
    path = server_config_file(item.client, item.params)
    result = dict(config_file=path, persisted=False, file_changed=False)
    source = read_file(path) if path else None
    if source is not None and config_file_holds(source, item.after):
        result["persisted"] = True
        return result
    if check_mode:
        if not path:
            warn("CONFIG REWRITE would fail on %s: the server runs without a config file" % item.endpoint)
        result["file_changed"] = source is not None
        return result
    try:
        with original_effort_on_disk(item, warn):
            config_rewrite(item.client, item.params, item.after)
    except RedisMemoryError as exc:
        exc.details.setdefault("failed_node", item.endpoint)
        raise
    result["persisted"] = True
    result["file_changed"] = source is not None
    return result


__all__ = [
    "CLASSIC_POLICIES", "CONFIG_PERMISSIONS", "LRM_POLICIES", "MINIMAL_ACL", "MINIMAL_ACL_REDIS6", "NodePlan", "PARAMETERS",
    "RedisMemoryError", "RedisModuleError", "apply_changes", "apply_nodes", "check_guards", "config_file_matches",
    "DEFAULTS", "EFFORT_MARKER_KEY", "MAXMEMORY_LIMIT", "MAXMEMORY_LIMIT_REDIS6", "config_file_holds", "original_effort_on_disk",
    "maxmemory_limit", "parse_wanted_memory", "recorded_effort",
    "config_rewrite", "describe_config_error", "describe_values", "file_targets",
    "find_topology_broker_keys", "format_bytes", "guard_nodes", "inspect_nodes", "needs_broker_lookup",
    "normalise_config", "normalise_wanted", "parse_memory", "persist_rewrite_node",
    "plan", "read_config", "read_config_values", "redis_value", "rewrite_config", "server_config_file",
    "supported_policies", "validate_policy",
]
