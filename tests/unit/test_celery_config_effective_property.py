"""Property: what read_effective says Celery sees is what Celery's own loader sees.

Generated config files in the four loader forms (a module or class given to
``config_from_object``, Django settings read with ``namespace='CELERY'``, a dict given as
``config_source``, ``conf.update`` calls) are executed and loaded by Celery 5.7. Wherever
read_effective proves a value, Celery must see that value (or its default when nothing sets
it); where Celery refuses the config, read_effective must report a problem.
"""
import ast
import types
import warnings

from celery import Celery
from celery.exceptions import ImproperlyConfigured
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.effective import (
    DEFAULT,
    read_effective,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.planner import find_target
from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.source import Source

SETTINGS = ["result_expires", "task_ignore_result", "task_default_queue", "broker_url"]
# every name Celery may read for SETTINGS: new, old, and the Django namespace ones
NAMES = [
    "result_expires", "CELERY_TASK_RESULT_EXPIRES", "CELERY_RESULT_EXPIRES",
    "task_ignore_result", "CELERY_IGNORE_RESULT", "CELERY_TASK_IGNORE_RESULT",
    "task_default_queue", "CELERY_DEFAULT_QUEUE", "CELERY_TASK_DEFAULT_QUEUE",
    "broker_url", "BROKER_URL", "CELERY_BROKER_URL",
]
VALUES = st.one_of(st.integers(0, 9), st.sampled_from(["'a'", "'b'", "True", "False", "60 * 2"]))
EXAMPLES = 300
counted = {"examples": 0, "proven": 0, "refused_by_celery": 0}

assignment = st.tuples(st.just("set"), st.sampled_from(NAMES), VALUES)
branch = st.tuples(st.just("if"), st.sampled_from(NAMES), VALUES, st.one_of(st.none(), VALUES))
statements = st.lists(st.one_of(assignment, assignment, branch), min_size=0, max_size=8)


def render_statements(stmts, indent=""):
    lines = []
    for stmt in stmts:
        if stmt[0] == "set":
            lines.append("%s%s = %s" % (indent, stmt[1], stmt[2]))
        else:
            _kind, name, first, second = stmt
            lines.append("%sif FLAG:" % indent)
            lines.append("%s    %s = %s" % (indent, name, first))
            if second is not None:
                lines.append("%selse:" % indent)
                lines.append("%s    %s = %s" % (indent, name, second))
    return lines


def celery_sees(load):
    app = Celery("judge", set_as_current=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load(app)
        try:
            return dict((s, app.conf[s]) for s in SETTINGS), None
        except ImproperlyConfigured as exc:
            return None, exc


def defaults():
    app = Celery("defaults", set_as_current=False)
    return dict((s, app.conf[s]) for s in SETTINGS)


DEFAULTS = defaults()


def judge(ours, theirs, error):
    counted["examples"] += 1
    if error is not None:
        counted["refused_by_celery"] += 1
        assert ours.problems, "Celery refused (%s) but read_effective found no problem" % error
        return
    for setting in SETTINGS:
        if setting not in ours.values:
            continue
        counted["proven"] += 1
        value = ours.values[setting]["value"]
        expected = DEFAULTS[setting] if value is DEFAULT else value
        assert theirs[setting] == expected and type(theirs[setting]) is type(expected), (setting, ours.values,
                                                                                         theirs)


def run_module(text, flag, namespace=None, uppercase_only=False):
    module = types.ModuleType("generated_config")
    exec(compile("FLAG = %r\n" % flag + text, "generated", "exec"), module.__dict__)
    if uppercase_only:  # Django's Settings keeps only UPPERCASE names
        holder = types.SimpleNamespace(**dict((k, v) for k, v in vars(module).items() if k.isupper()))
    else:
        holder = module
    return celery_sees(lambda app: app.config_from_object(holder, namespace=namespace))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(statements, st.booleans())
def test_module_form(stmts, flag):
    text = "\n".join(render_statements(stmts)) + "\n"
    ours = read_effective(ast.parse(text), "module", SETTINGS, namespace="CELERY")
    theirs, error = run_module(text, flag)
    judge(ours, theirs, error)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(statements, st.booleans())
def test_django_form(stmts, flag):
    text = "INSTALLED_APPS = []\n" + "\n".join(render_statements(stmts)) + "\n"
    ours = read_effective(ast.parse(text), "django", SETTINGS, namespace="CELERY", uppercase_only=True)
    theirs, error = run_module(text, flag, namespace="CELERY", uppercase_only=True)
    judge(ours, theirs, error)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(statements, st.booleans())
def test_class_form(stmts, flag):
    body = render_statements(stmts, "    ") or ["    pass"]
    text = "class Config:\n" + "\n".join(body) + "\n"
    tree = ast.parse(text)
    ours = read_effective(tree, "module", SETTINGS, namespace="CELERY", scope=tree.body[0].body)
    namespace = {"FLAG": flag}
    exec(compile(text, "generated", "exec"), namespace)
    theirs, error = celery_sees(lambda app: app.config_from_object(namespace["Config"]))
    judge(ours, theirs, error)


pairs = st.lists(st.tuples(st.sampled_from(NAMES), VALUES), min_size=0, max_size=6)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs)
def test_mapping_form(items):
    text = "CONFIG = {%s}\n" % ", ".join("%r: %s" % (k, v) for k, v in items)
    tree = ast.parse(text)
    ours = read_effective(tree, "mapping", SETTINGS, namespace="CELERY", mapping=tree.body[0].value)
    namespace = {}
    exec(compile(text, "generated", "exec"), namespace)
    theirs, error = celery_sees(lambda app: app.config_from_object(namespace["CONFIG"]))
    judge(ours, theirs, error)


call = st.tuples(st.sampled_from(["keywords", "dict", "mapping"]), pairs)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(call, min_size=1, max_size=3))
def test_update_form(calls):
    lines = ["from celery import Celery", "app = Celery('judge', set_as_current=False)"]
    for number, (shape, items) in enumerate(calls):
        if shape == "keywords":
            unique = dict(items)  # Python itself refuses a keyword given twice
            lines.append("app.conf.update(%s)" % ", ".join("%s=%s" % kv for kv in unique.items()))
        elif shape == "dict":
            lines.append("app.conf.update({%s})" % ", ".join("%r: %s" % kv for kv in items))
        else:
            lines.append("OPTIONS_%d = {%s}" % (number, ", ".join("%r: %s" % kv for kv in items)))
            lines.append("app.conf.update(**OPTIONS_%d)" % number)
    text = "\n".join(lines) + "\n"
    src = Source(text.encode())
    target = find_target(src, "app.conf.update", "CELERY")
    ours = read_effective(src.tree, "update", SETTINGS, namespace="CELERY", calls=[c for _r, c in target.calls])
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(text, "generated", "exec"), namespace)
    app = namespace["app"]
    try:
        theirs, error = dict((s, app.conf[s]) for s in SETTINGS), None
    except ImproperlyConfigured as exc:
        theirs, error = None, exc
    judge(ours, theirs, error)


def test_zz_report_counts():
    """Not a check of its own: prints how many examples ran and how many values were proven."""
    print("effective-property: %(examples)d examples, %(proven)d proven values, "
          "%(refused_by_celery)d configs Celery refused" % counted)
    assert counted["examples"] >= 5 * EXAMPLES * 0.9
