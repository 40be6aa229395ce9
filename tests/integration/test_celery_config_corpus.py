"""The corpus: config files in the shapes real projects use, through ansible-playbook, judged by Celery.

Every case runs four times (check, apply, check, apply) in one playbook per pass. A case passes
when the rewrite takes effect for the loader the file implies (Celery's own
``config_from_object`` on the module, a class, the Django namespace, or the app the file builds
with ``config_source``/``conf.update``), or when the file is refused byte-identical with a
message that names the line.
"""
import importlib
import os
import shutil
import sys
import types
import warnings

import pytest
import yaml
from celery import Celery

from harness.collection import COLLECTIONS_ROOT
from harness.ansible_runner import run_playbook

CORPUS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "celery_configs", "corpus")
LEAN = {"task_ignore_result": True, "result_expires": 600}
MODULE = "celery_ops.lean_results.celery_config"


class Case(object):
    def __init__(self, case_id, fixture, dest, loader, expect, settings=None, extra=None, bullet=""):
        self.id = case_id
        self.fixture = fixture
        self.dest = dest          # where the file lives, relative to the case folder
        self.loader = loader      # module | class:NAME | django | app
        self.expect = expect      # "applied" or the line a refusal must name
        self.settings = settings or LEAN
        self.extra = extra or {}
        self.bullet = bullet


CASES = [
    Case("django-old-and-new-names", "django_old_and_new_settings.py", "shop/settings.py", "django", "applied",
         dict(LEAN, task_default_queue="lean"), bullet="Django: old and new CELERY_ names coexist; old edited in place"),
    Case("django-lowercase-names", "django_lowercase_settings.py", "site/settings/base.py", "django", "applied",
         bullet="Django detection (MIDDLEWARE, settings/*.py) with lowercase names: CELERY_ names written"),
    Case("django-star-import-base", "django_star_production.py", "api/settings/production.py", "django",
         "applied", bullet="Django settings/*.py by path, after a star import"),
    Case("config-source-dict", "config_source_dict.py", "proj/celery.py", "app", "applied",
         dict(LEAN, result_failure_expires=604800), bullet="dict passed as config_source; Celery 5.7 setting"),
    Case("config-from-object-dict", "config_from_object_dict.py", "worker/app.py", "app", "applied",
         extra={"object": "CONFIG"}, bullet="object: NAME for a top-level dict given to config_from_object"),
    Case("module-and-dict-ambiguous", "module_and_dict_ambiguous.py", "amb/celeryconfig.py", "module", 6,
         bullet="auto mode refuses module-level settings next to a settings dict"),
    Case("update-dict-literal", "update_dict_literal.py", "tasks/tasks.py", "app", "applied",
         bullet="conf.update({...}) dict literal edited in place"),
    Case("update-mapping-old-names", "update_mapping_old_names.py", "legacy/app.py", "app", "applied",
         bullet="conf.update(**options) with old names: old names written into options"),
    Case("update-mapping-single", "update_mapping_single.py", "api/app.py", "app", "applied",
         bullet="conf.update(**SETTINGS) that sets result_expires: edited in its dict, no TypeError"),
    Case("update-mapping-bound-twice", "update_mapping_duplicate.py", "api2/app.py", "app", 11,
         bullet="**mapping that cannot be proven (bound twice): refused with its line"),
    Case("update-mapping-call", "update_mapping_call.py", "dyn/app.py", "app", 9,
         bullet="**load_settings(): refused with its line"),
    Case("comment-inside-value", "comment_in_value.py", "cmt/celeryconfig.py", "module", "applied",
         bullet="tokenize spans: a comment inside a multi-line value survives"),
    Case("settings-class", "settings_class.py", "cls/celeryconfig.py", "class:Config", "applied",
         bullet="class body as the config object"),
    Case("star-import-after", "star_after_settings.py", "star/celeryconfig.py", "module", 5,
         bullet="a star import after the settings: cannot prove, refused"),
    Case("several-dynamic-values", "several_dynamic.py", "dyn2/celeryconfig.py", "module", 5,
         bullet="all problems in one refusal, each with its line"),
    Case("legacy-module", "legacy_module.py", "old/celeryconfig.py", "module", "applied",
         bullet="old names without a namespace: written in the old style"),
    Case("branches", "branches.py", "br/celeryconfig.py", "module", "applied",
         bullet="module order and if/else: every branch that can win is set"),
    Case("bom-crlf", "bom_crlf.py", "bom/celeryconfig.py", "module", "applied",
         bullet="CRLF and BOM preserved"),
    Case("symlinked-release", "settings_class.py", "etc/celeryconfig.py", "class:Config", "applied",
         extra={"link_to": "srv/current/celeryconfig.py"}, bullet="symlink followed: target edited, link kept"),
]


def lay_out(root, case):
    folder = root / case.id
    dest = folder / case.dest
    dest.parent.mkdir(parents=True)
    real = dest
    if "link_to" in case.extra:
        real = folder / case.extra["link_to"]
        real.parent.mkdir(parents=True)
        os.symlink(str(real), str(dest))
    shutil.copy(os.path.join(CORPUS, case.fixture), str(real))
    if case.fixture == "django_star_production.py":
        shutil.copy(os.path.join(CORPUS, "django_star_base.py"), str(dest.parent / "corpus_django_star_base.py"))
    return dest, real


def task_args(case, dest):
    args = dict(path=str(dest), settings=case.settings)
    args.update(dict((k, v) for k, v in case.extra.items() if k != "link_to"))
    return args


def load(case, path):
    """Celery's loader in the form the file implies; returns the app's conf."""
    folder = os.path.dirname(str(path))
    name = "corpus_%s_%d" % (os.path.splitext(os.path.basename(str(path)))[0], id(case))
    spec = importlib.util.spec_from_file_location(name, str(path))
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, folder)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spec.loader.exec_module(module)
            if case.loader == "app":
                app = module.app
            else:
                app = Celery("judge", set_as_current=False)
                if case.loader == "django":  # django.conf.settings keeps only UPPERCASE names
                    holder = types.SimpleNamespace(**dict((k, v) for k, v in vars(module).items() if k.isupper()))
                    app.config_from_object(holder, namespace="CELERY")
                elif case.loader.startswith("class:"):
                    app.config_from_object(getattr(module, case.loader.split(":", 1)[1]))
                else:
                    app.config_from_object(module)
            return dict((key, app.conf[key]) for key in case.settings)
    finally:
        sys.path.remove(folder)
        sys.modules.pop("corpus_django_star_base", None)


def write_play(path, cases, dests):
    tasks = [{"name": case.id, MODULE: task_args(case, dests[case.id]), "ignore_errors": True}
             for case in cases]
    with open(str(path), "w") as handle:
        yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": tasks}], handle)


def test_corpus_four_runs_judged_by_celery(tmp_path):
    root = tmp_path / "corpus"
    dests, reals, originals = {}, {}, {}
    for case in CASES:
        dests[case.id], reals[case.id] = lay_out(root, case)
        originals[case.id] = reals[case.id].read_bytes()
    before = dict((case.id, load(case, reals[case.id])) for case in CASES if case.expect == "applied")
    play = tmp_path / "corpus.yml"
    write_play(play, CASES, dests)

    passes = []
    for check in (True, False, True, False):
        run = run_playbook(str(play), COLLECTIONS_ROOT, check=check, diff=True)
        results = run.results("celery_config")
        assert len(results) == len(CASES), run.output
        passes.append(dict((case.id, result) for case, result in zip(CASES, results)))
        if check:
            for case in CASES:
                if passes[-1][case.id].get("changed") and len(passes) == 1:
                    assert reals[case.id].read_bytes() == originals[case.id], "check mode wrote %s" % case.id

    failures = []
    for case in CASES:
        first, apply, recheck, again = (p[case.id] for p in passes)
        try:
            judge(case, first, apply, recheck, again, reals[case.id], dests[case.id], originals[case.id],
                  before.get(case.id))
        except AssertionError as exc:
            failures.append("%s: %s" % (case.id, exc))
    assert not failures, "\n".join(failures)


def judge(case, first, apply, recheck, again, real, dest, original, before):
    if case.expect != "applied":
        for result in (first, apply, recheck, again):
            assert result["failed"] is True, result
            assert "%s:%d:" % (dest, case.expect) in result["msg"], result["msg"]
        assert real.read_bytes() == original, "a refused file changed"
        return
    for result in (first, apply, recheck, again):
        assert not result["failed"], result.get("msg")
    assert first["changed"] is True and apply["changed"] is True, (first, apply)
    assert recheck["changed"] is False and again["changed"] is False, (recheck, again)
    assert first["changes"] == apply["changes"]
    seen = load(case, real)
    for setting, value in case.settings.items():
        assert seen[setting] == value, "Celery sees %s=%r, asked %r" % (setting, seen[setting], value)
        assert apply["effective"][setting]["value"] == value, apply["effective"]
    assert any(seen[s] != before[s] for s in case.settings), "nothing Celery sees changed"
    new = real.read_bytes()
    CHECKS.get(case.id, lambda *a: None)(original, new, apply, dest)


def _django_old_and_new(original, new, result, dest):
    # old names renamed in place (Celery 5.2-5.6 never read them under the namespace), comments kept
    assert b"CELERY_TASK_DEFAULT_QUEUE = 'lean'  # old name: only Celery 5.7 falls back to it\n" in new
    assert b"CELERY_RESULT_EXPIRES = 600  # a week, for the reports page\n" in new
    assert b"CELERY_DEFAULT_QUEUE" not in new and b"CELERY_TASK_RESULT_EXPIRES" not in new
    assert "s3cret" not in result["diff"][0]["after"], "a URL password in the diff"


def _lowercase(original, new, result, dest):
    assert b"CELERY_RESULT_EXPIRES = 600\n" in new and b"result_expires = 86400\n" in new
    assert result["style"] == "django"


def _dict_in_place(original, new, result, dest):
    assert new.count(b"result_expires") == 1
    assert b'"result_expires": 600,  # three days\n' in new or b'"result_expires": 600,  # a day\n' in new


def _old_names(original, new, result, dest):
    assert b'"CELERY_IGNORE_RESULT": True' in new and b'"CELERY_TASK_RESULT_EXPIRES": 600' in new
    assert b"app.conf.update(**options)\n" in new


def _comment(original, new, result, dest):
    assert b"    600  # ops asked for a day in TICKET-1432\n" in new


def _bom_crlf(original, new, result, dest):
    assert new.startswith(b"\xef\xbb\xbf") and new.count(b"\r\n") == new.count(b"\n")


def _symlink(original, new, result, dest):
    assert os.path.islink(str(dest)), "the symlink was replaced"
    assert result["link_target"].endswith("srv/current/celeryconfig.py")


CHECKS = {
    "django-old-and-new-names": _django_old_and_new,
    "django-lowercase-names": _lowercase,
    "update-dict-literal": _dict_in_place,
    "config-source-dict": _dict_in_place,
    "update-mapping-old-names": _old_names,
    "comment-inside-value": _comment,
    "bom-crlf": _bom_crlf,
    "symlinked-release": _symlink,
}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_case_names_its_bullet(case):
    assert case.bullet and os.path.exists(os.path.join(CORPUS, case.fixture))
