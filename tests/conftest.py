"""Shared pytest set-up: the collection on sys.path under its Ansible name, the harness's fixtures.

Module code imports its helpers as ``ansible_collections.celery_ops.lean_results...``;
``use_checkout()`` makes that import path resolve to this checkout before any test module loads.
"""
from harness.collection import use_checkout

use_checkout()

pytest_plugins = ["harness.fixtures", "harness.topology_fixtures"]
