"""The rewritten configs judged by Celery itself: its loader, its settings, its tasks."""
import importlib
import itertools
import os
import sys
import warnings

import pytest
from celery import Celery
from celery.app.defaults import SETTING_KEYS

from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config import plan_rewrite

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "celery_configs")
LEAN = {
    "task_ignore_result": True,
    "task_store_errors_even_if_ignored": True,
    "result_expires": 600,
    "result_extended": False,
}
KEEP = "billing.tasks.report"      # its result is read: keeps ignore_result=False
CHARGE = "billing.tasks.charge"    # annotated already (rate_limit) in the fixtures
OTHER = "billing.tasks.send_mail"  # not annotated
OVERRIDES = {KEEP: {"ignore_result": False}, CHARGE: {"ignore_result": False}}
_names = itertools.count()


@pytest.fixture
def import_config(tmp_path, monkeypatch):
    """Write bytes as a fresh importable module and return its name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    imported = []

    def write(data):
        name = "lean_cfg_%d_%d" % (os.getpid(), next(_names))
        (tmp_path / (name + ".py")).write_bytes(data)
        importlib.invalidate_caches()
        imported.append(name)
        return name

    yield write
    for name in imported:
        sys.modules.pop(name, None)


def noop():
    return None


def add_tasks(app):
    for name in (KEEP, CHARGE, OTHER):
        app.task(name=name, shared=False)(noop)
    app.finalize(auto=True)
    return app


def load_module_config(name, namespace=None, attribute=None):
    app = Celery("judge", set_as_current=False)
    obj = "%s:%s" % (name, attribute) if attribute else name
    app.config_from_object(obj, namespace=namespace)
    return add_tasks(app)


def load_app_of(name):
    return add_tasks(importlib.import_module(name).app)


def effective(app):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dict((key, app.conf[key]) for key in SETTING_KEYS)


def fixture_bytes(name):
    with open(os.path.join(FIXTURES, name), "rb") as handle:
        return handle.read()


CASES = [
    pytest.param("celeryconfig.py", load_module_config, "celery", id="celeryconfig-module"),
    pytest.param("django_settings.py", lambda name: load_module_config(name, namespace="CELERY"), "django",
                 id="django-namespace"),
    pytest.param("legacy_celeryconfig.py", load_module_config, "legacy", id="legacy-names"),
    pytest.param("class_config.py", lambda name: load_module_config(name, attribute="Config"), "celery",
                 id="class-object"),
    pytest.param("app_conf_update.py", load_app_of, "celery", id="app-conf-update"),
]


@pytest.mark.parametrize("fixture, load, style", CASES)
def test_celery_sees_the_lean_settings(import_config, fixture, load, style):
    original = fixture_bytes(fixture)
    plan = plan_rewrite(original, LEAN, OVERRIDES)
    assert plan.style == style

    before = load(import_config(original))
    after = load(import_config(plan.new_bytes))
    conf = after.conf
    assert conf.task_ignore_result is True
    assert conf.result_expires == 600
    assert conf.task_store_errors_even_if_ignored is True
    assert conf.result_extended is False

    assert after.tasks[KEEP].ignore_result is False
    assert after.tasks[CHARGE].ignore_result is False
    assert after.tasks[OTHER].ignore_result is True
    assert before.tasks[OTHER].ignore_result is False

    old, new = effective(before), effective(after)
    touched = set(LEAN) | {"task_annotations"}
    assert {k: v for k, v in old.items() if k not in touched} == {k: v for k, v in new.items() if k not in touched}
    # annotations that were there are kept
    if CHARGE in str(old["task_annotations"]):
        assert after.tasks[CHARGE].rate_limit == "10/s"

    # the second run is a no-op, byte for byte
    assert plan_rewrite(plan.new_bytes, LEAN, OVERRIDES).new_bytes == plan.new_bytes


def test_django_lowercase_name_does_nothing(import_config):
    """Why the django style writes UPPERCASE: a lowercase name is not read through the namespace."""
    source = fixture_bytes("django_settings.py") + b"task_ignore_result = True\n"
    app = load_module_config(import_config(source), namespace="CELERY")
    assert app.conf.task_ignore_result is False
    plan = plan_rewrite(source, {"task_ignore_result": True})
    assert any("lowercase" in w for w in plan.warnings)
    assert load_module_config(import_config(plan.new_bytes), namespace="CELERY").conf.task_ignore_result is True


def test_django_old_names_take_effect_on_the_installed_celery(import_config):
    """Old names set under the Django namespace: Celery 5.2-5.6 ignore them, 5.7 falls back to them.
    The rewrite renames them, so the installed Celery (5.7 in make test, 5.5 in the 2.19 matrix) sees
    the values asked for."""
    source = (b"ROOT_URLCONF = 'shop.urls'\nCELERY_BROKER_URL = 'redis://127.0.0.1:6399/0'\n"
              b"CELERY_TASK_RESULT_EXPIRES = 86400  # a day\nCELERY_IGNORE_RESULT = False\n")
    plan = plan_rewrite(source, {"result_expires": 600, "task_ignore_result": True})
    assert plan.style == "django"
    conf = load_module_config(import_config(plan.new_bytes), namespace="CELERY").conf
    assert conf.result_expires == 600 and conf.task_ignore_result is True
    assert b"# a day" in plan.new_bytes and b"CELERY_TASK_RESULT_EXPIRES" not in plan.new_bytes
    assert plan_rewrite(plan.new_bytes, {"result_expires": 600, "task_ignore_result": True}).new_bytes == plan.new_bytes


def test_legacy_file_stays_loadable_without_mixing(import_config):
    """Celery refuses a config that mixes old and new names; the rewrite keeps old names only."""
    plan = plan_rewrite(fixture_bytes("legacy_celeryconfig.py"), LEAN)
    assert b"task_ignore_result" not in plan.new_bytes and b"result_expires" not in plan.new_bytes
    app = load_module_config(import_config(plan.new_bytes))
    assert app.conf.task_ignore_result is True and app.conf.result_expires == 600


def test_mixed_names_are_what_celery_refuses(import_config):
    """The rewriter's refusal matches Celery's: mixed old and new names do not load."""
    from celery.exceptions import ImproperlyConfigured
    app = Celery("judge", set_as_current=False)
    app.config_from_object(import_config(b"CELERY_IGNORE_RESULT = True\nresult_expires = 5\n"))
    with pytest.raises(ImproperlyConfigured):
        app.conf.task_ignore_result


def test_branches_all_effective(import_config, monkeypatch):
    source = (b"import os\nif os.environ.get('LEAN_TEST_BRANCH'):\n    result_expires = 5\nelse:\n"
              b"    result_expires = 7\n")
    new = plan_rewrite(source, {"result_expires": 600}).new_bytes
    for flag in ("", "1"):
        monkeypatch.setenv("LEAN_TEST_BRANCH", flag)
        assert load_module_config(import_config(new)).conf.result_expires == 600
