"""Plugin code runs on managed hosts with Python 3.8+: it must parse as Python 3.8."""
import ast
import os

import pytest

from harness.collection import REPO_ROOT

PLUGIN_FILES = sorted(
    os.path.join(folder, name)
    for folder, _dirs, names in os.walk(os.path.join(REPO_ROOT, "plugins"))
    for name in names if name.endswith(".py")
)
# Only the standard library and redis-py may be imported by code that runs on managed hosts.
ALLOWED_THIRD_PARTY = {"ansible", "ansible_collections", "redis"}


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: os.path.relpath(p, REPO_ROOT))
def test_parses_as_python_3_8(path):
    with open(path, "rb") as handle:
        ast.parse(handle.read(), filename=path, feature_version=(3, 8))


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: os.path.relpath(p, REPO_ROOT))
def test_imports_only_stdlib_and_redis(path):
    import sys
    with open(path, "rb") as handle:
        tree = ast.parse(handle.read(), filename=path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots = [node.module.split(".")[0]]
        else:
            continue
        for root in roots:
            assert root in sys.stdlib_module_names or root in ALLOWED_THIRD_PARTY or root == "__future__", (
                "%s:%d imports %s" % (path, node.lineno, root))
