"""Real redis-server processes for tests, each on its own free port and temp dir.

Never talks to a server it did not start: every server here is started by this
module and stopped by its pid.
"""
import functools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import redis

SERVER_ENV = "LEAN_RESULTS_REDIS_SERVER"


def _server_binary():
    """The server under test: ``$LEAN_RESULTS_REDIS_SERVER`` (a path: Redis's ``redis-server`` or
    Valkey's ``valkey-server``, as ``make test-servers`` sets it), else ``redis-server`` on PATH
    (Debian's package, the default). A name given but not there fails every test that starts a
    server: the matrix never quietly falls back to another server."""
    chosen = os.environ.get(SERVER_ENV)
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise RuntimeError("%s=%s is not an executable server binary" % (SERVER_ENV, chosen))
        return os.path.abspath(chosen)
    return shutil.which("redis-server") or "/usr/bin/redis-server"


REDIS_SERVER = _server_binary()


def terminate(process, timeout=10):
    """SIGTERM ``process`` (a Popen) if it still runs, and reap it; SIGKILL after ``timeout`` s."""
    if process and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port():
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """One redis-server process.

    ``config_file``: start from a config file (so CONFIG REWRITE works) instead of
    command-line arguments only. ``password``: requirepass for the default user.
    ``acl_users``: ACL rules, e.g. ``["app on >secret ~* +@all"]`` (a leading ``user`` is allowed).
    ``extra``: more ``{directive: value}`` pairs.
    """

    def __init__(self, workdir, password=None, config_file=False, acl_users=(), extra=None,
                 port=None, unixsocket=False):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.password = password
        self.acl_users = [rule[len("user "):] if rule.startswith("user ") else rule for rule in acl_users]
        self.extra = dict(extra or {})
        self.unix_socket = os.path.join(self.workdir, "redis.sock") if unixsocket else None
        self.config_path = os.path.join(self.workdir, "redis.conf") if config_file else None
        self.log_path = os.path.join(self.workdir, "redis.log")
        self.process = None

    # -- lifecycle -------------------------------------------------------
    def _directives(self):
        directives = [
            ("port", str(self.port)),
            ("bind", self.host),
            ("dir", self.workdir),
            ("save", '""'),
            ("appendonly", "no"),
            ("logfile", self.log_path),
            ("daemonize", "no"),
        ]
        if self.unix_socket:
            directives += [("unixsocket", self.unix_socket), ("unixsocketperm", "700")]
        if self.password:
            directives.append(("requirepass", self.password))
        for rule in self.acl_users:
            directives.append(("user", rule))
        directives += [(key, str(value)) for key, value in self.extra.items()]
        return directives

    def start(self):
        directives = self._directives()
        if self.config_path:
            if not os.path.exists(self.config_path):
                with open(self.config_path, "w") as handle:
                    for key, value in directives:
                        handle.write("%s %s\n" % (key, value))
            argv = [REDIS_SERVER, self.config_path]
        else:
            argv = [REDIS_SERVER]
            for key, value in directives:
                argv.append("--" + key)
                argv += value.split(" ") if key == "user" else [value.strip('"') if value == '""' else value]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        cwd=self.workdir)
        self._wait_ready()
        return self

    def _wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("redis-server exited: %s\n%s" % (
                    self.process.stderr.read().decode(errors="replace"), self.read_log()))
            try:
                if self.admin().ping():
                    return
            except (redis.ConnectionError, redis.BusyLoadingError):
                time.sleep(0.02)
        raise RuntimeError("redis-server on port %d did not answer in %ss" % (self.port, timeout))

    def stop(self):
        terminate(self.process)
        self.process = None

    def restart(self, downtime=0.0):
        self.stop()
        time.sleep(downtime)
        return self.start()

    def read_log(self):
        try:
            with open(self.log_path) as handle:
                return handle.read()
        except OSError:
            return ""

    # -- clients ---------------------------------------------------------
    def admin(self, **kwargs):
        """A client with full rights (the default user)."""
        kwargs.setdefault("password", self.password)
        kwargs.setdefault("socket_timeout", 30)
        if int(redis.__version__.split(".")[0]) >= 5:
            kwargs.setdefault("protocol", 2)  # redis-py 8 speaks RESP3 by default; every server speaks RESP2
        return redis.Redis(host=self.host, port=self.port, **kwargs)

    @property
    def url(self):
        auth = ":%s@" % self.password if self.password else ""
        return "redis://%s%s:%d/0" % (auth, self.host, self.port)

    def login(self, **extra):
        """Connection options for our modules (login_host, login_port, ...)."""
        options = {"login_host": self.host, "login_port": self.port}
        if self.password:
            options["login_password"] = self.password
        options.update(extra)
        return options


# -- what the server under test can do ---------------------------------------------------------

class ServerFacts:
    """What the server binary under test is and can do, asked of a throwaway instance of it.

    Tests decide by these answers (never by a version string) which behaviour to expect:
    ``expire_lt`` (``EXPIRE key ttl LT``, Redis 7.0+ and Valkey), ``multi_config_set`` (several
    parameters in one ``CONFIG SET``), ``acl_read_selectors`` (``%R~`` key selectors),
    ``maxmemory_limit`` (the largest maxmemory stored as given).
    """

    def __init__(self, info, expire_lt, multi_config_set, acl_read_selectors, maxmemory_limit):
        self.name = info.get("server_name") or "redis"
        self.version = info.get("%s_version" % self.name) or info["redis_version"]
        self.redis_version = info["redis_version"]
        self.expire_lt = expire_lt
        self.multi_config_set = multi_config_set
        self.acl_read_selectors = acl_read_selectors
        self.maxmemory_limit = maxmemory_limit

    def __repr__(self):
        return "ServerFacts(%s %s, redis_version %s, expire_lt=%s, multi_config_set=%s, acl_read_selectors=%s)" % (
            self.name, self.version, self.redis_version, self.expire_lt, self.multi_config_set,
            self.acl_read_selectors)


def expected_pipeline_method(facts=None):
    """The name result_keys_wait reports for pipelined expedites on the server under test: with
    ``EXPIRE ... LT`` the cap is one idempotent command (``pipeline``); without it (Redis 6.2)
    TTLs are read first and only higher ones capped (``pipeline-ttl-check``)."""
    facts = facts or server_facts()
    return "pipeline" if facts.expire_lt else "pipeline-ttl-check"


def _accepts(client, *command):
    try:
        client.execute_command(*command)
    except redis.ResponseError:
        return False
    return True


def _stored_maxmemory(client, value):
    """What the server keeps when asked for ``value`` (Redis 6.2 saturates 2**64-1 to 2**63-1)."""
    client.config_set("maxmemory", str(value))
    stored = int(client.config_get("maxmemory")["maxmemory"])
    client.config_set("maxmemory", "0")
    return stored


@functools.lru_cache(maxsize=None)
def server_facts():
    """The :class:`ServerFacts` of :data:`REDIS_SERVER` (probed once per test process)."""
    with tempfile.TemporaryDirectory(prefix="lean-results-probe-") as workdir:
        server = RedisServer(workdir).start()
        try:
            client = server.admin(decode_responses=True)
            info = client.info("server")
            facts = ServerFacts(
                info,
                expire_lt=_accepts(client, "EXPIRE", "lean-results-probe", "1", "LT"),
                multi_config_set=_accepts(client, "CONFIG", "SET", "maxmemory-samples", "5",
                                          "maxmemory-policy", "noeviction"),
                acl_read_selectors=_accepts(client, "ACL", "SETUSER", "lean-results-probe", "%R~*"),
                maxmemory_limit=_stored_maxmemory(client, 2 ** 64 - 1),
            )
            client.close()
        finally:
            server.stop()
    return facts
