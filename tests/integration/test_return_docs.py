"""RETURN docs match what each module returns: a real run of each, its keys against the doc's.

Every key a module returns is documented; every key documented as returned ``always`` or on
``success`` is there. Keys Ansible adds itself (``changed``, ``invocation``, ``diff``, ...) are
not the module's to document.
"""
import os
import re

import pytest
import yaml

from harness.workload import load_result_keys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE_KEYS = {"changed", "failed", "invocation", "diff", "msg", "warnings", "deprecations", "skipped",
                "_ansible_no_log", "_ansible_verbose_always", "ansible_facts"}
CHECK_MODE_ONLY = {"would_expedite", "plan"}


def return_doc(module):
    with open(os.path.join(REPO_ROOT, "plugins", "modules", module + ".py")) as handle:
        source = handle.read()
    return yaml.safe_load(re.search(r'RETURN = r"""(.*?)"""', source, re.S).group(1))


def compare(module, result, check_mode=False):
    doc = return_doc(module)
    returned = set(result) - ANSIBLE_KEYS - {key for key in result if key.startswith("_ansible")}
    undocumented = returned - set(doc)
    assert not undocumented, "%s returns keys its RETURN does not document: %s" % (module, sorted(undocumented))
    promised = {key for key, spec in doc.items()
                if str(spec.get("returned", "")).strip() in ("always", "success")}
    if not check_mode:
        promised -= CHECK_MODE_ONLY
    missing = promised - set(result)
    assert not missing, "%s documents %s as always returned, but did not return them" % (module, sorted(missing))
    if "warnings" in doc and "always" in str(doc["warnings"].get("returned")):
        assert "warnings" in result, "%s: warnings documented as always returned" % module


@pytest.fixture
def loaded_redis(redis_server):
    load_result_keys(redis_server.admin(), 200, ttl_for=lambda i: 86400)
    return redis_server


def test_celery_config_return(ansible_module, tmp_path):
    path = tmp_path / "celeryconfig.py"
    path.write_text("result_expires = 86400\n")
    result = ansible_module("celery_config", {"path": str(path), "settings": {"result_expires": 60}, "backup": True})
    assert result["changed"] and not result["failed"], result
    compare("celery_config", result)


def test_celery_task_audit_return(ansible_module):
    result = ansible_module("celery_task_audit", {"paths": [os.path.join(REPO_ROOT, "tests", "fixtures", "audit_app", "proj")]})
    assert not result["failed"], result
    compare("celery_task_audit", result)


def test_redis_memory_return(ansible_module, loaded_redis):
    args = dict(loaded_redis.login(), maxmemory="64mb", maxmemory_policy="volatile-ttl")
    result = ansible_module("redis_memory", args)
    assert result["changed"] and not result["failed"], result
    compare("redis_memory", result)


def test_result_keys_info_return(ansible_module, loaded_redis):
    result = ansible_module("result_keys_info", loaded_redis.login())
    assert result["count"] == 200, result
    compare("result_keys_info", result)


def test_result_keys_wait_return(ansible_module, loaded_redis):
    args = dict(loaded_redis.login(), baseline=200, max_ttl=2, expedite=True, min_reduction=2, timeout=30,
                poll_interval=0.3)
    check = ansible_module("result_keys_wait", args, check=True)
    assert not check["failed"], check
    compare("result_keys_wait", check, check_mode=True)
    result = ansible_module("result_keys_wait", args)
    assert result["met"], result
    compare("result_keys_wait", result)


def test_undocumented_key_is_caught():
    """The comparison itself: a key the doc lacks fails it."""
    with pytest.raises(AssertionError, match="does not document"):
        compare("celery_config", {"changed": True, "style": "celery", "target": "module", "changes": [],
                                  "not_in_the_docs": 1})
