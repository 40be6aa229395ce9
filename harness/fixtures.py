"""pytest fixtures shared by every test: real Redis servers, Ansible runs, Celery workers."""
import pytest

from harness.collection import COLLECTIONS_ROOT
from harness.ansible_runner import run_module, run_playbook
from harness.celery_worker import CeleryWorker
from harness.redis_server import RedisServer


def stopped_at_end(make):
    """The body of a factory fixture: ``make(index, *args, **kwargs)`` builds something with
    ``start()`` and ``stop()``; the fixture hands out a ``start(*args, **kwargs)`` and, at the end
    of the test, stops everything it started (also one whose start failed half-way).
    """
    started = []

    def start(*args, **kwargs):
        thing = make(len(started), *args, **kwargs)
        started.append(thing)
        return thing.start()

    yield start
    for thing in started:
        thing.stop()


@pytest.fixture
def redis_factory(tmp_path):
    """Start real redis-servers: ``redis_factory(password=..., config_file=True, acl_users=[...])``.

    Every server it started is stopped by pid at the end of the test.
    """
    yield from stopped_at_end(lambda index, **kwargs: RedisServer(tmp_path / ("redis-%d" % index), **kwargs))


@pytest.fixture
def redis_server(redis_factory):
    """One plain real redis-server on a free port."""
    return redis_factory()


@pytest.fixture
def ansible_module(tmp_path):
    """Run a module through real ansible-playbook: ``ansible_module(name, args, check=, diff=)``.

    Returns the module's result dict (``failed``/``msg`` on failure); the whole run, with its
    text output, is on ``ansible_module.last_run``.
    """
    def run(module, args, **kwargs):
        result, playbook_run = run_module(module, args, COLLECTIONS_ROOT, tmp_path, **kwargs)
        run.last_run = playbook_run
        return result

    run.last_run = None
    return run


@pytest.fixture
def ansible_playbook():
    """Run a playbook file through real ansible-playbook; returns a PlaybookRun."""
    def run(playbook, **kwargs):
        return run_playbook(str(playbook), COLLECTIONS_ROOT, **kwargs)

    return run


@pytest.fixture
def celery_worker_factory(tmp_path):
    """Start real Celery workers: ``celery_worker_factory(app, app_dir, env={...})``."""
    def make(index, app, app_dir, **kwargs):
        kwargs.setdefault("log_path", str(tmp_path / ("worker-%d.log" % index)))
        return CeleryWorker(app, app_dir, **kwargs)

    yield from stopped_at_end(make)
