"""pytest fixtures shared by every test: real Redis servers, Ansible runs, Celery workers."""
import pytest

from tests.conftest import COLLECTIONS_ROOT
from tests.helpers.ansible_runner import run_module, run_playbook
from tests.helpers.celery_worker import CeleryWorker
from tests.helpers.redis_server import RedisServer


@pytest.fixture
def redis_factory(tmp_path):
    """Start real redis-servers: ``redis_factory(password=..., config_file=True, acl_users=[...])``.

    Every server it started is stopped by pid at the end of the test.
    """
    started = []

    def start(**kwargs):
        server = RedisServer(tmp_path / ("redis-%d" % len(started)), **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def redis_server(redis_factory):
    """One plain real redis-server on a free port."""
    return redis_factory()


@pytest.fixture
def ansible_module(tmp_path):
    """Run a module through real ansible-playbook: ``ansible_module(name, args, check=, diff=)``.

    Returns the module's result dict (``failed``/``msg`` on failure); the whole run is on
    ``result["_run"]`` is not added: use ``ansible_module.last_run`` for the output.
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
    started = []

    def start(app, app_dir, **kwargs):
        kwargs.setdefault("log_path", str(tmp_path / ("worker-%d.log" % len(started))))
        worker = CeleryWorker(app, app_dir, **kwargs)
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()
