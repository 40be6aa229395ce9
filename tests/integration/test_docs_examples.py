"""Every EXAMPLES block of every module runs, as written, against real servers and files.

Each block is taken from the module's EXAMPLES (YAML, a list of tasks) and run as one play
through ansible-playbook. Only the placeholders a reader replaces are substituted, by this
mapping (it is the whole of it):

| placeholder in EXAMPLES | replaced by |
|---|---|
| `login_host: redis.internal` | a real redis-server (its `login_host`/`login_port`; its default user needs no password) |
| `login_password: "{{ vault_redis_password }}"` on it | the same, with `login_user: app`, an ACL user with that password |
| `login_host: redis-cluster-1.internal` | a node of a real 6-node Redis Cluster |
| `login_host: redis-node-1.internal` (`tls: true`) | a real TLS-only redis-server |
| `sentinel_hosts`, `sentinel_master: celery-results` | a real Sentinel and the master it watches |
| `login_unix_socket: /run/redis/...` | the unix socket of the first server |
| `config_file: /etc/redis/redis.conf` | that server's own config file |
| `ca_certs: /etc/pki/redis/ca.crt` | the test CA (and its client certificate) |
| `login_user: lean_memory` / `lean_reader` | ACL users made with the rules docs/topologies.md gives |
| `{{ vault_*_password }}` | the passwords of those users (vars of the play) |
| `/srv/app/celeryconfig.py`, `/srv/site/mysite/settings.py`, `/srv/{app,billing}/proj/celery.py` | copies of fixtures |
| `/srv/shop/src` (and its `shop/celeryconfig.py`) | a copy of tests/fixtures/audit_app |
| `/srv/app/venv/bin/python`, `/srv/shop/venv/bin/python` | the test's Python |
| `become: true` | dropped (the tests run as root) |

A docs test fails when an example breaks: a wrong option name, a value of the wrong type, a
registered result used with a key the module does not return.
"""
import os
import re
import shutil
import sys

import pytest
import yaml

from harness.redis_server import RedisServer
from harness.topologies import RedisCluster, documented_acl_rule
from harness.workload import load_result_keys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = ["celery_config", "celery_task_audit", "redis_memory", "result_keys_info", "result_keys_wait"]
FIXTURES = os.path.join(REPO_ROOT, "tests", "fixtures")
USER_PASSWORD = "example-user-pass-7d2a"
DEFAULT_NOPASS = "default on nopass ~* &* +@all"
APP_PASSWORD = "example-app-pass-91fe"
APP_USER = "app on >%s ~* &* +@all" % APP_PASSWORD


def examples(module):
    with open(os.path.join(REPO_ROOT, "plugins", "modules", module + ".py")) as handle:
        source = handle.read()
    tasks = yaml.safe_load(re.search(r'EXAMPLES = r"""(.*?)"""', source, re.S).group(1))
    assert isinstance(tasks, list) and tasks, module
    return tasks


def acl_rule(module, user):
    rule = documented_acl_rule(module, USER_PASSWORD)
    return user + rule[rule.index(" "):]


@pytest.fixture(scope="module")
def servers(tmp_path_factory, redis_sentinel_set):
    base = tmp_path_factory.mktemp("examples")
    plain = RedisServer(base / "plain", config_file=True, unixsocket=True,
                        acl_users=[DEFAULT_NOPASS, APP_USER, acl_rule("redis_memory", "lean_memory")])
    # A cluster whose nodes start from config files, as the example's persist: rewrite needs.
    cluster = RedisCluster(base / "cluster", acl_users=[DEFAULT_NOPASS, acl_rule("redis_memory", "lean_memory")])
    for node in cluster.servers:
        node.config_path = os.path.join(node.workdir, "redis.conf")
    try:
        plain.start()
        cluster.start()
        yield {"plain": plain, "cluster": cluster, "sentinel": redis_sentinel_set, "base": str(base)}
    finally:
        cluster.stop()
        plain.stop()


@pytest.fixture
def tls_server(tls_redis_factory):
    return tls_redis_factory(auth_clients=True, acl_users=[acl_rule("result_keys_info", "lean_reader")])


def files(tmp_path):
    """The files the examples name, as copies of the fixtures."""
    paths = {}
    configs = os.path.join(FIXTURES, "celery_configs")
    for placeholder, fixture in (("/srv/app/celeryconfig.py", "celeryconfig.py"),
                                 ("/srv/site/mysite/settings.py", "django_settings.py"),
                                 ("/srv/app/proj/celery.py", "app_conf_update.py"),
                                 ("/srv/billing/proj/celery.py", "corpus/config_source_dict.py")):
        target = tmp_path / placeholder.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(configs, fixture), str(target))
        paths[placeholder] = str(target)
    shop = tmp_path / "srv" / "shop" / "src"
    shutil.copytree(os.path.join(FIXTURES, "audit_app"), str(shop), ignore=shutil.ignore_patterns("__pycache__"))
    (shop / "shop").mkdir()
    shutil.copy(os.path.join(configs, "celeryconfig.py"), str(shop / "shop" / "celeryconfig.py"))
    paths["/srv/shop/src"] = str(shop)
    paths["/srv/shop/src/shop/celeryconfig.py"] = str(shop / "shop" / "celeryconfig.py")
    paths["/srv/app/venv/bin/python"] = sys.executable
    paths["/srv/shop/venv/bin/python"] = sys.executable
    return paths


def substitute(task, servers, tls, paths):
    """One example task with the mapping applied (see the module docstring)."""
    task = dict(task)
    task.pop("become", None)
    for key, args in list(task.items()):
        if not isinstance(args, dict) or not key.startswith("celery_ops."):
            continue
        args = dict(args)
        host = args.get("login_host")
        plain = servers["plain"]
        if host == "redis.internal":
            args.update(login_host=plain.host, login_port=plain.port)
            if args.get("login_password") == "{{ vault_redis_password }}":
                args["login_user"] = "app"
        elif host == "redis-cluster-1.internal":
            args.update(servers["cluster"].login())
        elif host == "redis-node-1.internal":
            args.update(login_host=tls.host, login_port=tls.port, client_cert_file=tls.certs["client_cert"],
                        client_key_file=tls.certs["client_key"])
        if args.get("ca_certs") == "/etc/pki/redis/ca.crt":
            args["ca_certs"] = tls.certs["ca"]
        if "sentinel_hosts" in args:
            assert args["sentinel_master"] == "celery-results"
            args.update(servers["sentinel"].sentinel_login())
        if str(args.get("login_unix_socket", "")).startswith("/run/redis/"):
            args["login_unix_socket"] = plain.unix_socket
        if args.get("config_file") == "/etc/redis/redis.conf":
            args["config_file"] = plain.config_path
        placeholders = re.compile("|".join(re.escape(p) for p in sorted(paths, key=len, reverse=True)))
        for option, value in list(args.items()):
            if isinstance(value, str):
                args[option] = placeholders.sub(lambda match: paths[match.group(0)], value)
            elif isinstance(value, list):
                args[option] = [paths.get(item, item) if isinstance(item, str) else item for item in value]
        task[key] = args
    return task


@pytest.mark.parametrize("module", MODULES)
def test_examples_run(module, servers, tls_server, ansible_playbook, tmp_path):
    paths = files(tmp_path)
    # Long enough to outlive ansible-playbook's start on a busy machine, short enough for the waits.
    load_result_keys(servers["plain"].admin(), 300, ttl_for=lambda i: 20)
    load_result_keys(servers["plain"].admin(), 50, ttl_for=lambda i: 20, prefix="celery-taskset-meta-")
    tasks = [substitute(task, servers, tls_server, paths) for task in examples(module)]
    play = [{"name": "EXAMPLES of " + module, "hosts": "localhost", "gather_facts": False,
             "vars": {"vault_redis_password": APP_PASSWORD,
                      "vault_lean_memory_password": USER_PASSWORD, "vault_lean_reader_password": USER_PASSWORD},
             "tasks": tasks}]
    playbook = tmp_path / ("examples-%s.yml" % module)
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    run = ansible_playbook(playbook)
    assert run.returncode == 0, run.output[-6000:]
    ran = [result for result in run.results() if not result.get("skipped")]
    assert not [result for result in ran if result["failed"]], run.output[-4000:]
    assert len(run.results()) >= len(tasks), "every example task ran"
    print("%s: %d example tasks ran" % (module, len(tasks)))
