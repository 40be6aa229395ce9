"""Run modules and playbooks of this collection through the real ``ansible-playbook``."""
import json
import os
import subprocess
import sys
import tempfile

import yaml

from harness.collection import REPO_ROOT

HARNESS_DIR = os.path.dirname(os.path.abspath(__file__))
VENV_BIN = os.path.dirname(sys.executable)


class PlaybookRun:
    """What one ansible-playbook run left: exit code, output, and every task result."""

    def __init__(self, returncode, stdout, stderr, records):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.records = records

    @property
    def output(self):
        return self.stdout + self.stderr

    def results(self, action=None):
        """Task results (``failed`` set from the callback status, as ansible-core 2.19 strips it)."""
        found = []
        for record in self.records:
            if action is None or record["action"].endswith(action):
                record["result"]["failed"] = record["status"] == "failed"
                found.append(record["result"])
        return found

    def result(self, action=None):
        """The last result of a task whose action ends with ``action``."""
        found = self.results(action)
        if not found:
            raise AssertionError("no task result for %r in run:\n%s" % (action, self.output))
        return found[-1]


def ansible_env(collections_root, capture_path=None, extra=None):
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": collections_root,
        "ANSIBLE_CALLBACK_PLUGINS": os.path.join(HARNESS_DIR, "callback_plugins"),
        "ANSIBLE_CALLBACKS_ENABLED": "capture_results",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_HOST_KEY_CHECKING": "false",
        "PATH": VENV_BIN + os.pathsep + env.get("PATH", ""),
    })
    env.pop("ANSIBLE_CONFIG", None)
    if capture_path:
        env["LEAN_RESULTS_CAPTURE"] = capture_path
    env.update(extra or {})
    return env


def run_playbook(playbook, collections_root, check=False, diff=False, extra_vars=None,
                 inventory=None, tags=None, verbosity=0, timeout=900, env=None, cwd=None):
    """Run ``playbook`` (a path) and return a PlaybookRun. Never raises on task failure."""
    fd, capture = tempfile.mkstemp(prefix="capture-", suffix=".jsonl")
    os.close(fd)
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), playbook]
    if inventory is None:
        argv += ["-i", "localhost,", "-c", "local"]
    else:
        argv += ["-i", inventory]
    argv += ["-e", "ansible_python_interpreter=%s" % sys.executable]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    if tags:
        argv += ["--tags", ",".join(tags)]
    if verbosity:
        argv.append("-" + "v" * verbosity)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                              env=ansible_env(collections_root, capture, env), cwd=cwd or REPO_ROOT)
        with open(capture) as handle:
            records = [json.loads(line) for line in handle if line.strip()]
    finally:
        os.unlink(capture)
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, records)


def run_module(module, args, collections_root, workdir, check=False, diff=False, **kwargs):
    """Run one module (short name or FQCN) as a one-task play; return (result, PlaybookRun)."""
    if "." not in module:
        module = "celery_ops.lean_results." + module
    play = [{
        "hosts": "all",
        "gather_facts": False,
        "tasks": [{"name": "run " + module, module: args}],
    }]
    path = os.path.join(str(workdir), "play-%s.yml" % module.rsplit(".", 1)[-1])
    with open(path, "w") as handle:
        yaml.safe_dump(play, handle)
    run = run_playbook(path, collections_root, check=check, diff=diff, **kwargs)
    return run.result(module.rsplit(".", 1)[-1]), run
