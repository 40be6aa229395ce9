"""The harness package: importing it changes nothing; use_checkout() alone makes the collection importable.

Each check runs in a fresh interpreter from the root of the checkout, without pytest, the way
``python -m demo`` and ``python -m bench`` start.
"""
import json
import os
import pkgutil
import subprocess
import sys

import pytest

import harness
from harness.collection import COLLECTIONS_ROOT, REPO_ROOT

HARNESS_MODULES = sorted("harness." + info.name for info in pkgutil.iter_modules(harness.__path__))
ENTRY_MODULES = ["bench.bench_audit", "bench.bench_effect", "bench.bench_expedite", "bench.bench_fleet",
                 "bench.bench_scan", "demo.stack"]
RESULT_KEYS = "ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys"


def _fresh_python(code):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def imported_one_by_one():
    """For each harness module: the sys.path entries its import added, and whether the collection got loaded."""
    return _fresh_python(
        "import importlib, json, sys\n"
        "found = {}\n"
        "for name in %r:\n"
        "    before = list(sys.path)\n"
        "    importlib.import_module(name)\n"
        "    found[name] = {'added': [p for p in sys.path if p not in before],\n"
        "                   'collection_loaded': any(m.startswith('ansible_collections.celery_ops') for m in sys.modules)}\n"
        "print(json.dumps(found))\n" % HARNESS_MODULES)


def test_every_module_of_the_harness_is_checked():
    assert {"harness.collection", "harness.fixtures", "harness.redis_server", "harness.workload"} <= set(HARNESS_MODULES)


@pytest.mark.parametrize("module", [pytest.param(name, id=name) for name in HARNESS_MODULES])
def test_importing_a_harness_module_changes_no_sys_path(imported_one_by_one, module):
    assert imported_one_by_one[module] == {"added": [], "collection_loaded": False}


def test_use_checkout_makes_this_checkout_the_collection_once():
    found = _fresh_python(
        "import importlib, json, os, sys\n"
        "from harness.collection import use_checkout\n"
        "roots = [use_checkout(), use_checkout()]\n"
        "module = importlib.import_module(%r)\n"
        "print(json.dumps({'roots': roots, 'on_path': sys.path.count(roots[0]),\n"
        "                  'file': os.path.realpath(module.__file__)}))\n" % RESULT_KEYS)
    assert found == {"roots": [COLLECTIONS_ROOT, COLLECTIONS_ROOT], "on_path": 1,
                     "file": os.path.join(os.path.realpath(REPO_ROOT), "plugins", "module_utils", "_result_keys.py")}


@pytest.mark.parametrize("module", [pytest.param(name, id=name) for name in ENTRY_MODULES])
def test_demo_and_bench_modules_import_alone_without_pytest(module):
    """Their packages call use_checkout() themselves: no test set-up needed to import them."""
    found = _fresh_python(
        "import importlib, json, os, sys\n"
        "importlib.import_module(%r)\n"
        "print(json.dumps({'tests_loaded': 'tests' in sys.modules,\n"
        "                  'collection': os.path.realpath(importlib.import_module(%r).__file__)}))\n" % (module, RESULT_KEYS))
    assert found == {"tests_loaded": False,
                     "collection": os.path.join(os.path.realpath(REPO_ROOT), "plugins", "module_utils", "_result_keys.py")}
