"""The celery_tune role's tags: every phase answers to its celery_tune_* name, and for one release
to the old unprefixed name, on exactly the same tasks."""
import glob
import os

import pytest
import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE = os.path.join(REPO_ROOT, "roles", "celery_tune")
PHASES = ["audit", "config", "restart", "redis", "verify", "report"]


def _yaml(*parts):
    with open(os.path.join(ROLE, *parts)) as handle:
        return yaml.safe_load(handle)


def _imports():
    """``{task file: tags}`` of the phases main.yml imports."""
    block = _yaml("tasks", "main.yml")[0]["block"]
    return dict((task["ansible.builtin.import_tasks"], task["tags"]) for task in block)


def test_deprecated_names_are_the_old_phase_tags():
    assert _yaml("vars", "main.yml")["_celery_tune_deprecated_tags"] == PHASES


@pytest.mark.parametrize("task_file, tags", sorted(_imports().items()), ids=sorted(_imports()))
def test_each_old_tag_stands_beside_its_prefixed_name(task_file, tags):
    unprefixed = [tag for tag in tags if tag in PHASES]
    prefixed = [tag for tag in tags if tag.startswith("celery_tune_")]
    assert tags == ["always"] or (prefixed and ["celery_tune_" + tag for tag in unprefixed] == prefixed), tags
    assert set(tags) <= set(PHASES) | set("celery_tune_" + phase for phase in PHASES) | {"always"}, tags


@pytest.mark.parametrize("task_file, wanted", [
    pytest.param("preflight.yml", ["always"], id="preflight-always"),
    pytest.param("config.yml", ["celery_tune_config"], id="config"),
    pytest.param("redis.yml", ["celery_tune_redis"], id="redis"),
    # The verdict fails the play under --tags celery_tune_verify and --skip-tags celery_tune_report.
    pytest.param("verify_verdict.yml", ["celery_tune_verify"], id="verdict-verify-only"),
    pytest.param("report.yml", ["celery_tune_report"], id="report"),
])
def test_phase_tags(task_file, wanted):
    assert [tag for tag in _imports()[task_file] if tag not in PHASES] == wanted


def test_no_task_file_tags_a_task_with_a_phase_name():
    """Phases are tagged in main.yml only; inside a phase a task is at most `always` (the state record)."""
    for path in glob.glob(os.path.join(ROLE, "tasks", "*.yml")):
        if path.endswith("main.yml"):
            continue
        with open(path) as handle:
            text = handle.read()
        tagged = [line.strip() for line in text.splitlines() if line.strip().startswith("tags:")]
        assert all(line == "tags: [always]" for line in tagged), (path, tagged)
