"""Byte-exact tables for the Celery config rewriter: every form, the no-ops, the refusals."""
import json

import pytest

from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config import (
    ConfigRewriteError,
    plan_rewrite,
)

LEAN = {
    "task_ignore_result": True,
    "task_store_errors_even_if_ignored": True,
    "result_expires": 600,
    "result_extended": False,
}
KEEP_REPORT = {"reports.build": {"ignore_result": False}}


def rewrite(source, **kwargs):
    kwargs.setdefault("settings", LEAN)
    return plan_rewrite(source, **kwargs)


FORMS = [
    pytest.param(
        b"broker_url = 'redis://localhost/0'\n"
        b"task_ignore_result = False  # keep results\n"
        b"task_store_errors_even_if_ignored = True\n"
        b"result_expires = 86400\n"
        b"result_extended = True\n",
        {},
        b"broker_url = 'redis://localhost/0'\n"
        b"task_ignore_result = True  # keep results\n"
        b"task_store_errors_even_if_ignored = True\n"
        b"result_expires = 600\n"
        b"result_extended = False\n",
        id="module-assignments-replaced-comment-kept",
    ),
    pytest.param(
        b"\xef\xbb\xbf# -*- coding: utf-8 -*-\r\n# caf\xc3\xa9 config\r\nbroker_url = 'redis://'\r\n"
        b"task_ignore_result = False\r\n",
        {},
        b"\xef\xbb\xbf# -*- coding: utf-8 -*-\r\n# caf\xc3\xa9 config\r\nbroker_url = 'redis://'\r\n"
        b"task_ignore_result = True\r\ntask_store_errors_even_if_ignored = True\r\n"
        b"result_expires = 600\r\nresult_extended = False\r\n",
        id="bom-crlf-utf8-declaration-additions",
    ),
    pytest.param(
        b"result_expires = (\n    60 *  # one hour\n    60\n)\ntask_ignore_result = True\n",
        {"settings": {"result_expires": 600}},
        b"result_expires = 600  # one hour\ntask_ignore_result = True\n",
        id="multi-line-parenthesised-value-keeps-its-comment",
    ),
    pytest.param(
        b"result_expires = (86400  # a day, says ops\n)\n",
        {"settings": {"result_expires": 600}},
        b"result_expires = (600  # a day, says ops\n)\n",
        id="comment-after-value-inside-parentheses",
    ),
    pytest.param(
        b"result_expires = \\\n    86400\nx = 1\n",
        {"settings": {"result_expires": 600}},
        b"result_expires = \\\n    600\nx = 1\n",
        id="backslash-continuation",
    ),
    pytest.param(
        b"task_ignore_result = False; result_expires = 10  # short\nx = (1,\n 2)\n",
        {"settings": {"task_ignore_result": True, "result_expires": 600}},
        b"task_ignore_result = True; result_expires = 600  # short\nx = (1,\n 2)\n",
        id="several-statements-on-one-line",
    ),
    pytest.param(
        b"a = 1; task_ignore_result = True; b = (\n    2)\nz = 3\n",
        {"settings": {"task_ignore_result": True, "task_store_errors_even_if_ignored": True}},
        b"a = 1; task_ignore_result = True; b = (\n    2)\ntask_store_errors_even_if_ignored = True\nz = 3\n",
        id="addition-after-a-multi-statement-line",
    ),
    pytest.param(
        b"INSTALLED_APPS = ['app']\nCELERY_BROKER_URL = 'redis://'\nCELERY_TASK_IGNORE_RESULT = False\n"
        b"CELERY_RESULT_EXPIRES = 3600\nDEBUG = True\n",
        {},
        b"INSTALLED_APPS = ['app']\nCELERY_BROKER_URL = 'redis://'\nCELERY_TASK_IGNORE_RESULT = True\n"
        b"CELERY_TASK_STORE_ERRORS_EVEN_IF_IGNORED = True\nCELERY_RESULT_EXPIRES = 600\n"
        b"CELERY_RESULT_EXTENDED = False\nDEBUG = True\n",
        id="django-namespace-uppercase",
    ),
    pytest.param(
        b"SECRET_KEY = 'x'\nWORKERS_BROKER_URL = 'redis://'\n",
        {"namespace": "WORKERS", "settings": {"task_ignore_result": True}},
        b"SECRET_KEY = 'x'\nWORKERS_BROKER_URL = 'redis://'\nWORKERS_TASK_IGNORE_RESULT = True\n",
        id="django-custom-namespace",
    ),
    pytest.param(
        b"BROKER_URL = 'redis://'\nCELERY_IGNORE_RESULT = False\nCELERYD_CONCURRENCY = 4\n",
        {},
        b"BROKER_URL = 'redis://'\nCELERY_IGNORE_RESULT = True\nCELERY_STORE_ERRORS_EVEN_IF_IGNORED = True\n"
        b"CELERYD_CONCURRENCY = 4\nCELERY_TASK_RESULT_EXPIRES = 600\nCELERY_RESULT_EXTENDED = False\n",
        id="legacy-names-stay-legacy",
    ),
    pytest.param(
        b"class Config:\n    \"\"\"App config.\"\"\"\n    broker_url = 'redis://'\n    result_expires = 3600\n\n"
        b"def helper():\n    result_expires = 5\n",
        {},
        b"class Config:\n    \"\"\"App config.\"\"\"\n    broker_url = 'redis://'\n    result_expires = 600\n"
        b"    task_ignore_result = True\n    task_store_errors_even_if_ignored = True\n"
        b"    result_extended = False\n\ndef helper():\n    result_expires = 5\n",
        id="class-attributes",
    ),
    pytest.param(
        b"from celery import Celery\napp = Celery('proj')\napp.conf.update(\n    broker_url='redis://',\n"
        b"    result_expires=3600  # an hour\n)\n",
        {},
        b"from celery import Celery\napp = Celery('proj')\napp.conf.update(\n    broker_url='redis://',\n"
        b"    result_expires=600,  # an hour\n    task_ignore_result=True,\n"
        b"    task_store_errors_even_if_ignored=True,\n    result_extended=False,\n)\n",
        id="conf-update-multi-line",
    ),
    pytest.param(
        b"import celery\napp = celery.Celery('proj')\napp.conf.update(result_expires=(3600), broker_url='x')\n",
        {"settings": {"result_expires": 600, "task_ignore_result": True}},
        b"import celery\napp = celery.Celery('proj')\n"
        b"app.conf.update(result_expires=600, broker_url='x', task_ignore_result=True)\n",
        id="conf-update-one-line-parenthesised-keyword",
    ),
    pytest.param(
        b"from celery import Celery\napp = Celery('proj')\napp.conf.update()\n",
        {"settings": {"task_ignore_result": True, "result_expires": 600}},
        b"from celery import Celery\napp = Celery('proj')\napp.conf.update(task_ignore_result=True, result_expires=600)\n",
        id="conf-update-empty-call",
    ),
    pytest.param(
        b"import os\nif os.environ.get('DEV'):\n    task_ignore_result = False\nelse:\n    task_ignore_result = False\n",
        {"settings": {"task_ignore_result": True}},
        b"import os\nif os.environ.get('DEV'):\n    task_ignore_result = True\nelse:\n    task_ignore_result = True\n",
        id="if-else-every-branch",
    ),
    pytest.param(
        b"try:\n    result_expires = 100\nexcept Exception:\n    raise\n",
        {"settings": {"result_expires": 600}},
        b"try:\n    result_expires = 600\nexcept Exception:\n    raise\n",
        id="try-with-raising-handler",
    ),
    pytest.param(
        b"import os\nif os.environ.get('DEV'):\n    result_expires = 5\nresult_expires = 100\n"
        b"if os.environ.get('CI'):\n    result_expires = 7\n",
        {"settings": {"result_expires": 600}},
        b"import os\nif os.environ.get('DEV'):\n    result_expires = 5\nresult_expires = 600\n"
        b"if os.environ.get('CI'):\n    result_expires = 600\n",
        id="last-unconditional-and-later-branches",
    ),
    pytest.param(
        b"import os\ntry:\n    result_expires = int(os.environ['EXPIRES'])\nexcept KeyError:\n    result_expires = 5\n",
        {"settings": {"result_expires": 600}, "on_dynamic": "replace"},
        b"import os\ntry:\n    result_expires = 600\nexcept KeyError:\n    result_expires = 600\n",
        id="on-dynamic-replace-in-try-except",
    ),
    pytest.param(
        b"from datetime import timedelta\nresult_expires = timedelta(days=1)\n",
        {"settings": {"result_expires": 600}},
        b"from datetime import timedelta\nresult_expires = 600\n",
        id="timedelta-literal-replaced",
    ),
    pytest.param(
        b"result_expires: int = 10\n",
        {"settings": {"result_expires": 600}},
        b"result_expires: int = 600\n",
        id="annotated-assignment",
    ),
    pytest.param(
        b"result_serializer = 'pickle'\nresult_backend = 'redis://old'",
        {"settings": {"result_serializer": "json", "result_backend": "redis://h:6379/1",
                      "result_expires": "600", "task_ignore_result": "yes"}},
        b"result_serializer = 'json'\nresult_backend = 'redis://h:6379/1'\nresult_expires = 600\n"
        b"task_ignore_result = True\n",
        id="strings-repr-coercion-no-final-newline",
    ),
    pytest.param(
        b"task_annotations = {\n    'reports.build': {'rate_limit': '1/s'},  # slow\n    'other': {\n"
        b"        'ignore_result': True\n    }\n}\n",
        {"settings": {}, "task_overrides": dict(KEEP_REPORT, other={"ignore_result": False},
                                                new={"ignore_result": False})},
        b"task_annotations = {\n    'reports.build': {'rate_limit': '1/s', 'ignore_result': False},  # slow\n"
        b"    'other': {\n        'ignore_result': False\n    },\n    'new': {'ignore_result': False},\n}\n",
        id="annotations-merge-kept-and-added",
    ),
    pytest.param(
        b"task_annotations = {}\n",
        {"settings": {}, "task_overrides": KEEP_REPORT},
        b"task_annotations = {'reports.build': {'ignore_result': False}}\n",
        id="annotations-empty-dict",
    ),
    pytest.param(
        b"task_annotations = {'*': {'rate_limit': '5/s'}, 'x': {}}\n",
        {"settings": {}, "task_overrides": dict(KEEP_REPORT, x={"ignore_result": False})},
        b"task_annotations = {'*': {'rate_limit': '5/s'}, 'x': {'ignore_result': False}, "
        b"'reports.build': {'ignore_result': False}}\n",
        id="annotations-wildcard-without-conflict",
    ),
    pytest.param(
        b"task_ignore_result = False\n",
        {"settings": {"task_ignore_result": True}, "task_overrides": KEEP_REPORT},
        b"task_ignore_result = True\ntask_annotations = {'reports.build': {'ignore_result': False}}\n",
        id="annotations-added-beside-task-settings",
    ),
    pytest.param(
        b"CELERY_TASK_IGNORE_RESULT = True\n",
        {"settings": {}, "task_overrides": KEEP_REPORT},
        b"CELERY_TASK_IGNORE_RESULT = True\nCELERY_TASK_ANNOTATIONS = {'reports.build': {'ignore_result': False}}\n",
        id="annotations-django-name",
    ),
    pytest.param(
        b"CELERY_IGNORE_RESULT = True\nCELERY_ANNOTATIONS = {'a': {'rate_limit': '1/s'}}\n",
        {"settings": {}, "task_overrides": {"a": {"ignore_result": False}}},
        b"CELERY_IGNORE_RESULT = True\nCELERY_ANNOTATIONS = {'a': {'rate_limit': '1/s', 'ignore_result': False}}\n",
        id="annotations-legacy-name",
    ),
    pytest.param(
        b"from celery import Celery\napp = Celery('p')\nclass Config:\n    result_expires = 1\n"
        b"result_expires = 2\napp.config_from_object(Config)\n",
        {"settings": {"result_expires": 600}, "object_name": "Config"},
        b"from celery import Celery\napp = Celery('p')\nclass Config:\n    result_expires = 600\n"
        b"result_expires = 2\napp.config_from_object(Config)\n",
        id="object-chooses-the-class",
    ),
    pytest.param(
        b"x = 1\n",
        {"settings": {"task_ignore_result": True}, "style": "legacy"},
        b"x = 1\nCELERY_IGNORE_RESULT = True\n",
        id="explicit-legacy-style-on-empty-config",
    ),
    pytest.param(
        b"# line\xe2\x80\xa8separator is not a newline\n\x0cx = 'a\xe2\x80\xa8b'; result_expires = 1\n"
        b"y = 2\n",
        {"settings": {"result_expires": 600}},
        b"# line\xe2\x80\xa8separator is not a newline\n\x0cx = 'a\xe2\x80\xa8b'; result_expires = 600\n"
        b"y = 2\n",
        id="u2028-and-form-feed-are-not-line-breaks",
    ),
    pytest.param(
        b"# -*- coding: utf-8 -*-\nname = 'caf\xc3\xa9'; result_expires = 1\n",
        {"settings": {"result_expires": 600}},
        b"# -*- coding: utf-8 -*-\nname = 'caf\xc3\xa9'; result_expires = 600\n",
        id="multibyte-before-value-on-same-line",
    ),
    pytest.param(
        b"task_annotations = {'a': {},\n}\n",
        {"settings": {}, "task_overrides": {"b": {"ignore_result": False}}},
        b"task_annotations = {'a': {},\n    'b': {'ignore_result': False},\n}\n",
        id="annotations-first-line-element-closing-alone",
    ),
    pytest.param(
        b"",
        {"settings": {"task_ignore_result": True}},
        b"task_ignore_result = True\n",
        id="empty-file",
    ),
]


@pytest.mark.parametrize("before, kwargs, after", FORMS)
def test_rewrite_forms(before, kwargs, after):
    plan = rewrite(before, **kwargs)
    assert plan.new_bytes == after
    assert plan.changes
    assert rewrite(after, **kwargs).new_bytes == after, "a second run must change nothing"


NOOPS = [
    pytest.param(b"task_ignore_result = True\ntask_store_errors_even_if_ignored = True\n"
                 b"result_expires = 600\nresult_extended = False\n", {}, id="already-lean"),
    pytest.param(b"task_ignore_result=True  # c\r\ntask_store_errors_even_if_ignored=(True)\r\n"
                 b"result_expires = 60 * 10\r\nresult_extended = 0 == 1 if False else False\r\n",
                 {"settings": {"task_ignore_result": True, "result_expires": 600}}, id="arithmetic-crlf"),
    pytest.param(b"from datetime import timedelta\nresult_expires = timedelta(minutes=10)\n",
                 {"settings": {"result_expires": 600}}, id="timedelta-equal"),
    pytest.param(b"result_expires = 600.0\n", {"settings": {"result_expires": 600}}, id="float-equal-int"),
    pytest.param(b"SECRET_KEY = 1\nCELERY_TASK_IGNORE_RESULT = True\nCELERY_TASK_STORE_ERRORS_EVEN_IF_IGNORED = True\n"
                 b"CELERY_RESULT_EXPIRES = 600\nCELERY_RESULT_EXTENDED = False\n", {}, id="django-lean"),
    pytest.param(b"CELERY_IGNORE_RESULT = True\nCELERY_STORE_ERRORS_EVEN_IF_IGNORED = True\n"
                 b"CELERY_TASK_RESULT_EXPIRES = 600\nCELERY_RESULT_EXTENDED = False\n", {}, id="legacy-lean"),
    pytest.param(b"class Config:\n    task_ignore_result = True\n    task_store_errors_even_if_ignored = True\n"
                 b"    result_expires = 600\n    result_extended = False\n", {}, id="class-lean"),
    pytest.param(b"from celery import Celery\napp = Celery()\napp.conf.update(task_ignore_result=True,\n"
                 b"  task_store_errors_even_if_ignored=True, result_expires=600, result_extended=False)\n",
                 {}, id="conf-update-lean"),
    pytest.param(b"task_annotations = {'reports.build': {'ignore_result': False, 'rate_limit': '1/s'}}\n",
                 {"settings": {}, "task_overrides": KEEP_REPORT}, id="annotations-already-merged"),
    pytest.param(b"import os\nif os.environ.get('X'):\n    task_ignore_result = True\nelse:\n"
                 b"    task_ignore_result = True\n", {"settings": {"task_ignore_result": True}}, id="branches-lean"),
    pytest.param(b"# nothing asked\nbroker_url = os.environ['B']\n", {"settings": {}}, id="nothing-asked"),
    pytest.param(b"\xef\xbb\xbfresult_expires = 600\r\n", {"settings": {"result_expires": 600}}, id="bom-crlf"),
]


@pytest.mark.parametrize("source, kwargs", NOOPS)
def test_noop_is_byte_identical(source, kwargs):
    plan = rewrite(source, **kwargs)
    assert plan.new_bytes == source
    assert plan.changes == []


REFUSALS = [
    pytest.param(b"x = 1\ntask_ignore_result = (\n", {}, "does not parse", 2, id="syntax-error"),
    pytest.param(b"# -*- coding: latin-1 -*-\nx = 'caf\xe9'\n", {}, "encoding 'latin-1'", 1, id="latin-1-coding"),
    pytest.param(b"x = 1\ny = 'caf\xe9'\n", {}, "not valid UTF-8", 2, id="invalid-utf8-bytes"),
    pytest.param(b"x = 1\n", {"settings": {"task_ignore_results": True}}, "did you mean 'task_ignore_result'",
                 None, id="unknown-setting-suggested"),
    pytest.param(b"x = 1\n", {"settings": {"CELERY_IGNORE_RESULT": True}}, "did you mean 'task_ignore_result'",
                 None, id="old-name-in-settings"),
    pytest.param(b"import os\nresult_expires = int(os.environ['E'])\n", {}, "result_expires is set from an expression",
                 2, id="dynamic-value-fail"),
    pytest.param(b"import os\nif os.environ.get('D'):\n    task_ignore_result = False\n", {},
                 "only on some branches", 3, id="one-branch-only"),
    pytest.param(b"import os\nfor _ in range(1):\n    result_expires = 1\n", {}, "only on some branches", 3,
                 id="assigned-in-a-loop-body"),
    pytest.param(b"for result_expires in (1, 2):\n    pass\n", {}, "bound by a for loop", 1,
                 id="loop-target-binding"),
    pytest.param(b"task_annotations = [{'a': {}}]\n", {"settings": {}, "task_overrides": KEEP_REPORT},
                 "not a dict literal", 1, id="annotations-not-a-dict"),
    pytest.param(b"from x import A\ntask_annotations = A\n",
                 {"settings": {}, "task_overrides": KEEP_REPORT, "on_dynamic": "replace"},
                 "not a dict literal", 2, id="annotations-dynamic-even-with-replace"),
    pytest.param(b"task_annotations = {\n  '*': {'ignore_result': True}}\n",
                 {"settings": {}, "task_overrides": KEEP_REPORT}, "applies it after", 2, id="annotations-wildcard-wins"),
    pytest.param(b"task_annotations = {'reports.build': object()}\n", {"settings": {}, "task_overrides": KEEP_REPORT},
                 "is not a dict literal", 1, id="annotations-task-entry-not-dict"),
    pytest.param(b"task_annotations = {**BASE}\n", {"settings": {}, "task_overrides": KEEP_REPORT},
                 "unpacks another mapping", 1, id="annotations-unpacking"),
    pytest.param(b"task_ignore_result = True\nCELERY_TASK_RESULT_EXPIRES = 5\n", {}, "mixes new and old", 2,
                 id="mixed-new-and-old"),
    pytest.param(b"task_ignore_result = True\nclass Config:\n    result_expires = 1\n", {}, "several places",
                 2, id="ambiguous-targets"),
    pytest.param(b"a = task_ignore_result = False\n", {}, "chained or unpacking", 1, id="chained-assignment"),
    pytest.param(b"result_expires = 1\nresult_expires += 1\n", {}, "augmented assignment", 2, id="augmented"),
    pytest.param(b"from base import result_expires\n", {}, "bound by an import", 1, id="import-binding"),
    pytest.param(b"task_ignore_result = False\n", {"style": "legacy"}, "Use style celery", 1,
                 id="explicit-style-would-mix"),
    pytest.param(b"x = 1\n", {"object_name": "Nope"}, "object 'Nope'", None, id="object-not-found"),
    pytest.param(b"app.conf.update(a=1)\n", {"style": "django"}, "not to app.conf.update", None,
                 id="django-style-on-call"),
    pytest.param(b"x = 1\n", {"settings": {}, "task_overrides": {"t": {}}}, "non-empty mapping", None,
                 id="empty-task-override"),
    pytest.param(b"x = 1\n", {"settings": {"task_ignore_result": "maybe"}}, "expects a boolean", None,
                 id="bad-boolean"),
    pytest.param(b"from celery import Celery\napp = Celery('p')\n", {}, "creates a Celery app", None,
                 id="app-without-config"),
    pytest.param(b"class C: result_expires = 1\n", {"settings": {"task_ignore_result": True}},
                 "body on the class line", 1, id="one-line-class"),
]


@pytest.mark.parametrize("source, kwargs, message, line", REFUSALS)
def test_refusals(source, kwargs, message, line):
    kept = bytes(source)
    with pytest.raises(ConfigRewriteError) as caught:
        rewrite(source, **kwargs)
    assert message in caught.value.msg
    assert caught.value.line == line
    assert source == kept


def test_changes_report_setting_name_before_after_line():
    plan = rewrite(b"# c\nCELERY_IGNORE_RESULT = False\nCELERY_TASK_RESULT_EXPIRES = 60 * 60\n",
                   settings={"task_ignore_result": True, "result_expires": 600, "result_extended": False})
    assert plan.style == "legacy" and plan.target == "module"
    assert plan.changes == [
        {"setting": "task_ignore_result", "name": "CELERY_IGNORE_RESULT", "before": "False", "after": "True",
         "line": 2},
        {"setting": "result_expires", "name": "CELERY_TASK_RESULT_EXPIRES", "before": "60 * 60", "after": "600",
         "line": 3},
        {"setting": "result_extended", "name": "CELERY_RESULT_EXTENDED", "before": None, "after": "False",
         "line": 4},
    ]
    json.dumps(plan.changes)


def test_django_file_warns_about_lowercase_names():
    plan = rewrite(b"INSTALLED_APPS = []\ntask_ignore_result = True\nCELERY_BROKER_URL = 'x'\n",
                   settings={"task_ignore_result": True})
    assert plan.style == "django"
    assert b"CELERY_TASK_IGNORE_RESULT = True" in plan.new_bytes
    assert any("lowercase" in w for w in plan.warnings)


def test_explicit_celery_style_in_django_file_warns():
    plan = rewrite(b"SECRET_KEY = 'x'\n", settings={"task_ignore_result": True}, style="celery")
    assert plan.new_bytes == b"SECRET_KEY = 'x'\ntask_ignore_result = True\n"
    assert any("UPPERCASE" in w for w in plan.warnings)


def test_result_expires_zero_warns():
    plan = rewrite(b"x = 1\n", settings={"result_expires": 0})
    assert any("without a TTL" in w for w in plan.warnings)


def test_task_override_strings_become_booleans():
    plan = rewrite(b"x = 1\n", settings={}, task_overrides={"t": {"ignore_result": "no", "rate_limit": "1/s"}})
    assert plan.new_bytes == b"x = 1\ntask_annotations = {'t': {'ignore_result': False, 'rate_limit': '1/s'}}\n"
