"""The collection builds, installs, and every module's documentation renders from the install."""
import os
import subprocess
import sys
import tarfile

import pytest

from harness.collection import REPO_ROOT

VENV_BIN = os.path.dirname(sys.executable)
MODULES = sorted(name[:-3] for name in os.listdir(os.path.join(REPO_ROOT, "plugins", "modules"))
                 if name.endswith(".py") and not name.startswith("_"))


def _run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, check=True, cwd=REPO_ROOT, **kwargs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("galaxy")
    _run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(root)])
    tarball = root / "celery_ops-lean_results-1.0.0.tar.gz"
    assert tarball.exists()
    collections = root / "collections"
    _run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", "--force", "-p", str(collections), str(tarball)])
    return tarball, collections


def test_tarball_leaves_out_local_artefacts(installed):
    tarball, _collections = installed
    with tarfile.open(str(tarball)) as archive:
        names = archive.getnames()
    assert "plugins/modules/result_keys_info.py" in names
    # The harness is development tooling like scripts/: tests, demo and bench run from a checkout.
    for unwanted in (".venv", ".ansible", "tests/output", "bench/results.json", ".ci", "scripts", "harness"):
        assert not [name for name in names if name == unwanted or name.startswith(unwanted + "/")], unwanted


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_from_the_install(installed, module):
    _tarball, collections = installed
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1")
    text = _run([os.path.join(VENV_BIN, "ansible-doc"), "-t", "module", "celery_ops.lean_results." + module],
                env=env).stdout
    assert "EXAMPLES:" in text and "RETURN VALUES:" in text
    assert "celery_ops.lean_results.%s:" % module in text or "lean_results.%s" % module in text
