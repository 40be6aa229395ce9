"""The celery_tune role and its playbooks on localhost: a real redis-server, a real Celery worker
(``celery multi``, restarted by the role), real ansible-playbook runs.

One rollout sequence (check, apply under live load, rerun, rollback, rollback again) shares one
environment, because each playbook run costs seconds; the HTML report gets its own run.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import types
import uuid

import pytest
import yaml

from harness.workload import load_result_keys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "rollout_app")
TUNE = os.path.join(REPO_ROOT, "playbooks", "tune-celery.yml")
ROLLBACK = os.path.join(REPO_ROOT, "playbooks", "rollback-celery.yml")

sys.path.insert(0, APP_DIR)
import rollout_ctl  # noqa: E402  pylint: disable=wrong-import-position

WORKLOAD_TASKS = 200     # real tasks under the stock config: real result keys
BACKLOG_KEYS = 20000     # plus a day-long backlog, as a busy app leaves
RESULT_EXPIRES = 5       # the lean result_expires of these runs (seconds)
MIN_REDUCTION = 10
READ_TIMEOUT = 20        # every read of the live load has a timeout: a hang fails, it never blocks


def recap_changed(run):
    """``changed=`` of localhost in the PLAY RECAP."""
    found = re.search(r"^localhost\s*:\s*ok=\d+\s+changed=(\d+)", run.stdout, re.M)
    assert found, run.output
    return int(found.group(1))


def memory_config(client):
    return {key: client.config_get(key)[key] for key in ("maxmemory", "maxmemory-policy")}


def file_bytes(path):
    with open(path, "rb") as handle:
        return handle.read()


class App:
    """The sample app in a run directory: its config, its worker (celery multi), its producer."""

    def __init__(self, run_dir, redis_url):
        self.run_dir = str(run_dir)
        self.config_path, self.ctl = rollout_ctl.prepare(self.run_dir, redis_url)

    def ctl_run(self, action):
        subprocess.run([self.ctl, action], check=True, capture_output=True, timeout=60)

    @property
    def pid(self):
        return rollout_ctl.worker_pid(self.run_dir)

    def log(self):
        try:
            with open(os.path.join(self.run_dir, "rollout.log"), errors="replace") as handle:
                return handle.read()[-4000:]
        except OSError:
            return ""


@pytest.fixture
def rollout_app(redis_factory, tmp_path):
    """Redis + the sample app's worker + a backlog of old result keys (TTL one day)."""
    server = redis_factory()
    app = App(tmp_path / "app", server.url)
    app.ctl_run("start")
    try:
        rollout_ctl.workload(app.run_dir, WORKLOAD_TASKS)
        load_result_keys(server.admin(), BACKLOG_KEYS, ttl_for=lambda i: 86400)
        yield server, app
    finally:
        app.ctl_run("stop")


def write_inventory(tmp_path, server, app, **overrides):
    host = {
        "ansible_connection": "local",
        "celery_tune_config_path": app.config_path,
        "celery_tune_audit_paths": [os.path.join(APP_DIR, "rollout_proj")],
        "celery_tune_restart_command": [app.ctl, "restart"],
        "celery_tune_ready_command": [app.ctl, "ping"],
        "celery_tune_ready_delay": 1,
        "celery_tune_redis": server.login(),
        "celery_tune_report_dir": str(tmp_path / "report"),
        "celery_tune_settings": {"task_ignore_result": True, "task_store_errors_even_if_ignored": True,
                                 "result_expires": RESULT_EXPIRES, "result_extended": False},
        "celery_tune_maxmemory": "256mb",
        "celery_tune_maxmemory_policy": "volatile-ttl",
        "celery_tune_expedite": True,
        "celery_tune_min_reduction": MIN_REDUCTION,
        "celery_tune_wait_timeout": 90,
        "celery_tune_poll_interval": 0.5,
    }
    host.update(overrides)
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"celery": {"hosts": {"localhost": host}}}}}))
    return str(path)


class LiveLoad:
    """Producers in threads while the rollout runs: reads (``.get()``, chains, chords, groups) and
    fire-and-forget tasks whose arrival is proven by a Redis set."""

    def __init__(self, run_dir, readers=3):
        rollout_ctl.load_app(run_dir)
        from rollout_proj import client, tasks  # pylint: disable=import-outside-toplevel
        self.client, self.tasks = client, tasks
        client.READ_TIMEOUT = READ_TIMEOUT
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = {"reads": 0, "right": 0, "wrong": 0, "errors": 0, "sent": 0}
        self.failures = []
        self.tokens = []
        self.threads = [threading.Thread(target=self._reader, args=(i,), daemon=True) for i in range(readers)]
        self.threads.append(threading.Thread(target=self._sender, daemon=True))

    def _count(self, key, failure=None):
        with self.lock:
            self.counts[key] += 1
            if failure:
                self.failures.append(failure)

    def _reader(self, index):
        calls = [
            ("report", self.client.read_report, lambda n: {"n": n, "square": n * n}),
            ("chain", self.client.read_chain, lambda n: (n + 1) * 2),
            ("chord", lambda n: self.client.read_chord(n % 4 + 2), lambda n: sum(2 * i for i in range(n % 4 + 2))),
            ("group", lambda n: self.client.read_group(n % 4 + 2), lambda n: [3 * i for i in range(n % 4 + 2)]),
        ]
        n = index
        while not self.stop.is_set():
            name, call, expected = calls[n % len(calls)]
            self._count("reads")
            try:
                got = call(n)
            except Exception as exc:  # pylint: disable=broad-except  # a timeout or any error is a failure
                self._count("errors", "%s(%d): %r" % (name, n, exc))
            else:
                if got == expected(n):
                    self._count("right")
                else:
                    self._count("wrong", "%s(%d): got %r" % (name, n, got))
            n += 1
            time.sleep(0.05)

    def _sender(self):
        while not self.stop.is_set():
            token = uuid.uuid4().hex
            self.tasks.record.delay(token)
            with self.lock:
                self.tokens.append(token)
                self.counts["sent"] += 1
            time.sleep(0.02)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        for thread in self.threads:
            thread.join(READ_TIMEOUT * 2)
        assert not any(thread.is_alive() for thread in self.threads), "a reader hangs"

    def arrived(self, client, timeout=60):
        """How many fire-and-forget tokens the worker recorded (waits for the queue to drain)."""
        deadline = time.monotonic() + timeout
        while True:
            done = {member.decode() for member in client.smembers(self.tasks.COUNTER_KEY)}
            missing = [token for token in self.tokens if token not in done]
            if not missing or time.monotonic() > deadline:
                return len(self.tokens) - len(missing)
            time.sleep(0.5)


def test_rollout_check_apply_under_load_rerun_rollback(rollout_app, ansible_playbook, tmp_path):
    server, app = rollout_app
    admin = server.admin()
    inventory = write_inventory(tmp_path, server, app)
    original = file_bytes(app.config_path)
    redis_before = memory_config(admin)
    keys_before = admin.dbsize()
    pid_before = app.pid
    state_path = tmp_path / "report" / "state.json"

    # 1. --check --diff: every change shown, none made.
    check = ansible_playbook(TUNE, inventory=inventory, check=True, diff=True)
    assert check.returncode == 0, check.output
    assert recap_changed(check) > 0
    assert "+task_ignore_result = True" in check.stdout, "the config diff is shown"
    assert "+maxmemory-policy volatile-ttl" in check.stdout, "the Redis diff is shown"
    assert file_bytes(app.config_path) == original
    assert memory_config(admin) == redis_before
    assert app.pid == pid_before, "check mode restarted the worker"
    assert admin.dbsize() == keys_before
    assert admin.ttl(next(admin.scan_iter("celery-task-meta-*", count=1000))) > 3600, "check mode capped a TTL"
    assert not state_path.exists(), "check mode recorded a state"
    print("check: changed=%d, nothing changed" % recap_changed(check))

    # 2. Apply while producers read results and fire tasks: nothing lost, no read hangs or is wrong.
    started = time.monotonic()
    with LiveLoad(app.run_dir) as load:
        time.sleep(1)
        apply = ansible_playbook(TUNE, inventory=inventory)
        time.sleep(1)
    arrived = load.arrived(admin)
    print("apply: %.1fs, live load %s, fire-and-forget arrived %d/%d"
          % (time.monotonic() - started, load.counts, arrived, len(load.tokens)))
    assert apply.returncode == 0, apply.output
    assert load.counts["errors"] == 0 and load.counts["wrong"] == 0, load.failures[:5]
    assert load.counts["right"] == load.counts["reads"] > 20
    assert arrived == len(load.tokens) > 20, "fire-and-forget tasks were lost"

    tuned = file_bytes(app.config_path).decode()
    assert "task_ignore_result = True" in tuned and "result_expires = %d" % RESULT_EXPIRES in tuned
    assert "rollout_proj.tasks.report" in tuned, "the audit's overrides are in task_annotations"
    assert app.pid not in (None, pid_before), "the worker was not restarted:\n" + app.log()
    assert memory_config(admin) == {"maxmemory": "268435456", "maxmemory-policy": "volatile-ttl"}
    wait = apply.result("result_keys_wait")
    print("wait: baseline %d, final %d, reduction %sx, expedited %d, %.1fs"
          % (wait["baseline"], wait["final"], wait["reduction"], wait["expedited"], wait["elapsed"]))
    assert wait["met"] and wait["baseline"] >= BACKLOG_KEYS + WORKLOAD_TASKS
    assert wait["final"] * MIN_REDUCTION <= wait["baseline"]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["verdict"]["met"] is True and report["before"]["keys"] >= BACKLOG_KEYS
    assert report["hosts"]["localhost"]["changed"] is True
    assert report["audit_totals"]["tasks"] == 6
    assert report["live"]["checked"] is False and "live checks were not made" in report["live"]["message"]
    state = json.loads(state_path.read_text())
    assert file_bytes(state["hosts"]["localhost"]["backup_file"]) == original
    assert state["redis"]["before"]["maxmemory_policy"] == redis_before["maxmemory-policy"]

    # 3. A second run changes nothing (the wait is skipped: no old keys are left).
    pid_tuned = app.pid
    rerun = ansible_playbook(TUNE, inventory=inventory)
    assert rerun.returncode == 0, rerun.output
    assert recap_changed(rerun) == 0, rerun.stdout
    assert app.pid == pid_tuned
    assert json.loads(state_path.read_text()) == state, "a run without change kept the recorded state"
    print("rerun: changed=0")

    # 4. Rollback: the original bytes, the previous Redis settings, a restart; then nothing to do.
    rollback = ansible_playbook(ROLLBACK, inventory=inventory)
    assert rollback.returncode == 0, rollback.output
    assert file_bytes(app.config_path) == original
    assert memory_config(admin) == redis_before
    assert app.pid not in (None, pid_tuned), "the worker was not restarted after the rollback"
    again = ansible_playbook(ROLLBACK, inventory=inventory)
    assert again.returncode == 0, again.output
    assert recap_changed(again) == 0, again.stdout
    assert file_bytes(app.config_path) == original
    rollout_ctl.check(app.run_dir)
    print("rollback: byte-identical config, Redis back to %s" % redis_before)


def chromium():
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "headless Chromium is missing: install the Debian package 'chromium' (make setup)"
    return binary


def chromium_run(tmp_path, *args):
    argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--user-data-dir=%s" % (tmp_path / "chromium-profile"), "--window-size=1200,900"] + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)


def test_report_renders_in_headless_chromium(redis_server, ansible_playbook, tmp_path):
    """Only the verify and report phases (tags), on a backlog whose TTLs are capped: a real timeline."""
    load_result_keys(redis_server.admin(), 5000, ttl_for=lambda i: 86400)
    config = tmp_path / "celeryconfig.py"
    config.write_text("result_expires = 86400\n")
    no_app = types.SimpleNamespace(config_path=str(config), ctl="/bin/false")  # the config phase must not run
    inventory = write_inventory(tmp_path, redis_server, no_app, celery_tune_settings={"result_expires": 3},
                                celery_tune_poll_interval=0.3)
    run = ansible_playbook(TUNE, inventory=inventory, tags=["celery_tune_verify", "celery_tune_report"])
    assert run.returncode == 0, run.output
    assert file_bytes(config) == b"result_expires = 86400\n", "the tags left the config phase out"
    html_path = tmp_path / "report" / "report.html"
    html = html_path.read_text()
    assert '<svg id="timeline-chart"' in html and 'id="keys-line"' in html and 'id="memory-line"' in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html, \
        "the report must be self-contained"
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["wait"]["samples"] and report["verdict"]["met"] is True
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| result keys | 5000 | 0 |" in markdown

    screenshot = tmp_path / "report.png"
    shot = chromium_run(tmp_path, "--screenshot=%s" % screenshot, "file://%s" % html_path)
    assert screenshot.exists(), shot.stderr
    png = screenshot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20000, "a blank or tiny screenshot (%d bytes)" % len(png)
    dom = chromium_run(tmp_path, "--dump-dom", "file://%s" % html_path)
    assert dom.returncode == 0, dom.stderr
    assert '<polyline id="keys-line"' in dom.stdout, "the chart did not render in the DOM"
    # The key line is cut where the count jumps between two samples: every sample is drawn, each
    # jump is marked instead of being drawn as a slope.
    points = sum(len(found.split()) for found in
                 re.findall(r'<polyline [^>]*class="keys-line"[^>]*points="([^"]*)"', dom.stdout))
    counts = [sample for sample in report["wait"]["samples"] if sample[1] is not None]
    assert points == len(counts) >= 2, (points, len(counts))
    jumps = [1 for before, after in zip(counts, counts[1:])
             if max(before[1], after[1]) > 0 and abs(before[1] - after[1]) >= 0.5 * max(before[1], after[1])]
    assert dom.stdout.count('<g class="jump">') == len(jumps), "a jump between samples is not marked"
    print("report: screenshot %d bytes, chart with %d points and %d jump(s) marked, verdict %s"
          % (len(png), points, len(jumps), report["verdict"]["message"]))


SAMPLE_REPORT = os.path.join(REPO_ROOT, "docs", "sample-report")
# The demo's workload makes about 3,000 commands/s (docs/demo.md). A sample whose "before" figure
# is far above that was measured during the role's own SCAN, as it was before the fix.
SAMPLE_MAX_COMMANDS_PER_S = 20000


def test_the_sample_report_is_current_and_renders(tmp_path):
    """docs/sample-report/ comes from a current `make demo`: a stale sample fails here, not in a reader's eyes."""
    html_path = os.path.join(SAMPLE_REPORT, "report.html")
    texts = {}
    for name in ("report.html", "report.json", "report.md"):
        with open(os.path.join(SAMPLE_REPORT, name)) as handle:
            texts[name] = handle.read()
        assert not re.search(r"\w+://[^/\s:@]*:[^/\s@]+@", texts[name]), "a URL with a password in the sample " + name
        assert "requirepass" not in texts[name] and os.path.expanduser("~") + "/" not in texts[name], name
    report = json.loads(texts["report.json"])
    assert report["verdict"]["met"] is True

    dom = chromium_run(tmp_path, "--dump-dom", "file://%s" % html_path)
    assert dom.returncode == 0, dom.stderr
    memory = re.search(r'<polyline id="memory-line"[^>]*points="([^"]*)"', dom.stdout)
    assert memory, "the sample's chart did not render in the DOM"
    samples = len(memory.group(1).split())
    assert samples > 2 and samples == len(report["wait"]["samples"]), (samples, len(report["wait"]["samples"]))
    assert re.search(r'<polyline [^>]*class="keys-line"', dom.stdout), "no key count drawn in the sample's chart"
    before = re.search(r'<td>commands/s \(instantaneous\)</td><td class="num">(\d+)</td>', dom.stdout)
    assert before, "no commands/s row in the sample report"
    assert 0 < int(before.group(1)) < SAMPLE_MAX_COMMANDS_PER_S, "commands/s before reads %s" % before.group(1)


def test_config_path_is_really_required(redis_server, ansible_playbook, tmp_path):
    """No default hides a missing path from the argument spec."""
    config = tmp_path / "celeryconfig.py"
    config.write_text("result_expires = 86400\n")
    inventory = write_inventory(tmp_path, redis_server, types.SimpleNamespace(config_path=str(config), ctl="/bin/false"))
    with open(inventory) as handle:
        data = yaml.safe_load(handle)
    del data["all"]["children"]["celery"]["hosts"]["localhost"]["celery_tune_config_path"]
    with open(inventory, "w") as handle:
        yaml.safe_dump(data, handle)
    run = ansible_playbook(TUNE, inventory=inventory)
    assert run.returncode != 0
    assert "celery_tune_config_path" in run.output and "required" in run.output, run.output[-3000:]
    assert file_bytes(config) == b"result_expires = 86400\n"


@pytest.mark.parametrize("tag", [
    pytest.param("celery_tune_verify", id="prefixed"),
    pytest.param("verify", id="deprecated-alias"),
])
def test_unmet_verification_fails_under_tags_verify(redis_server, ansible_playbook, tmp_path, tag):
    """The failing verdict is tagged verify, not report: --tags celery_tune_verify fails, and writes no report.
    The unprefixed tag still selects the same tasks, and says it is deprecated."""
    admin = redis_server.admin()
    load_result_keys(admin, 300, ttl_for=lambda i: 86400)
    load_result_keys(admin, 50, ttl_for=lambda i: None, prefix="celery-task-meta-keep-")  # never expire
    config = tmp_path / "celeryconfig.py"
    config.write_text("result_expires = 86400\n")
    inventory = write_inventory(tmp_path, redis_server, types.SimpleNamespace(config_path=str(config), ctl="/bin/false"),
                                celery_tune_settings={"result_expires": 2}, celery_tune_min_reduction=100,
                                celery_tune_wait_timeout=6, celery_tune_poll_interval=0.3)
    run = ansible_playbook(TUNE, inventory=inventory, tags=[tag])
    assert run.returncode != 0, run.output[-3000:]
    assert "Fail when the wait failed or ended without the fall" in run.stdout
    assert "celery_tune: the wait failed: the target can never be met" in run.stdout, run.stdout[-3000:]
    assert not (tmp_path / "report" / "report.json").exists(), "--tags %s wrote a report" % tag
    assert file_bytes(config) == b"result_expires = 86400\n"
    assert ("[DEPRECATED] celery_tune: the tag names verify are deprecated aliases of celery_tune_verify" in run.stdout) is (tag == "verify")


PREFLIGHT_RULES = {
    "config-path": ({"celery_tune_config_path": ""}, "set celery_tune_config_path to the Celery config file"),
    "settings": ({"celery_tune_settings": {}}, "celery_tune_settings is empty"),
    "allkeys-policy": ({"celery_tune_maxmemory_policy": "allkeys-lru"}, "an allkeys-* policy evicts queued tasks"),
    "expedite-without-ttl": ({"celery_tune_settings": {"task_ignore_result": True, "result_expires": 0}},
                             "celery_tune_expedite caps old TTLs at the new result_expires"),
    "min-reduction": ({"celery_tune_min_reduction": 0.5}, "so at least 1; got 0.5"),
    "wait-timeout": ({"celery_tune_wait_timeout": -1}, "celery_tune_wait_timeout is seconds, 0 or more; got -1"),
    "persist-file": ({"celery_tune_maxmemory_persist": "file"}, "set celery_tune_maxmemory_config_file"),
    "report-dir": ({"celery_tune_report_dir": "reports"}, "celery_tune_report_dir must be an absolute path"),
}


@pytest.mark.parametrize("rule", list(PREFLIGHT_RULES))
def test_preflight_names_the_one_rule_broken(ansible_playbook, tmp_path, rule):
    """One assert per rule: a broken rule fails before any change with its own message, and no other rule's."""
    overrides, message = PREFLIGHT_RULES[rule]
    config = tmp_path / "celeryconfig.py"
    config.write_text("result_expires = 86400\n")
    no_redis = types.SimpleNamespace(login=lambda: {"login_host": "127.0.0.1", "login_port": 1})  # never reached
    inventory = write_inventory(tmp_path, no_redis, types.SimpleNamespace(config_path=str(config), ctl="/bin/false"),
                                **overrides)
    run = ansible_playbook(TUNE, inventory=inventory)
    assert run.returncode != 0
    assert message in run.output, run.output[-3000:]
    others = [text for name, (_overrides, text) in PREFLIGHT_RULES.items() if name != rule and text in run.output]
    assert others == [], others
    assert file_bytes(config) == b"result_expires = 86400\n"
    assert not (tmp_path / "report" / "state.json").exists(), "a run refused at preflight recorded a state"


def test_no_inventory_file_needs_a_report_dir(ansible_playbook, tmp_path):
    """With ``-i host,`` there is no inventory_dir: the default report dir is refused, not made relative."""
    config = tmp_path / "celeryconfig.py"
    config.write_text("result_expires = 86400\n")
    playbook = tmp_path / "own-playbook.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False,
                                         "roles": [{"role": "celery_ops.lean_results.celery_tune"}]}]))
    run = ansible_playbook(playbook, extra_vars={"celery_tune_config_path": str(config)}, cwd=str(tmp_path))
    assert run.returncode != 0
    assert "celery_tune_report_dir must be an absolute path" in run.output, run.output[-3000:]
    assert not (tmp_path / "None").exists() and file_bytes(config) == b"result_expires = 86400\n"
