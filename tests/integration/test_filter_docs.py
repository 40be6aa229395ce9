"""Every filter of the collection has documentation that ansible-doc renders, options that match its
Python signature, and EXAMPLES that run as written."""
import glob
import importlib
import inspect
import json
import os
import subprocess
import sys

import pytest
import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILTER_DIR = os.path.join(REPO_ROOT, "plugins", "filter")
VENV_BIN = os.path.dirname(sys.executable)


def _filters():
    """``{name: function}`` of every FilterModule in plugins/filter."""
    found = {}
    for path in sorted(glob.glob(os.path.join(FILTER_DIR, "*.py"))):
        module = importlib.import_module("ansible_collections.celery_ops.lean_results.plugins.filter."
                                         + os.path.basename(path)[:-3])
        found.update(module.FilterModule().filters())
    return found


FILTERS = _filters()


def _doc(name):
    with open(os.path.join(FILTER_DIR, name + ".yml")) as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_doc_options_match_the_signature(name):
    """A documented option the filter does not take (or one it takes undocumented) is a doc that lies."""
    doc = _doc(name)["DOCUMENTATION"]
    assert doc["name"] == name
    parameters = list(inspect.signature(FILTERS[name]).parameters.values())
    assert set(doc["options"]) - {"_input"} == set(parameter.name for parameter in parameters[1:])
    for parameter in parameters[1:]:
        option = doc["options"][parameter.name]
        if parameter.default is inspect.Parameter.empty:
            assert option.get("required"), parameter.name
        elif parameter.default is not None:
            assert option.get("default") == parameter.default, parameter.name


def test_ansible_doc_renders_every_filter(tmp_path):
    # This checkout as the collection ansible-doc finds, in a link tree of the test's own.
    namespace = tmp_path / "ansible_collections" / "celery_ops"
    namespace.mkdir(parents=True)
    (namespace / "lean_results").symlink_to(REPO_ROOT)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path), ANSIBLE_NOCOLOR="1")
    names = ["celery_ops.lean_results." + name for name in sorted(FILTERS)]
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-doc"), "-t", "filter", "--json"] + names,
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    docs = json.loads(proc.stdout)
    assert sorted(docs) == sorted(names)
    for name, doc in docs.items():
        assert doc["doc"]["short_description"] and doc["examples"] and doc["return"], name
    assert "WARNING" not in proc.stderr, proc.stderr


def test_examples_run(ansible_playbook, tmp_path):
    """All filter EXAMPLES in one play on localhost (celery_tune_restorable reads a state.json beside it)."""
    tasks = []
    for name in sorted(FILTERS):
        tasks += yaml.safe_load(_doc(name)["EXAMPLES"])
    (tmp_path / "state.json").write_text(json.dumps({"version": 2, "hosts": {}, "rolled_back": False}))
    playbook = tmp_path / "filter-examples.yml"
    playbook.write_text(yaml.safe_dump([{"name": "Filter EXAMPLES", "hosts": "localhost", "gather_facts": False,
                                         "tasks": tasks}], sort_keys=False))
    run = ansible_playbook(playbook)
    assert run.returncode == 0, run.output[-4000:]
    assert "FAILED" not in run.stdout and run.stdout.count("ok: [localhost]") == len(tasks), run.stdout[-4000:]
