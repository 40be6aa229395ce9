"""`python -m demo` end to end at DEMO_SCALE=small: real redis-server, Celery workers, workload, ansible-playbook.

Also the clean-up: after a full run and after a Ctrl-C in the middle, no process the demo started
is left (found by what they carry: a working directory or environment inside the demo's run dir).
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start_demo(**env):
    environ = dict(os.environ, DEMO_SCALE="small", PYTHONUNBUFFERED="1", **env)
    return subprocess.Popen([sys.executable, "-m", "demo"], cwd=REPO_ROOT, env=environ, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def run_dir_of(output):
    found = re.search(r"run dir (\S+)", output)
    assert found, output
    return found.group(1)


def processes_from(run_dir):
    """Live processes whose working directory or environment points into ``run_dir``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink("/proc/%s/cwd" % pid)
            with open("/proc/%s/environ" % pid, "rb") as handle:
                environ = handle.read()
            with open("/proc/%s/stat" % pid) as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (cwd.startswith(run_dir) or run_dir.encode() in environ):
            found.append(int(pid))
    return found


@pytest.fixture(scope="module")
def demo_run():
    process = start_demo()
    try:
        output, _unused = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    run_dir = run_dir_of(output)
    with open(os.path.join(run_dir, "summary.json")) as handle:
        summary = json.load(handle)
    return process.returncode, output, run_dir, summary


def test_demo_prints_the_before_after_table(demo_run):
    returncode, output, _run_dir, _summary = demo_run
    assert returncode == 0, output
    for row in ("result keys", "used memory", "commands/s", "network bytes/s"):
        assert re.search(r"^  %s\s+\S" % re.escape(row), output, re.M), (row, output)
    assert "before / after" in output
    assert re.search(r"report: \S+report\.(html|json)", output), output


def test_demo_result_keys_fell_and_memory_with_them(demo_run):
    _returncode, output, _run_dir, summary = demo_run
    before, after = summary["before"], summary["after"]
    assert after["result_keys"] * 10 < before["result_keys"], output
    assert after["used_memory"] < before["used_memory"], output


def test_demo_lost_no_task_and_no_read(demo_run):
    _returncode, output, _run_dir, summary = demo_run
    ledger = summary["ledger"]
    assert summary["lost"] == 0 and ledger["done"] >= ledger["expected"] > 0, output
    assert ledger["reads_ok"] > 0 and ledger["reads_failed"] == 0 and ledger["reads_hung"] == 0, output
    assert ledger.get("reloads") == 1, "the producers were restarted with the new config once"


def test_demo_rollout_rewrote_the_copy_of_the_config_not_the_source(demo_run):
    _returncode, _output, run_dir, _summary = demo_run
    with open(os.path.join(run_dir, "app", "shop", "celeryconfig.py")) as handle:
        assert "task_ignore_result = True" in handle.read()
    with open(os.path.join(REPO_ROOT, "demo", "app", "shop", "celeryconfig.py")) as handle:
        assert "task_ignore_result" not in handle.read()


def test_demo_leaves_nothing_running(demo_run):
    _returncode, output, run_dir, _summary = demo_run
    assert "stopped everything the demo started (" in output
    assert processes_from(run_dir) == []


def test_demo_interrupted_stops_everything():
    process = start_demo()
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "driving the workload" in line:
                break
        run_dir = run_dir_of("".join(lines))
        time.sleep(3)
        assert processes_from(run_dir), "the demo runs workers, Redis and the workload by now"
        process.send_signal(signal.SIGINT)
        rest, _unused = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, rest
    assert "stopped everything the demo started (" in rest
    assert processes_from(run_dir) == []
