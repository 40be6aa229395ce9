"""_safe_file: the one read-and-replace path, on real files, devices, FIFOs, links and users."""
import os
import stat
import subprocess
import sys
import threading

import pytest

from harness.collection import COLLECTIONS_ROOT
from ansible_collections.celery_ops.lean_results.plugins.module_utils import _safe_file
from ansible_collections.celery_ops.lean_results.plugins.module_utils._safe_file import (
    SafeFileError,
    read_regular,
    replace,
)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "celeryconfig.py"
    path.write_bytes(b"result_expires = 5\n")
    return path


def leftovers(folder):
    return sorted(name for name in os.listdir(str(folder)) if name.endswith(".tmp"))


@pytest.mark.parametrize("path, kind", [
    pytest.param("/dev/null", "a character device", id="dev-null"),
    pytest.param("/dev/zero", "a character device", id="dev-zero"),
])
def test_devices_are_refused_without_reading(path, kind):
    with pytest.raises(SafeFileError, match=kind):
        read_regular(path)
    assert stat.S_ISCHR(os.stat(path).st_mode), "the device is still a device"


def test_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "celeryconfig.py"
    os.mkfifo(str(fifo))
    done = []
    worker = threading.Thread(target=lambda: done.append(pytest.raises(SafeFileError, read_regular, str(fifo))))
    worker.start()
    worker.join(5)
    assert done, "reading a FIFO hung"
    assert "a FIFO" in str(done[0].value)


def test_directory_is_refused(tmp_path):
    with pytest.raises(SafeFileError, match="a directory"):
        read_regular(str(tmp_path))


def test_size_cap_refuses_before_reading(config):
    config.write_bytes(b"x = 1\n" * 1000)
    with pytest.raises(SafeFileError, match="more than the limit of 100"):
        read_regular(str(config), max_bytes=100)
    assert read_regular(str(config), max_bytes=6000).data == b"x = 1\n" * 1000


def test_replace_keeps_mode_owner_group_and_cleans_up(config):
    os.chmod(str(config), 0o640)
    os.chown(str(config), 65534, 0)
    snap = read_regular(str(config))
    replace(snap, b"result_expires = 600\n")
    st = os.stat(str(config))
    assert config.read_bytes() == b"result_expires = 600\n"
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 65534, 0)
    assert leftovers(config.parent) == []


def test_symlink_target_is_edited_and_link_kept(tmp_path, config):
    link = tmp_path / "etc" / "celeryconfig.py"
    link.parent.mkdir()
    link.symlink_to(config)
    snap = read_regular(str(link))
    assert snap.real == str(config)
    replace(snap, b"result_expires = 600\n")
    assert os.path.islink(str(link)) and os.readlink(str(link)) == str(config)
    assert config.read_bytes() == b"result_expires = 600\n"


def test_hard_link_refused_unless_unsafe_writes_then_in_place(tmp_path, config):
    other = tmp_path / "other-name.py"
    os.link(str(config), str(other))
    with pytest.raises(SafeFileError, match="2 hard links"):
        replace(read_regular(str(config)), b"result_expires = 600\n")
    assert other.read_bytes() == b"result_expires = 5\n"
    replace(read_regular(str(config)), b"result_expires = 600\n", unsafe_writes=True)
    assert other.read_bytes() == config.read_bytes() == b"result_expires = 600\n"
    assert os.stat(str(other)).st_ino == os.stat(str(config)).st_ino
    assert leftovers(tmp_path) == []


def test_read_only_file_refused_unless_allowed(config):
    os.chmod(str(config), 0o444)
    with pytest.raises(SafeFileError, match="read-only"):
        replace(read_regular(str(config)), b"x = 2\n")
    assert config.read_bytes() == b"result_expires = 5\n"
    replace(read_regular(str(config)), b"x = 2\n", allow_read_only=True)
    assert config.read_bytes() == b"x = 2\n" and stat.S_IMODE(os.stat(str(config)).st_mode) == 0o444


def test_lost_update_is_detected(config):
    first, second = read_regular(str(config)), read_regular(str(config))
    replace(first, b"result_expires = 600\n")
    with pytest.raises(SafeFileError, match="changed while this run worked on it"):
        replace(second, b"result_expires = 700\n")
    assert config.read_bytes() == b"result_expires = 600\n"
    assert leftovers(config.parent) == []


def test_same_size_same_mtime_change_is_caught_by_the_hash(config):
    snap = read_regular(str(config))
    st = os.stat(str(config))
    with open(str(config), "r+b") as handle:
        handle.write(b"RESULT")
    os.utime(str(config), ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(SafeFileError, match="changed while"):
        replace(snap, b"result_expires = 600\n")


def test_validator_failure_leaves_file_and_no_temp(config):
    seen = []

    def validate(temp):
        seen.append(open(temp, "rb").read())
        raise SafeFileError("validator said no")
    with pytest.raises(SafeFileError, match="validator said no"):
        replace(read_regular(str(config)), b"new = 1\n", validate=validate)
    assert seen == [b"new = 1\n"] and config.read_bytes() == b"result_expires = 5\n"
    assert leftovers(config.parent) == []


def test_lock_is_held_by_another_process(config, monkeypatch):
    import fcntl
    monkeypatch.setattr(_safe_file, "LOCK_TIMEOUT", 0.2)
    holder = os.open(str(config), os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        child = subprocess.run(  # pylint: disable=subprocess-run-check
            [sys.executable, "-c", "import sys; sys.path[:0] = sys.argv[2:]\n"
             "from ansible_collections.celery_ops.lean_results.plugins.module_utils._safe_file import *\n"
             "try:\n    replace(read_regular(sys.argv[1]), b'x = 1\\n', lock_timeout=0.3)\n"
             "except SafeFileError as exc:\n    print(exc)\n", str(config)] + sys.path,
            capture_output=True, text=True, timeout=30)
    finally:
        os.close(holder)
    assert "cannot lock" in child.stdout, child
    assert config.read_bytes() == b"result_expires = 5\n"


@pytest.fixture
def open_dir():
    """A folder under /tmp that ``nobody`` can reach (pytest's own tmp_path is 0700 root)."""
    import shutil
    import tempfile
    folder = tempfile.mkdtemp(prefix="lean-safe-file-", dir="/tmp")
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder)


# The system interpreter: nobody cannot reach a pyenv Python under /root (0700). _safe_file needs
# only the stdlib, so the collection's link tree is all the child needs on its path.
NOBODY_PYTHON = "/usr/bin/python3"


def _as_nobody(code, *argv):
    collection_paths = [p for p in sys.path if p.startswith(COLLECTIONS_ROOT)]
    return subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", NOBODY_PYTHON, "-c",
         "import sys; sys.path[:0] = %r\n" % collection_paths + code] + list(argv),
        capture_output=True, text=True, timeout=60, check=False)


NOBODY_REPLACE = (
    "from ansible_collections.celery_ops.lean_results.plugins.module_utils._safe_file import *\n"
    "try:\n    replace(read_regular(sys.argv[1]), b'result_expires = 600\\n')\n    print('replaced')\n"
    "except SafeFileError as exc:\n    print('refused:', exc)\n")


def test_non_root_with_a_foreign_group_refuses_instead_of_changing_it(open_dir):
    import pathlib
    folder = pathlib.Path(open_dir) / "app"
    folder.mkdir()
    os.chown(str(folder), 65534, 0)
    path = folder / "celeryconfig.py"
    path.write_bytes(b"result_expires = 5\n")
    os.chown(str(path), 65534, 0)
    os.chmod(str(path), 0o640)
    child = _as_nobody(NOBODY_REPLACE, str(path))
    assert "refused:" in child.stdout and "group gid 0" in child.stdout, child
    st = os.stat(str(path))
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 65534, 0)
    assert path.read_bytes() == b"result_expires = 5\n" and leftovers(folder) == []


def test_non_root_owner_in_its_group_keeps_mode_and_group(open_dir):
    import pathlib
    folder = pathlib.Path(open_dir) / "app"
    folder.mkdir()
    os.chown(str(folder), 65534, 65534)
    path = folder / "celeryconfig.py"
    path.write_bytes(b"result_expires = 5\n")
    os.chown(str(path), 65534, 65534)
    os.chmod(str(path), 0o640)
    child = _as_nobody(NOBODY_REPLACE, str(path))
    assert "replaced" in child.stdout, child
    st = os.stat(str(path))
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 65534, 65534)
    assert path.read_bytes() == b"result_expires = 600\n"


def test_immutable_file_gives_a_clear_error(config):
    chattr = subprocess.run(["chattr", "+i", str(config)], capture_output=True, text=True, check=False)
    assert chattr.returncode == 0, "chattr does not work on this filesystem: %s" % chattr.stderr
    try:
        with pytest.raises(SafeFileError, match="immutable"):
            replace(read_regular(str(config)), b"result_expires = 600\n")
    finally:
        subprocess.run(["chattr", "-i", str(config)], check=True)
    assert config.read_bytes() == b"result_expires = 5\n" and leftovers(config.parent) == []
