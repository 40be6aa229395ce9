# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the live Celery app says about itself, for celery_app_info.

The app is asked, not read: ``_celery_app_probe.PROBE_SCRIPT`` runs under the app's own
interpreter and prints raw settings; this file turns them into what the module returns. URLs are
parsed here and their passwords dropped (``password_set`` says there was one); every text that
leaves (errors, tracebacks, worker replies) goes through ``_secrets``.

Everything takes a ``run_command(argv, data=None, cwd=None, environ_update=None)`` callable with
the shape of ``AnsibleModule.run_command`` returning ``(rc, stdout, stderr)``, so tests pass a
small stand-in or the real thing.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import re

import os
import subprocess
import threading
from urllib.parse import parse_qsl, unquote, urlsplit

from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_app_probe import (
    PROBE_MARKER, PROBE_SCRIPT)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._secrets import (
    MASK, mask_all, mask_values)

TASK_META = "celery-task-meta-"
GROUP_META = "celery-taskset-meta-"
# celery/backends/base.py: a prefix ending in one of these is used as is, else "_" is appended.
PREFIX_SEPARATORS = (":", "_", "-", ".")
REDIS_SCHEMES = ("redis", "rediss", "redis+socket", "socket", "unix")
SENTINEL_SCHEMES = ("sentinel", "sentinels")
TRACEBACK_LINES = 12
_SECRET_NAME = re.compile(r"pass|secret|token|credential|auth|key", re.I)


class CeleryAppInfoError(Exception):
    """The app could not be asked (bad interpreter, failed import, unreadable answer)."""

    def __init__(self, msg, **details):
        super(CeleryAppInfoError, self).__init__(msg)
        self.details = details


# -- key names ----------------------------------------------------------------------------------

def effective_prefix(global_keyprefix):
    """The prefix Celery puts in front of every result key for ``global_keyprefix``."""
    if not global_keyprefix:
        return ""
    prefix = str(global_keyprefix)
    if prefix.endswith(PREFIX_SEPARATORS):
        return prefix
    return prefix + "_"


def glob_escape(text):
    """``text`` as a literal inside a Redis SCAN MATCH pattern."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


def result_key_patterns(global_keyprefix=None):
    """The SCAN patterns of the keys the Redis result backend writes, prefix included."""
    prefix = glob_escape(effective_prefix(global_keyprefix))
    return dict(
        prefix=effective_prefix(global_keyprefix),
        task=prefix + TASK_META + "*",
        group=prefix + GROUP_META + "*",
        chord_counters=[prefix + GROUP_META + "*" + suffix for suffix in (".j", ".t", ".s")],
    )


# -- URLs ---------------------------------------------------------------------------------------

def _int_or_none(value):
    try:
        return int(str(value).strip("/"))
    except (TypeError, ValueError):
        return None


def _split_one(url):
    """kombu-style parts of one URL: the part after ``scheme://`` parsed as if it were http."""
    scheme, _sep, rest = url.partition("://")
    parts = urlsplit("http://" + rest)
    try:
        port = parts.port
    except ValueError:
        port = None
    return dict(
        scheme=scheme.lower(),
        host=unquote(parts.hostname or "") or None,
        port=port,
        username=unquote(parts.username or "") or None,
        password=unquote(parts.password or "") or None,
        path=unquote(parts.path or "") or None,
        query=dict(parse_qsl(parts.query)),
    )


def parse_url(url, transport_options=None, use_ssl=None):
    """One Celery ``result_backend`` / ``broker_url`` value, parsed, without its password.

    Returns scheme, kind (redis, sentinel or the scheme's own name), host, port, db, unix_socket,
    tls, sentinel {master, hosts}, username, password_set and ``url`` with the password masked.
    Several URLs joined by ``;`` (Sentinel, broker failover) give the first one's fields and
    ``hosts`` for all.
    """
    options = transport_options or {}
    if not url:
        return dict(scheme=None, kind="none", host=None, port=None, db=None, unix_socket=None, tls=False,
                    sentinel=None, username=None, password_set=False, url=None, hosts=[])
    if not isinstance(url, str):
        url = str(url)
    pieces = [piece.strip() for piece in url.split(";") if piece.strip()]
    parts = [_split_one(piece) for piece in pieces]
    first = parts[0]
    scheme = first["scheme"]
    query = first["query"]
    password_set = any(part["password"] for part in parts)
    if isinstance(options.get("password"), str) and options.get("password"):
        password_set = True
    found = dict(scheme=scheme, username=first["username"], password_set=password_set,
                 url=";".join(_masked(piece) for piece in pieces),
                 hosts=["%s:%s" % (part["host"], part["port"] or _default_port(part["scheme"]))
                        for part in parts if part["host"]],
                 host=None, port=None, db=None, unix_socket=None, sentinel=None)
    if scheme in SENTINEL_SCHEMES or scheme.startswith("sentinel"):
        found["kind"] = "sentinel"
        found["sentinel"] = dict(master=options.get("master_name") or query.get("master_name"),
                                 hosts=found["hosts"],
                                 password_set=bool((options.get("sentinel_kwargs") or {}).get("password")))
        found["db"] = _db(first, query)
        found["tls"] = scheme == "sentinels" or bool(use_ssl) or "ssl_cert_reqs" in query
        return found
    if scheme in REDIS_SCHEMES:
        found["kind"] = "redis"
        if scheme in ("redis+socket", "socket", "unix"):
            found["unix_socket"] = first["path"] if (first["path"] or "").startswith("/") else "/" + (first["path"] or "")
            found["db"] = _int_or_none(query.get("virtual_host") or query.get("db")) or 0
        else:
            found["host"] = first["host"] or "localhost"
            found["port"] = first["port"] or 6379
            found["db"] = _db(first, query)
        found["tls"] = scheme == "rediss" or bool(use_ssl) or "ssl_cert_reqs" in query
        found["validate_certs"] = _validate_certs(query, use_ssl)
        return found
    found["kind"] = scheme.split("+")[0] or "unknown"
    found["host"] = first["host"]
    found["port"] = first["port"]
    found["tls"] = bool(use_ssl) or scheme.endswith("s") and scheme in ("amqps", "https")
    return found


def _db(part, query):
    # Celery's Redis backend takes the db from the path only; kombu falls back to virtual_host.
    db = _int_or_none(part["path"])
    if db is None:
        db = _int_or_none(query.get("virtual_host") or query.get("db"))
    return db or 0


def _validate_certs(query, use_ssl):
    reqs = query.get("ssl_cert_reqs")
    if reqs is None and isinstance(use_ssl, dict):
        reqs = use_ssl.get("ssl_cert_reqs")
    if reqs is None:
        return True
    return str(reqs).upper() not in ("CERT_NONE", "NONE")


def _default_port(scheme):
    return 26379 if scheme.startswith("sentinel") else 6379


def _masked(url):
    """``url`` with the password of its userinfo masked (urlsplit-tolerant; never the password)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    userinfo, _at, tail = rest.partition("@")
    if ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":" + MASK
    return "%s://%s@%s" % (scheme, userinfo, tail)


def url_passwords(url):
    """Every password in ``url`` (for masking, never for output)."""
    if not url or not isinstance(url, str):
        return []
    found = []
    for piece in url.split(";"):
        if "://" in piece:
            password = _split_one(piece.strip())["password"]
            if password:
                found.append(password)
                found.append(piece.strip().partition("://")[2].partition("@")[0].partition(":")[2])
    return [value for value in found if value]


def mask_options(options):
    """Transport options with the values of secret-looking keys masked (recursively)."""
    if isinstance(options, dict):
        masked = {}
        for key, value in options.items():
            if re.search(r"pass|secret|token", str(key), re.I) and value not in (None, ""):
                masked[key] = MASK
            else:
                masked[key] = mask_options(value)
        return masked
    if isinstance(options, list):
        return [mask_options(item) for item in options]
    if isinstance(options, str):
        return mask_all(options)
    return options


def option_secrets(options):
    """Secret values inside transport options (for masking)."""
    found = []
    if isinstance(options, dict):
        for key, value in options.items():
            if re.search(r"pass|secret|token", str(key), re.I) and isinstance(value, str) and value:
                found.append(value)
            else:
                found.extend(option_secrets(value))
    elif isinstance(options, list):
        for item in options:
            found.extend(option_secrets(item))
    return found


def connection_params(parsed):
    """The connection options of our Redis-facing modules for a parsed result backend (no password)."""
    if parsed.get("kind") == "redis":
        params = dict(db=parsed["db"], tls=bool(parsed["tls"]))
        if parsed.get("unix_socket"):
            params["login_unix_socket"] = parsed["unix_socket"]
        else:
            params["login_host"] = parsed["host"]
            params["login_port"] = parsed["port"]
        if parsed.get("tls"):
            params["validate_certs"] = parsed.get("validate_certs", True)
        if parsed.get("username"):
            params["login_user"] = parsed["username"]
        return params
    if parsed.get("kind") == "sentinel":
        params = dict(db=parsed["db"], tls=bool(parsed["tls"]), sentinel_hosts=parsed["sentinel"]["hosts"])
        if parsed["sentinel"].get("master"):
            params["sentinel_master"] = parsed["sentinel"]["master"]
        if parsed.get("username"):
            params["login_user"] = parsed["username"]
        return params
    return {}


def same_redis(first, second):
    """Whether two parsed URLs reach the same Redis server (db aside)."""
    if first.get("kind") not in ("redis", "sentinel") or first.get("kind") != second.get("kind"):
        return False
    if first["kind"] == "sentinel":
        return (first["sentinel"]["master"] == second["sentinel"]["master"]
                and bool(set(first["hosts"]) & set(second["hosts"])))
    if first.get("unix_socket") or second.get("unix_socket"):
        return first.get("unix_socket") == second.get("unix_socket")
    local = ("localhost", "127.0.0.1", "::1")
    host_a = "localhost" if first["host"] in local else first["host"]
    host_b = "localhost" if second["host"] in local else second["host"]
    return host_a == host_b and first["port"] == second["port"]


# -- running the probe --------------------------------------------------------------------------

def scrub(text, secrets=()):
    """``text`` fit for output: known secrets, URL passwords and redis.conf secrets masked."""
    return mask_all(mask_values(text or "", list(secrets)))


def environment_secrets(environment):
    """Values of environment entries whose name looks secret (masked wherever they show up)."""
    return [str(value) for key, value in (environment or {}).items() if _SECRET_NAME.search(str(key)) and value]


def subprocess_runner(timeout):
    """A ``run_command`` that gives up after ``timeout`` seconds (AnsibleModule's has no timeout)."""
    def run(argv, data=None, cwd=None, environ_update=None):
        env = dict(os.environ)
        env.update(environ_update or {})
        try:
            # A pure helper without an AnsibleModule; the module passes its own timeout and environment.
            proc = subprocess.run(  # pylint: disable=ansible-bad-function
                argv, input=data, cwd=cwd or None, env=env, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise CeleryAppInfoError("%s did not answer within timeout (%ss)" % (os.path.basename(argv[0]), timeout))
        return proc.returncode, proc.stdout, proc.stderr
    return run


def run_probe(run_command, python, app, chdir=None, environment=None, settings=()):
    """Run the probe under ``python``; return its raw answer (dict). Raises CeleryAppInfoError.

    ``settings``: setting names to read besides the result settings (those asked to be checked).
    """
    secrets = environment_secrets(environment)
    argv = [python, "-c", PROBE_SCRIPT]
    try:
        rc, out, err = run_command(argv, data=json.dumps({"app": app, "settings": list(settings)}), cwd=chdir,
                                   environ_update=dict((k, str(v)) for k, v in (environment or {}).items()))
    except (OSError, ValueError) as exc:
        raise CeleryAppInfoError("cannot run the app's interpreter %s: %s" % (python, scrub(str(exc), secrets)))
    answer = None
    for line in (out or "").splitlines():
        if line.startswith(PROBE_MARKER):
            try:
                answer = json.loads(line[len(PROBE_MARKER):])
            except ValueError:
                answer = None
    if answer is None:
        raise CeleryAppInfoError(
            "the app's interpreter %s gave no answer (rc=%s); is Celery installed there?" % (python, rc),
            rc=rc, stderr_tail=tail(scrub(err, secrets)))
    if not answer.get("ok"):
        more = url_passwords_in_text(answer.get("traceback", "")) + secrets
        raise CeleryAppInfoError(
            "importing the Celery app %r under %s failed: %s" % (app, python, scrub(answer.get("error", ""), more)),
            traceback_tail=tail(scrub(answer.get("traceback", ""), more)), stderr_tail=tail(scrub(err, more)))
    answer["_secrets"] = secrets
    return answer


def url_passwords_in_text(text):
    return [pw for url in re.findall(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+", text or "") for pw in url_passwords(url)]


def tail(text, lines=TRACEBACK_LINES):
    return (text or "").rstrip().splitlines()[-lines:]


def describe_app(raw):
    """What celery_app_info returns, from the probe's raw answer (no secret in it)."""
    settings = raw.get("settings") or {}
    backend_options = raw.get("result_backend_transport_options") or {}
    broker_options = raw.get("broker_transport_options") or {}
    backend = parse_url(raw.get("result_backend"), backend_options, settings.get("redis_backend_use_ssl"))
    broker = parse_url(raw.get("broker_url") or "amqp://guest@localhost//", broker_options,
                       settings.get("broker_use_ssl"))
    broker["default"] = not raw.get("broker_url")
    patterns = result_key_patterns(backend_options.get("global_keyprefix"))
    tasks = [task for task in raw.get("tasks") or [] if not task.get("builtin")]
    secrets = (url_passwords(raw.get("result_backend")) + url_passwords(raw.get("broker_url"))
               + option_secrets(backend_options) + option_secrets(broker_options) + list(raw.get("_secrets") or []))
    shown = dict(settings)
    shown.pop("redis_backend_use_ssl", None)
    shown.pop("broker_use_ssl", None)
    info = dict(
        settings=shown,
        result_backend=backend,
        broker=broker,
        result_backend_transport_options=mask_options(backend_options),
        broker_transport_options=mask_options(broker_options),
        global_keyprefix=backend_options.get("global_keyprefix") or "",
        key_prefix=patterns["prefix"],
        result_patterns=patterns,
        redis_connection=connection_params(backend),
        broker_on_result_redis=same_redis(backend, broker),
        broker_same_db=same_redis(backend, broker) and backend.get("db") == broker.get("db"),
        task_annotations=mask_options(raw.get("task_annotations")),
        tasks=tasks,
        task_names=[task["name"] for task in tasks],
        builtin_tasks=sorted(task["name"] for task in raw.get("tasks") or [] if task.get("builtin")),
        origin=raw.get("origin") or {},
        versions=raw.get("versions") or {},
        python_executable=raw.get("python_executable"),
    )
    return json.loads(scrub(json.dumps(info), secrets)), secrets


# -- expectations -------------------------------------------------------------------------------

def _seconds(value):
    """A duration as seconds: numbers, and the ``H:MM:SS`` text a worker's reply may carry."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = re.match(r"^(?:(\d+) days?, )?(\d+):(\d\d):(\d\d(?:\.\d+)?)$", value.strip())
        if match:
            days, hours, minutes, seconds = match.groups()
            return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        try:
            return float(value)
        except ValueError:
            return None
    return None


def same_value(expected, actual):
    """Whether a setting resolved as asked (numbers and durations by value)."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if expected is None or actual is None:
        return expected in (None, 0) and actual in (None, 0)
    if isinstance(expected, (int, float)) or isinstance(actual, (int, float)):
        return _seconds(expected) is not None and _seconds(expected) == _seconds(actual)
    return expected == actual


def settings_mismatches(expected, actual):
    """[{setting, expected, actual}] for each asked setting that resolved otherwise."""
    found = []
    for name in sorted(expected or {}):
        value = (actual or {}).get(name, "<unset>")
        if not same_value(expected[name], value):
            found.append(dict(setting=name, expected=expected[name], actual=value))
    return found


def task_mismatches(expected_tasks, tasks):
    """[{task, expected, actual}] for each asked ignore_result override that resolved otherwise."""
    by_name = dict((task["name"], task.get("ignore_result")) for task in tasks or [])
    found = []
    for name in sorted(expected_tasks or {}):
        wanted = expected_tasks[name]
        if isinstance(wanted, dict):
            if "ignore_result" not in wanted:
                continue
            wanted = wanted["ignore_result"]
        actual = by_name.get(name, "<not registered>")
        if actual != bool(wanted):
            found.append(dict(setting="task %s ignore_result" % name, task=name, expected=bool(wanted), actual=actual))
    return found


def cross_check(audited, registered, builtin=(), tasks=()):
    """Audit names vs the app's registry: what the audit names that the app lacks, and the reverse.

    Celery's own ``celery.*`` tasks count as registered but are never asked to be audited.
    A registered task the audit did not see keeps storing its results: ``keep_overrides`` gives it
    ``ignore_result: false`` unless it ignores them already (``tasks``: the app's task records).
    """
    audited, registered, builtin = set(audited or []), set(registered or []), set(builtin or [])
    not_audited = sorted(registered - audited)
    ignoring = set(task["name"] for task in tasks or [] if task.get("ignore_result"))
    return dict(audited_not_registered=sorted(audited - registered - builtin),
                registered_not_audited=not_audited,
                both=sorted(audited & (registered | builtin)),
                keep_overrides=dict((name, {"ignore_result": False}) for name in not_audited if name not in ignoring))


# -- workers ------------------------------------------------------------------------------------

_REGISTERED_ITEM = re.compile(r"^(?P<name>\S+)(?: \[(?P<info>.*)\])?$")


def parse_registered(items):
    """``inspect registered ignore_result`` lines -> {task: ignore_result or None}."""
    tasks = {}
    for item in items or []:
        match = _REGISTERED_ITEM.match(str(item))
        if not match:
            continue
        found = re.search(r"ignore_result=(\w+)", match.group("info") or "")
        tasks[match.group("name")] = None if not found else found.group(1) == "True"
    return tasks


def _inspect_json(text):
    """The JSON object ``celery inspect --json`` prints (the last line that parses)."""
    for line in reversed((text or "").strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return {}


def inspect_workers(run_command, python, app, chdir=None, environment=None, timeout=2.0, secrets=()):
    """Ask every worker (ping, registered with ignore_result, conf): {worker: {...}}."""
    base = [python, "-m", "celery", "-A", app]
    if chdir:
        base += ["--workdir", chdir]
    env = dict((k, str(v)) for k, v in (environment or {}).items())
    actions = (("ping", []), ("registered", ["ignore_result"]), ("conf", ["true"]))
    # The three broadcasts each wait the whole timeout for replies: run them side by side.
    outcomes = {}

    def ask(action, extra):
        argv = base + ["inspect", action] + extra + ["--json", "--timeout", str(timeout)]
        try:
            outcomes[action] = run_command(argv, cwd=chdir, environ_update=env)
        except CeleryAppInfoError as exc:
            outcomes[action] = (None, "", str(exc))

    threads = [threading.Thread(target=ask, args=action) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    replies, errors = {}, []
    for action, _extra in actions:
        rc, out, err = outcomes[action]
        answer = _inspect_json(out)
        if rc != 0 and not answer and "No nodes replied" not in (out or "") + (err or ""):
            errors.append("inspect %s: rc=%s %s" % (action, rc, " ".join(tail(scrub(err, secrets), 3))))
        for worker, reply in answer.items():
            replies.setdefault(worker, {})[action] = reply
    workers = {}
    for worker, reply in sorted(replies.items()):
        conf = reply.get("conf") if isinstance(reply.get("conf"), dict) else {}
        workers[worker] = dict(
            ping=(reply.get("ping") or {}).get("ok") == "pong" if isinstance(reply.get("ping"), dict) else False,
            registered=parse_registered(reply.get("registered")),
            conf=conf,
        )
    return json.loads(scrub(json.dumps(workers), secrets)), errors


def worker_mismatches(workers, expected_settings, expected_tasks=None):
    """{worker: [mismatch, ...]} for workers whose live config is not what was asked."""
    found = {}
    for worker, reply in sorted((workers or {}).items()):
        problems = settings_mismatches(expected_settings, reply.get("conf") or {})
        if expected_tasks:
            tasks = [dict(name=name, ignore_result=value) for name, value in reply.get("registered", {}).items()
                     if value is not None]
            known = set(task["name"] for task in tasks)
            problems += [item for item in task_mismatches(expected_tasks, tasks) if item["task"] in known]
        if problems:
            found[worker] = problems
    return found


__all__ = [
    "CeleryAppInfoError", "PREFIX_SEPARATORS", "connection_params", "cross_check", "describe_app",
    "effective_prefix", "environment_secrets", "glob_escape", "inspect_workers", "mask_options",
    "parse_registered", "parse_url", "result_key_patterns", "run_probe", "same_redis", "same_value", "scrub",
    "settings_mismatches", "subprocess_runner", "tail", "task_mismatches", "url_passwords", "worker_mismatches",
]
