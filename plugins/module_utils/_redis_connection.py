# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way our modules talk to Redis: options, client factory, and readable errors.

Kept in lockstep with the ``redis_connection`` doc fragment.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import traceback

from ansible_collections.celery_ops.lean_results.plugins.module_utils._secrets import mask_values
from ansible_collections.celery_ops.lean_results.plugins.module_utils._text import as_text

try:
    import redis
    HAS_REDIS = True
    REDIS_IMPORT_ERROR = None
    REDIS_PY_VERSION = tuple(int(part) for part in redis.__version__.split(".")[:2] if part.isdigit())
except ImportError:
    redis = None
    HAS_REDIS = False
    REDIS_IMPORT_ERROR = traceback.format_exc()
    REDIS_PY_VERSION = ()

try:
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:  # redis-py before 4.1
    NoBackoff = Retry = None

try:
    # redis-py 7 asks RESP3 servers for maintenance push notifications (CLIENT MAINT_NOTIFICATIONS):
    # a needless command for a short module run (an ACL denial for least-privilege users), and
    # it fails outright on unix sockets.
    from redis.maint_notifications import MaintNotificationsConfig
except ImportError:
    MaintNotificationsConfig = None


class RedisModuleError(Exception):
    """A failure talking to Redis, with a message fit for an operator (never a password)."""


def redis_connection_argument_spec():
    """The connection options every Redis-facing module takes."""
    return dict(
        login_host=dict(type="str", default="localhost"),
        login_port=dict(type="int", default=6379),
        login_unix_socket=dict(type="path"),
        login_user=dict(type="str"),
        login_password=dict(type="str", no_log=True),
        db=dict(type="int", default=0),
        tls=dict(type="bool", default=False),
        validate_certs=dict(type="bool", default=True),
        ca_certs=dict(type="path"),
        client_cert_file=dict(type="path"),
        client_key_file=dict(type="path"),
        protocol=dict(type="int", default=2, choices=[2, 3]),
        cluster=dict(type="str", default="auto", choices=["auto", "yes", "no"]),
        connect_timeout=dict(type="float", default=10),
        sentinel_hosts=dict(type="list", elements="str"),
        sentinel_master=dict(type="str"),
        sentinel_user=dict(type="str"),
        sentinel_password=dict(type="str", no_log=True),
    )


def describe_endpoint(params):
    """Where we connect, for messages: ``host:port`` or the socket path, never credentials."""
    if params.get("login_unix_socket"):
        return "unix:%s" % params["login_unix_socket"]
    return "%s:%s" % (params.get("login_host"), params.get("login_port"))


def client_kwargs(params):
    """redis.Redis keyword arguments for the connection options (pure, testable)."""
    kwargs = dict(
        db=params.get("db") or 0,
        username=params.get("login_user") or None,
        password=params.get("login_password") or None,
        socket_timeout=params.get("connect_timeout") or 10,
        socket_connect_timeout=params.get("connect_timeout") or 10,
        decode_responses=False,
    )
    if Retry is not None:
        # redis-py 6+ retries a failed connect (and command) 3 times with backoff, so connect_timeout: 2
        # took ~21 s against a silent listener. One attempt here; the wait reconnects on its own.
        kwargs["retry"] = Retry(NoBackoff(), 0)
    if params.get("login_unix_socket"):
        kwargs["unix_socket_path"] = params["login_unix_socket"]
    else:
        kwargs["host"] = params.get("login_host") or "localhost"
        kwargs["port"] = params.get("login_port") or 6379
        if params.get("tls"):
            kwargs.update(
                ssl=True,
                ssl_cert_reqs="required" if params.get("validate_certs", True) else "none",
                ssl_check_hostname=bool(params.get("validate_certs", True)),
                ssl_ca_certs=params.get("ca_certs"),
                ssl_certfile=params.get("client_cert_file"),
                ssl_keyfile=params.get("client_key_file"),
            )
    protocol = params.get("protocol") or 2
    # redis-py learnt RESP3 (and the ``protocol`` argument) in 5.0; before that it is RESP2 only.
    if REDIS_PY_VERSION >= (5, 0):
        kwargs["protocol"] = protocol
        if MaintNotificationsConfig is not None:
            kwargs["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
    elif protocol == 3:
        raise RedisModuleError("protocol: 3 needs redis-py 5.0 or later (found %s); use protocol: 2"
                               % ".".join(str(p) for p in REDIS_PY_VERSION))
    return kwargs


def make_client(params):
    """An unconnected redis.Redis for the options (redis-py connects on the first command)."""
    kwargs = client_kwargs(params)
    if "unix_socket_path" in kwargs and "maint_notifications_config" in kwargs and kwargs.get("protocol") == 3:
        # redis-py 7 drops maint_notifications_config on the unix-socket path of redis.Redis and
        # then fails every RESP3 connection on a socket; a pool of our own keeps the setting.
        kwargs["path"] = kwargs.pop("unix_socket_path")
        pool = redis.ConnectionPool(connection_class=redis.UnixDomainSocketConnection, **kwargs)
        return redis.Redis(connection_pool=pool)
    return redis.Redis(**kwargs)


def connect(params):
    """A PING-checked client for the one server ``params`` point at, exactly as they say.

    Modules find their servers with :func:`connect_topology`; this opens one more client on a
    node already found (another database of it, see :func:`params_for_node`), so it never asks
    Sentinel nor walks a cluster.
    """
    if not HAS_REDIS:
        raise RedisModuleError("the redis Python package (redis-py) is required")
    check_tls_files(params)
    return _ping(make_client(params), params)


def _ping(client, params):
    try:
        client.ping()
    except Exception as exc:  # every failure becomes one readable message
        raise RedisModuleError(describe_redis_error(exc, params, command="PING"))
    return client


def check_tls_files(params):
    """Fail early, naming the option, when a TLS file is missing (redis-py says only 'errno 2')."""
    if not params.get("tls") or params.get("login_unix_socket"):
        return
    for option in ("ca_certs", "client_cert_file", "client_key_file"):
        path = params.get(option)
        if path and not os.access(path, os.R_OK):
            raise RedisModuleError("%s=%s does not exist or is not readable" % (option, path))
    if params.get("client_key_file") and not params.get("client_cert_file"):
        raise RedisModuleError("client_key_file is set without client_cert_file; set both")


# -- topologies: one node, a primary with replicas (maybe behind Sentinel), a cluster ----------

class Node(object):
    """One server of a topology: where it is, its role, and (once connected) a client."""

    def __init__(self, host, port, role, client=None, primary=None):
        self.host = host
        self.port = port
        self.role = role  # "primary" or "replica"
        self.client = client
        self.primary = primary  # endpoint of the primary a replica follows

    @property
    def endpoint(self):
        if self.port is None:
            return "unix:%s" % self.host
        return "%s:%s" % (self.host, self.port)

    def __repr__(self):
        return "Node(%s, %s)" % (self.endpoint, self.role)


class Topology(object):
    """The servers behind the connection options.

    ``mode`` is ``standalone`` (one primary, no replica), ``replicated`` (a primary with
    replicas, found from INFO replication or from Sentinel) or ``cluster`` (every primary of a
    Redis Cluster, each holding a share of the slots). Keys live on ``primaries``; CONFIG is per
    node, so a change meant to survive a failover goes to ``nodes`` (replicas included).
    """

    def __init__(self, mode, primaries, replicas=(), sentinel=None, cluster_enabled=None):
        self.mode = mode
        # a cluster node measured alone (cluster: no) still refuses cross-slot scripts
        self.cluster_enabled = mode == "cluster" if cluster_enabled is None else cluster_enabled
        self.primaries = list(primaries)
        self.replicas = list(replicas)
        self.sentinel = sentinel  # the Sentinel that named the primary, when one did

    @property
    def primary(self):
        return self.primaries[0]

    @property
    def nodes(self):
        return self.primaries + self.replicas

    def describe(self):
        """A summary for module results: mode, primaries and replicas by endpoint."""
        return dict(
            mode=self.mode,
            primaries=[node.endpoint for node in self.primaries],
            replicas=[dict(endpoint=node.endpoint, primary=node.primary) for node in self.replicas],
            sentinel=self.sentinel,
        )

    def close(self):
        for node in self.nodes:
            if node.client is not None:
                node.client.close()


def node_params(params, host, port):
    """The connection options for another node: same credentials and TLS, its own address."""
    derived = dict(params)
    derived.update(login_host=host, login_port=port, login_unix_socket=None)
    return derived


def params_for_node(params, node):
    """Connection options aimed at ``node`` alone (no Sentinel look-up, no topology walk)."""
    if node.port is None:  # the unix socket the module was given
        derived = dict(params)
    else:
        derived = node_params(params, node.host, node.port)
    derived.update(sentinel_hosts=None, cluster="no")
    return derived


def connect_node(params, host, port):
    """A PING-checked client for ``host:port`` with the credentials and TLS of ``params``."""
    derived = node_params(params, host, port)
    return _ping(make_client(derived), derived)


def connect_topology(params, connect_replicas=False):
    """Find the servers behind ``params`` and connect to the primaries (and replicas if asked).

    ``cluster: auto`` asks the server whether cluster mode is enabled (``cluster_enabled`` in
    INFO cluster, which Redis and Valkey both report; Valkey has no ``redis_mode`` line);
    ``cluster: no`` treats a cluster node as one server. With ``sentinel_hosts``, Sentinel names the current primary
    and its replicas, so a module run after a failover follows the new primary.
    """
    if not HAS_REDIS:
        raise RedisModuleError("the redis Python package (redis-py) is required")
    check_tls_files(params)
    if params.get("sentinel_hosts"):
        return _sentinel_topology(params, connect_replicas)

    client = _ping(make_client(params), params)
    clustered = is_cluster_node(client, params)
    wanted = params.get("cluster") or "auto"
    if wanted == "yes" and not clustered:
        client.close()
        raise RedisModuleError("cluster: yes, but the server at %s is not a cluster node (INFO cluster: "
                               "cluster_enabled:0); use cluster: auto or no" % describe_endpoint(params))
    if clustered and wanted != "no":
        if (params.get("db") or 0) != 0:
            client.close()
            raise RedisModuleError("a Redis Cluster has only db 0; the module got db: %s" % params.get("db"))
        try:
            return _cluster_topology(params, client, connect_replicas)
        finally:
            client.close()
    topology = _replicated_topology(params, client, connect_replicas)
    topology.cluster_enabled = clustered
    return topology


def server_mode(info):
    """``standalone``, ``cluster`` or ``sentinel`` from INFO server: Redis calls the line
    ``redis_mode``, Valkey 8 ``server_mode`` (and drops ``redis_mode``)."""
    return as_text(info.get("redis_mode") or info.get("server_mode") or "standalone")


def is_cluster_node(client, params, server=None):
    """Whether the server runs with cluster mode enabled, asked of the server itself.

    ``cluster_enabled`` in INFO cluster is the capability every Redis since 3.0 and every
    Valkey reports; the INFO server mode line (``redis_mode`` or ``server_mode``) is the
    fallback for a server that leaves the cluster section out.
    """
    section = server_info(client, params, "cluster")
    if "cluster_enabled" in section:
        return str(as_text(section["cluster_enabled"])) == "1"
    return server_mode(server if server is not None else server_info(client, params)) == "cluster"


def _replicas_in(replication, primary_endpoint):
    """Replica nodes a primary lists in INFO replication (``slaveN: ip=..,port=..``)."""
    replicas = []
    for name in sorted(replication):
        entry = replication[name]
        if not (as_text(name).startswith("slave") and isinstance(entry, dict)):
            continue
        if "ip" not in entry or "port" not in entry:
            continue
        replicas.append(Node(as_text(entry["ip"]), int(entry["port"]), "replica", primary=primary_endpoint))
    return replicas


def _replicated_topology(params, client, connect_replicas):
    replication = server_info(client, params, "replication")
    if params.get("login_unix_socket"):
        here = Node(params["login_unix_socket"], None, "primary", client)
    else:
        here = Node(params.get("login_host") or "localhost", params.get("login_port") or 6379,
                    "primary", client)
    if as_text(replication.get("role")) != "master":
        # Keys are counted and written on the primary: follow the replica to it.
        host, port = as_text(replication.get("master_host")), int(replication.get("master_port") or 0)
        try:
            primary_client = connect_node(params, host, port)
        finally:
            client.close()
        here = Node(host, port, "primary", primary_client)
        replication = server_info(primary_client, node_params(params, host, port), "replication")
    replicas = _replicas_in(replication, here.endpoint)
    if connect_replicas:
        for replica in replicas:
            replica.client = connect_node(params, replica.host, replica.port)
    return Topology("replicated" if replicas else "standalone", [here], replicas)


def parse_cluster_nodes(text):
    """CLUSTER NODES as a list of dicts: id, host, port, flags (set), primary_id, slots (bool)."""
    nodes = []
    for line in as_text(text).splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address = fields[1].split("@")[0].split(",")[0]
        host, _sep, port = address.rpartition(":")
        nodes.append(dict(
            id=fields[0],
            host=host.strip("[]"),
            port=int(port) if port.isdigit() else 0,
            flags=set(fields[2].split(",")),
            primary_id=None if fields[3] == "-" else fields[3],
            link=fields[7],
            slots=len(fields) > 8,
        ))
    return nodes


CLUSTER_SKIPPED_FLAGS = ("fail", "handshake", "noaddr")


def _cluster_topology(params, client, connect_replicas):
    try:
        raw = client.execute_command("CLUSTER", "NODES")  # no reply parser: the raw text
    except Exception as exc:
        raise RedisModuleError(describe_redis_error(exc, params, command="CLUSTER NODES"))
    entries = parse_cluster_nodes(raw)
    by_id = {}
    for entry in entries:
        if "myself" in entry["flags"] and not entry["host"]:
            entry["host"] = params.get("login_host") or "localhost"
        by_id[entry["id"]] = entry
    primaries, replicas = [], []
    for entry in entries:
        if entry["flags"].intersection(CLUSTER_SKIPPED_FLAGS) or not entry["port"]:
            continue
        if "master" in entry["flags"]:
            primaries.append(Node(entry["host"], entry["port"], "primary"))
        elif "slave" in entry["flags"]:
            primary = by_id.get(entry["primary_id"])
            replicas.append(Node(entry["host"], entry["port"], "replica",
                                 primary="%s:%s" % (primary["host"], primary["port"]) if primary else None))
    if not primaries:
        raise RedisModuleError("the cluster at %s lists no reachable primary in CLUSTER NODES"
                               % describe_endpoint(params))
    primaries.sort(key=lambda node: (node.host, node.port))
    replicas.sort(key=lambda node: (node.host, node.port))
    for node in primaries + (replicas if connect_replicas else []):
        node.client = connect_node(params, node.host, node.port)
    return Topology("cluster", primaries, replicas)


def parse_host_port(text, default_port):
    """``host``, ``host:port`` or ``[v6]:port`` to (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _sep, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, default_port


def sentinel_params(params, host, port):
    """Options for a Sentinel: its own credentials, the TLS settings of the data nodes, RESP2."""
    derived = node_params(params, host, port)
    derived.update(login_user=params.get("sentinel_user"), login_password=params.get("sentinel_password"),
                   db=0, protocol=2)
    return derived


def _sentinel_topology(params, connect_replicas):
    name = params.get("sentinel_master")
    if not name:
        raise RedisModuleError("sentinel_hosts is set but sentinel_master is not: name the master "
                               "as the Sentinels know it (sentinel monitor NAME ...)")
    problems = []
    for entry in params["sentinel_hosts"]:
        try:
            host, port = parse_host_port(entry, 26379)
        except ValueError:
            raise RedisModuleError("sentinel_hosts entry %r is not host:port" % entry)
        options = sentinel_params(params, host, port)
        sentinel = make_client(options)
        try:
            address = sentinel.sentinel_get_master_addr_by_name(name)
            replica_states = sentinel.sentinel_slaves(name) if address else []
        except Exception as exc:
            message = describe_redis_error(exc, options, "SENTINEL").replace(
                "login_user and login_password", "sentinel_user and sentinel_password")
            problems.append(_scrub(message, params))
            continue
        finally:
            sentinel.close()
        if not address:
            problems.append("the Sentinel at %s:%s does not monitor a master named %r" % (host, port, name))
            continue
        primary_host, primary_port = as_text(address[0]), int(address[1])
        client = connect_node(params, primary_host, primary_port)
        replication = server_info(client, node_params(params, primary_host, primary_port), "replication")
        role = as_text(replication.get("role"))
        if role != "master":
            client.close()
            problems.append("the Sentinel at %s:%s names %s:%s as primary of %r, but that server is a %s "
                            "(a failover in progress?)" % (host, port, primary_host, primary_port, name, role))
            continue
        primary = Node(primary_host, primary_port, "primary", client)
        # Right after a failover Sentinel may still list the promoted server as a replica and
        # not yet list the demoted one: the primary's own view wins, Sentinel's adds the rest.
        replicas = dict((node.endpoint, node) for node in _replicas_in(replication, primary.endpoint))
        for state in replica_states:
            if state.get("is_sdown") or state.get("is_odown") or state.get("is_disconnected"):
                continue
            node = Node(as_text(state["ip"]), int(state["port"]), "replica", primary=primary.endpoint)
            if node.endpoint != primary.endpoint:
                replicas.setdefault(node.endpoint, node)
        replicas = sorted(replicas.values(), key=lambda node: (node.host, node.port))
        if connect_replicas:
            for replica in replicas:
                replica.client = connect_node(params, replica.host, replica.port)
        return Topology("replicated", [primary], replicas, sentinel="%s:%s" % (host, port))
    raise RedisModuleError("no Sentinel in sentinel_hosts (%s) named the current primary of %r: %s"
                           % (", ".join(params["sentinel_hosts"]), name, "; ".join(problems)))


def server_info(client, params, section="server"):
    try:
        return client.info(section)
    except Exception as exc:
        raise RedisModuleError(describe_redis_error(exc, params, command="INFO"))


def _version_tuple(text):
    parts = [int(p) if p.isdigit() else 0 for p in str(as_text(text) or "0.0.0").split(".")[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def server_version(client, params):
    """(major, minor, patch) of the Redis command set the server implements: ``redis_version``.

    Valkey keeps ``redis_version`` at 7.2.4 (the Redis release it forked) whatever its own
    version, so this is the level to decide Redis features by (``EXPIRE ... LT`` and several
    parameters per ``CONFIG SET`` since 7.0); :func:`server_identity` names the real server.
    """
    return _version_tuple(server_info(client, params).get("redis_version"))


def server_identity(info):
    """What runs behind the connection, from INFO server: ``name`` (redis or valkey), its own
    ``version`` text and the Redis-compatible ``redis_version`` tuple."""
    name = as_text(info.get("server_name") or "redis")
    own = info.get("%s_version" % name) or info.get("redis_version") or "0.0.0"
    return dict(name=name, version=str(as_text(own)), redis_version=_version_tuple(info.get("redis_version")))


# ACL read-only key selectors (``%R~``) arrived with Redis 7.0; Valkey has them. Before, ``~``
# (read and write) is the only way to grant keys.
ACL_READ_SELECTORS_SINCE = (7, 0, 0)


def acl_key_rule(redis_version, read_only=True):
    """The ACL key pattern for all keys that the server at ``redis_version`` accepts."""
    if read_only and tuple(redis_version) >= ACL_READ_SELECTORS_SINCE:
        return "%R~*"
    return "~*"


def _scrub(text, params, option="login_password"):
    return mask_values(text, [params.get(option)])


def _causes(exc):
    seen = []
    cause = exc.__cause__ or exc.__context__
    while cause is not None and cause not in seen and len(seen) < 5:
        seen.append(cause)
        cause = cause.__cause__ or cause.__context__
    return seen


def _describe_tls_error(raw, upper, params, where):
    """Say which file or option a TLS failure points at."""
    ca_certs = params.get("ca_certs")
    if not params.get("client_cert_file") and ("EOF OCCURRED" in upper or "UNEXPECTED EOF" in upper):
        return ("the server at %s closed the TLS connection (%s): it requires a client certificate "
                "(tls-auth-clients): set client_cert_file and client_key_file" % (where, raw))
    if "CERTIFICATE_REQUIRED" in upper or "CERTIFICATE REQUIRED" in upper:
        return ("the server at %s requires a client certificate (tls-auth-clients): set client_cert_file "
                "and client_key_file (%s)" % (where, raw))
    if "UNKNOWN CA" in upper or "UNKNOWN_CA" in upper or "BAD CERTIFICATE" in upper or "BAD_CERTIFICATE" in upper:
        return ("the server at %s rejected the client certificate client_cert_file=%s: it is not signed by "
                "a CA the server trusts (tls-ca-cert-file) (%s)" % (where, params.get("client_cert_file"), raw))
    if "MISMATCH" in upper or "HOSTNAME" in upper:
        return ("the certificate of the server at %s does not name %r: connect with login_host set to a "
                "name or address in its subjectAltName (%s)" % (where, params.get("login_host"), raw))
    if "EXPIRED" in upper:
        return "the certificate of the server at %s has expired (%s)" % (where, raw)
    if "VERIFY FAILED" in upper or "VERIFY_FAILED" in upper:
        source = "ca_certs=%s" % ca_certs if ca_certs else "the system CA store (ca_certs is not set)"
        return ("certificate verify failed for the server at %s: its certificate is not signed by a CA "
                "in %s. Set ca_certs to the CA bundle that signed the server certificate "
                "(validate_certs: false skips the check, not recommended) (%s)" % (where, source, raw))
    if "WRONG_VERSION_NUMBER" in upper or "WRONG VERSION NUMBER" in upper or "RECORD LAYER" in upper:
        return ("the server at %s does not speak TLS on that port: set tls: false, or use its "
                "tls-port (%s)" % (where, raw))
    return "TLS handshake with %s failed: %s (check tls, ca_certs, validate_certs, client_cert_file)" % (where, raw)


def describe_redis_error(exc, params, command=None):
    """Map a redis-py exception to a message that says what happened, where, and what to do."""
    where = describe_endpoint(params)
    user = params.get("login_user") or "default"
    raw = _scrub(str(exc), params)
    upper = raw.upper()
    # redis-py wraps socket and ssl errors ("Timeout connecting to server"): look at the causes too.
    causes = " ".join(_scrub(str(cause), params) for cause in _causes(exc)).upper()
    name = type(exc).__name__
    # A refusal names its command: a NOPERM on the SELECT of the handshake is not one on PING.
    refused_command = re.search(r"run the '([^']+)' command", raw)
    if refused_command:
        command = refused_command.group(1).upper()
    doing = " running %s" % command if command else ""

    if "WRONGPASS" in upper or "INVALID PASSWORD" in upper or "INVALID USERNAME-PASSWORD" in upper:
        return ("authentication failed at %s for user %r: wrong user name or password (WRONGPASS); "
                "check login_user and login_password" % (where, user))
    if "NOAUTH" in upper or name == "AuthenticationError" and "REQUIRED" in upper:
        return ("the server at %s requires a password (NOAUTH): set login_password "
                "(and login_user for an ACL user)" % where)
    if "NOPERM" in upper or name == "NoPermissionError" or "NO PERMISSIONS" in upper:
        refused = re.search(r"run the '([^']+)' command", raw)
        needed = refused.group(1) if refused else (command or "the command").split(" ")[0].lower()
        return ("user %r at %s has no permission%s (NOPERM): %s. Grant it, e.g. "
                "ACL SETUSER %s +%s" % (user, where, doing, raw, user, needed.replace(" ", "|")))
    if "UNKNOWN COMMAND" in upper:
        # Redis 7 quotes the command ('HELLO'), Redis 6 and Valkey before 8 use backticks (`HELLO`).
        if command and command.upper().startswith("HELLO") or re.search(r"UNKNOWN COMMAND ['`]HELLO['`]", upper):
            return ("the server at %s does not speak RESP3 (no HELLO command, Redis before 6): "
                    "set protocol: 2" % where)
        return ("the server at %s does not know the command%s (%s): it is renamed "
                "(rename-command) or blocked, as managed services do with CONFIG; this step "
                "needs direct access to that command" % (where, doing, raw))
    if name in ("MovedError", "AskError") or upper.startswith("MOVED") or upper.startswith("ASK "):
        return ("the server at %s is a Redis Cluster node and the key lives on another node (%s)%s: "
                "use cluster: auto (or yes) so the module talks to every primary" % (where, raw, doing))
    if "CROSSSLOT" in upper or "DO NOT HASH TO THE SAME SLOT" in upper:
        return ("keys of one command map to different cluster slots at %s (CROSSSLOT)%s: %s"
                % (where, doing, raw))
    if "CLUSTERDOWN" in upper:
        return ("the cluster at %s is down (CLUSTERDOWN)%s: wait until CLUSTER INFO says "
                "cluster_state:ok, or fix the failed primaries: %s" % (where, doing, raw))
    if "CLUSTER SUPPORT DISABLED" in upper:
        return "the server at %s is not a cluster node; use cluster: auto or no (%s)" % (where, raw)
    if "SSL" in upper or "CERTIFICATE" in upper or "TLS" in upper:
        return _describe_tls_error(raw, upper, params, where)
    if upper.startswith("OOM") or " OOM " in upper:
        return ("the server at %s is out of memory (OOM)%s: %s. Raise maxmemory or free keys "
                "first" % (where, doing, raw))
    if "NO CONFIG FILE" in upper or "WITHOUT A CONFIG FILE" in upper:
        return ("the server at %s is running without a config file, so CONFIG REWRITE cannot "
                "persist settings: %s" % (where, raw))
    if params.get("tls") and "HANDSHAKE" in causes and ("TIMED OUT" in causes or "TIMEOUT" in upper):
        return ("the TLS handshake with %s timed out: the server may not speak TLS on that port; set "
                "tls: false, or use its tls-port (%s)" % (where, raw))
    if name in ("TimeoutError",) or "TIMED OUT" in upper or "TIMEOUT" in upper and name != "ResponseError":
        return "timed out talking to %s%s: %s" % (where, doing, raw)
    if params.get("tls") and not params.get("client_cert_file") and (
            "CLOSED BY SERVER" in upper or "RESET BY PEER" in upper):
        return ("the server at %s closed the TLS connection (%s): if it requires a client certificate "
                "(tls-auth-clients), set client_cert_file and client_key_file" % (where, raw))
    if not params.get("tls") and ("CLOSED BY SERVER" in upper or "RESET BY PEER" in upper):
        return ("the server at %s closed the connection%s: %s. If it accepts only TLS (tls-port, "
                "port 0), set tls: true" % (where, doing, raw))
    if name == "ConnectionError" or "CONNECTION REFUSED" in upper or "CONNECT" in upper:
        return ("cannot connect to %s: %s. Is the server running there, and are login_host/"
                "login_port (or login_unix_socket) right?" % (where, raw))
    if "PROTOCOL" in upper and "HELLO" in upper:
        return "the server at %s refused RESP3: set protocol: 2 (%s)" % (where, raw)
    return "Redis error at %s%s: %s: %s" % (where, doing, name, raw)


__all__ = [
    "HAS_REDIS", "REDIS_IMPORT_ERROR", "REDIS_PY_VERSION", "RedisModuleError", "redis_connection_argument_spec",
    "client_kwargs", "make_client", "connect", "server_info", "server_version", "server_identity",
    "server_mode", "is_cluster_node", "acl_key_rule", "ACL_READ_SELECTORS_SINCE", "describe_redis_error",
    "describe_endpoint", "check_tls_files", "Node", "Topology", "connect_node", "connect_topology",
    "node_params", "params_for_node", "as_text", "parse_cluster_nodes", "parse_host_port", "sentinel_params",
]
