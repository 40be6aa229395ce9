"""`make demo`: a private Redis filled like a busy Celery result backend, measured by the collection.

Everything it starts is stopped at the end, also on Ctrl-C or failure.
"""
import json
import os
import subprocess
import sys
import tempfile

from tests.helpers.redis_server import RedisServer
from tests.helpers.workload import load_broker_keys, load_other_keys, load_result_keys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)


def step(text):
    print("\n==> %s" % text, flush=True)


def fill(client):
    """A day of results under the stock config: TTLs spread over 24 h, a few without TTL."""
    load_result_keys(client, 150000, ttl_for=lambda i: 600 + (i * 13) % 85800)
    load_result_keys(client, 5000, ttl_for=lambda i: None, prefix="celery-task-meta-legacy-")
    load_result_keys(client, 800, ttl_for=lambda i: 86400, prefix="celery-taskset-meta-")
    load_broker_keys(client, messages=120)
    load_other_keys(client, 2000)


def measure(server, workdir):
    output = os.path.join(workdir, "measure.json")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO_ROOT, ".ansible", "collections"),
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", "localhost,",
                    os.path.join(REPO_ROOT, "demo", "playbooks", "measure.yml"),
                    "-e", "ansible_python_interpreter=%s" % sys.executable,
                    "-e", json.dumps({"demo_redis_port": server.port, "demo_output": output})],
                   check=True, env=env, cwd=REPO_ROOT)
    with open(output) as handle:
        return json.load(handle)


def show(report):
    mib = 1024.0 * 1024.0
    rows = [
        ("result keys", "{:,}".format(report["count"])),
        ("  without TTL (never expire)", "{:,}".format(report["no_ttl"])),
        ("  TTL min / p50 / p90 / max (s)", "{min} / {p50} / {p90} / {max}".format(**report["ttl"])),
        ("  estimated memory", "%.1f MiB (%d bytes/key)" % (
            report["memory"]["estimated_bytes"] / mib, report["memory"]["bytes_per_key"])),
        ("group results", "{:,}".format(report["group_results"])),
        ("broker keys on the same server", ", ".join(
            q["name"] for q in report["broker_keys"]["queues"] + report["broker_keys"]["unacked"])),
        ("DBSIZE", "{:,}".format(report["dbsize"])),
        ("used_memory", "%.1f MiB" % (report["used_memory"] / mib)),
        ("time to measure", "%.2f s" % report["scan_seconds"]),
    ]
    for point in report["forecast"]:
        rows.append(("alive after %s" % point["after"], "{:,}".format(point["keys_alive"])))
    width = max(len(name) for name, _value in rows)
    for name, value in rows:
        print("  %s  %s" % (name.ljust(width), value))


def main():
    workdir = tempfile.mkdtemp(prefix="lean-results-demo-")
    server = RedisServer(os.path.join(workdir, "redis"))
    try:
        step("starting a private redis-server")
        server.start()
        print("  redis-server on %s:%d (pid %d)" % (server.host, server.port, server.process.pid))
        step("filling it like a busy Celery result backend (stock config: results kept a day)")
        fill(server.admin())
        step("measuring with celery_ops.lean_results.result_keys_info through ansible-playbook")
        report = measure(server, workdir)
        step("what the result backend holds")
        show(report)
    finally:
        server.stop()
        print("\nstopped everything the demo started", flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
