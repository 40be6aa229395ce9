"""Real Redis topologies for tests: TLS-only servers, a 6-node cluster, a primary with replicas
behind a Sentinel. Everything on free ports, in temp dirs, stopped by pid.

Built on :class:`harness.redis_server.RedisServer`; nothing here touches a server it did
not start.
"""
import os
import re
import shutil
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import redis

from harness.collection import REPO_ROOT
from harness.redis_server import REDIS_SERVER, RedisServer, free_port, server_facts, terminate


def _cli_binary():
    """The CLI that belongs to the server under test: valkey-cli next to valkey-server,
    redis-cli next to redis-server (``--cluster create`` must speak the server's dialect)."""
    directory, name = os.path.split(REDIS_SERVER)
    sibling = os.path.join(directory, name.replace("-server", "-cli"))
    if os.path.isfile(sibling) and os.access(sibling, os.X_OK):
        return sibling
    return shutil.which("redis-cli") or "/usr/bin/redis-cli"


REDIS_CLI = _cli_binary()
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
CLUSTER_BUS_OFFSET = 10000


def _run(argv, cwd=None, timeout=60):
    completed = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    if completed.returncode != 0:
        details = (" ".join(argv), completed.returncode, completed.stdout, completed.stderr)
        raise RuntimeError("%s failed (%d):\n%s%s" % details)
    return completed.stdout


def wait_until(predicate, timeout, what, interval=0.05):
    """Poll ``predicate`` until it returns a true value; raise naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (redis.RedisError, OSError) as exc:
            last_error = exc
        time.sleep(interval)
    raise RuntimeError("timed out after %ss waiting for %s (last error: %s)" % (timeout, what, last_error))


def start_all(servers):
    """Start servers side by side (each start waits for its PING); re-raise the first failure."""
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        for future in [pool.submit(server.start) for server in servers]:
            future.result()


# -- TLS ---------------------------------------------------------------------------------------

def _make_ca(directory, name):
    key, cert = os.path.join(directory, name + ".key"), os.path.join(directory, name + ".crt")
    _run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
          "-days", "2", "-subj", "/CN=%s" % name, "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    return key, cert


def _issue(directory, name, ca_key, ca_cert, extensions):
    key, csr, cert = (os.path.join(directory, name + suffix) for suffix in (".key", ".csr", ".crt"))
    ext_file = os.path.join(directory, name + ".ext")
    with open(ext_file, "w") as handle:
        handle.write("\n".join(extensions) + "\n")
    _run([OPENSSL, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=%s" % name])
    _run([OPENSSL, "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
          "-out", cert, "-days", "2", "-extfile", ext_file])
    return key, cert


def make_tls_certs(directory):
    """A CA, a server certificate for 127.0.0.1/localhost (SAN), a client certificate, and a
    second CA that signed nothing (for wrong-CA failures). Returns a dict of file paths."""
    directory = str(directory)
    os.makedirs(directory, exist_ok=True)
    ca_key, ca_cert = _make_ca(directory, "test-ca")
    server_key, server_cert = _issue(directory, "server", ca_key, ca_cert, [
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "extendedKeyUsage=serverAuth,clientAuth",  # clientAuth: replicas and cluster bus use it too
        "keyUsage=critical,digitalSignature,keyEncipherment",
    ])
    client_key, client_cert = _issue(directory, "client", ca_key, ca_cert, [
        "extendedKeyUsage=clientAuth",
        "keyUsage=critical,digitalSignature,keyEncipherment",
    ])
    _other_key, other_ca = _make_ca(directory, "other-ca")
    return dict(ca=ca_cert, server_cert=server_cert, server_key=server_key,
                client_cert=client_cert, client_key=client_key, other_ca=other_ca)


class TlsRedisServer(RedisServer):
    """A redis-server that accepts only TLS (``port 0``, ``tls-port``); ``.port`` is the TLS port."""

    def __init__(self, workdir, certs, auth_clients=True, **kwargs):
        super().__init__(workdir, **kwargs)
        self.certs = certs
        self.auth_clients = auth_clients

    def _directives(self):
        directives = [(key, "0" if key == "port" else value) for key, value in super()._directives()]
        directives += [
            ("tls-port", str(self.port)),
            ("tls-cert-file", self.certs["server_cert"]),
            ("tls-key-file", self.certs["server_key"]),
            ("tls-ca-cert-file", self.certs["ca"]),
            ("tls-auth-clients", "yes" if self.auth_clients else "no"),
        ]
        return directives

    def tls_options(self):
        return dict(ssl=True, ssl_ca_certs=self.certs["ca"], ssl_certfile=self.certs["client_cert"],
                    ssl_keyfile=self.certs["client_key"], ssl_check_hostname=True)

    def admin(self, **kwargs):
        for key, value in self.tls_options().items():
            kwargs.setdefault(key, value)
        return super().admin(**kwargs)

    def login(self, **extra):
        options = dict(tls=True, ca_certs=self.certs["ca"], client_cert_file=self.certs["client_cert"],
                       client_key_file=self.certs["client_key"])
        options.update(extra)
        return super().login(**options)


# -- cluster -----------------------------------------------------------------------------------

def _port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_port():
    """A free port whose cluster bus port (port + 10000) is free as well."""
    for _attempt in range(200):
        port = free_port()
        if port + CLUSTER_BUS_OFFSET < 65536 and _port_is_free(port + CLUSTER_BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair (port, port+10000) found")


class RedisCluster:
    """A Redis Cluster of ``primaries`` primaries with ``replicas_per_primary`` replicas each.

    Every node gets the same ``acl_users`` and ``password``; ``client()`` is a cluster-aware
    redis-py client (for loading keys spread over all slots).
    """

    def __init__(self, workdir, primaries=3, replicas_per_primary=1, password=None, acl_users=(), extra=None):
        self.workdir = str(workdir)
        self.password = password
        self.replicas_per_primary = replicas_per_primary
        # no 5 s wait before a replica's first full sync (Redis 7 default)
        settings = {"cluster-enabled": "yes", "cluster-node-timeout": "2000", "repl-diskless-sync-delay": "0"}
        settings.update(extra or {})
        if password:
            settings["masterauth"] = password
        self.servers = []
        for index in range(primaries * (1 + replicas_per_primary)):
            server_settings = dict(settings, **{"cluster-config-file": "nodes-%d.conf" % index})
            self.servers.append(RedisServer(os.path.join(self.workdir, "node-%d" % index), password=password,
                                            acl_users=acl_users, extra=server_settings,
                                            port=free_cluster_port()))

    @property
    def host(self):
        return self.servers[0].host

    def start(self):
        start_all(self.servers)
        argv = [REDIS_CLI, "--cluster", "create"] + ["%s:%d" % (s.host, s.port) for s in self.servers]
        argv += ["--cluster-replicas", str(self.replicas_per_primary), "--cluster-yes"]
        if self.password:
            argv += ["-a", self.password, "--no-auth-warning"]
        started = time.monotonic()
        _run(argv, timeout=60)
        self.timings = {"create": time.monotonic() - started}
        wait_until(self._is_ready, 30, "cluster_state:ok on every node and replicas in sync")
        return self

    def _is_ready(self):
        for server in self.servers:
            client = server.admin()
            if client.cluster("info").get("cluster_state") != "ok":
                return False
            replication = client.info("replication")
            if replication["role"] == "slave" and replication.get("master_link_status") != "up":
                return False
            if replication["role"] == "master" and replication.get("connected_slaves", 0) < self.replicas_per_primary:
                return False
        return True

    def roles(self):
        """{'primary': [servers], 'replica': [servers]} as the cluster sees them now."""
        found = {"primary": [], "replica": []}
        for server in self.servers:
            role = server.admin().info("replication")["role"]
            found["primary" if role == "master" else "replica"].append(server)
        return found

    def client(self, **kwargs):
        return redis.RedisCluster(host=self.host, port=self.servers[0].port, password=self.password, **kwargs)

    def login(self, **extra):
        return self.servers[0].login(**extra)

    def stop(self):
        for server in self.servers:
            server.stop()


# -- primary, replicas and Sentinel --------------------------------------------------------------

class SentinelServer:
    """One Sentinel (``redis-server sentinel.conf --sentinel``) monitoring one master."""

    def __init__(self, workdir, master_name, primary_host, primary_port, auth_pass=None):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.master_name = master_name
        self.config_path = os.path.join(self.workdir, "sentinel.conf")
        self.log_path = os.path.join(self.workdir, "sentinel.log")
        lines = [
            "port %d" % self.port,
            "bind %s" % self.host,
            "dir %s" % self.workdir,
            "logfile %s" % self.log_path,
            "daemonize no",
            "sentinel monitor %s %s %d 1" % (master_name, primary_host, primary_port),
            "sentinel down-after-milliseconds %s 1000" % master_name,
            "sentinel failover-timeout %s 5000" % master_name,
            "sentinel parallel-syncs %s 2" % master_name,
        ]
        if auth_pass:
            lines.append("sentinel auth-pass %s %s" % (master_name, auth_pass))
        with open(self.config_path, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        self.process = None

    def start(self):
        self.process = subprocess.Popen([REDIS_SERVER, self.config_path, "--sentinel"], cwd=self.workdir,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.client().ping(), 10, "Sentinel on port %d" % self.port)
        return self

    def client(self):
        return redis.Redis(host=self.host, port=self.port, socket_timeout=10, decode_responses=True)

    def primary_address(self):
        host, port = self.client().sentinel_get_master_addr_by_name(self.master_name)
        return host, int(port)

    def healthy_replicas(self):
        return [state for state in self.client().sentinel_slaves(self.master_name)
                if not (state["is_sdown"] or state["is_odown"] or state["is_disconnected"])
                and state.get("master-link-status") == "ok"]

    def stop(self):
        terminate(self.process)
        self.process = None


class ReplicatedRedis:
    """A primary, ``replica_count`` replicas and one Sentinel named ``master_name``."""

    def __init__(self, workdir, replica_count=2, master_name="lean", acl_users=(), extra=None):
        self.workdir = str(workdir)
        self.master_name = master_name
        extra = dict({"repl-diskless-sync-delay": "0"}, **(extra or {}))
        self.primary = RedisServer(os.path.join(self.workdir, "primary"), acl_users=acl_users, extra=extra)
        self.replicas = [
            # a config file: redis-server would take "host port" on its command line as one word
            RedisServer(os.path.join(self.workdir, "replica-%d" % index), acl_users=acl_users, config_file=True,
                        extra=dict(extra, replicaof="%s %d" % (self.primary.host, self.primary.port)))
            for index in range(replica_count)
        ]
        self.sentinel = SentinelServer(os.path.join(self.workdir, "sentinel"), master_name,
                                       self.primary.host, self.primary.port)

    @property
    def servers(self):
        return [self.primary] + self.replicas

    def start(self):
        start_all(self.servers)
        wait_until(self._replicas_synced, 20, "replicas in sync")
        self.sentinel.start()
        wait_until(lambda: len(self.sentinel.healthy_replicas()) == len(self.replicas), 20,
                   "the Sentinel to see every replica")
        return self

    def _replicas_synced(self):
        for server in self.servers:
            replication = server.admin().info("replication")
            if replication["role"] == "slave" and replication.get("master_link_status") != "up":
                return False
        return True

    def server_at(self, host, port):
        for server in self.servers:
            if (server.host, server.port) == (host, port):
                return server
        raise KeyError("%s:%s" % (host, port))

    def current_primary(self):
        return self.server_at(*self.sentinel.primary_address())

    def failover(self, timeout=30):
        """SENTINEL FAILOVER, then wait until a replica is primary and Sentinel names it.

        Returns the new primary (a RedisServer)."""
        old = self.sentinel.primary_address()
        self.sentinel.client().execute_command("SENTINEL", "FAILOVER", self.master_name)

        def promoted():
            address = self.sentinel.primary_address()
            if address == old:
                return None
            server = self.server_at(*address)
            return server if server.admin().info("replication")["role"] == "master" else None

        new_primary = wait_until(promoted, timeout, "a Sentinel failover", interval=0.1)
        wait_until(lambda: new_primary.admin().info("replication").get("connected_slaves", 0) >= 1,
                   timeout, "a replica to follow the new primary", interval=0.1)
        return new_primary

    def sentinel_login(self, **extra):
        options = dict(sentinel_hosts=["%s:%d" % (self.sentinel.host, self.sentinel.port)],
                       sentinel_master=self.master_name)
        options.update(extra)
        return options

    def stop(self):
        self.sentinel.stop()
        for server in self.servers:
            server.stop()


__all__ = [
    "REDIS_CLI", "RedisCluster", "ReplicatedRedis", "SentinelServer", "TlsRedisServer", "documented_acl_rule",
    "documented_acl_rules", "free_cluster_port", "make_tls_certs", "wait_until",
]


def documented_acl_rules(module):
    """Every ACL rule docs/topologies.md gives for ``module`` (one per server line), in order."""
    with open(os.path.join(REPO_ROOT, "docs", "topologies.md")) as handle:
        text = handle.read()
    section = text.split("### %s" % module, 1)[1].split("\n### ", 1)[0]
    return re.findall(r"^user (\S+ on >PASSWORD .*)$", section, re.M)


def documented_acl_rule(module, password, facts=None):
    """The ACL rule docs/topologies.md gives for ``module`` on the server under test, with
    ``password`` filled in: the first rule the server accepts (a server without read-only key
    selectors, Redis 6.2, gets the rule without ``%R~``).

    Tests log in with exactly this rule, so the documentation cannot drift from what works.
    """
    facts = facts or server_facts()
    rules = [rule for rule in documented_acl_rules(module)
             if facts.acl_read_selectors or "%R~" not in rule]
    if not rules:
        raise AssertionError("docs/topologies.md has no %s rule that %r accepts" % (module, facts))
    return rules[0].replace(">PASSWORD", ">" + password)
