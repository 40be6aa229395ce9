"""Benchmarks (`make bench`, ``python -m bench [name ...]``, ``python -m bench.bench_audit``).

Every bench module imports the collection's module_utils under their Ansible name, so the package
makes this checkout that import path once, here, before any of them loads.
"""
from harness.collection import use_checkout

use_checkout()
