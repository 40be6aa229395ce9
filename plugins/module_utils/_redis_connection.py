# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way our modules talk to Redis: options, client factory, and readable errors.

Kept in lockstep with the ``redis_connection`` doc fragment.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import traceback

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
    elif protocol == 3:
        raise RedisModuleError("protocol: 3 needs redis-py 5.0 or later (found %s); use protocol: 2"
                               % ".".join(str(p) for p in REDIS_PY_VERSION))
    return kwargs


def connect(params):
    """A connected client for one server, checked with PING.

    This is the seam for cluster support: callers get a client and, from ``server_info``,
    the server's mode, so a cluster-aware path can branch here without touching modules.
    """
    if not HAS_REDIS:
        raise RedisModuleError("the redis Python package (redis-py) is required")
    client = redis.Redis(**client_kwargs(params))
    try:
        client.ping()
    except Exception as exc:  # every failure becomes one readable message
        raise RedisModuleError(describe_redis_error(exc, params, command="PING"))
    if params.get("cluster") == "yes":
        raise RedisModuleError("cluster: yes is not supported yet by this module version; "
                               "point the module at one node with cluster: no")
    return client


def server_info(client, params, section="server"):
    try:
        return client.info(section)
    except Exception as exc:
        raise RedisModuleError(describe_redis_error(exc, params, command="INFO"))


def server_version(client, params):
    """(major, minor, patch) of the server; Valkey reports a Redis-compatible redis_version."""
    text = server_info(client, params).get("redis_version", "0.0.0")
    if isinstance(text, bytes):
        text = text.decode()
    parts = [int(p) if p.isdigit() else 0 for p in str(text).split(".")[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def _scrub(text, params):
    password = params.get("login_password")
    if password:
        text = text.replace(password, "********")
    return text


def describe_redis_error(exc, params, command=None):
    """Map a redis-py exception to a message that says what happened, where, and what to do."""
    where = describe_endpoint(params)
    user = params.get("login_user") or "default"
    raw = _scrub(str(exc), params)
    upper = raw.upper()
    name = type(exc).__name__
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
        if command and command.upper().startswith("HELLO") or "'HELLO'" in upper:
            return ("the server at %s does not speak RESP3 (no HELLO command, Redis before 6): "
                    "set protocol: 2" % where)
        return ("the server at %s does not know the command%s (%s): it is renamed "
                "(rename-command) or blocked, as managed services do with CONFIG; this step "
                "needs direct access to that command" % (where, doing, raw))
    if upper.startswith("OOM") or " OOM " in upper:
        return ("the server at %s is out of memory (OOM)%s: %s. Raise maxmemory or free keys "
                "first" % (where, doing, raw))
    if "NO CONFIG FILE" in upper or "WITHOUT A CONFIG FILE" in upper:
        return ("the server at %s is running without a config file, so CONFIG REWRITE cannot "
                "persist settings: %s" % (where, raw))
    if name in ("TimeoutError",) or "TIMED OUT" in upper or "TIMEOUT" in upper and name != "ResponseError":
        return "timed out talking to %s%s: %s" % (where, doing, raw)
    if "SSL" in upper or "CERTIFICATE" in upper:
        return "TLS handshake with %s failed: %s (check tls, ca_certs, validate_certs)" % (where, raw)
    if name == "ConnectionError" or "CONNECTION REFUSED" in upper or "CONNECT" in upper:
        return ("cannot connect to %s: %s. Is the server running there, and are login_host/"
                "login_port (or login_unix_socket) right?" % (where, raw))
    if "PROTOCOL" in upper and "HELLO" in upper:
        return "the server at %s refused RESP3: set protocol: 2 (%s)" % (where, raw)
    return "Redis error at %s%s: %s: %s" % (where, doing, name, raw)


__all__ = [
    "HAS_REDIS", "REDIS_IMPORT_ERROR", "RedisModuleError", "redis_connection_argument_spec",
    "client_kwargs", "connect", "server_info", "server_version", "describe_redis_error",
    "describe_endpoint",
]
