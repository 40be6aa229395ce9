"""The config phase at fleet scale: the role celery_tune (``--tags celery_tune_config``) over 50 inventory hosts
(aliases of localhost, each with its own config file) through real ansible-playbook with
``serial`` and ``forks``."""
import ast
import json
import os

import pytest

from harness.fleet import SOURCE_CONFIG, Fleet

HOSTS = 50


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    return Fleet(tmp_path_factory.mktemp("fleet"), count=HOSTS, serial=20)


def per_host(run):
    """{host: result} of the celery_config task that rewrites, one per host (not its check-mode plan)."""
    found = {}
    for record in run.records:
        if record["action"].endswith("celery_config") and record["task"].endswith("with lean result settings"):
            assert record["host"] not in found, "a host ran twice"
            found[record["host"]] = dict(record["result"], failed=record["status"] == "failed")
    return found


def settings_in(path):
    """Top-level assignments of a config file, as Python values."""
    tree = ast.parse(open(path, "rb").read())
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                values[node.targets[0].id] = ast.unparse(node.value)
    return values


def state_reads_and_writes(run):
    """How many times the run read state.json, and wrote it (tasks that ran, not skipped)."""
    ran = [record["task"].split(" : ")[-1] for record in run.records if record["status"] == "ok"]
    return (ran.count("Read the rollback state recorded by earlier runs"),
            ran.count("Record what a rollback restores"))


def test_every_host_rewritten_then_nothing_changes(fleet):
    original = open(SOURCE_CONFIG, "rb").read()
    first = fleet.run(forks=10)
    assert first.returncode == 0, first.output[-3000:]
    results = per_host(first)
    assert sorted(results) == fleet.hosts
    assert all(result["changed"] and not result["failed"] for result in results.values())
    # serial: 20 -> three batches (20, 20, 10), each its own play run
    assert first.output.count("PLAY [Tune the Celery result backend]") == 3
    for host in fleet.hosts:
        text = open(fleet.config_path(host), "rb").read()
        assert text != original, host
        values = settings_in(fleet.config_path(host))
        assert values["task_ignore_result"] is True and values["result_expires"] == 3600, host
        assert values["task_store_errors_even_if_ignored"] is True and values["result_extended"] is False, host
        assert b'task_routes = {\n    "billing.tasks.*": {"queue": "billing"},  # heavy\n}' in text  # untouched
    # state.json is read once for the three batches, and written at the start of each batch, before
    # each batch's configs change (their originals) and after: every batch's backups are kept, none
    # replaced by a later batch.
    assert state_reads_and_writes(first) == (1, 9)
    state_path = os.path.join(fleet.workdir, "reports", "state.json")
    with open(state_path) as handle:
        state = json.load(handle)
    assert sorted(state["hosts"]) == fleet.hosts
    assert all(open(record["backup_file"], "rb").read() == original for record in state["hosts"].values())

    second = fleet.run(forks=10)
    assert second.returncode == 0, second.output[-3000:]
    again = per_host(second)
    assert sorted(again) == fleet.hosts
    assert not any(result["changed"] or result["failed"] for result in again.values())
    assert "changed=0" in second.output and "changed=1" not in second.output
    with open(state_path) as handle:
        assert json.load(handle) == state, "a run without change kept the recorded originals"
