"""celery_task_audit's pure core: discovery, names, options, and who needs stored results."""
import os
import textwrap

import pytest
import yaml

from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit import (
    KINDS,
    VALID_OPTIONS,
    TaskAuditError,
    audit,
    find_source_files,
    module_name_for,
)

FIXTURE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "fixtures", "audit_app")

APP = """
from celery import Celery
app = Celery("proj")
"""

# A small app most pattern cases build on: three tasks in a package.
TASKS = """
from proj.app import app

@app.task
def alpha(x):
    return x

@app.task
def beta(x):
    return x

@app.task
def gamma(x):
    return x
"""


def write_tree(root, files):
    for rel, text in files.items():
        path = os.path.join(str(root), rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(textwrap.dedent(text))
    return str(root)


def audit_tree(root, files, **kwargs):
    return audit([write_tree(root, files)], **kwargs)


def needs(result):
    """{task name: sorted reason kinds} for the tasks that need results."""
    return {t["name"]: sorted({r["kind"] for r in t["reasons"]})
            for t in result["tasks"] if t["needs_result"]}


def app_with(caller, extra=None):
    files = {"proj/__init__.py": "", "proj/app.py": APP, "proj/tasks.py": TASKS,
             "proj/caller.py": "from celery import chain, chord, group, signature\n"
                               "from celery.result import AsyncResult\n"
                               "from proj.app import app\n"
                               "from proj.tasks import alpha, beta, gamma\n"
                               "from proj import tasks\n" + textwrap.dedent(caller)}
    files.update(extra or {})
    return files


A, B, G = "proj.tasks.alpha", "proj.tasks.beta", "proj.tasks.gamma"

PATTERNS = [
    pytest.param("def f():\n    return alpha.delay(1).get(timeout=5)\n",
                 {A: ["result_read"]}, id="delay-get"),
    pytest.param("def f():\n    r = alpha.apply_async((1,))\n    while not r.ready():\n        pass\n",
                 {A: ["result_read"]}, id="variable-ready"),
    pytest.param("def f():\n    r = alpha.delay(1)\n    s = r\n    return s.state\n",
                 {A: ["result_read"]}, id="variable-copy-state"),
    pytest.param("def f():\n    alpha.delay(1)\n    beta.apply_async((2,), countdown=3)\n",
                 {}, id="fire-and-forget"),
    pytest.param("def f():\n    rs = [alpha.delay(i) for i in range(3)]\n"
                 "    return [r.get() for r in rs]\n", {A: ["result_read"]}, id="list-comprehension"),
    pytest.param("def f(names):\n    rs = []\n    for n in names:\n        rs.append(beta.delay(n))\n"
                 "    for name, r in zip(names, rs):\n        print(name, r.result)\n",
                 {B: ["result_read"]}, id="append-then-zip"),
    pytest.param("def f(keys):\n    jobs = {k: alpha.delay(k) for k in keys}\n    return jobs['x'].info\n",
                 {A: ["result_read"]}, id="dict-of-results"),
    pytest.param("import itertools\ndef f():\n    a = [alpha.delay(1)]\n    b = [beta.delay(2)]\n"
                 "    for r in itertools.chain(a, b):\n        r.wait()\n",
                 {A: ["result_read"], B: ["result_read"]}, id="itertools-chain-not-canvas"),
    pytest.param("def f():\n    return alpha.s(1).delay().successful()\n",
                 {A: ["result_read"]}, id="s-delay"),
    pytest.param("def f():\n    return signature('proj.tasks.beta', args=(1,)).apply_async().failed()\n",
                 {B: ["result_read"]}, id="signature-by-name"),
    pytest.param("def f():\n    return app.send_task('proj.tasks.gamma').get()\n",
                 {G: ["result_read"]}, id="send-task-literal"),
    pytest.param("def f():\n    app.send_task('proj.tasks.gamma')\n", {}, id="send-task-not-read"),
    pytest.param("def f(name):\n    return app.send_task(name).get()\n",
                 {A: ["unknown"], B: ["unknown"], G: ["unknown"]}, id="send-task-runtime-name"),
    pytest.param("def f(name):\n    return getattr(tasks, name).delay().get()\n",
                 {A: ["unknown"], B: ["unknown"], G: ["unknown"]}, id="getattr-dynamic-dispatch"),
    pytest.param("def f(name):\n    return app.tasks[name].delay().get()\n",
                 {A: ["unknown"], B: ["unknown"], G: ["unknown"]}, id="registry-lookup"),
    pytest.param("def f(name):\n    getattr(tasks, name).delay()\n", {}, id="getattr-not-read"),
    pytest.param("def f():\n    return chain(alpha.s(1), beta.s(), gamma.s()).apply_async().get()\n",
                 {G: ["chain_result_read"]}, id="chain-last-read"),
    pytest.param("def f():\n    chain(alpha.s(1), beta.s(), gamma.s()).apply_async()\n",
                 {}, id="chain-not-read"),
    pytest.param("def f():\n    return (alpha.s(1) | beta.s()).delay().get()\n",
                 {B: ["chain_result_read"]}, id="pipe-chain-read"),
    pytest.param("def f():\n    r = chain(alpha.s(1), beta.s(), gamma.s())()\n    return r.parent.get()\n",
                 {A: ["chain_result_read"], B: ["chain_result_read"], G: ["chain_result_read"]},
                 id="chain-parent-read-conservative"),
    pytest.param("def f():\n    chord([alpha.s(i) for i in range(3)], beta.s()).apply_async()\n",
                 {A: ["chord_header"]}, id="chord-header-always"),
    pytest.param("def f():\n    return chord([alpha.s(i) for i in range(3)])(beta.s()).get()\n",
                 {A: ["chord_header"], B: ["chord_body_result_read"]}, id="chord-body-read"),
    pytest.param("def f():\n    return (group(alpha.s(1), beta.s(2)) | gamma.s()).delay().get()\n",
                 {A: ["chord_header"], B: ["chord_header"], G: ["chord_body_result_read"]},
                 id="group-pipe-becomes-chord"),
    pytest.param("def f():\n    chain(group(alpha.s(1), beta.s(2)), gamma.s()).delay()\n",
                 {A: ["chord_header"], B: ["chord_header"]}, id="chain-group-becomes-chord"),
    pytest.param("def f():\n    return group(alpha.s(i) for i in range(3)).apply_async().join()\n",
                 {A: ["group_result_read"]}, id="group-joined"),
    pytest.param("def f():\n    g = group([alpha.s(1), beta.s(2)]).delay()\n    return g.get(timeout=3)\n",
                 {A: ["group_result_read"], B: ["group_result_read"]}, id="group-get"),
    pytest.param("def f():\n    group(alpha.s(1), beta.s(2)).delay()\n", {}, id="group-not-read"),
    pytest.param("def f():\n    return alpha.apply_async((1,), link=beta.s(), link_error=gamma.s()).get()\n",
                 {A: ["result_read"]}, id="link-callbacks-not-needed"),
    pytest.param("def f():\n    return alpha.chunks(zip([1], [2]), 1).apply_async().get()\n",
                 {"celery.starmap": ["group_result_read"]}, id="chunks-builtin"),
    pytest.param("def f():\n    return {'id': alpha.delay(1).id}\n"
                 "def status(task_id):\n    return AsyncResult(task_id).state\n",
                 {A: ["id_escapes"]}, id="id-escapes-and-rebuild"),
    pytest.param("def f():\n    return {'id': alpha.delay(1).id}\n", {}, id="id-escapes-no-rebuild"),
    pytest.param("def f():\n    r = alpha.delay(1)\n    return 'job %s' % r\n"
                 "def status(task_id):\n    return app.AsyncResult(task_id).ready()\n",
                 {A: ["id_escapes"]}, id="id-formatted-and-app-rebuild"),
    pytest.param("def f():\n    r = beta.s(1).freeze()\n    save(r.id)\n"
                 "def status(task_id):\n    return tasks.beta.AsyncResult(task_id).get()\n",
                 {B: ["id_escapes"]}, id="freeze-id-and-task-rebuild"),
    pytest.param("from celery.result import result_from_tuple\n"
                 "def f():\n    cache.set('job', alpha.delay(1).as_tuple())\n"
                 "def later():\n    return result_from_tuple(cache.get('job')).get()\n",
                 {A: ["id_escapes"]}, id="as-tuple-and-result-from-tuple"),
    pytest.param("from celery.result import GroupResult\n"
                 "def f():\n    g = group(alpha.s(1), beta.s(2)).delay()\n    g.save()\n"
                 "def later(gid):\n    return GroupResult.restore(gid).join()\n",
                 {A: ["id_escapes"], B: ["id_escapes"]}, id="group-saved-and-restored"),
    pytest.param("class V:\n    def post(self):\n        self.job = alpha.delay(1)\n",
                 {A: ["unknown"]}, id="stored-on-attribute"),
    pytest.param("def f():\n    watch(gamma.delay(1))\n", {G: ["unknown"]}, id="passed-to-unknown-code"),
    pytest.param("def f():\n    yield alpha.delay(1)\n", {A: ["unknown"]}, id="yielded"),
    pytest.param("def f():\n    log.info('sent %s', alpha.delay(1))\n", {}, id="logged-is-harmless"),
    pytest.param("def start():\n    return beta.delay(1)\n", {B: ["unknown"]},
                 id="returned-callers-unknown"),
    pytest.param("def start():\n    return beta.delay(1)\ndef use():\n    return start().get()\n",
                 {B: ["result_read"]}, id="returned-then-read"),
    pytest.param("def start():\n    return beta.delay(1)\ndef use():\n    start()\n",
                 {}, id="returned-then-dropped"),
    pytest.param("def build():\n    return chain(alpha.s(), gamma.s())\n"
                 "def use():\n    return build().delay().get()\n",
                 {G: ["chain_result_read"]}, id="signature-returned-then-read"),
    pytest.param("class Svc:\n    def start(self):\n        return alpha.delay(1)\n"
                 "    def run(self):\n        return self.start().get()\n",
                 {A: ["result_read"]}, id="method-returns-to-self-call"),
    pytest.param("def f():\n    r = alpha.delay(1)\n    def inner():\n        return r.get()\n    return inner\n",
                 {A: ["result_read"]}, id="closure-reads"),
]


@pytest.mark.parametrize("caller, expected", PATTERNS)
def test_patterns(tmp_path, caller, expected):
    assert needs(audit_tree(tmp_path, app_with(caller))) == expected


def test_fixture_app_matches_expected_table():
    with open(os.path.join(FIXTURE_DIR, "expected.yml")) as handle:
        expected = yaml.safe_load(handle)
    result = audit([FIXTURE_DIR])
    got = {t["name"]: t for t in result["tasks"]}
    assert set(got) == set(expected["tasks"])
    assert len([t for t in result["tasks"] if not t.get("builtin")]) >= 25
    wrongly_ignorable = [name for name, entry in expected["tasks"].items()
                         if entry["needs_result"] and not got[name]["needs_result"]]
    assert wrongly_ignorable == []
    for name, entry in expected["tasks"].items():
        assert got[name]["needs_result"] is entry["needs_result"], name
        assert sorted({r["kind"] for r in got[name]["reasons"]}) == sorted(entry["kinds"]), name
    assert result["summary"] == expected["summary"]
    assert set(result["task_overrides"]) == {
        name for name, entry in expected["tasks"].items() if entry["needs_result"]
    } - set(expected["overrides_absent"])
    assert all(v == {"ignore_result": False} for v in result["task_overrides"].values())
    assert [{"kind": w["kind"], "file": os.path.relpath(w["file"], FIXTURE_DIR), "line": w["line"]}
            for w in result["warnings"]] == expected["warnings"]


def test_every_reason_carries_file_and_line():
    result = audit([FIXTURE_DIR])
    reasons = [r for t in result["tasks"] for r in t["reasons"]]
    assert reasons
    for reason in reasons:
        assert reason["kind"] in KINDS
        assert os.path.isfile(reason["file"]), reason
        assert isinstance(reason["line"], int) and reason["line"] > 0, reason
        assert reason["detail"]


def test_update_state_in_task_bodies(tmp_path):
    result = audit_tree(tmp_path, {
        "proj/__init__.py": "", "proj/app.py": APP,
        "proj/tasks.py": """
            from celery import current_task, shared_task
            from proj.app import app

            @app.task(bind=True)
            def bound(self):
                self.update_state(state="PROGRESS", meta={"done": 1})

            @shared_task
            def unbound():
                current_task.update_state(state="PROGRESS")

            @app.task
            def quiet():
                return 1
        """})
    assert needs(result) == {"proj.tasks.bound": ["update_state"], "proj.tasks.unbound": ["update_state"]}
    lines = {t["name"]: t["reasons"][0]["line"] for t in result["tasks"] if t["reasons"]}
    assert lines == {"proj.tasks.bound": 7, "proj.tasks.unbound": 11}


DECORATORS = [
    pytest.param("@app.task\ndef t(): pass\n", "pkg.sub.mod.t", None, id="app-task-bare"),
    pytest.param("@app.task()\ndef t(): pass\n", "pkg.sub.mod.t", None, id="app-task-empty-call"),
    pytest.param("@app.task(name='custom.name', ignore_result=True)\ndef t(): pass\n",
                 "custom.name", True, id="name-option"),
    pytest.param("from celery import shared_task\n@shared_task\ndef t(): pass\n",
                 "pkg.sub.mod.t", None, id="shared-task-bare"),
    pytest.param("from celery import shared_task as st\n@st(ignore_result=False)\ndef t(): pass\n",
                 "pkg.sub.mod.t", False, id="shared-task-aliased"),
    pytest.param("@celery.task(bind=True)\ndef t(self): pass\n", "pkg.sub.mod.t", None,
                 id="celery-task"),
    pytest.param("@other.decorator\n@worker_app.task(queue='q')\ndef t(): pass\n", "pkg.sub.mod.t",
                 None, id="anything-task-stacked"),
    pytest.param("from celery import Task\nclass T(Task):\n    name = 'x.y'\n    def run(self): pass\n",
                 "x.y", None, id="class-with-name"),
    pytest.param("from celery import Task\nclass T(Task):\n    ignore_result = False\n"
                 "    def run(self): pass\nt = app.register_task(T())\n",
                 "pkg.sub.mod.T", False, id="class-registered"),
]


@pytest.mark.parametrize("source, name, ignore", DECORATORS)
def test_task_discovery_and_names(tmp_path, source, name, ignore):
    result = audit_tree(tmp_path, {"pkg/__init__.py": "", "pkg/sub/__init__.py": "",
                                   "pkg/sub/mod.py": source})
    assert [(t["name"], t["ignore_result"]) for t in result["tasks"]] == [(name, ignore)]
    assert result["tasks"][0]["file"].endswith(os.path.join("pkg", "sub", "mod.py"))


def test_not_tasks(tmp_path):
    result = audit_tree(tmp_path, {"m.py": """
        from celery import Task
        import functools

        class Base(Task):
            abstract_thing = 1

        @functools.lru_cache
        def cached():
            pass

        @property
        def task():
            pass
    """})
    assert result["tasks"] == []


NAMES = [
    pytest.param({"top.py": "@app.task\ndef t(): pass\n"}, "top.t", id="top-level-module"),
    pytest.param({"a/__init__.py": "@app.task\ndef t(): pass\n"}, "a.t", id="package-init"),
    pytest.param({"src/a/__init__.py": "", "src/a/b/__init__.py": "", "src/a/b/c.py":
                  "@app.task\ndef t(): pass\n"}, "a.b.c.t", id="import-root-stops-at-src"),
    pytest.param({"a/b/c.py": "@app.task\ndef t(): pass\n", "a/b/__init__.py": ""},
                 "b.c.t", id="namespace-parent-not-a-package"),
]


@pytest.mark.parametrize("files, name", NAMES)
def test_name_follows_the_import_root(tmp_path, files, name):
    result = audit_tree(tmp_path, files)
    assert [t["name"] for t in result["tasks"]] == [name]


def test_module_name_for(tmp_path):
    write_tree(tmp_path, {"p/__init__.py": "", "p/q/__init__.py": "", "p/q/r.py": ""})
    assert module_name_for(str(tmp_path / "p" / "q" / "r.py")) == "p.q.r"
    assert module_name_for(str(tmp_path / "p" / "q" / "__init__.py")) == "p.q"


OPTIONS = [
    pytest.param("ignore_results=True", "ignore_results", "ignore_result", id="ignore_results"),
    pytest.param("acks_lates=True", "acks_lates", "acks_late", id="acks_lates"),
    pytest.param("max_retry=3", "max_retry", "max_retries", id="max_retry"),
    pytest.param("autoretry=(ValueError,)", "autoretry", "autoretry_for", id="autoretry"),
    pytest.param("colour='blue'", "colour", None, id="unknown-no-hint"),
]


@pytest.mark.parametrize("option, bad, hint", OPTIONS)
def test_unknown_options_warn_with_file_and_line(tmp_path, option, bad, hint):
    result = audit_tree(tmp_path, {"m.py": "\n\n@app.task(queue='q', %s)\ndef t():\n    pass\n" % option})
    warnings = [w for w in result["warnings"] if w["kind"] == "unknown_option"]
    assert len(warnings) == 1
    assert warnings[0]["file"].endswith("m.py") and warnings[0]["line"] == 3
    assert "%s=" % bad in warnings[0]["message"]
    assert ("did you mean %s?" % hint in warnings[0]["message"]) if hint else "did you mean" not in \
        warnings[0]["message"]
    assert result["tasks"][0]["ignore_result"] is None


def test_valid_options_do_not_warn(tmp_path):
    result = audit_tree(tmp_path, {"m.py": """
        from celery import Task

        class DbTask(Task):
            db_alias = "default"

        @app.task(bind=True, base=DbTask, db_alias="replica", queue="q", routing_key="r",
                  autoretry_for=(IOError,), retry_backoff=True, retry_jitter=False,
                  max_retries=None, default_retry_delay=5, rate_limit="1/s", time_limit=10,
                  soft_time_limit=5, acks_late=True, reject_on_worker_lost=True, track_started=True,
                  ignore_result=True, store_errors_even_if_ignored=True, serializer="json",
                  priority=3, expires=60, throws=(KeyError,), typing=False, pydantic=False,
                  shared=True, lazy=True)
        def t(self):
            pass
    """})
    assert result["warnings"] == []
    assert result["tasks"][0]["options"]["queue"] == "q"


def test_valid_options_cover_celery_task_attributes():
    from celery.app.task import Task, extract_exec_options

    configured = {attr for attr, _setting in Task.from_config}
    exec_options = set(extract_exec_options.__closure__[0].cell_contents) if \
        extract_exec_options.__closure__ else set()
    for name in configured | exec_options | {"name", "max_retries", "default_retry_delay",
                                             "rate_limit", "throws", "time_limit"}:
        assert name in VALID_OPTIONS, name
        assert hasattr(Task, name) or name in exec_options or name == "store_eager_result", name


def test_dynamic_options_and_names_warn(tmp_path):
    result = audit_tree(tmp_path, {"m.py": """
        OPTS = {"queue": "q"}
        PREFIX = "x"

        @app.task(**OPTS)
        def a():
            pass

        @app.task(name=PREFIX + ".b")
        def b():
            pass
    """})
    assert sorted(w["kind"] for w in result["warnings"]) == ["dynamic_name", "dynamic_options"]
    assert [t["name"] for t in result["tasks"]] == ["m.a", "m.b"]


def test_class_attribute_typo_warns(tmp_path):
    result = audit_tree(tmp_path, {"m.py": """
        from celery import Task

        class T(Task):
            name = "t"
            ignore_results = True
            helper_value = 3

            def run(self):
                pass
    """})
    assert [(w["kind"], w["line"]) for w in result["warnings"]] == [("unknown_option", 6)]


def test_ignore_result_conflict_and_overrides(tmp_path):
    result = audit_tree(tmp_path, app_with(
        "def f():\n    return alpha.delay().get(), beta.delay().get(), gamma.delay().get()\n",
        {"proj/tasks.py": TASKS.replace("@app.task\ndef alpha", "@app.task(ignore_result=True)\ndef alpha")
                               .replace("@app.task\ndef beta", "@app.task(ignore_result=False)\ndef beta")}))
    assert result["task_overrides"] == {A: {"ignore_result": False}, G: {"ignore_result": False}}
    conflicts = [w for w in result["warnings"] if w["kind"] == "ignore_result_conflict"]
    assert len(conflicts) == 1 and "proj.tasks.alpha" in conflicts[0]["message"]
    assert result["summary"] == {"total": 3, "need_result": 3, "can_ignore": 0, "percent_needing": 100.0}


def test_send_task_unknown_literal_warns(tmp_path):
    result = audit_tree(tmp_path, app_with("def f():\n    return app.send_task('elsewhere.task').get()\n"))
    assert needs(result) == {}
    assert [w["kind"] for w in result["warnings"]] == ["unknown_task_name"]


IMPORTS = [
    pytest.param({"proj/caller.py": "from .tasks import alpha\ndef f():\n    return alpha.delay().get()\n"},
                 id="relative-import"),
    pytest.param({"proj/caller.py": "from proj.tasks import *\ndef f():\n    return alpha.delay().get()\n"},
                 id="star-import"),
    pytest.param({"proj/__init__.py": "from .tasks import alpha\n",
                  "proj/caller.py": "import proj\ndef f():\n    return proj.alpha.delay().get()\n"},
                 id="re-exported-by-package"),
    pytest.param({"proj/caller.py": "import proj.tasks as t\ndef f():\n    return t.alpha.delay().get()\n"},
                 id="module-alias"),
    pytest.param({"other/caller.py": "from vendored.proj.tasks import alpha\n"
                                     "def f():\n    return alpha.delay().get()\n"},
                 id="unresolved-import-matches-task-name"),
]


@pytest.mark.parametrize("files", IMPORTS)
def test_import_resolution(tmp_path, files):
    tree = {"proj/__init__.py": "", "proj/app.py": APP, "proj/tasks.py": TASKS}
    tree.update(files)
    assert needs(audit_tree(tmp_path, tree)) == {A: ["result_read"]}


def test_class_based_task_through_instance_and_alias(tmp_path):
    result = audit_tree(tmp_path, {
        "proj/__init__.py": "", "proj/app.py": APP,
        "proj/media.py": """
            from celery import Task
            from proj.app import app

            class Resize(Task):
                name = "media.resize"
                def run(self, w):
                    return w

            class Crop(Task):
                def run(self, w):
                    return w

            resize = app.register_task(Resize())
            crop = app.register_task(Crop())
        """,
        "proj/use.py": """
            from proj.media import Crop, resize
            def f():
                Crop().delay(1)
                return resize.delay(3).get()
        """})
    assert needs(result) == {"media.resize": ["result_read"]}
    assert {t["name"] for t in result["tasks"]} == {"media.resize", "proj.media.Crop"}


def test_syntax_errors_warn_and_the_rest_is_audited(tmp_path):
    # Files that may touch a task are parsed at once; a file without a Celery word is parsed
    # (and reported) only once one of its words matters to the analysis.
    result = audit_tree(tmp_path, app_with("def f():\n    return alpha.delay().get()\n",
                                           {"proj/broken.py": "def f(:\n    pass  # task\n",
                                            "proj/nul.py": "x = 1\x00  # celery\n",
                                            "proj/cold.py": "def g(:\n    pass\n"}))
    assert needs(result) == {A: ["result_read"]}
    broken = {os.path.basename(w["file"]): w for w in result["warnings"] if w["kind"] == "syntax_error"}
    assert set(broken) == {"broken.py", "nul.py"}
    assert broken["broken.py"]["line"] == 1


EXCLUDES = [
    pytest.param([], {"app/tasks.py", "app/migrations/m1.py", "tests/test_x.py", "conftest.py"},
                 id="nothing-excluded"),
    pytest.param(["*/migrations/*"], {"app/tasks.py", "tests/test_x.py", "conftest.py"},
                 id="dir-glob"),
    pytest.param(["tests"], {"app/tasks.py", "app/migrations/m1.py", "conftest.py"}, id="dir-name"),
    pytest.param(["test_*.py", "conftest.py"], {"app/tasks.py", "app/migrations/m1.py"},
                 id="basename-globs"),
    pytest.param(["*.py"], set(), id="everything"),
]


@pytest.mark.parametrize("exclude, kept", EXCLUDES)
def test_exclude_globs(tmp_path, exclude, kept):
    root = write_tree(tmp_path, {"app/tasks.py": "", "app/migrations/m1.py": "",
                                 "tests/test_x.py": "", "conftest.py": "",
                                 ".hidden/h.py": "", "venv/pyvenv.cfg": "", "venv/lib/v.py": "",
                                 "app/__pycache__/c.py": ""})
    found = find_source_files([root], exclude)
    assert {os.path.relpath(p, root) for p in found} == kept


def test_missing_path_raises(tmp_path):
    with pytest.raises(TaskAuditError, match="does not exist"):
        audit([str(tmp_path / "nope")])
    with pytest.raises(TaskAuditError):
        audit([])


def test_single_file_path(tmp_path):
    root = write_tree(tmp_path, {"pkg/__init__.py": "", "pkg/t.py": "@app.task\ndef t():\n    pass\n"})
    result = audit([os.path.join(root, "pkg", "t.py")])
    assert [t["name"] for t in result["tasks"]] == ["pkg.t.t"]


# -- issue 14: names, unparsed files, odd files, the option vocabulary ---------------------------

NAME_CASES = [
    pytest.param({"my-repo/__init__.py": "", "my-repo/pkg/__init__.py": "",
                  "my-repo/pkg/tasks.py": ""}, "my-repo", "my-repo/pkg/tasks.py", "pkg.tasks",
                 id="stray-init-above-a-non-identifier-folder"),
    pytest.param({"app/__init__.py": "", "app/jobs/tasks.py": ""}, "app", "app/jobs/tasks.py",
                 "app.jobs.tasks", id="namespace-package-inside-a-package"),
    pytest.param({"src/proj/__init__.py": "", "src/proj/tasks.py": "",
                  "src/proj/use.py": "from proj.tasks import x\n", "src/__init__.py": ""},
                 ".", "src/proj/tasks.py", "proj.tasks", id="import-root-from-the-apps-imports"),
    pytest.param({"svc-a/tasks.py": ""}, "svc-a", "svc-a/tasks.py", "tasks",
                 id="top-level-file-in-a-non-identifier-folder"),
]


@pytest.mark.parametrize("files, entry, target, name", NAME_CASES)
def test_names_as_celery_registers_them(tmp_path, files, entry, target, name):
    root = write_tree(tmp_path, files)
    result = audit([os.path.join(root, entry)])
    assert not [w for w in result["warnings"] if w["kind"] == "duplicate_module"]
    from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit import Audit
    runner = Audit([os.path.join(root, entry)])
    runner.load()
    names = {m.path: m.celery_name for m in runner.modules.values()}
    assert names[os.path.join(root, entry, os.path.relpath(target, entry))] == name


def test_import_roots_option_names_below_the_root(tmp_path):
    root = write_tree(tmp_path, {"deploy/code/__init__.py": "",
                                 "deploy/code/proj/__init__.py": "",
                                 "deploy/code/proj/tasks.py": "from celery import shared_task\n\n\n"
                                 "@shared_task\ndef alpha():\n    pass\n"})
    assert [t["name"] for t in audit([root])["tasks"]] == ["code.proj.tasks.alpha"]
    rooted = audit([root], import_roots=[os.path.join(root, "deploy", "code")])
    assert [t["name"] for t in rooted["tasks"]] == [A]


NEWER = """
from proj.tasks import alpha, beta

type Ids = list[int]


def run():
    beta.delay(1)
    return alpha.delay(1).get(timeout=5)
"""


def test_unparsed_file_calling_a_helper_that_returns_a_result(tmp_path):
    helper = "from proj.tasks import gamma\n\n\ndef start():\n    return gamma.delay()\n"
    broken = "from proj.helper import start\n\n\ndef view(:\n    return start().get()\n"
    result = audit_tree(tmp_path, app_with("", {"proj/helper.py": helper,
                                                "proj/broken.py": broken}))
    assert needs(result) == {G: ["unknown"]}


# Python 3.14 syntax (unparenthesised except list): no interpreter here parses it, so the file stays
# unparsed whichever Python runs the tests.
NEWEST = """
from proj.tasks import alpha, beta


def run():
    try:
        beta.delay(1)
        return alpha.delay(1).get(timeout=5)
    except ValueError, TypeError:
        return None
"""


def test_unparsed_file_makes_its_tasks_unknown_without_python(tmp_path):
    result = audit_tree(tmp_path, app_with("", {"proj/newer.py": NEWEST}))
    assert needs(result) == {A: ["unknown"], B: ["unknown"]}
    warning = [w for w in result["warnings"] if w["kind"] == "syntax_error"][0]
    assert warning["file"].endswith("newer.py") and warning["line"] == NEWEST.splitlines().index(
        "    except ValueError, TypeError:") + 1
    assert "option python" in warning["message"]


def _pyenv_python(minor):
    import glob
    return sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.%d.*/bin/python3.%d" % (minor, minor))))[-1]


def test_python_option_parses_newer_syntax(tmp_path):
    """The audit on a 3.11 host (a subprocess) reads a 3.12-only file through option python."""
    import json
    import subprocess
    from harness.collection import COLLECTIONS_ROOT
    root = write_tree(tmp_path, app_with("", {"proj/newer.py": NEWER}))
    script = (
        "import json, sys\n"
        "sys.path.insert(0, %r)\n"
        "from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit import audit\n"
        "kwargs = json.loads(sys.argv[1])\n"
        "print(json.dumps(audit([sys.argv[2]], **kwargs)))\n" % COLLECTIONS_ROOT)

    def host_audit(**kwargs):
        out = subprocess.run([_pyenv_python(11), "-c", script, json.dumps(kwargs), root],
                             capture_output=True, text=True, check=True, timeout=120).stdout
        return json.loads(out)

    # The host alone cannot parse the file: its tasks are unknown ...
    assert needs(host_audit()) == {A: ["unknown"], B: ["unknown"]}
    # ... and with the app's 3.12 the read is found and nothing else is flagged.
    result = host_audit(python=_pyenv_python(12))
    assert needs(result) == {A: ["result_read"]}
    assert not [w for w in result["warnings"] if w["kind"] == "syntax_error"]


def test_python_option_must_be_an_interpreter(tmp_path):
    with pytest.raises(TaskAuditError, match="not an executable interpreter"):
        audit_tree(tmp_path, app_with(""), python=str(tmp_path / "nope" / "python"))


def test_tasks_defined_in_an_unparsable_file_are_reported_unknown(tmp_path):
    broken = "from proj.app import app\n\n\n@app.task(name='proj.lost')\ndef lost(:\n    pass\n"
    result = audit_tree(tmp_path, app_with("", {"proj/broken.py": broken}))
    lost = [t for t in result["tasks"] if t["name"] == "proj.lost"]
    assert lost and lost[0]["needs_result"] is True
    assert lost[0]["reasons"][0]["kind"] == "unknown"


def test_fifo_is_skipped_not_opened(tmp_path):
    files = app_with("def f():\n    return alpha.delay(1).get()\n")
    root = write_tree(tmp_path, files)
    os.mkfifo(os.path.join(root, "proj", "pipe.py"))
    result = audit([root])  # would block forever on open()
    assert needs(result) == {A: ["result_read"]}
    assert [w["kind"] for w in result["warnings"]] == ["not_a_file"]


def test_deep_expression_does_not_crash_and_counts_as_unknown(tmp_path):
    deep = "from proj.tasks import beta\nX = %s\n\n\ndef f():\n    return beta.delay(X).get()\n" % (
        " + ".join(["1"] * 5000))
    result = audit_tree(tmp_path, app_with("", {"proj/deep.py": deep}))
    # Python 3.11's parser gives up on the expression (unknown); 3.12+ parses it and sees the read.
    flagged = needs(result)
    assert list(flagged) == [B] and flagged[B] in (["unknown"], ["result_read"])


def test_file_size_cap(tmp_path):
    from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit import Audit
    root = write_tree(tmp_path, app_with("def f():\n    return gamma.delay(1).get()\n"))
    result = Audit([root], max_file_bytes=100).run()
    assert {t["name"] for t in result["tasks"] if t["needs_result"]} >= {G}
    assert any("larger than 100 bytes" in w["message"] for w in result["warnings"])


def test_option_vocabulary_holds_every_attribute_of_the_installed_celery_task():
    from celery.app.task import Task
    public = {n for n in dir(Task) if not n.startswith("_")}
    assert public <= VALID_OPTIONS


@pytest.mark.parametrize("option, hint", [
    pytest.param("ignore_results=True", "did you mean ignore_result?", id="ignore_results"),
    pytest.param("max_retry=3", "did you mean max_retries?", id="max_retry"),
    pytest.param("on_failure=None", None, id="on_failure-is-real"),
    pytest.param("after_return=None", None, id="after_return-is-real"),
])
def test_option_typos(tmp_path, option, hint):
    tasks = "from proj.app import app\n\n\n@app.task(%s)\ndef one():\n    pass\n" % option
    result = audit_tree(tmp_path, {"proj/__init__.py": "", "proj/app.py": APP,
                                   "proj/tasks.py": tasks})
    messages = [w["message"] for w in result["warnings"] if w["kind"] == "unknown_option"]
    if hint is None:
        assert messages == []
    else:
        assert len(messages) == 1 and hint in messages[0]


SOUNDNESS = [
    pytest.param("def dispatch(task, *a):\n    return task.si(*a).apply_async()\n\n\n"
                 "def f():\n    dispatch(beta, 2)\n    return dispatch(alpha, 1).get(timeout=10)\n",
                 {A: ["result_read"]}, id="dispatch-helper-takes-the-task"),
    pytest.param("def f():\n    chain([group(alpha.s(), beta.s()), gamma.si()]).apply_async()\n",
                 {A: ["chord_header"], B: ["chord_header"]}, id="chain-of-a-list-is-a-chord"),
    pytest.param("def f(parts):\n    steps = [group(alpha.s()), gamma.si()]\n"
                 "    chain(*steps).apply_async()\n",
                 {A: ["chord_header"]}, id="chain-of-starred-parts"),
    pytest.param("def f():\n    alpha.delay().frobnicate()\n",
                 {A: ["unknown"]}, id="an-unknown-use-of-a-result-is-unknown"),
    pytest.param("def f(x):\n    x.keep = alpha\n",
                 {A: ["unknown"]}, id="task-stored-on-an-unknown-object"),
    pytest.param("import elsewhere\n\n\ndef f():\n    elsewhere.run(alpha)\n",
                 {A: ["unknown"]}, id="task-handed-to-unknown-code"),
    pytest.param("class Base:\n    def go(self):\n        return self.job.delay()\n\n\n"
                 "class Child(Base):\n    job = beta\n\n    def run(self):\n"
                 "        return super().go().get()\n",
                 {B: ["result_read"]}, id="inherited-method-and-super"),
]


@pytest.mark.parametrize("caller, expected", SOUNDNESS)
def test_soundness(tmp_path, caller, expected):
    assert needs(audit_tree(tmp_path, app_with(caller))) == expected


GETATTR = [
    pytest.param("class P:\n    admin_perms = ()\n\n    def allowed(self, role):\n"
                 "        return getattr(self, '%s_perms' % role).count('x')\n", {},
                 id="getattr-self-perms-is-not-a-task-lookup"),
    pytest.param("def f(obj, role):\n    return getattr(obj, f'{role}_perms').get()\n", {},
                 id="getattr-unknown-object-pattern-matches-no-task"),
    pytest.param("def f(kind):\n    return getattr(tasks, kind).delay().get()\n",
                 {A: ["unknown"], B: ["unknown"], G: ["unknown"]}, id="getattr-tasks-module"),
    pytest.param("def f(obj):\n    return getattr(obj, 'beta').delay().get()\n",
                 {B: ["result_read"]}, id="getattr-unknown-object-named-like-a-task"),
    pytest.param("def f(obj, name):\n    return getattr(obj, name).delay().get()\n", {},
                 id="getattr-ordinary-object-unknown-name"),  # modules are followed as values
]


@pytest.mark.parametrize("caller, expected", GETATTR)
def test_getattr(tmp_path, caller, expected):
    assert needs(audit_tree(tmp_path, app_with(caller))) == expected


COLD = [
    pytest.param({"proj/waiting.py": "def wait_for(handle, seconds):\n"
                                     "    return handle.get(timeout=seconds)\n"},
                 "from proj.waiting import wait_for\n\n\ndef f():\n"
                 "    return wait_for(alpha.delay(1), 5)\n",
                 {A: ["result_read"]}, id="cold-helper-is-parsed-when-called-with-a-result"),
    pytest.param({"proj/registry.py": "from proj.tasks import beta\n\nJOBS = [beta]\n",
                  "proj/runner.py": "from proj.registry import JOBS\n\n\ndef run():\n"
                                    "    return [j.apply_async().get() for j in JOBS]\n"},
                 "", {B: ["result_read"]}, id="cold-module-naming-a-task"),
    pytest.param({"proj/starter.py": "from proj.tasks import gamma\n\n\ndef start():\n"
                                     "    return gamma.apply_async()\n",
                  "proj/view.py": "from proj.starter import start\n\n\ndef view():\n"
                                  "    return start().get()\n"},
                 "", {G: ["result_read"]}, id="cold-caller-of-a-helper-returning-a-result"),
]


@pytest.mark.parametrize("extra, caller, expected", COLD)
def test_cold_modules_are_parsed_again_when_they_matter(tmp_path, extra, caller, expected):
    from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit import Audit
    root = write_tree(tmp_path, app_with(caller, extra))
    runner = Audit([root])
    result = runner.run()
    assert needs(result) == expected
    # The files without a Celery word started cold, and the ones that matter were thawed.
    cold_at_start = [m for m in runner.modules.values() if not m.hot]
    assert cold_at_start and all(not m.cold for m in cold_at_start
                                 if m.path.endswith(tuple(os.path.basename(p) for p in extra)))


def test_tuple_returns_of_mixed_shapes(tmp_path):
    caller = ("def pair(flag):\n    if flag:\n        return 1\n    return alpha.delay(), 2\n\n\n"
              "def f():\n    first, _second = pair(True)\n    return first.get()\n")
    assert needs(audit_tree(tmp_path, app_with(caller))) == {A: ["result_read"]}


MODULE_VALUES = [
    pytest.param("def pick(module, name):\n    return getattr(module, name)\n\n\n"
                 "def f(kind):\n    return pick(tasks, kind).delay().get()\n",
                 {A: ["unknown"], B: ["unknown"], G: ["unknown"]}, id="module-of-tasks-as-an-argument"),
    pytest.param("import importlib\n\n\ndef f(path, name):\n"
                 "    return getattr(importlib.import_module(path), name).delay().get()\n",
                 {A: ["unknown"], B: ["unknown"], G: ["unknown"]}, id="import-module-by-name"),
    pytest.param("def f(row, field):\n    return min(getattr(row, field), 3)\n", {},
                 id="getattr-on-an-ordinary-object"),
]


@pytest.mark.parametrize("caller, expected", MODULE_VALUES)
def test_modules_as_values(tmp_path, caller, expected):
    assert needs(audit_tree(tmp_path, app_with(caller))) == expected


def test_tuple_returned_through_another_helper_keeps_its_positions(tmp_path):
    caller = ("def submit():\n    return beta.delay(), 5\n\n\n"
              "def trigger(flag):\n    if flag:\n        return None, None\n"
              "    if flag is None:\n        return submit()\n    return gamma.delay(), 6\n\n\n"
              "def view(log):\n    _handle, number = trigger(False)\n    log.keep(number)\n")
    assert needs(audit_tree(tmp_path, app_with(caller))) == {}
