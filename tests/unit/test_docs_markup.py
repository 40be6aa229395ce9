"""Module docs that render: ansible-doc's markup and what the ACL notes promise."""
import glob
import os
import re

import pytest
import redis
import yaml

from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_connection import describe_redis_error

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC_FILES = sorted(glob.glob(os.path.join(REPO_ROOT, "plugins", "modules", "*.py"))
                   + glob.glob(os.path.join(REPO_ROOT, "plugins", "doc_fragments", "*.py")))


def doc_strings(path):
    with open(path) as handle:
        source = handle.read()
    return re.findall(r'(?:DOCUMENTATION|RETURN|EXAMPLES) = r"""(.*?)"""', source, re.S)


@pytest.mark.parametrize("path", DOC_FILES, ids=os.path.basename)
def test_code_spans_hold_no_parentheses(path):
    """ansible-doc ends C(...) and friends at the first ')': a nested call renders broken."""
    for text in doc_strings(path):
        nested = [m.group(0) for m in re.finditer(r"\b[CIBVORU]\(([^)]*)\)", text) if "(" in m.group(1)]
        assert not nested, nested


def test_result_keys_wait_notes_list_only_commands_it_sends():
    """The wait never sends MEMORY STATS, and redis-py's scripts use EVALSHA/SCRIPT LOAD, not EVAL."""
    path = os.path.join(REPO_ROOT, "plugins", "modules", "result_keys_wait.py")
    notes = " ".join(yaml.safe_load(doc_strings(path)[0])["notes"])
    assert "MEMORY STATS" not in notes and "C(EVAL)/" not in notes and "EVALSHA" in notes
    for source in glob.glob(os.path.join(REPO_ROOT, "plugins", "module_utils", "_result_keys_wait", "*.py")):
        with open(source) as handle:
            assert "memory_stats" not in handle.read(), source


def test_no_doc_asks_for_hello_rights():
    for path in glob.glob(os.path.join(REPO_ROOT, "docs", "*.md")):
        with open(path) as handle:
            assert "+hello" not in handle.read(), path


def test_noperm_on_select_names_select_not_ping():
    exc = redis.exceptions.NoPermissionError(
        "this user has no permissions to run the 'select' command or its subcommand")
    message = describe_redis_error(exc, {"login_host": "127.0.0.1", "login_port": 6379, "login_user": "app"},
                                   command="PING")
    assert "running SELECT" in message and "running PING" not in message
    assert "+select" in message
