"""`make demo`: a Celery shop under its stock config, made lean by the real playbook, before and after.

    python -m demo                 # about 3 minutes on 2 cores
    DEMO_SCALE=small python -m demo  # about 1.5 minutes (the integration test)
    DEMO_ROLLOUT=modules python -m demo  # the modules one by one (demo/playbooks/rollout.yml), not the role

Starts a private redis-server (never port 6379), two Celery workers of the demo shop
(demo/app, copied to the run dir) with ``celery multi``, and a steady workload; waits until
Redis holds a backlog; runs ``ansible-playbook playbooks/tune-celery.yml`` against it while the
workload keeps running; prints the before/after table and the report path. Everything it started
is stopped at the end, also on Ctrl-C, SIGTERM or failure.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

from demo.stack import REPO_ROOT, Stack, say

VENV_BIN = os.path.dirname(sys.executable)
ROLE_PLAYBOOK = os.path.join(REPO_ROOT, "playbooks", "tune-celery.yml")
FALLBACK_PLAYBOOK = os.path.join(REPO_ROOT, "demo", "playbooks", "rollout.yml")
COLLECTIONS_ROOT = os.path.join(REPO_ROOT, ".ansible", "collections")

SCALES = {
    # fill: seconds of workload under the stock config; history: result keys from earlier today
    # (seeded, TTLs spread over the day); window: seconds commands/s and network are averaged over;
    # lean_expires: the new result_expires.
    "default": {"rate": 60.0, "fill": 60, "history": 150000, "window": 10, "lean_expires": 30},
    "small": {"rate": 40.0, "fill": 15, "history": 20000, "window": 4, "lean_expires": 10},
}
MIB = 1024.0 * 1024.0


def step(text):
    print("\n==> %s" % text, flush=True)


class Ticker:
    """A status line every few seconds while something long runs."""

    def __init__(self, stack, every=10.0):
        self.stack = stack
        self.every = every
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def line(self):
        counts = self.stack.ledger()
        client = self.stack.backend.admin()
        return "t=+%3.0fs  result keys %8s  used memory %6.1f MiB  | calls %6s  reads ok %4s  failed %s  hung %s" % (
            time.monotonic() - self.started, "{:,}".format(self.stack.result_keys()),
            client.info("memory")["used_memory"] / MIB, "{:,}".format(counts["calls"]), counts["reads_ok"],
            counts["reads_failed"], counts["reads_hung"])

    def _run(self):
        while not self._stop.wait(self.every):
            try:
                say(self.line())
            except Exception:  # a status line is never worth failing the demo
                pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_exc):
        self._stop.set()
        self._thread.join()


def ensure_collection_link():
    """What `make` does: the collection where Ansible looks for it."""
    namespace = os.path.join(COLLECTIONS_ROOT, "ansible_collections", "celery_ops")
    link = os.path.join(namespace, "lean_results")
    if not os.path.exists(link):
        os.makedirs(namespace, exist_ok=True)
        os.symlink("../../../..", link)


def rollout_vars(stack, scale, maxmemory, report_dir):
    redis_login = {"login_host": stack.backend.host, "login_port": stack.backend.port}
    settings = {"task_ignore_result": True, "task_store_errors_even_if_ignored": True,
                "result_expires": scale["lean_expires"], "result_extended": False}
    if os.path.exists(ROLE_PLAYBOOK) and os.environ.get("DEMO_ROLLOUT") != "modules":
        return ROLE_PLAYBOOK, {
            "celery_tune_config_path": stack.config_path,
            "celery_tune_settings": settings,
            "celery_tune_audit_paths": [stack.app_dir],
            "celery_tune_restart_command": stack.restart_script,
            "celery_tune_redis": redis_login,
            "celery_tune_maxmemory": maxmemory,
            "celery_tune_maxmemory_policy": "volatile-ttl",
            "celery_tune_maxmemory_persist": "rewrite",
            "celery_tune_expedite": True,
            "celery_tune_min_reduction": 10.0,
            "celery_tune_wait_timeout": 300,
            "celery_tune_poll_interval": 1.0,
            "celery_tune_report_dir": report_dir,
        }
    return FALLBACK_PLAYBOOK, {
        "demo_config_path": stack.config_path,
        "demo_settings": settings,
        "demo_audit_paths": [stack.app_dir],
        "demo_restart_command": stack.restart_script,
        "demo_redis": redis_login,
        "demo_maxmemory": maxmemory,
        "demo_min_reduction": 10.0,
        "demo_report_dir": report_dir,
    }


def write_inventory(run_dir, variables):
    """Group `celery`: this machine, local connection, this Python; the rollout's variables as group vars."""
    inventory = {"celery": {
        "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
        "vars": variables,
    }}
    path = os.path.join(run_dir, "inventory.yml")
    with open(path, "w") as handle:
        json.dump(inventory, handle, indent=2)  # JSON is YAML
    return path


def run_playbook(playbook, inventory, log_path, processes):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_ROOT, ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="false",
               PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    env.pop("ANSIBLE_CONFIG", None)
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, playbook]
    say("$ " + " ".join(os.path.relpath(arg, REPO_ROOT) if arg.startswith(REPO_ROOT) else arg for arg in argv))
    process = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    processes.append(process)
    with open(log_path, "w") as log:
        for line in process.stdout:
            log.write(line)
            if line.strip() and not line.startswith(("PLAY RECAP", "*")):
                say("| " + line.rstrip())
    process.wait()
    processes.remove(process)
    if process.returncode:
        raise RuntimeError("ansible-playbook failed (exit %d); full output in %s" % (process.returncode, log_path))


def _human_bytes(value):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return "%.1f %s" % (value / size, unit)
    return "%d B" % value


def table(before, after):
    rows = [("", "before", "after", "change")]

    def ratio(first, second):
        return "%.1fx fewer" % (first / second) if second and first >= second else (
            "%.2fx" % (second / first) if first else "-")

    rows.append(("result keys", "{:,}".format(before["result_keys"]), "{:,}".format(after["result_keys"]),
                 ratio(before["result_keys"], max(after["result_keys"], 1))))
    rows.append(("used memory", _human_bytes(before["used_memory"]), _human_bytes(after["used_memory"]),
                 ratio(before["used_memory"], after["used_memory"])))
    rows.append(("commands/s", "%.0f" % before["commands_per_s"], "%.0f" % after["commands_per_s"],
                 ratio(before["commands_per_s"], after["commands_per_s"])))
    rows.append(("network bytes/s (in+out)", _human_bytes(before["net_bytes_per_s"]) + "/s",
                 _human_bytes(after["net_bytes_per_s"]) + "/s", ratio(before["net_bytes_per_s"], after["net_bytes_per_s"])))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  " + "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
        if index == 0:
            lines.append("  " + "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _raise_interrupt(signum, _frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main():
    scale_name = os.environ.get("DEMO_SCALE", "default")
    scale = SCALES[scale_name]
    started = time.monotonic()
    run_dir = tempfile.mkdtemp(prefix="lean-results-demo-")
    stack = Stack(run_dir, rate=scale["rate"])
    playbooks = []
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    print("celery_ops.lean_results demo (scale %s), run dir %s" % (scale_name, run_dir), flush=True)
    try:
        ensure_collection_link()
        step("starting a private redis-server (result backend and broker) and two Celery workers")
        stack.prepare()
        stack.start_redis()
        say("redis-server on %s:%d (pid %d), ledger on port %d" % (
            stack.backend.host, stack.backend.port, stack.backend.process.pid, stack.ledger_server.port))
        stack.write_restart_script()
        stack.start_workers()
        say("workers w1, w2 ready (pids %s); the shop: 30 tasks in %s" % (
            ", ".join(map(str, stack.worker_pids())), os.path.relpath(os.path.join(stack.app_dir, "shop"), run_dir)))
        say("stock config: results kept a day (result_expires = 86400), every task stores its result")

        step("seeding %s results from earlier today (TTLs spread over the day)" % "{:,}".format(scale["history"]))
        stack.seed_history(scale["history"])
        say("done: %s result keys" % "{:,}".format(stack.result_keys()))

        step("driving the workload under the stock config for %d s (%.0f calls/s, 5%% read a result)" % (
            scale["fill"], scale["rate"]))
        stack.start_workload()
        with Ticker(stack, every=max(5.0, scale["fill"] / 4.0)):
            time.sleep(scale["fill"])

        step("measuring before (%d s window)" % scale["window"])
        before = stack.measure(scale["window"])
        ledger_before = stack.ledger()
        say("%s result keys, %s used, %.0f commands/s" % (
            "{:,}".format(before["result_keys"]), _human_bytes(before["used_memory"]), before["commands_per_s"]))

        maxmemory = "%dmb" % max(64, int(before["used_memory"] * 2 / MIB) + 1)
        report_dir = os.path.join(run_dir, "report")
        os.makedirs(report_dir, exist_ok=True)
        playbook, variables = rollout_vars(stack, scale, maxmemory, report_dir)
        inventory = write_inventory(run_dir, variables)
        step("rolling out with ansible-playbook (the workload keeps running)")
        if playbook == FALLBACK_PLAYBOOK:
            say("driving the modules one by one with demo/playbooks/rollout.yml (not the role's playbook)")
        rollout_started = time.monotonic()
        with Ticker(stack, every=10.0):
            run_playbook(playbook, inventory, os.path.join(run_dir, "logs", "ansible-playbook.log"), playbooks)
        rollout_seconds = time.monotonic() - rollout_started

        step("measuring after (%d s window), the workload still running" % scale["window"])
        after = stack.measure(scale["window"])

        step("stopping the workload and letting the workers drain the queue")
        stack.stop_workload()
        ledger = stack.drain()

        step("before / after")
        print(table(before, after))
        lost = max(0, ledger["expected"] - ledger["done"])
        print("\n  task runs: %s expected, %s done, %d lost" % (
            "{:,}".format(ledger["expected"]), "{:,}".format(ledger["done"]), lost))
        print("  reads of results: %s ok, %d failed, %d hung (%d ok since the rollout)" % (
            "{:,}".format(ledger["reads_ok"]), ledger["reads_failed"], ledger["reads_hung"],
            ledger["reads_ok"] - ledger_before["reads_ok"]))
        print("  rollout (audit, rewrite, restart, maxmemory %s volatile-ttl, expedite, wait, verify): %.0f s" % (
            maxmemory, rollout_seconds))
        report_html = os.path.join(report_dir, "report.html")
        if os.path.exists(report_html):
            print("  report: %s" % report_html)
        else:
            print("  report: %s" % os.path.join(report_dir, "report.json"))
        summary = {"scale": scale_name, "before": before, "after": after, "ledger": ledger, "lost": lost,
                   "rollout_seconds": rollout_seconds, "report_dir": report_dir, "playbook": playbook}
        with open(os.path.join(run_dir, "summary.json"), "w") as handle:
            json.dump(summary, handle, indent=2)
        return 0 if lost == 0 and not ledger["reads_failed"] and not ledger["reads_hung"] else 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        for process in playbooks:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, signal.SIGKILL)
        stack.stop()
        left = stack.leftovers()
        print("\nstopped everything the demo started%s (%.0f s in all; logs in %s)" % (
            "" if not left else ", EXCEPT pids %s" % left, time.monotonic() - started,
            os.path.join(run_dir, "logs")), flush=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
