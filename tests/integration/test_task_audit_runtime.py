"""celery_task_audit, proved at run time.

A real Celery worker on a real Redis runs every call pattern of the fixture app under the config
that ``celery_config`` writes: results ignored by default, the audit's ``task_overrides`` as
``task_annotations``. Every result the code reads arrives (each read has a timeout), and the tasks
the audit marks "can ignore" leave no ``celery-task-meta-<id>`` key. The producer (a subprocess
running ``proj.scenarios``) loads the same config: since Celery 5.1 the sender puts
``ignore_result`` in the message.
"""
import json
import os
import re
import subprocess
import sys
import time

import pytest
import yaml

from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config import plan_rewrite
from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit import audit

FIXTURE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "fixtures", "audit_app")
EXPECTED = os.path.join(FIXTURE_DIR, "expected.yml")
SUCCEEDED = re.compile(r"Task ([\w.]+)\[([0-9a-f-]{36})\] succeeded")
# Runs only inside celery.starmap (chunks), so the worker never logs it as a task of its own.
ONLY_INSIDE_BUILTINS = {"proj.maths.tasks.add"}

EXPECTED_VALUES = {
    "direct_get": 300,
    "through_variable": -5,
    "fire_and_forget": None,
    "chain_last_read": 110.0,
    "pipe_chain_read": "uploaded app.log.gz",
    "chord_read": "page-0+page-1+page-2",
    "group_pipe_chord_read": "page-0+page-1",
    "group_joined": ["sms to 555-0100", "push to phone-1"],
    "group_not_read": None,
    "link_callback": None,
    "progress_polled": {"value": "report of 4 steps", "progress_seen": True},
    "id_roundtrip": "csv:7",
    "signature_then_get": "HELLO",
    "signature_by_name": "archived b1",
    "send_task_by_name": "pong",
    "dynamic_dispatch": ["alpha", "beta"],
    "class_based_read": 320,
    "helper_returns_result": "cleaned",
    "helper_result_dropped": None,
    "handed_to_other_code": "rotated",
    "chunks_read": [[0, 2], [4, 6]],
}

LEAN_SETTINGS = {
    "task_ignore_result": True,
    "task_store_errors_even_if_ignored": True,
    "result_expires": 600,
}


def write_config(directory, name, task_overrides):
    """The lean config as the celery_config module writes it, into ``directory/name.py``."""
    source = b"# Celery settings of the fixture app (broker and backend come from REDIS_URL)\n" \
             b"result_expires = 86400\n"
    plan = plan_rewrite(source, settings=LEAN_SETTINGS, task_overrides=task_overrides)
    path = os.path.join(str(directory), name + ".py")
    with open(path, "wb") as handle:
        handle.write(plan.new_bytes)
    return path


def app_env(redis_server, config_dir, config_module, timeout=20):
    return {
        "REDIS_URL": redis_server.url,
        "CELERY_CONFIG_MODULE": config_module,
        "PYTHONPATH": os.pathsep.join([FIXTURE_DIR, str(config_dir)]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "SCENARIO_TIMEOUT": str(timeout),
    }


def run_scenarios(env, names=(), timeout=240):
    proc = subprocess.run([sys.executable, "-m", "proj.scenarios"] + list(names), cwd=FIXTURE_DIR,
                          env=dict(os.environ, **env), capture_output=True, text=True, check=False,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def wait_until_idle(client, worker, settle=1.0, timeout=60):
    """The queue is drained and the worker has logged nothing new for ``settle`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        log = worker.read_log()
        busy = client.llen("celery") or client.hlen("unacked")
        if log != last or busy:
            last, since = log, time.monotonic()
        elif time.monotonic() - since >= settle:
            return log
        time.sleep(0.1)
    raise AssertionError("worker never went idle:\n%s" % worker.read_log()[-3000:])


@pytest.fixture(scope="module")
def audited():
    return audit([FIXTURE_DIR])


def test_reads_arrive_and_ignored_tasks_leave_no_key(audited, redis_server, celery_worker_factory,
                                                     tmp_path):
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    write_config(config_dir, "lean_celeryconfig", audited["task_overrides"])
    env = app_env(redis_server, config_dir, "lean_celeryconfig")
    worker = celery_worker_factory("proj", FIXTURE_DIR, env=env)

    outcome = run_scenarios(env)

    failed = {name: run for name, run in outcome.items() if not run["ok"]}
    assert not failed, failed
    assert {name: run["value"] for name, run in outcome.items()} == EXPECTED_VALUES

    client = redis_server.admin()
    log = wait_until_idle(client, worker)
    runs = {}
    for name, task_id in SUCCEEDED.findall(log):
        runs.setdefault(name, []).append(task_id)
    verdict = {task["name"]: task["needs_result"] for task in audited["tasks"]}
    assert set(verdict) - ONLY_INSIDE_BUILTINS <= set(runs), "every task ran at least once"
    stored = {}
    for name, ids in runs.items():
        stored[name] = [client.exists("celery-task-meta-" + task_id) == 1 for task_id in ids]
    wrongly_stored = {name: keys for name, keys in stored.items() if not verdict[name] and any(keys)}
    assert not wrongly_stored, "tasks marked can-ignore wrote result keys"
    # The overrides reached the worker: tasks that need results kept every one of them.
    lost = {name: keys for name, keys in stored.items() if verdict[name] and not all(keys)}
    assert not lost, lost
    assert any(not verdict[name] for name in runs), "some can-ignore tasks ran"


def test_without_the_overrides_reads_fail(audited, redis_server, celery_worker_factory, tmp_path):
    """The control: same worker, same reads, but a producer on a config without the overrides.

    Its messages say ignore_result=True and the worker obeys: ``.get()`` on the handle it holds
    returns None at once (Celery knows it ignored the result), and the AsyncResult rebuilt from
    the id by the web layer waits in PENDING until the timeout.
    """
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    write_config(config_dir, "lean_celeryconfig", audited["task_overrides"])
    write_config(config_dir, "bare_celeryconfig", {})
    worker_env = app_env(redis_server, config_dir, "lean_celeryconfig")
    celery_worker_factory("proj", FIXTURE_DIR, env=worker_env)

    bare = run_scenarios(app_env(redis_server, config_dir, "bare_celeryconfig", timeout=2),
                         ["direct_get", "id_roundtrip"])
    assert bare["direct_get"]["ok"] is True and bare["direct_get"]["value"] is None
    assert bare["id_roundtrip"]["ok"] is False
    assert "TimeoutError" in bare["id_roundtrip"]["error"]
    lean = run_scenarios(worker_env, ["direct_get", "id_roundtrip"])
    values = {name: run["value"] for name, run in lean.items()}
    assert values == {"direct_get": 300, "id_roundtrip": "csv:7"}


def test_module_through_ansible_playbook(ansible_module):
    with open(EXPECTED) as handle:
        expected = yaml.safe_load(handle)
    result = ansible_module("celery_task_audit", {"paths": [FIXTURE_DIR]})
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["summary"] == expected["summary"]
    assert {t["name"]: t["needs_result"] for t in result["tasks"]} == {
        name: entry["needs_result"] for name, entry in expected["tasks"].items()}
    assert [(os.path.relpath(w["file"], FIXTURE_DIR), w["line"]) for w in result["audit_warnings"]] \
        == [(w["file"], w["line"]) for w in expected["warnings"]]
    # Ansible's own warnings carry the same findings as text, shown in the run's output.
    assert len(result["warnings"]) == len(expected["warnings"])
    assert "ignore_results=" in ansible_module.last_run.output

    checked = ansible_module("celery_task_audit", {"paths": [FIXTURE_DIR]}, check=True)
    assert checked["changed"] is False
    assert checked["summary"] == result["summary"]
    assert checked["task_overrides"] == result["task_overrides"]


def test_module_fails_cleanly_on_a_missing_path(ansible_module, tmp_path):
    result = ansible_module("celery_task_audit", {"paths": [str(tmp_path / "nowhere")]})
    assert result.get("failed") is True
    assert "does not exist" in result["msg"]


# A sample of the fixture corpus, run by a real worker under the config the audit produces.
CORPUS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "fixtures", "audit_corpus")
CORPUS_SAMPLE = [
    pytest.param("c01_dispatch_helper", "proj.celery", ["proj.jobs"],
                 "proj.jobs.run()", 1, id="dispatch-helper"),
    pytest.param("c04_chain_list_and_star", "proj.celery", ["proj.flows"],
                 "proj.flows.parts_pipeline([1, 2]).get(timeout=SCENARIO_TIMEOUT)", [1, 2],
                 id="chain-of-parts-is-a-chord"),
    pytest.param("c06_aliases_call_form", "proj.celery", ["proj.jobs"],
                 "proj.jobs.run()", 1, id="decorator-aliases"),
    pytest.param("c08_stray_init_namespace", "pkg.celery", ["pkg.tasks", "pkg.jobs.work"],
                 "pkg.tasks.crunch.delay(5).get(timeout=SCENARIO_TIMEOUT)", 5,
                 id="names-below-a-stray-init"),
]

# Imports the corpus app, then puts it on the test's Redis under the generated lean config
# (conf.update wins over the memory:// broker the fixture app is built with).
CORPUS_DRIVER = r'''
import importlib, json, os

app = importlib.import_module(os.environ["CORPUS_APP"]).app
for name in json.loads(os.environ["CORPUS_MODULES"]):
    importlib.import_module(name)
config = importlib.import_module(os.environ["CELERY_CONFIG_MODULE"])
app.conf.update(dict((k, getattr(config, k)) for k in dir(config) if k.islower()
                     and not k.startswith("_")),
                broker_url=os.environ["REDIS_URL"], result_backend=os.environ["REDIS_URL"])
SCENARIO_TIMEOUT = float(os.environ.get("SCENARIO_TIMEOUT", "20"))
'''


@pytest.mark.parametrize("case, app_module, modules, expression, value", CORPUS_SAMPLE)
def test_corpus_sample_reads_arrive(redis_server, celery_worker_factory, tmp_path, case,
                                    app_module, modules, expression, value):
    with open(os.path.join(CORPUS_DIR, case, "expected.json")) as handle:
        spec = json.load(handle)
    source = os.path.join(CORPUS_DIR, case)
    audited = audit([os.path.join(source, p) for p in spec["audit"].get("paths", ["."])])
    app_dir = os.path.join(source, spec["celery"][0]["root"])
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    write_config(config_dir, "lean_celeryconfig", audited["task_overrides"])
    with open(str(config_dir / "corpus_driver.py"), "w") as handle:
        handle.write(CORPUS_DRIVER)
    env = {
        "REDIS_URL": redis_server.url,
        "CELERY_CONFIG_MODULE": "lean_celeryconfig",
        "CORPUS_APP": app_module,
        "CORPUS_MODULES": json.dumps(modules),
        "PYTHONPATH": os.pathsep.join([app_dir, str(config_dir)]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "SCENARIO_TIMEOUT": "20",
    }
    worker = celery_worker_factory("corpus_driver", app_dir, env=env)
    probe = "import json, corpus_driver\nassert corpus_driver.app.conf.broker_url == %r\n" \
            "from corpus_driver import SCENARIO_TIMEOUT\nimport %s\nprint(json.dumps(%s))\n" % (
                redis_server.url, ", ".join(modules), expression)
    proc = subprocess.run([sys.executable, "-c", probe], cwd=app_dir,
                          env=dict(os.environ, **env), capture_output=True, text=True,
                          check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr + worker.read_log()[-2000:]
    assert json.loads(proc.stdout) == value
    client = redis_server.admin()
    log = wait_until_idle(client, worker)
    verdict = {task["name"]: task["needs_result"] for task in audited["tasks"]}
    for name, task_id in SUCCEEDED.findall(log):
        stored = client.exists("celery-task-meta-" + task_id) == 1
        assert stored is verdict[name], (name, stored)
