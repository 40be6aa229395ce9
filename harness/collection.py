"""This checkout under its Ansible name, ``ansible_collections.celery_ops.lean_results``.

Module code imports its helpers by that name. :func:`use_checkout` links the checkout into a
temp tree and puts that tree on ``sys.path``; nothing happens on import (see :mod:`harness`).
"""
import hashlib
import os
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# One link tree per checkout, so runs from two clones or worktrees at once never load each other's code.
COLLECTIONS_ROOT = os.path.join(tempfile.gettempdir(), "lean_results_collections_%d_%s" % (
    os.getuid(), hashlib.sha1(REPO_ROOT.encode()).hexdigest()[:8]))


def link_checkout():
    """Make ``COLLECTIONS_ROOT/ansible_collections/celery_ops/lean_results`` point at this checkout.

    Returns ``COLLECTIONS_ROOT``, ready for ``ANSIBLE_COLLECTIONS_PATH``. Idempotent.
    """
    namespace_dir = os.path.join(COLLECTIONS_ROOT, "ansible_collections", "celery_ops")
    os.makedirs(namespace_dir, exist_ok=True)
    link = os.path.join(namespace_dir, "lean_results")
    if not (os.path.islink(link) and os.readlink(link) == REPO_ROOT):
        tmp_link = "%s.%d" % (link, os.getpid())
        os.symlink(REPO_ROOT, tmp_link)
        os.replace(tmp_link, link)  # atomic, so parallel pytest workers never see a gap
    return COLLECTIONS_ROOT


def use_checkout():
    """Link this checkout (:func:`link_checkout`) and put the link tree first on ``sys.path``.

    After the call ``import ansible_collections.celery_ops.lean_results.plugins...`` loads this
    checkout's files. Returns ``COLLECTIONS_ROOT``. Idempotent.
    """
    link_checkout()
    if COLLECTIONS_ROOT not in sys.path:
        sys.path.insert(0, COLLECTIONS_ROOT)
    return COLLECTIONS_ROOT
