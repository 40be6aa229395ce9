"""The rollout exactly as the README's "Roll it out" tells it, and a failure at every phase.

The example inventory and group vars from docs/examples are used as a user copies them; the only
changes are the lines marked ``adapt:`` (the test checks each one it changes carries the mark)
and the hosts made localhost aliases: one worker host (a real Celery worker, restarted by the
role) and one web host (a producer whose health check imports its config). One Redis (with a
password, from a config file so ``persist: rewrite`` works) and the app are shared by the module.
"""
import json
import os
import re
import shutil
import subprocess
import time

import sys

import pytest
import yaml

from harness.collection import COLLECTIONS_ROOT
from harness.ansible_runner import REPO_ROOT, VENV_BIN, ansible_env
from harness.redis_server import RedisServer
from harness.workload import load_result_keys

sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "fixtures", "rollout_app"))
import rollout_ctl  # noqa: E402  pylint: disable=wrong-import-position

COLLECTION = os.path.join(COLLECTIONS_ROOT, "ansible_collections", "celery_ops", "lean_results")
EXAMPLES = os.path.join(REPO_ROOT, "docs", "examples")
APP_DIR = rollout_ctl.APP_DIR
VAULT_PASS = "vault-pass-for-tests"
REDIS_PASSWORD = "redis-pass-for-tests-3c1f"
RESULT_EXPIRES = 3
BACKLOG = 3000
WORKER = "worker-1.example.internal"
WEB = "web-1.example.internal"
MEMORY_KEYS = ("maxmemory", "maxmemory-policy", "maxmemory-samples")

WEB_CTL = """#!/bin/sh
# The web producer: restart records a restart; health imports the config the web app would load.
cd {run_dir} || exit 1
case "$1" in
  restart) date +%s.%N >> {run_dir}/web.restarts ;;
  health) PYTHONPATH={run_dir}:{app_dir} exec {python} -c "import rollout_celeryconfig" ;;
esac
"""


def recap(run_stdout):
    """``{host: changed}`` from the PLAY RECAP."""
    found = dict((host, int(changed)) for host, changed in
                 re.findall(r"^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)", run_stdout, re.M))
    assert found, run_stdout
    return found


def memory(client):
    return dict((key, client.config_get(key)[key]) for key in MEMORY_KEYS)


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


class Fleet:
    """Redis, the worker host's app and worker, the web host's app, and their original bytes."""

    def __init__(self, base):
        self.base = str(base)
        self.redis = RedisServer(os.path.join(self.base, "redis"), password=REDIS_PASSWORD, config_file=True,
                                 extra={"maxmemory": "2gb", "maxmemory-policy": "noeviction"})
        self.hosts_dir = os.path.join(self.base, "hosts")
        self.worker_dir = os.path.join(self.hosts_dir, WORKER)
        self.web_dir = os.path.join(self.hosts_dir, WEB)
        self.configs = {}
        self.worker_ctl = None
        self.web_ctl = os.path.join(self.web_dir, "web.sh")
        # The app's source as deployed (outside any tests/ directory, which the example excludes).
        self.app_source = os.path.join(self.base, "srv", "rollout_proj")

    def start(self):
        shutil.copytree(os.path.join(APP_DIR, "rollout_proj"), self.app_source,
                        ignore=shutil.ignore_patterns("__pycache__"))
        self.redis.start()
        self.admin = self.redis.admin()
        self.memory_before = memory(self.admin)
        config, self.worker_ctl = rollout_ctl.prepare(self.worker_dir, self.redis.url)
        web_config, _web_ctl = rollout_ctl.prepare(self.web_dir, self.redis.url)
        with open(self.web_ctl, "w") as handle:
            handle.write(WEB_CTL.format(run_dir=self.web_dir, app_dir=APP_DIR,
                                        python=os.path.join(VENV_BIN, "python")))
        os.chmod(self.web_ctl, 0o755)
        self.configs = {WORKER: (config, read(config)), WEB: (web_config, read(web_config))}
        self.ctl("start")
        rollout_ctl.workload(self.worker_dir, 50)
        self.backlog()
        return self

    def stop(self):
        if self.worker_ctl:
            subprocess.run([self.worker_ctl, "stop"], capture_output=True, timeout=60, check=False)
        self.redis.stop()

    def ctl(self, action):
        subprocess.run([self.worker_ctl, action], check=True, capture_output=True, timeout=60)

    def backlog(self):
        """Old result keys (a day's TTL), as a busy app leaves: there is something to wait for."""
        if sum(1 for _key in self.admin.scan_iter("celery-task-meta-*", count=1000)) < BACKLOG:
            load_result_keys(self.admin, BACKLOG, ttl_for=lambda i: 86400)

    def reset(self):
        """Every config and Redis setting back to the original; the backlog back."""
        for path, original in self.configs.values():
            with open(path, "wb") as handle:
                handle.write(original)
        for key, value in self.memory_before.items():
            self.admin.config_set(key, value)
        self.backlog()

    def assert_original(self, why):
        for host, (path, original) in self.configs.items():
            assert read(path) == original, "%s: %s's config is not the original" % (why, host)
        assert memory(self.admin) == self.memory_before, why

    @property
    def worker_pid(self):
        return rollout_ctl.worker_pid(self.worker_dir)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    fleet = Fleet(tmp_path_factory.mktemp("fleet"))
    try:
        yield fleet.start()
    finally:
        fleet.stop()


def marked_adapt(text, key):
    """The example's line defining ``key`` says "adapt:"."""
    lines = [line for line in text.splitlines() if re.match(r"^\s*%s:" % re.escape(key), line)]
    assert lines, "%s is not in the example" % key
    return all("adapt:" in line for line in lines)


def adapt_examples(ops_dir, fleet):
    """Change the lines the examples mark "adapt:" (and only those); make the hosts localhost aliases."""
    inventory_path = os.path.join(ops_dir, "inventory.yml")
    group_vars_path = os.path.join(ops_dir, "group_vars", "celery.yml")
    with open(inventory_path) as handle:
        inventory_text = handle.read()
    with open(group_vars_path) as handle:
        group_vars_text = handle.read()
    inventory = yaml.safe_load(inventory_text)
    group_vars = yaml.safe_load(group_vars_text)

    groups = inventory["all"]["children"]["celery"]["children"]
    assert set(groups) == {"celery_workers", "celery_producers"}
    assert list(groups["celery_workers"]["hosts"]) == [WORKER] and list(groups["celery_producers"]["hosts"]) == [WEB]
    assert marked_adapt(inventory_text, WORKER) and marked_adapt(inventory_text, WEB)
    alias = {"ansible_connection": "local", "ansible_python_interpreter": os.path.join(VENV_BIN, "python")}
    groups["celery_workers"]["hosts"][WORKER] = dict(alias)
    groups["celery_producers"]["hosts"][WEB] = dict(alias)
    inventory_changes = {
        "celery_workers": {"celery_tune_restart_services": [], "celery_tune_restart_command": [fleet.worker_ctl, "restart"],
                           "celery_tune_ready_command": [fleet.worker_ctl, "ping"]},
        "celery_producers": {"celery_tune_restart_services": [], "celery_tune_restart_command": [fleet.web_ctl, "restart"],
                             "celery_tune_ready_command": [fleet.web_ctl, "health"]},
    }
    for group, changes in inventory_changes.items():
        for key in changes:
            if key in groups[group]["vars"]:
                assert marked_adapt(inventory_text, key), key
            else:  # a restart command instead of units: the units' line says where to read how
                assert marked_adapt(inventory_text, "celery_tune_restart_services")
        groups[group]["vars"].update(changes)

    group_var_changes = {
        "celery_tune_config_path": os.path.join(fleet.hosts_dir, "{{ inventory_hostname }}", "rollout_celeryconfig.py"),
        "celery_tune_audit_paths": [fleet.app_source],
        "celery_tune_restart_become": False,
    }
    for key in group_var_changes:
        assert marked_adapt(group_vars_text, key), key
    group_vars.update(group_var_changes)
    assert marked_adapt(group_vars_text, "result_expires")
    group_vars["celery_tune_settings"]["result_expires"] = RESULT_EXPIRES
    assert marked_adapt(group_vars_text, "login_host") and marked_adapt(group_vars_text, "login_port")
    group_vars["celery_tune_redis"].update(login_host=fleet.redis.host, login_port=fleet.redis.port)
    assert group_vars["celery_tune_redis"]["login_password"] == "{{ vault_redis_password }}"
    assert "celery_tune_report_dir" not in group_vars, "the example relies on the default report dir"

    with open(inventory_path, "w") as handle:
        yaml.safe_dump(inventory, handle)
    with open(group_vars_path, "w") as handle:
        yaml.safe_dump(group_vars, handle)


def readme_commands():
    """The commands of the README's "Roll it out" block, comments removed, in order."""
    with open(os.path.join(REPO_ROOT, "README.md")) as handle:
        readme = handle.read()
    section = readme[readme.index("## Roll it out"):]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = []
    for line in block.splitlines():
        if line.startswith("#"):
            commands.append(line)  # a step for the reader (the adapt step)
            continue
        command = re.sub(r"\s+#\s.*$", "", line).strip()
        if command:
            commands.append(command)
    return commands


def shell_env(ops_dir):
    env = ansible_env(COLLECTIONS_ROOT)
    env["HOME"] = os.environ.get("HOME", ops_dir)
    return env


def run_shell(command, ops_dir, stdin):
    """One README line in bash, from the user's directory, with ``LR`` defined as the README says."""
    script = "LR=%s\n%s\n" % (COLLECTION, command)
    return subprocess.run(["bash", "-e", "-c", script], cwd=ops_dir, input=stdin, capture_output=True, text=True,
                          timeout=900, env=shell_env(ops_dir), check=False)


def collection_files():
    """Every file in the collection's directory with its mtime (what a run must not touch)."""
    skip = {".git", ".venv", ".ansible", "__pycache__", "output"}
    found = {}
    for root, dirs, files in os.walk(REPO_ROOT):
        dirs[:] = [name for name in dirs if name not in skip]
        for name in files:
            path = os.path.join(root, name)
            try:
                found[path] = os.stat(path).st_mtime_ns
            except OSError:
                pass
    return found


def after_check(fleet, ops_dir, command, proc, worker_pid):
    """--check --diff: both configs' diffs shown, nothing changed, nothing recorded."""
    assert "--check --diff" in command
    assert proc.stdout.count("+task_ignore_result = True") == 2, proc.stdout[-4000:]
    assert not os.path.exists(os.path.join(ops_dir, "celery_tune", "state.json"))
    assert "check mode: no report written" in proc.stdout
    assert fleet.worker_pid == worker_pid
    fleet.assert_original("after --check")


def after_apply(fleet, ops_dir, command, proc, worker_pid):
    """Lean configs, both hosts restarted, Redis set, the fall verified, report beside the inventory."""
    for host, (path, _backup) in fleet.configs.items():
        assert b"task_ignore_result = True" in read(path), host
    assert fleet.worker_pid not in (None, worker_pid), "the worker was not restarted"
    assert os.path.exists(os.path.join(fleet.web_dir, "web.restarts")), "the web host was not restarted"
    assert memory(fleet.admin)["maxmemory"] == str(4 * 1024 ** 3)
    assert memory(fleet.admin)["maxmemory-policy"] == "volatile-ttl"
    report = json.loads(read(os.path.join(ops_dir, "celery_tune", "report.json")))
    assert report["verdict"]["status"] == "met", report["verdict"]
    assert report["audit_totals"]["tasks"] == 6 and report["audit_totals"]["sources"] == 1, \
        "two hosts running one app count its tasks once"
    state_text = read(os.path.join(ops_dir, "celery_tune", "state.json")).decode()
    assert REDIS_PASSWORD not in state_text and set(json.loads(state_text)["hosts"]) == {WORKER, WEB}
    for name in ("report.json", "report.html", "report.md"):
        assert REDIS_PASSWORD not in read(os.path.join(ops_dir, "celery_tune", name)).decode(), name
    assert REDIS_PASSWORD not in proc.stdout + proc.stderr


def after_rerun(fleet, ops_dir, command, proc, worker_pid):
    """Nothing to do on any host."""
    assert set(recap(proc.stdout).values()) == {0}, proc.stdout[-3000:]


def after_rollback(fleet, ops_dir, command, proc, worker_pid):
    """The original bytes and Redis settings."""
    assert REDIS_PASSWORD not in proc.stdout + proc.stderr
    fleet.assert_original("after the rollback")


CHECKS = [after_check, after_apply, after_rerun, after_rollback]


def test_readme_rollout_literally(fleet, tmp_path):
    ops_dir = str(tmp_path / "ops")
    os.makedirs(ops_dir)
    commands = readme_commands()
    assert sum("ansible-playbook" in command for command in commands) == 4, commands
    collection_before = collection_files()
    worker_pid = fleet.worker_pid
    playbooks = []
    for command in commands:
        if command.startswith("#"):
            assert "adapt:" in command
            adapt_examples(ops_dir, fleet)
            continue
        if command.startswith("LR="):
            continue  # the test's LR is the collection under test
        if command.startswith("ansible-vault"):
            stdin = "%s\n%s\n%s" % (VAULT_PASS, VAULT_PASS, REDIS_PASSWORD)
        else:
            stdin = VAULT_PASS + "\n"
        started = time.monotonic()
        proc = run_shell(command, ops_dir, stdin)
        assert proc.returncode == 0, "%s\n%s\n%s" % (command, proc.stdout[-6000:], proc.stderr[-3000:])
        if "ansible-playbook" in command:
            playbooks.append("%.0fs" % (time.monotonic() - started))
            CHECKS[len(playbooks) - 1](fleet, ops_dir, command, proc, worker_pid)
    assert len(playbooks) == len(CHECKS)
    assert REDIS_PASSWORD not in read(os.path.join(ops_dir, "group_vars", "all", "vault.yml")).decode()

    # rollback again: nothing left to do, and it says so.
    again = run_shell(commands[-1], ops_dir, VAULT_PASS + "\n")
    assert again.returncode == 0, again.stdout[-3000:]
    assert set(recap(again.stdout).values()) == {0}, again.stdout[-3000:]
    assert "already rolled back: nothing to restore" in again.stdout
    fleet.assert_original("after the second rollback")
    rollout_ctl.check(fleet.worker_dir)
    print("README rollout: check, apply, rerun, rollback took %s; rerun changed=0, rollback byte-identical"
          % ", ".join(playbooks))

    # Nothing was written inside the collection: reports and state are beside the inventory.
    collection_after = collection_files()
    touched = sorted(path for path, mtime in collection_after.items() if collection_before.get(path) != mtime)
    assert touched == [], touched


def prepared_ops(tmp_path, fleet):
    """The user's directory after the README's copy, vault and adapt steps; the vault password file."""
    ops_dir = str(tmp_path / "ops")
    os.makedirs(os.path.join(ops_dir, "group_vars", "all"))
    shutil.copy(os.path.join(EXAMPLES, "inventory.yml"), os.path.join(ops_dir, "inventory.yml"))
    shutil.copy(os.path.join(EXAMPLES, "group_vars_celery.yml"), os.path.join(ops_dir, "group_vars", "celery.yml"))
    pass_file = os.path.join(str(tmp_path), "vault-pass")
    with open(pass_file, "w") as handle:
        handle.write(VAULT_PASS + "\n")
    env = shell_env(ops_dir)
    env["ANSIBLE_VAULT_PASSWORD_FILE"] = pass_file
    vault = subprocess.run([os.path.join(VENV_BIN, "ansible-vault"), "encrypt_string", "--stdin-name",
                            "vault_redis_password"], input=REDIS_PASSWORD, capture_output=True, text=True,
                           env=env, check=True, timeout=60)
    with open(os.path.join(ops_dir, "group_vars", "all", "vault.yml"), "w") as handle:
        handle.write(vault.stdout)
    adapt_examples(ops_dir, fleet)
    return ops_dir, {"ANSIBLE_VAULT_PASSWORD_FILE": pass_file}


TUNE = os.path.join(REPO_ROOT, "playbooks", "tune-celery.yml")
ROLLBACK = os.path.join(REPO_ROOT, "playbooks", "rollback-celery.yml")
ONLY_WEB = "{{ %%s if inventory_hostname == '%s' else %%s }}" % WEB

# phase -> (extra vars that make it fail, extra env, whether a fixed rerun follows before the rollback)
FAILURES = {
    "audit": ({"celery_tune_audit_paths": ["/nonexistent/app/source"]}, {}, False),
    "config-on-one-host": ({"celery_tune_config_validate": ONLY_WEB % ("'/bin/false %s'", "''")}, {}, True),
    "restart-ready": ({"celery_tune_ready_command": ONLY_WEB % ("'/bin/false'", "''"), "celery_tune_ready_retries": 1,
                       "celery_tune_ready_delay": 0}, {}, False),
    "redis": ({"celery_tune_maxmemory_persist": "file",
               "celery_tune_maxmemory_config_file": "/nonexistent/redis.conf"}, {}, True),
    "wait": ({"celery_tune_min_reduction": 1000000, "celery_tune_wait_timeout": 8}, {}, False),
    "skip-tags-redis": ({}, {"ANSIBLE_SKIP_TAGS": "celery_tune_redis"}, False),
}
NO_TTL_PREFIX = "celery-task-meta-noexpire-"


@pytest.mark.parametrize("phase", list(FAILURES))
def test_failure_at_each_phase_rolls_back_to_the_originals(fleet, ansible_playbook, tmp_path, phase):
    extra_vars, extra_env, rerun = FAILURES[phase]
    fleet.reset()
    if phase == "wait":  # keys without TTL: the tenfold fall cannot be reached
        load_result_keys(fleet.admin, 20, ttl_for=lambda i: None, prefix=NO_TTL_PREFIX)
    ops_dir, env = prepared_ops(tmp_path, fleet)
    inventory = os.path.join(ops_dir, "inventory.yml")
    state_path = os.path.join(ops_dir, "celery_tune", "state.json")
    failed = None
    try:
        failed = ansible_playbook(TUNE, inventory=inventory, extra_vars=extra_vars, env=dict(env, **extra_env))
    finally:
        with open(os.path.join(str(tmp_path), "failed-run.log"), "w") as handle:
            handle.write(failed.output if failed is not None else "")
        for key in fleet.admin.scan_iter(NO_TTL_PREFIX + "*", count=1000):
            fleet.admin.delete(key)
    if phase == "skip-tags-redis":
        assert failed.returncode == 0, failed.output[-4000:]
        assert memory(fleet.admin) == fleet.memory_before, "--skip-tags celery_tune_redis changed Redis"
    else:
        assert failed.returncode != 0, failed.output[-4000:]
    state = json.loads(read(state_path))
    assert REDIS_PASSWORD not in read(state_path).decode()
    if phase in ("config-on-one-host", "restart-ready", "redis", "wait", "skip-tags-redis"):
        assert WORKER in state["hosts"], "the changed config's backup was not recorded: %s" % state
    if phase == "wait":
        assert os.path.exists(os.path.join(ops_dir, "celery_tune", "report.json")), failed.stdout[-5000:]
        report = json.loads(read(os.path.join(ops_dir, "celery_tune", "report.json")))
        assert report["verdict"]["met"] is False, "the report is written before the play fails"
        assert "celery_tune: " in failed.stdout and "Fail when the wait failed or ended without the fall" in failed.stdout
    if rerun:  # fixed, run again: it finds intermediate values and must keep the originals recorded
        fixed = ansible_playbook(TUNE, inventory=inventory, env=env)
        assert fixed.returncode == 0, fixed.output[-4000:]
        assert json.loads(read(state_path))["hosts"][WORKER] == state["hosts"][WORKER]
        if "redis" in state:
            assert json.loads(read(state_path))["redis"]["before"] == state["redis"]["before"]
    rollback = ansible_playbook(ROLLBACK, inventory=inventory, env=env, verbosity=1)
    assert rollback.returncode == 0, rollback.output[-4000:]
    assert REDIS_PASSWORD not in rollback.output, "rollback -v printed the Redis password"
    fleet.assert_original("rollback after a failure at %s" % phase)
    if phase == "audit":
        assert "nothing to restore" in rollback.stdout
    subprocess.run([fleet.worker_ctl, "ping"], check=True, capture_output=True, timeout=60)
    print("%s: failed rc=%d, rollback restored the originals" % (phase, failed.returncode))
