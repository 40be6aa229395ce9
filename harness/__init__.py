"""The test harness: real redis-servers, Celery workers, ansible-playbook runs and workloads.

Shared by the tests (``tests/conftest.py`` loads :mod:`harness.fixtures` and
:mod:`harness.topology_fixtures` as pytest plugins), the demo (``python -m demo``) and the
benchmarks (``python -m bench``). It is importable from the root of a checkout and stays out of
the built collection (``build_ignore`` in galaxy.yml), like ``scripts/``.

Importing any module of this package changes nothing outside it: no ``sys.path`` edit, no file
written, no server started. Module code imports its helpers as
``ansible_collections.celery_ops.lean_results...``; whoever needs that import path calls
:func:`harness.collection.use_checkout` once, explicitly, at its entry point: ``tests/conftest.py``,
``demo/__init__.py`` and ``bench/__init__.py``.

Why a call and not a ``.pth`` file in the venv: one venv serves several checkouts here (git
worktrees link the same ``.venv``), and a ``.pth`` names one checkout for all of them, so a test
run in one worktree would load another worktree's modules without a word. The call links the
checkout it is imported from, in a link tree of its own (see :mod:`harness.collection`).
"""
