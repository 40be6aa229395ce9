"""The effective-value guarantee, Django detection and mapping targets, as tables."""
import pytest

from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config import (
    ConfigRewriteError,
    plan_rewrite,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.planner import (
    is_django_settings,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.source import Source

LEAN = {"task_ignore_result": True, "result_expires": 600}


@pytest.mark.parametrize("source, path, expected", [
    pytest.param(b"INSTALLED_APPS = []\n", None, True, id="installed-apps"),
    pytest.param(b"ROOT_URLCONF = 'x.urls'\n", None, True, id="root-urlconf"),
    pytest.param(b"MIDDLEWARE = []\n", None, True, id="middleware"),
    pytest.param(b"import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'x')\n", None, True,
                 id="settings-module-reference"),
    pytest.param(b"x = 1\n", "/srv/site/mysite/settings.py", True, id="path-settings-py"),
    pytest.param(b"x = 1\n", "/srv/site/mysite/settings/production.py", True, id="path-settings-dir"),
    pytest.param(b"x = 1\n", "/srv/app/celeryconfig.py", False, id="plain-celeryconfig"),
])
def test_django_settings_detection(source, path, expected):
    assert is_django_settings(Source(source), path) is expected


@pytest.mark.parametrize("source, settings, path, expected", [
    pytest.param(b"INSTALLED_APPS = []\nCELERY_BROKER_URL = 'r'\nCELERY_DEFAULT_QUEUE = 'q'\n",
                 {"task_default_queue": "lean"}, None,
                 b"INSTALLED_APPS = []\nCELERY_BROKER_URL = 'r'\nCELERY_TASK_DEFAULT_QUEUE = 'lean'\n",
                 id="django-old-name-renamed-in-place"),
    # Celery 5.2-5.6 never read an old name under the Django namespace (5.5.3 measured): renamed,
    # comment and layout kept, so every supported Celery sees it
    pytest.param(b"ROOT_URLCONF = 'x'\nCELERY_TASK_RESULT_EXPIRES = 86400  # a day\nCELERY_IGNORE_RESULT = False\n",
                 {"result_expires": 600, "task_ignore_result": True}, None,
                 b"ROOT_URLCONF = 'x'\nCELERY_RESULT_EXPIRES = 600  # a day\nCELERY_TASK_IGNORE_RESULT = True\n",
                 id="django-old-names-renamed-for-every-celery"),
    pytest.param(b"ROOT_URLCONF = 'x'\nCELERY_TASK_RESULT_EXPIRES = 600\n", {"result_expires": 600}, None,
                 b"ROOT_URLCONF = 'x'\nCELERY_RESULT_EXPIRES = 600\n", id="django-old-name-same-value-renamed"),
    pytest.param(b"x = 1\nresult_expires = 5\n", {"result_expires": 600}, "/srv/s/settings.py",
                 b"x = 1\nresult_expires = 5\nCELERY_RESULT_EXPIRES = 600\n", id="django-lowercase-gets-celery-name"),
    pytest.param(b"app.conf.update({'result_expires': 5})\n", {"result_expires": 600}, None,
                 b"app.conf.update({'result_expires': 600})\n", id="update-dict-literal-in-place"),
    pytest.param(b"app.conf.update({\"broker_url\": 'r'})\n", {"result_expires": 600}, None,
                 b"app.conf.update({\"broker_url\": 'r', \"result_expires\": 600})\n", id="update-dict-keeps-quotes"),
    pytest.param(b"O = {'CELERY_TASK_RESULT_EXPIRES': 5}\napp.conf.update(**O)\n", {"result_expires": 600}, None,
                 b"O = {'CELERY_TASK_RESULT_EXPIRES': 600}\napp.conf.update(**O)\n", id="update-mapping-old-names"),
    pytest.param(b"O = {'broker_url': 'r'}\napp.conf.update(**O)\n", {"result_expires": 600}, None,
                 b"O = {'broker_url': 'r', 'result_expires': 600}\napp.conf.update(**O)\n", id="update-mapping-added"),
    pytest.param(b"C = {'broker_url': 'r'}\napp = Celery('x', config_source=C)\n", {"result_expires": 600}, None,
                 b"C = {'broker_url': 'r', 'result_expires': 600}\napp = Celery('x', config_source=C)\n",
                 id="config-source-dict"),
])
def test_rewrites_that_take_effect(source, settings, path, expected):
    plan = plan_rewrite(source, settings, path=path)
    assert plan.new_bytes == expected
    for setting, value in settings.items():
        assert plan.effective[setting]["value"] == value


@pytest.mark.parametrize("source, kwargs, line, message", [
    pytest.param(b"result_expires = 5\nfrom base import *\n", {}, 2, "star import", id="star-after"),
    pytest.param(b"app.conf.update(**load())\n", {}, 1, "cannot prove which settings", id="update-call-mapping"),
    pytest.param(b"broker_url = 'r'\nC = {'result_expires': 5}\n", {}, 2, "several places", id="module-and-dict"),
    pytest.param(b"import os\nif os.environ.get('A'):\n    result_expires = 5\n", {}, 3, "only on some branches",
                 id="one-branch"),
    pytest.param(b"O = {'result_expires': 5}\napp.conf.update(**O, result_expires=6)\n", {"object": "app.conf.update"},
                 2, "given twice", id="keyword-twice"),
])
def test_refusals_leave_bytes_and_name_the_line(source, kwargs, line, message):
    kept = bytes(source)
    with pytest.raises(ConfigRewriteError) as caught:
        plan_rewrite(source, LEAN, object_name=kwargs.get("object"))
    assert any(p[0] == line and message in p[2] for p in caught.value.problems), caught.value.problems
    assert source == kept


def test_object_names_a_top_level_dict():
    plan = plan_rewrite(b"broker_url = 'r'\nC = {'result_expires': 5}\n", LEAN, object_name="C")
    assert plan.target == "C" and plan.form == "mapping"
    assert plan.new_bytes == b"broker_url = 'r'\nC = {'result_expires': 600, 'task_ignore_result': True}\n"


def test_effective_reports_the_line_celery_reads():
    plan = plan_rewrite(b"result_expires = 5\nresult_expires = 600\ntask_ignore_result = True\n", LEAN)
    assert plan.new_bytes == b"result_expires = 5\nresult_expires = 600\ntask_ignore_result = True\n"
    assert plan.effective == {"result_expires": {"value": 600, "line": 2},
                              "task_ignore_result": {"value": True, "line": 3}}
