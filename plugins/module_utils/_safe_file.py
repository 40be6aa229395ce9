# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One way to read and replace a file the collection edits (a Celery config, a redis.conf).

``read_regular`` follows symlinks to their target, refuses anything but a regular file (a
device, a FIFO, a socket, a directory) without blocking on it, and reads at most ``max_bytes``.

``replace`` writes a temp file beside the target, gives it the target's mode, owner, group and
SELinux context (or refuses when it cannot, e.g. a non-root user and a group it is not in),
runs the validator on it, takes an advisory lock (``fcntl.flock``) on the target, checks that
the target is still what was read (inode, size, mtime, SHA-256), renames the temp file over it
and fsyncs the file and the directory. The temp file is removed on every path.

A target with several hard links is refused: a rename would leave the other names on the old
content. With ``unsafe_writes`` it is rewritten in place instead (same lock and check; not
atomic), which keeps every name on the new content. ``unsafe_writes`` also allows the in-place
write when the rename itself fails (a bind-mounted file).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import hashlib
import os
import stat
import tempfile
import time

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
LOCK_TIMEOUT = 30.0
_SELINUX_XATTR = "security.selinux"
_KINDS = (
    (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"),
)


class SafeFileError(Exception):
    """The file cannot be read or replaced safely; the message says why."""


class Snapshot(object):
    """What was read: the target's real path, its bytes, its stat and their SHA-256."""

    def __init__(self, path, real, data, st, context):
        self.path = path
        self.real = real
        self.data = data
        self.stat = st
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.context = context

    @property
    def is_link(self):
        return os.path.islink(self.path)


def _kind(mode):
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _context(path):
    getxattr = getattr(os, "getxattr", None)
    if getxattr is None:
        return None
    try:
        return getxattr(path, _SELINUX_XATTR)
    except OSError:
        return None


def read_regular(path, max_bytes=DEFAULT_MAX_BYTES):
    """Read the regular file at ``path`` (symlinks followed); SafeFileError otherwise."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            dangling = real != path and os.path.islink(path)
            raise SafeFileError("no such file%s" % (" (dangling symlink to %s)" % real if dangling else ""))
        raise SafeFileError("cannot stat: %s" % exc.strerror)
    if not stat.S_ISREG(st.st_mode):
        raise SafeFileError("is %s, not a regular file; refusing to read or replace it" % _kind(st.st_mode))
    try:
        # O_NONBLOCK: a FIFO swapped in after the stat must not hang the run
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise SafeFileError("cannot open: %s" % exc.strerror)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SafeFileError("is %s, not a regular file; refusing to read or replace it" % _kind(st.st_mode))
        if st.st_size > max_bytes:
            raise SafeFileError("is %d bytes, more than the limit of %d (raise max_file_size to read it)" %
                                (st.st_size, max_bytes))
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise SafeFileError("grew beyond the limit of %d bytes while it was read" % max_bytes)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    return Snapshot(path, real, data, st, _context(real))


def _check_unchanged(snapshot):
    try:
        st = os.stat(snapshot.real)
    except OSError as exc:
        raise SafeFileError("changed while this run worked on it (%s); nothing written, run again" % exc.strerror)
    old = snapshot.stat
    now = (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)
    same = now == (old.st_ino, old.st_dev, old.st_size, old.st_mtime_ns)
    if same:
        with open(snapshot.real, "rb") as handle:
            same = hashlib.sha256(handle.read()).hexdigest() == snapshot.sha256
    if not same:
        raise SafeFileError("changed while this run worked on it (another writer?); nothing written, "
                            "run again to plan against the new content")


def _lock(path, timeout):
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    if fcntl is None:
        return fd
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except (IOError, OSError) as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                os.close(fd)
                raise SafeFileError("cannot lock (another run holds it for more than %ds)" % timeout)
            time.sleep(0.05)


def _ownership_plan(st):
    """(uid, gid) to give the temp file: -1 keeps ours. Refuses what a non-root user cannot keep."""
    if os.geteuid() == 0:
        return st.st_uid, st.st_gid
    if st.st_uid != os.geteuid():
        raise SafeFileError("is owned by uid %d; this user (uid %d) cannot keep that owner on a new file, so "
                            "it refuses rather than change it (run as root or as the owner)" %
                            (st.st_uid, os.geteuid()))
    groups = set(os.getgroups()) | set([os.getegid()])
    if st.st_gid not in groups:
        raise SafeFileError("has group gid %d, which this user is not in, so a new file could not keep it; "
                            "refusing rather than change the group (run as root)" % st.st_gid)
    return -1, st.st_gid


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_in_place(snapshot, data):
    fd = os.open(snapshot.real, os.O_WRONLY)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)


def replace(snapshot, data, validate=None, unsafe_writes=False, allow_read_only=False,
            lock_timeout=LOCK_TIMEOUT):
    """Replace the file read as ``snapshot`` with ``data``; see the module docstring.

    ``validate(temp_path)`` may raise to stop before anything is replaced. Returns the path
    written (the symlink's target when ``snapshot.path`` is a link).
    """
    st = snapshot.stat
    real = snapshot.real
    if not allow_read_only and not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise SafeFileError("is read-only (mode %04o); refusing to replace it (allow_read_only overrides)" %
                            stat.S_IMODE(st.st_mode))
    if st.st_nlink > 1 and not unsafe_writes:
        raise SafeFileError("has %d hard links; replacing it would leave the other names on the old content. "
                            "Edit it through one name only, or set unsafe_writes to rewrite it in place" %
                            st.st_nlink)
    uid, gid = _ownership_plan(st)
    directory = os.path.dirname(real) or "."
    fd, temp = tempfile.mkstemp(prefix=".%s." % os.path.basename(real), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), stat.S_IMODE(st.st_mode))
            if uid != -1 or gid != -1:
                os.fchown(handle.fileno(), uid, gid)
            os.fsync(handle.fileno())
        if snapshot.context:
            try:
                os.setxattr(temp, _SELINUX_XATTR, snapshot.context)
            except OSError as exc:
                raise SafeFileError("cannot keep its SELinux context on the new file: %s" % exc.strerror)
        if validate is not None:
            validate(temp)
        lock = _lock(real, lock_timeout)
        try:
            _check_unchanged(snapshot)
            if st.st_nlink > 1:
                _write_in_place(snapshot, data)
            else:
                try:
                    os.rename(temp, real)
                except OSError as exc:
                    if exc.errno == errno.EPERM:
                        raise SafeFileError("cannot replace it: %s (is it immutable or append-only? see "
                                            "lsattr; chattr -i removes the flag)" % exc.strerror)
                    if not unsafe_writes:
                        raise SafeFileError("cannot rename the new file over it: %s (unsafe_writes writes "
                                            "in place instead)" % exc.strerror)
                    _write_in_place(snapshot, data)
            _fsync_dir(directory)
        finally:
            os.close(lock)
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)
    return real


__all__ = ["DEFAULT_MAX_BYTES", "SafeFileError", "Snapshot", "read_regular", "replace"]
