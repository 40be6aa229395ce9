"""The shared safe write through real ansible-playbook: special files, links, races, secrets."""
import os
import stat
import subprocess
import threading

import pytest

from harness.collection import COLLECTIONS_ROOT
from harness.ansible_runner import run_module

LEAN = {"task_ignore_result": True, "result_expires": 600}


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "celeryconfig.py"
    path.write_bytes(b"broker_url = 'redis://:hunter2@localhost:6379/0'\n"
                     b"result_backend = 'redis://:hunter2@localhost:6379/1'\n"
                     b"result_expires = 86400\n")
    return path


@pytest.mark.parametrize("path", ["/dev/null", "/dev/zero"])
def test_celery_config_refuses_a_device_and_leaves_it(ansible_module, path):
    result = ansible_module("celery_config", dict(path=path, settings=LEAN))
    assert result["failed"] is True and "a character device, not a regular file" in result["msg"], result
    assert stat.S_ISCHR(os.stat(path).st_mode)


def test_celery_config_refuses_a_fifo_without_hanging(ansible_module, tmp_path):
    fifo = tmp_path / "celeryconfig.py"
    os.mkfifo(str(fifo))
    result = ansible_module("celery_config", dict(path=str(fifo), settings=LEAN), timeout=120)
    assert result["failed"] is True and "a FIFO" in result["msg"], result
    assert stat.S_ISFIFO(os.stat(str(fifo)).st_mode)


def test_redis_memory_persist_file_refuses_dev_null(redis_factory, ansible_module):
    server = redis_factory()
    result = ansible_module("redis_memory", dict(server.login(), maxmemory="64mb", maxmemory_policy="volatile-ttl",
                                                 persist="file", config_file="/dev/null"))
    assert result["failed"] is True and "not a regular file" in result["msg"], result
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_size_cap_option(ansible_module, config):
    result = ansible_module("celery_config", dict(path=str(config), settings=LEAN, max_file_size=50))
    assert result["failed"] is True and "more than the limit of 50" in result["msg"], result
    assert ansible_module("celery_config", dict(path=str(config), settings=LEAN, max_file_size=4096))["changed"]


def test_url_passwords_are_masked_in_changes_diff_and_effective(ansible_module, config):
    settings = dict(LEAN, result_backend="redis://:n3wpass@localhost:6379/2")
    result = ansible_module("celery_config", dict(path=str(config), settings=settings), diff=True)
    assert result["changed"] is True, result
    output = ansible_module.last_run.output
    for secret in ("hunter2", "n3wpass"):
        assert secret not in output, "a URL password in the ansible-playbook output"
    change = [c for c in result["changes"] if c["setting"] == "result_backend"][0]
    assert "********" in change["before"] and "********" in change["after"]
    assert result["effective"]["result_backend"]["value"] == "redis://:********@localhost:6379/2"
    assert b"n3wpass" in config.read_bytes(), "the file itself holds the real value"


def test_hard_link_refused_then_written_in_place_with_unsafe_writes(ansible_module, config, tmp_path):
    other = tmp_path / "release-copy.py"
    os.link(str(config), str(other))
    original = config.read_bytes()
    refused = ansible_module("celery_config", dict(path=str(config), settings=LEAN))
    assert refused["failed"] is True and "2 hard links" in refused["msg"], refused
    assert config.read_bytes() == other.read_bytes() == original
    done = ansible_module("celery_config", dict(path=str(config), settings=LEAN, unsafe_writes=True))
    assert done["changed"] is True, done
    assert other.read_bytes() == config.read_bytes() != original
    assert os.stat(str(other)).st_ino == os.stat(str(config)).st_ino


def test_read_only_file_refused_unless_allowed(ansible_module, config):
    os.chmod(str(config), 0o444)
    refused = ansible_module("celery_config", dict(path=str(config), settings=LEAN))
    assert refused["failed"] is True and "read-only" in refused["msg"], refused
    done = ansible_module("celery_config", dict(path=str(config), settings=LEAN, allow_read_only=True))
    assert done["changed"] is True and stat.S_IMODE(os.stat(str(config)).st_mode) == 0o444


def test_two_runs_at_once_never_lose_an_update(config, tmp_path):
    """Two playbooks edit one file at once; whatever interleaving happens, no change is lost."""
    for attempt in range(2):
        config.write_bytes(b"broker_url = 'redis://localhost:6379/0'\nresult_expires = 86400\n")
        results = {}

        def run(name, settings):
            folder = tmp_path / ("%s-%d" % (name, attempt))
            folder.mkdir()
            results[name] = run_module("celery_config", dict(path=str(config), settings=settings),
                                       COLLECTIONS_ROOT, folder)[0]

        threads = [threading.Thread(target=run, args=("expires", {"result_expires": 600})),
                   threading.Thread(target=run, args=("ignore", {"task_ignore_result": True}))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        final = config.read_bytes()
        for name, marker in (("expires", b"result_expires = 600\n"), ("ignore", b"task_ignore_result = True\n")):
            result = results[name]
            if result.get("changed"):
                assert marker in final, "run %s reported changed but its change is gone: %r" % (name, final)
            else:
                assert result["failed"] and "changed while this run worked on it" in result["msg"], result
        assert not any(name.endswith(".tmp") for name in os.listdir(str(tmp_path)))


def test_immutable_config_gives_a_clear_error(ansible_module, config):
    assert subprocess.run(["chattr", "+i", str(config)], check=False).returncode == 0
    try:
        result = ansible_module("celery_config", dict(path=str(config), settings=LEAN))
    finally:
        subprocess.run(["chattr", "-i", str(config)], check=True)
    assert result["failed"] is True and "immutable" in result["msg"], result
