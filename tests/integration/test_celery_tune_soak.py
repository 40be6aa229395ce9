"""Soak: 20 role runs in a row against a live workload, with a Redis restart or a SIGTERM at a
random moment of some of them (issue 16).

The runs alternate the rollout (``tune-celery.yml``) and its rollback (``rollback-celery.yml``),
so that every run has something to change. A SIGTERM goes to the whole process group of
``ansible-playbook``, as a cancelled CI job or ``systemctl stop`` sends it; a restart stops Redis
(append-only, so the queue survives) and starts it again. After every run, and at the end:

- the Celery config is whole: the original bytes or the lean bytes, nothing in between;
- nothing is left boosted: ``active-expire-effort`` is the server's own (2 here), and no run
  wrote the boosted value into redis.conf;
- a report written by a run says what that run did (its config change, the Redis values it
  set, a "met" only with a real fall);
- at the end, after a last rollback, the config and Redis settings are those of before the
  first run, and every fire-and-forget task the producer sent has run: none was lost.
"""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import types
import uuid

from harness.collection import COLLECTIONS_ROOT
from harness.ansible_runner import VENV_BIN, ansible_env
from harness.workload import load_result_keys
from tests.integration.test_celery_tune_role import write_inventory as rollout_inventory

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "rollout_app")
TUNE = os.path.join(REPO_ROOT, "playbooks", "tune-celery.yml")
ROLLBACK = os.path.join(REPO_ROOT, "playbooks", "rollback-celery.yml")

sys.path.insert(0, APP_DIR)
import rollout_ctl  # noqa: E402  pylint: disable=wrong-import-position

RUNS = 20
BACKLOG_KEYS = 2000       # day-long result keys loaded before each rollout: the wait has work
RESULT_EXPIRES = 3
MIN_REDUCTION = 5
ORIGINAL_EFFORT = "2"     # not Redis's default, so a boost left behind (10) or a reset (1) shows
SEED = 16


def file_bytes(path):
    with open(path, "rb") as handle:
        return handle.read()


def redis_settings(client):
    values = client.config_get("maxmemory*")
    return {name: values[name] for name in ("maxmemory", "maxmemory-policy")}


class Producer:
    """Fire-and-forget tasks from a thread, each leaving a token in a Redis set when it ran.

    A send refused while Redis restarts is not a task (the producer got the error); every send
    that succeeded must arrive."""

    def __init__(self, run_dir):
        rollout_ctl.load_app(run_dir)
        from rollout_proj import tasks  # pylint: disable=import-outside-toplevel
        self.tasks = tasks
        self.sent = []
        self.refused = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._send, daemon=True)

    def _send(self):
        while not self.stop.is_set():
            token = uuid.uuid4().hex
            try:
                self.tasks.record.delay(token)
            except Exception:  # pylint: disable=broad-except  # Redis restarting: the producer knows
                self.refused += 1
            else:
                self.sent.append(token)
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        self.thread.join(30)

    def missing(self, client, timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            done = {member.decode() for member in client.smembers(self.tasks.COUNTER_KEY)}
            missing = [token for token in self.sent if token not in done]
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.5)


def write_inventory(tmp_path, server, config_path, ctl):
    """The rollout tests' inventory, with this soak's shorter expiry, a persisted limit and the boost."""
    app = types.SimpleNamespace(config_path=config_path, ctl=ctl)
    return rollout_inventory(tmp_path, server, app, **{
        "celery_tune_settings": {"task_ignore_result": True, "task_store_errors_even_if_ignored": True,
                                 "result_expires": RESULT_EXPIRES, "result_extended": False},
        "celery_tune_maxmemory_persist": "rewrite",
        "celery_tune_boost_active_expire": True,
        "celery_tune_min_reduction": MIN_REDUCTION,
        "celery_tune_wait_timeout": 60,
    })


def start_playbook(playbook, inventory, log_path):
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), playbook, "-i", inventory,
            "-e", "ansible_python_interpreter=%s" % sys.executable]
    log = open(str(log_path), "w")  # pylint: disable=consider-using-with  # closed by the caller
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=ansible_env(COLLECTIONS_ROOT),
                            cwd=os.path.dirname(str(log_path)), start_new_session=True)
    return proc, log


def check_report(report, config_changed, client, run):
    """A report says what its run did."""
    host = report["hosts"]["localhost"]
    assert host["changed"] is config_changed, (run, host, config_changed)
    wanted = report["redis_memory"]["after"]
    if wanted and not report["check_mode"]:
        assert wanted.get("maxmemory_policy") == client.config_get("maxmemory-policy")["maxmemory-policy"], run
    verdict, wait = report["verdict"], report["wait"]
    if verdict["met"] and wait["ran"]:
        assert wait["final"] * MIN_REDUCTION <= wait["baseline"], (run, wait)
    if verdict["status"] == "met" and not wait["ran"]:
        assert report["before"]["ttl_max"] is None or report["before"]["ttl_max"] <= RESULT_EXPIRES, (run, report["before"])


def test_twenty_role_runs_with_restarts_and_sigterm(redis_factory, tmp_path):
    rng = random.Random(SEED)
    server = redis_factory(config_file=True, extra={"appendonly": "yes", "appendfsync": "always",
                                                    "active-expire-effort": ORIGINAL_EFFORT})
    client = server.admin()
    redis_before = redis_settings(client)
    run_dir = str(tmp_path / "app")
    config_path, ctl = rollout_ctl.prepare(run_dir, server.url)
    original = file_bytes(config_path)
    inventory = write_inventory(tmp_path, server, config_path, ctl)
    report_json = tmp_path / "report" / "report.json"
    subprocess.run([ctl, "start"], check=True, capture_output=True, timeout=60)
    lean = None
    outcomes = []
    try:
        with Producer(run_dir) as producer:
            for run in range(RUNS):
                tune = run % 2 == 0
                if tune:
                    load_result_keys(client, BACKLOG_KEYS, ttl_for=lambda i: 86400)
                if report_json.exists():
                    report_json.unlink()
                before = file_bytes(config_path)
                fault = rng.choice(["none", "none", "sigterm", "restart"])
                log_path = tmp_path / ("run-%02d.log" % run)
                proc, log = start_playbook(TUNE if tune else ROLLBACK, inventory, log_path)
                started = time.monotonic()
                try:
                    if fault != "none":
                        # ansible-playbook starts in 2-7 s here; a run lasts 10-40 s: before, during, after
                        time.sleep(rng.uniform(2.0, 25.0 if tune else 12.0))
                        at = time.monotonic() - started
                        if proc.poll() is not None:
                            fault = "none (run ended first)"
                        elif fault == "sigterm":
                            os.killpg(proc.pid, signal.SIGTERM)
                            fault = "sigterm at %.1fs" % at
                        else:
                            fault = "restart at %.1fs" % at
                            server.restart(downtime=rng.uniform(0.2, 1.5))
                            client = server.admin()
                    returncode = proc.wait(timeout=300)
                finally:
                    if proc.poll() is None:
                        os.killpg(proc.pid, signal.SIGKILL)
                    log.close()
                output = "runs so far: %s\n%s" % (outcomes, log_path.read_text())
                after = file_bytes(config_path)
                outcomes.append(("tune" if tune else "rollback", fault, returncode))

                # the config is whole: the original bytes, or the one lean version
                compile(after, config_path, "exec")
                if after != original:
                    lean = lean or after
                    assert after == lean, "run %d (%s) left a third version of the config" % (run, fault)
                if returncode == 0:
                    assert after == (lean if tune else original), (run, fault, output[-6000:])
                    if not tune:
                        assert redis_settings(client) == redis_before, (run, output[-3000:])
                # nothing boosted, at runtime or on disk
                effort = client.config_get("active-expire-effort")["active-expire-effort"]
                assert effort == ORIGINAL_EFFORT, (run, fault, effort, output[-3000:])
                assert "active-expire-effort 10" not in open(server.config_path).read(), run
                if report_json.exists():
                    check_report(json.loads(report_json.read_text()), before != after, client, run)
                elif tune and returncode == 0:
                    raise AssertionError("run %d ended well and wrote no report:\n%s" % (run, output[-3000:]))

            # a last rollback, without a fault: everything as before the first run
            proc, log = start_playbook(ROLLBACK, inventory, tmp_path / "run-last.log")
            returncode = proc.wait(timeout=300)
            log.close()
            assert returncode == 0, (tmp_path / "run-last.log").read_text()[-3000:]
        assert file_bytes(config_path) == original
        assert redis_settings(client) == redis_before
        if rollout_ctl.worker_pid(run_dir) is None:  # a SIGTERM mid-restart may leave it stopped
            subprocess.run([ctl, "start"], check=True, capture_output=True, timeout=60)
        missing = producer.missing(client)
        print("soak: %s; %d tasks sent, %d refused while Redis restarted, %d missing"
              % (outcomes, len(producer.sent), producer.refused, len(missing)))
        assert producer.sent and not missing, "fire-and-forget tasks were lost: %d" % len(missing)
        assert any(fault.startswith("sigterm") for _kind, fault, _rc in outcomes), outcomes
        assert any(fault.startswith("restart") for _kind, fault, _rc in outcomes), outcomes
        rollout_ctl.check(run_dir)
    finally:
        subprocess.run([ctl, "stop"], capture_output=True, timeout=60, check=False)


def test_a_run_killed_right_after_the_rewrite_can_be_rolled_back(redis_factory, tmp_path):
    """SIGKILL of the whole run the moment the config file changes: before the state write that
    follows the rewrite. The original was recorded before the rewrite, so the rollback restores it."""
    server = redis_factory()
    run_dir = str(tmp_path / "app")
    config_path, ctl = rollout_ctl.prepare(run_dir, server.url)
    original = file_bytes(config_path)
    inventory = write_inventory(tmp_path, server, config_path, ctl)
    subprocess.run([ctl, "start"], check=True, capture_output=True, timeout=60)
    try:
        proc, log = start_playbook(TUNE, inventory, tmp_path / "tune.log")
        killed_after = None
        try:
            deadline = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline:
                if file_bytes(config_path) != original:
                    os.killpg(proc.pid, signal.SIGKILL)
                    killed_after = "the rewrite"
                    break
                time.sleep(0.002)
            proc.wait(timeout=60)
        finally:
            log.close()
        assert killed_after, "the run ended without rewriting the config:\n" + (tmp_path / "tune.log").read_text()[-3000:]
        assert file_bytes(config_path) != original
        state = json.loads((tmp_path / "report" / "state.json").read_text())
        assert state["hosts"]["localhost"]["config_path"] == config_path, state
        assert file_bytes(state["hosts"]["localhost"]["backup_file"]) == original

        proc, log = start_playbook(ROLLBACK, inventory, tmp_path / "rollback.log")
        returncode = proc.wait(timeout=300)
        log.close()
        assert returncode == 0, (tmp_path / "rollback.log").read_text()[-3000:]
        assert file_bytes(config_path) == original
    finally:
        subprocess.run([ctl, "stop"], capture_output=True, timeout=60, check=False)
