"""Shared pytest set-up: the collection on sys.path under its Ansible name.

Module code imports its helpers as ``ansible_collections.celery_ops.lean_results...``;
a link in a temp tree makes that import path resolve to this checkout.
"""
import hashlib
import os
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# One link tree per checkout, so test runs from two clones at once never load each other's code.
COLLECTIONS_ROOT = os.path.join(tempfile.gettempdir(), "lean_results_collections_%d_%s" % (
    os.getuid(), hashlib.sha1(REPO_ROOT.encode()).hexdigest()[:8]))


def _link_collection():
    namespace_dir = os.path.join(COLLECTIONS_ROOT, "ansible_collections", "celery_ops")
    os.makedirs(namespace_dir, exist_ok=True)
    link = os.path.join(namespace_dir, "lean_results")
    if os.path.islink(link) and os.readlink(link) == REPO_ROOT:
        return
    tmp_link = "%s.%d" % (link, os.getpid())
    os.symlink(REPO_ROOT, tmp_link)
    os.replace(tmp_link, link)  # atomic, so parallel pytest workers never see a gap


_link_collection()
if COLLECTIONS_ROOT not in sys.path:
    sys.path.insert(0, COLLECTIONS_ROOT)

pytest_plugins = ["tests.helpers.fixtures", "tests.helpers.topology_fixtures"]
