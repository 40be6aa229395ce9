# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rewrite a Celery configuration file so the loader the app uses sees the values asked for.

The file is located with ``ast`` and edited by splicing bytes from the end backwards, so
comments, formatting, a UTF-8 BOM and CRLF line ends survive. Then the new bytes are read the
way Celery's loader reads them (``effective``): a value that would not reach Celery refuses
the whole rewrite. The package, by concern:

- ``settings``: the settings table (Celery 5.7), the three naming styles, value types;
- ``source``: the file as bytes, tokens and spans, literal values, bindings in a scope;
- ``planner``: where the settings live, the style, the byte edits;
- ``effective``: what Celery will see, read from the new bytes.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.errors import ConfigRewriteError
from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.settings import (
    ANNOTATIONS, CELERY_SETTINGS, DEFAULT_NAMESPACE, OLD_TO_NEW, STYLES, check_setting_name, render,
    same_value, written_name,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.planner import (
    RewritePlan, plan_rewrite,
)

__all__ = [
    "ANNOTATIONS", "CELERY_SETTINGS", "ConfigRewriteError", "DEFAULT_NAMESPACE", "OLD_TO_NEW",
    "RewritePlan", "STYLES", "check_setting_name", "plan_rewrite", "render", "same_value",
    "written_name",
]
