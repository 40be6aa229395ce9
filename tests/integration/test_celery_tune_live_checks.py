"""The celery_tune role checked against the live app (celery_tune_celery_app): a real redis-server
with a password, an app whose results go under a key prefix into db 2, two real workers under the
app's own Python (a 3.12/3.13 venv, not Ansible's), real ansible-playbook runs.

One environment for the whole sequence (each run costs seconds): a wrong audit root fails before
any change; a rollout with no Redis or pattern variable finds the keys, waits and verifies; an
explicit wrong pattern is not MET; a worker left unrestarted fails the play before Redis.
"""
import json
import os
import subprocess
import sys

import redis
import yaml

from harness.app_venv import app_python
from harness.workload import load_result_keys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIVE_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "live_app")
TUNE = os.path.join(REPO_ROOT, "playbooks", "tune-celery.yml")
sys.path.insert(0, LIVE_DIR)
import live_ctl  # noqa: E402  pylint: disable=wrong-import-position

PASSWORD = "Live-checks-pw-90210"
PREFIX = "billing_"  # global_keyprefix "billing": Celery appends "_"
BACKLOG = 3000
RESULT_EXPIRES = 5

# Run under the app's own interpreter, with the config on disk at that moment: a producer that
# reads a report and the factory-made lookup (whose result the audit never saw being read).
PRODUCER = """
import json
from live_proj import client
print(json.dumps({"report": client.read_report(6), "price": client.read_price(7)}))
"""


def app_run(app, code):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([app["run_dir"], app["src"]]))
    proc = subprocess.run([app["python"], "-c", code], cwd=app["run_dir"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_inventory(tmp_path, app, name="inventory.yml", **overrides):
    host = {
        "ansible_connection": "local",
        "celery_tune_config_path": app["config_path"],
        "celery_tune_audit_paths": [app["src"]],
        "celery_tune_restart_command": [app["ctl"], "restart"],
        "celery_tune_ready_command": [app["ctl"], "ping"],
        "celery_tune_ready_delay": 1,
        "celery_tune_ready_retries": 8,
        # No host, port, db or pattern: they come from the app. The password is the user's.
        "celery_tune_redis": {"login_password": PASSWORD},
        "celery_tune_celery_app": "live_proj",
        "celery_tune_app_python": app["python"],
        "celery_tune_app_chdir": app["run_dir"],
        "celery_tune_app_environment": {"PYTHONPATH": app["src"]},
        "celery_tune_app_inspect_timeout": 1.5,
        "celery_tune_report_dir": str(tmp_path / "report"),
        "celery_tune_settings": {"task_ignore_result": True, "task_store_errors_even_if_ignored": True,
                                 "result_expires": RESULT_EXPIRES, "result_extended": False},
        "celery_tune_maxmemory": "256mb",
        "celery_tune_maxmemory_policy": "volatile-ttl",
        "celery_tune_expedite": True,
        "celery_tune_min_reduction": 10,
        "celery_tune_wait_timeout": 60,
        "celery_tune_poll_interval": 0.5,
    }
    host.update(overrides)
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"all": {"children": {"celery": {"hosts": {"localhost": host}}}}}))
    return str(path)


def file_bytes(path):
    with open(path, "rb") as handle:
        return handle.read()


def memory_config(client):
    return {key: client.config_get(key)[key] for key in ("maxmemory", "maxmemory-policy")}


def everything_written(tmp_path, run):
    """Every text the run left: its output, the captured results, the report, the state, the log."""
    texts = [run.output, json.dumps(run.records)]
    for root, _dirs, files in os.walk(str(tmp_path / "report")):
        texts += [open(os.path.join(root, name), errors="replace").read() for name in files]
    log = tmp_path / "ansible.log"
    if log.exists():
        texts.append(log.read_text(errors="replace"))
    return "\n".join(texts)


def test_live_checks_through_the_role(redis_factory, ansible_playbook, tmp_path):
    python = app_python()
    server = redis_factory(password=PASSWORD)
    base = "redis://:%s@127.0.0.1:%d" % (PASSWORD, server.port)
    run_dir = str(tmp_path / "app")
    config_path, ctl, src = live_ctl.prepare(run_dir, base + "/0", base + "/2", python)
    app = dict(python=python, run_dir=run_dir, config_path=config_path, ctl=ctl, src=src)
    results = redis.Redis(host="127.0.0.1", port=server.port, db=2, password=PASSWORD, protocol=2)
    admin = server.admin()
    subprocess.run([ctl, "start"], check=True, capture_output=True, timeout=90)
    try:
        # Real result keys under the prefix in db 2, and a day-long backlog beside them.
        assert app_run(app, PRODUCER) == {"report": {"n": 6, "square": 36}, "price": "price:7"}
        load_result_keys(results, BACKLOG, ttl_for=lambda i: 86400, prefix=PREFIX + "celery-task-meta-")
        assert results.dbsize() >= BACKLOG + 2 and admin.dbsize() < 10, "results must be in db 2 only"
        original = file_bytes(config_path)
        redis_before = memory_config(admin)
        pids_before = live_ctl.worker_pids(run_dir)

        # 1. The audit names a task the app does not register (a module the app never includes, so
        # the worker would never run it): the play fails before any change, naming it. (A stray
        # __init__.py above the package no longer makes names wrong: the audit finds the root.)
        orphan = os.path.join(src, "live_proj", "orphan_tasks.py")
        with open(orphan, "w") as handle:
            handle.write("from live_proj.celery import app\n\n\n@app.task\ndef forgotten():\n    return 1\n")
        wrong = ansible_playbook(TUNE, inventory=write_inventory(tmp_path, app))
        os.unlink(orphan)
        assert wrong.returncode != 0
        assert "does not register" in wrong.output and "live_proj.orphan_tasks.forgotten" in wrong.output, wrong.output
        assert file_bytes(config_path) == original and memory_config(admin) == redis_before
        assert live_ctl.worker_pids(run_dir) == pids_before
        assert not any(record["action"].endswith("celery_config") for record in wrong.records)
        print("wrong audit root: failed before any change")

        # 2. The rollout with no Redis or pattern variable, at -vvv, with an Ansible log.
        log_env = {"ANSIBLE_LOG_PATH": str(tmp_path / "ansible.log")}
        tune = ansible_playbook(TUNE, inventory=write_inventory(tmp_path, app), verbosity=3, env=log_env)
        assert tune.returncode == 0, tune.output[-6000:]
        info = tune.results("celery_app_info")[0]
        assert info["result_patterns"]["task"] == PREFIX + "celery-task-meta-*"
        assert info["redis_connection"] == {"login_host": "127.0.0.1", "login_port": server.port, "db": 2, "tls": False}
        baseline = tune.results("result_keys_info")[0]
        assert baseline["count"] >= BACKLOG and baseline["pattern"] == PREFIX + "celery-task-meta-*"
        wait = tune.result("result_keys_wait")
        assert wait["met"] is True and wait["baseline"] >= BACKLOG and wait["final"] * 10 <= wait["baseline"]
        report = json.loads((tmp_path / "report" / "report.json").read_text())
        assert report["verdict"]["status"] == "met"
        live = report["live"]
        assert live["checked"] is True and live["keys"]["pattern_from"] == "the app"
        assert live["keys"]["connection"]["db"] == 2 and live["keys"]["key_prefix"] == PREFIX
        host = live["hosts"]["localhost"]
        assert "live_proj.lookups.price" in host["registered"] and "live_proj.lookups.price" not in host["audited"]
        assert host["not_found_in_source_kept"] == ["live_proj.lookups.price"]
        assert host["config_after"]["task_ignore_result"] is True and host["config_after"]["result_expires"] == RESULT_EXPIRES
        assert sorted(name.split("@")[0] for name in live["workers"]) == ["w1", "w2"]
        assert all(worker["config"]["task_ignore_result"] is True and not worker["mismatches"]
                   for worker in live["workers"].values())
        markdown = (tmp_path / "report" / "report.md").read_text()
        assert "`live_proj.lookups.price`: not found in source, kept" in markdown
        tuned = file_bytes(config_path).decode()
        assert "live_proj.lookups.price" in tuned and "task_ignore_result = True" in tuned
        # Under the new config, the factory-made task's result still arrives.
        assert app_run(app, PRODUCER) == {"report": {"n": 6, "square": 36}, "price": "price:7"}
        assert PASSWORD not in everything_written(tmp_path, tune), "the password leaked"
        print("rollout: baseline %d -> %d in %.1fs, keys at %s db 2"
              % (wait["baseline"], wait["final"], wait["elapsed"], PREFIX))

        # 3. An explicit wrong pattern (no prefix): not MET, and the report says where the keys are.
        load_result_keys(results, BACKLOG, ttl_for=lambda i: 86400, prefix=PREFIX + "celery-task-meta-")
        unprefixed = ansible_playbook(TUNE, inventory=write_inventory(
            tmp_path, app, "wrong-pattern.yml", celery_tune_result_pattern="celery-task-meta-*"))
        assert unprefixed.returncode != 0, "a wrong pattern passed"
        report = json.loads((tmp_path / "report" / "report.json").read_text())
        assert report["verdict"]["status"] == "nothing_to_verify" and report["verdict"]["met"] is False
        assert PREFIX in report["verdict"]["message"]
        assert report["live"]["keys"]["elsewhere"]["prefixes"].get(PREFIX, 0) > 0
        print("wrong pattern: %s" % report["verdict"]["message"])

        # 4. The restart skips w2: the play fails after the restart, before Redis, naming w2.
        redis_tuned = memory_config(admin)
        pids = live_ctl.worker_pids(run_dir)
        skip = ansible_playbook(TUNE, inventory=write_inventory(
            tmp_path, app, "skip-w2.yml", celery_tune_restart_command=[ctl, "restart", "w1"],
            celery_tune_maxmemory="300mb",
            celery_tune_settings={"task_ignore_result": True, "task_store_errors_even_if_ignored": True,
                                  "result_expires": RESULT_EXPIRES + 2, "result_extended": False}))
        assert skip.returncode != 0
        assert "worker w2@" in skip.output and "still runs the old config" in skip.output, skip.output[-4000:]
        assert "worker w1@" not in skip.output
        after = live_ctl.worker_pids(run_dir)
        assert after["w1"] != pids["w1"] and after["w2"] == pids["w2"]
        assert memory_config(admin) == redis_tuned, "Redis was touched after a failed worker check"
        assert not any(record["action"].endswith("redis_memory") for record in skip.records)
        print("unrestarted worker: the play failed naming w2")
    finally:
        subprocess.run([ctl, "stop"], check=False, capture_output=True, timeout=90)
