"""The settings table against the installed Celery: every setting, its old name, its type."""
import pytest
from celery.app.defaults import NAMESPACES, _TO_OLD_KEY, flatten

from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config import (
    CELERY_SETTINGS,
    ConfigRewriteError,
    plan_rewrite,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.settings import coerce

KINDS = {"string": "str", "str": "str", "bytes": "str", int: "int"}
INSTALLED = dict(flatten(NAMESPACES))
# The table is generated from Celery 5.7; older lines of Celery typed these settings otherwise
# (worker_concurrency was "int" up to 5.6, "any" in 5.7, which takes "auto").
OLDER_KINDS = {"worker_concurrency": "int"}


def test_table_has_every_setting_of_the_installed_celery():
    missing = sorted(set(INSTALLED) - set(CELERY_SETTINGS))
    assert not missing, "the installed Celery has settings the table lacks: %s" % missing


@pytest.mark.parametrize("setting", sorted(INSTALLED))
def test_old_name_and_type_match_celery(setting):
    old, kind = CELERY_SETTINGS[setting]
    assert old == _TO_OLD_KEY[setting]
    installed = KINDS.get(INSTALLED[setting].type, INSTALLED[setting].type)
    assert kind == installed or OLDER_KINDS.get(setting) == installed, (kind, installed)


@pytest.mark.parametrize("setting", ["result_failure_expires", "result_chord_expires", "task_acks_on_failure"])
def test_celery_5_7_settings_are_accepted(setting):
    plan = plan_rewrite(b"result_expires = 5\n", {setting: 604800 if "expires" in setting else True})
    assert plan.effective[setting]["value"] in (604800, True)


@pytest.mark.parametrize("setting, value", [
    pytest.param("result_expires", True, id="bool-for-number"),
    pytest.param("task_ignore_result", 5, id="int-for-bool"),
    pytest.param("result_expires", [1, 2], id="list-for-number"),
    pytest.param("result_expires", -5, id="negative"),
    pytest.param("worker_prefetch_multiplier", 1.5, id="float-for-int"),
    pytest.param("result_backend", 5, id="int-for-string"),
    pytest.param("result_backend_transport_options", "x", id="string-for-dict"),
    pytest.param("result_expires", float("nan"), id="nan"),
])
def test_wrong_types_are_refused_naming_the_setting(setting, value):
    with pytest.raises(ConfigRewriteError) as caught:
        coerce(setting, value)
    assert caught.value.setting == setting and setting in caught.value.msg


@pytest.mark.parametrize("setting, value, expected", [
    pytest.param("result_expires", "3600", 3600, id="string-number"),
    pytest.param("result_expires", 3600.0, 3600, id="integral-float"),
    pytest.param("result_expires", None, None, id="null"),
    pytest.param("task_ignore_result", "yes", True, id="string-bool"),
    pytest.param("result_chord_join_timeout", 2.5, 2.5, id="float"),
])
def test_right_types_are_kept(setting, value, expected):
    assert coerce(setting, value) == expected


def test_all_problems_in_one_refusal():
    with pytest.raises(ConfigRewriteError) as caught:
        plan_rewrite(b"import os\nresult_expires = int(os.environ['X'])\ntask_ignore_result = os.environ['Y']\n",
                     {"result_expires": 600, "task_ignore_result": True, "result_extendd": False,
                      "task_track_started": 3})
    problems = caught.value.problems
    assert [(p[0], p[1]) for p in problems] == [
        (2, "result_expires"), (3, "task_ignore_result"), (None, "result_extendd"), (None, "task_track_started")]
    where = caught.value.where("/srv/app/celeryconfig.py").splitlines()
    assert where[0].startswith("/srv/app/celeryconfig.py:2:result_expires: ")
    assert where[1].startswith("/srv/app/celeryconfig.py:3:task_ignore_result: ")


@pytest.mark.parametrize("terms", [pytest.param(300, id="300-terms"), pytest.param(5000, id="5000-terms")])
def test_deep_expression_is_refused_with_its_line(terms):
    source = b"broker_url = 'redis://'\nresult_expires = " + b" + ".join([b"1"] * terms) + b"\n"
    with pytest.raises(ConfigRewriteError) as caught:
        plan_rewrite(source, {"result_expires": 600})
    assert caught.value.line == 2
    assert "nested" in caught.value.msg or "too long" in caught.value.msg
