# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run of the result_keys_info module: check the options, measure every primary."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_module import OptionError
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys import topology_result_keys_report


def check_sample(shell):
    """``sample`` is a count of keys: a YAML ``yes`` (which Ansible passes as an int) or a negative one is refused."""
    sample = shell.params["sample"]
    if isinstance(sample, bool):
        raise OptionError("sample must be a whole number, got the boolean %r" % sample)
    if sample < 0:
        raise OptionError("sample must be 0 or more, got %d" % sample)


def measure(shell, topology, result):
    """Count the matching keys, their TTLs and memory on every primary; read-only, so never changed."""
    result.update(topology_result_keys_report(topology, shell.params["pattern"], shell.params["sample"],
                                              open_db=shell.open_db), changed=False)


__all__ = ["check_sample", "measure"]
