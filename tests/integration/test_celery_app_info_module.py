"""celery_app_info on a real app under its own Python (a 3.12/3.13 venv, not Ansible's), with
real Redis, two real workers and real ansible-playbook runs."""
import json
import os
import subprocess
import sys

import pytest

from harness.app_venv import app_python

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIVE_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "live_app")
sys.path.insert(0, LIVE_DIR)
import live_ctl  # noqa: E402  pylint: disable=wrong-import-position

PASSWORD = "Pw-celery-app-info-7731"


@pytest.fixture
def live_app(redis_factory, tmp_path):
    python = app_python()
    server = redis_factory(password=PASSWORD)
    base = "redis://:%s@127.0.0.1:%d" % (PASSWORD, server.port)
    run_dir = str(tmp_path / "app")
    config_path, ctl, src = live_ctl.prepare(run_dir, base + "/0", base + "/2", python)
    subprocess.run([ctl, "start"], check=True, capture_output=True, timeout=90)
    try:
        yield dict(server=server, python=python, run_dir=run_dir, config_path=config_path, ctl=ctl, src=src)
    finally:
        subprocess.run([ctl, "stop"], check=False, capture_output=True, timeout=90)


def args_for(app, **extra):
    args = dict(python=app["python"], app="live_proj", chdir=app["run_dir"],
                environment={"PYTHONPATH": app["src"]})
    args.update(extra)
    return args


def test_the_app_and_its_workers_under_their_own_python(live_app, ansible_module):
    server = live_app["server"]
    args = args_for(live_app, workers=True, expect_settings={"task_ignore_result": False, "result_expires": 3600},
                    audited_tasks=["live_proj.tasks.add", "proj.tasks.add"])
    result = ansible_module("celery_app_info", args, verbosity=3)
    run = ansible_module.last_run
    assert not result["failed"], run.output
    # The app's own interpreter, not the one Ansible runs the module with.
    assert result["versions"]["python"].startswith(("3.12", "3.13"))
    assert not result["versions"]["python"].startswith("%d.%d." % sys.version_info[:2])
    assert result["python_executable"].startswith(os.path.expanduser("~/.cache/lean_results/appvenv-"))
    assert result["result_backend"]["db"] == 2 and result["result_backend"]["password_set"] is True
    assert result["global_keyprefix"] == "billing" and result["key_prefix"] == "billing_"
    assert result["result_patterns"]["task"] == "billing_celery-task-meta-*"
    assert result["redis_connection"] == {"login_host": "127.0.0.1", "login_port": server.port, "db": 2, "tls": False}
    assert result["broker_on_result_redis"] is True and result["broker_same_db"] is False
    assert "live_proj.lookups.price" in result["task_names"], "the factory-made task is registered"
    assert result["origin"]["config_source"] == "live_celeryconfig"
    assert result["origin"]["config_file"] == live_app["config_path"]
    assert result["mismatches"] == [{"setting": "result_expires", "expected": 3600, "actual": 86400.0}]
    assert result["cross_check"]["audited_not_registered"] == ["proj.tasks.add"]
    assert "live_proj.lookups.price" in result["cross_check"]["registered_not_audited"]

    workers = result["workers"]
    assert sorted(name.split("@")[0] for name in workers) == ["w1", "w2"], result["worker_errors"]
    for reply in workers.values():
        assert reply["ping"] is True
        assert reply["registered"]["live_proj.lookups.price"] is False
    assert sorted(name.split("@")[0] for name in result["worker_mismatches"]) == ["w1", "w2"]
    assert PASSWORD not in run.output, "the password shows at -vvv"
    assert PASSWORD not in json.dumps(run.records)

    # An interpreter without Celery: said so.
    bare = os.path.join(live_app["run_dir"], "bare")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", bare], check=True)
    result = ansible_module("celery_app_info", args_for(live_app, python=os.path.join(bare, "bin", "python")))
    assert result["failed"] and "No module named 'celery'" in result["msg"]

    # A config that fails on import: the error and the traceback's last lines, scrubbed.
    with open(live_app["config_path"], "a") as handle:
        handle.write("\nraise RuntimeError('cannot reach ' + result_backend)\n")
    result = ansible_module("celery_app_info", args_for(live_app), verbosity=3)
    assert result["failed"]
    assert "importing the Celery app 'live_proj'" in result["msg"] and "RuntimeError: cannot reach" in result["msg"]
    assert result["traceback_tail"][-1].startswith("RuntimeError: cannot reach redis://:********@")
    assert PASSWORD not in ansible_module.last_run.output
