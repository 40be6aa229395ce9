"""Everything the demo and the effect benchmark run: two private redis-servers, the shop's
Celery workers (``celery multi``), the workload; measurements; and a stop that leaves nothing.

The result backend (and broker) is a private ``redis-server`` on a free port started from a config
file (so ``CONFIG REWRITE`` works); a second tiny one holds the ledger (what was sent, run, read),
so that counting does not show up in the backend's figures. Port 6379 is never used.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

from harness.redis_server import RedisServer
from harness.workload import load_result_keys

from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys import (
    DEFAULT_PATTERN,
    count_keys,
)
from demo.workload import read_ledger

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP_SOURCE = os.path.join(REPO_ROOT, "demo", "app")
VENV_BIN = os.path.dirname(sys.executable)
CELERY = os.path.join(VENV_BIN, "celery")
WORKERS = ["w1", "w2"]


def say(text):
    print("    " + text, flush=True)


def _kill_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Stack:
    """The shop running against its own Redis, under ``run_dir``."""

    def __init__(self, run_dir, rate=60.0, read_share=0.05, pool="solo"):
        self.run_dir = run_dir
        self.app_dir = os.path.join(run_dir, "app")
        self.config_path = os.path.join(self.app_dir, "shop", "celeryconfig.py")
        self.pid_dir = os.path.join(run_dir, "pids")
        self.log_dir = os.path.join(run_dir, "logs")
        self.rate = rate
        self.read_share = read_share
        self.pool = pool
        self.backend = RedisServer(os.path.join(run_dir, "redis"), config_file=True)
        self.ledger_server = RedisServer(os.path.join(run_dir, "ledger"))
        self.workload = None
        self.started_pids = []
        self.restart_script = os.path.join(run_dir, "restart-shop.sh")

    # -- set-up ----------------------------------------------------------------------------
    def prepare(self, stock_expires=None):
        """Copy the shop to the run dir (the rollout rewrites the copy, never demo/app)."""
        for path in (self.pid_dir, self.log_dir):
            os.makedirs(path, exist_ok=True)
        shutil.copytree(APP_SOURCE, self.app_dir, ignore=shutil.ignore_patterns("__pycache__"))
        if stock_expires is not None:
            with open(self.config_path) as handle:
                source = handle.read()
            with open(self.config_path, "w") as handle:
                handle.write(source.replace("result_expires = 86400", "result_expires = %d" % stock_expires))

    def env(self):
        env = dict(os.environ)
        env.update({
            "PYTHONPATH": os.pathsep.join([self.app_dir, REPO_ROOT]),
            "SHOP_REDIS_URL": "redis://%s:%d/0" % (self.backend.host, self.backend.port),
            "SHOP_LEDGER_URL": "redis://%s:%d/0" % (self.ledger_server.host, self.ledger_server.port),
        })
        return env

    def start_redis(self):
        self.backend.start()
        self.ledger_server.start()
        self.started_pids += [self.backend.process.pid, self.ledger_server.process.pid]
        return self.backend

    def _multi(self, action):
        argv = [CELERY, "-A", "shop", "multi", action] + WORKERS + [
            "--pidfile=%s" % os.path.join(self.pid_dir, "%n.pid"),
            "--logfile=%s" % os.path.join(self.log_dir, "%n.log"),
        ]
        if action != "stopwait":
            argv += ["-P", self.pool, "-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat"]
        return argv

    def write_restart_script(self):
        """The restart command the rollout runs: workers by ``celery multi``, producers by SIGHUP."""
        env = self.env()
        lines = ["#!/bin/sh", "# Restart the shop's Celery workers and its producers (the workload, like a web server).",
                 "set -e"]
        for name in ("PYTHONPATH", "SHOP_REDIS_URL", "SHOP_LEDGER_URL"):
            lines.append("export %s='%s'" % (name, env[name]))
        lines.append("cd '%s'" % self.app_dir)
        lines.append(" ".join("'%s'" % arg if " " in arg else arg for arg in self._multi("restart")) + " >/dev/null")
        lines.append("kill -HUP \"$(cat '%s')\"" % os.path.join(self.pid_dir, "workload.pid"))
        with open(self.restart_script, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        os.chmod(self.restart_script, 0o755)
        return self.restart_script

    def start_workers(self, timeout=60.0):
        subprocess.run(self._multi("start"), cwd=self.app_dir, env=self.env(), check=True,
                       stdout=subprocess.DEVNULL)
        self.wait_workers_ready(timeout)
        self.started_pids += self.worker_pids()

    def worker_pids(self):
        pids = []
        for name in WORKERS:
            try:
                with open(os.path.join(self.pid_dir, "%s.pid" % name)) as handle:
                    pids.append(int(handle.read().strip()))
            except (OSError, ValueError):
                continue
        return pids

    def wait_workers_ready(self, timeout=60.0):
        deadline = time.monotonic() + timeout
        logs = [os.path.join(self.log_dir, "%s.log" % name) for name in WORKERS]
        while time.monotonic() < deadline:
            ready = 0
            for path in logs:
                try:
                    with open(path, errors="replace") as handle:
                        ready += " ready." in handle.read()
                except OSError:
                    pass
            if ready == len(logs):
                return
            time.sleep(0.2)
        raise RuntimeError("Celery workers not ready after %ss; see %s" % (timeout, self.log_dir))

    def start_workload(self):
        pidfile = os.path.join(self.pid_dir, "workload.pid")
        argv = [sys.executable, "-m", "demo.workload", "supervise", "--rate", repr(self.rate),
                "--read-share", repr(self.read_share), "--ledger", self.env()["SHOP_LEDGER_URL"], "--pidfile", pidfile]
        with open(os.path.join(self.log_dir, "workload.log"), "ab") as log:
            self.workload = subprocess.Popen(argv, cwd=REPO_ROOT, env=self.env(), start_new_session=True,
                                             stdout=log, stderr=subprocess.STDOUT)
        self.started_pids.append(self.workload.pid)
        deadline = time.monotonic() + 10
        while not os.path.exists(pidfile) and time.monotonic() < deadline:
            time.sleep(0.05)

    def seed_history(self, count, day=86400):
        """Results from before the demo started: TTLs spread over the day, shaped as Celery writes them."""
        load_result_keys(self.backend.admin(), count, ttl_for=lambda i: 60 + (i * 7919) % (day - 60),
                         prefix="celery-task-meta-", size=180)

    # -- measuring -------------------------------------------------------------------------
    def result_keys(self):
        return count_keys(self.backend.admin(), DEFAULT_PATTERN)

    def ledger(self):
        return read_ledger(self.ledger_server.admin())

    def measure(self, window):
        """Keys and memory now; commands/s and network bytes/s over ``window`` seconds."""
        client = self.backend.admin()
        first = client.info("stats")
        started = time.monotonic()
        time.sleep(window)
        second = client.info("stats")
        elapsed = time.monotonic() - started
        keys = self.result_keys()
        memory = client.info("memory")
        return {
            "result_keys": keys,
            "used_memory": memory["used_memory"],
            "commands_per_s": (second["total_commands_processed"] - first["total_commands_processed"]) / elapsed,
            "net_bytes_per_s": (second["total_net_input_bytes"] + second["total_net_output_bytes"]
                                - first["total_net_input_bytes"] - first["total_net_output_bytes"]) / elapsed,
        }

    # -- stopping --------------------------------------------------------------------------
    def stop_workload(self):
        if self.workload and self.workload.poll() is None:
            self.workload.send_signal(signal.SIGTERM)
            try:
                self.workload.wait(30)
            except subprocess.TimeoutExpired:
                _kill_group(self.workload.pid, signal.SIGKILL)
                self.workload.wait()
        if self.workload:
            _kill_group(self.workload.pid, signal.SIGKILL)  # anything the supervisor left behind
        self.workload = None

    def drain(self, timeout=30.0):
        """Wait until every task run the workload expected has run (or ``timeout``); the ledger."""
        deadline = time.monotonic() + timeout
        counts = self.ledger()
        while time.monotonic() < deadline:
            counts = self.ledger()
            if counts["done"] >= counts["expected"]:
                break
            time.sleep(0.5)
        return counts

    def stop_workers(self):
        pids = self.worker_pids()
        if pids:
            subprocess.run(self._multi("stopwait"), cwd=self.app_dir, env=self.env(), check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        for pid in pids:  # a detached worker leads its own process group, pool children included
            _kill_group(pid, signal.SIGKILL)

    def stop(self):
        """Stop all of it, each part even when another part fails to stop."""
        for action in (self.stop_workload, self.stop_workers, self.backend.stop, self.ledger_server.stop):
            try:
                action()
            except Exception as exc:  # keep stopping the rest
                print("    could not stop cleanly (%s): %s" % (action.__name__, exc), flush=True)

    def leftovers(self):
        """Pids of processes this stack started that are still alive (should be empty)."""
        return sorted(pid for pid in set(self.started_pids + self.worker_pids()) if _alive(pid))
