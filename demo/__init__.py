"""The demo (`make demo`, ``python -m demo``): a Celery shop made lean by the real playbook.

``demo.stack`` counts result keys with the collection's module_utils, imported under their
Ansible name: the package makes this checkout that import path once, here, before it loads.
"""
from harness.collection import use_checkout

use_checkout()
