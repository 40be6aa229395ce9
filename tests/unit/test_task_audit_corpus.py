"""The audit against a corpus of small apps, one folder each, the expected answer beside it.

Each folder of tests/fixtures/audit_corpus holds an app and ``expected.json``: the tasks and
whether each needs its result, reason kinds that must be among the reasons, warnings that must
(or must not) be given, the options to audit with, and how Celery imports the app. Task names
are checked against Celery itself: the app is imported in a fresh interpreter and its registry
(``app.tasks`` without Celery's own) must equal the audit's names.
"""
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit import audit

CORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "fixtures", "audit_corpus")
CASES = sorted(os.listdir(CORPUS))


def _python312():
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12.*/bin/python3.12")))
    assert found, "the corpus needs a Python 3.12 interpreter for the option python"
    return found[-1]


def load_case(name, tmp_path):
    """A copy of the case (the audit's odd files are made in the copy) and its expectations."""
    source = os.path.join(CORPUS, name)
    with open(os.path.join(source, "expected.json")) as handle:
        expected = json.load(handle)
    root = str(tmp_path / name)
    shutil.copytree(source, root, ignore=shutil.ignore_patterns("expected.json", "__pycache__"))
    # Files that must not parse, or that break style on purpose, are stored as NAME.py.txt so that
    # ansible-test sanity never reads them; the copy gives them their real name.
    for folder, _dirs, files in os.walk(root):
        for name_txt in files:
            if name_txt.endswith(".py.txt"):
                os.rename(os.path.join(folder, name_txt), os.path.join(folder, name_txt[:-len(".txt")]))
    if name == "c11_fifo_named_py":
        os.mkfifo(os.path.join(root, "proj", "pipe.py"))
    return root, expected


def run_audit(root, expected):
    options = dict(expected["audit"])
    paths = [os.path.join(root, p) for p in options.pop("paths", ["."])]
    if options.get("python") == "python3.12":
        options["python"] = _python312()
    if "import_roots" in options:
        options["import_roots"] = [os.path.join(root, p) for p in options["import_roots"]]
    return audit(paths, **options)


@pytest.mark.parametrize("name", CASES)
def test_corpus_answer(tmp_path, name):
    root, expected = load_case(name, tmp_path)
    result = run_audit(root, expected)
    got = {t["name"]: t for t in result["tasks"] if not t.get("builtin")}
    answer = {n: t["needs_result"] for n, t in got.items()}
    # The one direction that breaks production: a read task marked "can ignore".
    lost = sorted(n for n, needs in expected["tasks"].items() if needs and not answer.get(n))
    assert lost == []
    assert answer == expected["tasks"]
    for task, kinds in expected["kinds"].items():
        assert set(kinds) <= {r["kind"] for r in got[task]["reasons"]}, task
    for task in got.values():
        for reason in task["reasons"]:
            if reason["kind"] == "unknown":  # an unknown always says where the trail was lost
                assert reason["file"] and reason["line"], reason
    kinds = {w["kind"] for w in result["warnings"]}
    assert set(expected["warnings"]) <= kinds
    assert not set(expected["no_warnings"]) & kinds, result["warnings"]


CELERY_NAMES = r"""
import importlib, json, sys
app_spec, modules = sys.argv[1], json.loads(sys.argv[2])
module, _sep, attr = app_spec.partition(":")
app = getattr(importlib.import_module(module), attr)
for name in modules:
    importlib.import_module(name)
url = app.conf.broker_url or ""
assert url.startswith("memory://"), "the fixture app must not reach a real broker: %s" % url
print(json.dumps(sorted(n for n in app.tasks if not n.startswith("celery."))))
"""


@pytest.mark.parametrize("name", CASES)
def test_corpus_names_are_celerys(tmp_path, name):
    root, expected = load_case(name, tmp_path)
    result = run_audit(root, expected)
    audited = sorted(t["name"] for t in result["tasks"] if not t.get("builtin"))
    registered = set()
    for spec in expected["celery"]:
        cwd = os.path.join(root, spec["root"])
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        for module, attr in spec.get("stub", {}).items():  # a third-party package, not installed
            stubs = str(tmp_path / "stubs")
            os.makedirs(stubs, exist_ok=True)
            with open(os.path.join(stubs, module + ".py"), "w") as handle:
                handle.write("def %s(fn):\n    return fn\n" % attr)
            env["PYTHONPATH"] = stubs
        proc = subprocess.run([sys.executable, "-c", CELERY_NAMES, spec["app"],
                               json.dumps(spec["modules"])], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        registered |= set(json.loads(proc.stdout))
    assert audited == sorted(registered)
    for task_name in audited:
        assert "/" not in task_name and "@" not in task_name and "-" not in task_name
