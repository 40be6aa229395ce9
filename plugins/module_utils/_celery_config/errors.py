# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception of the rewrite: what went wrong, where, about which setting."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

class ConfigRewriteError(Exception):
    """The file cannot be rewritten safely; ``line`` and ``setting`` say where and what."""

    def __init__(self, msg, line=None, setting=None):
        super(ConfigRewriteError, self).__init__(msg)
        self.msg = msg
        self.line = line
        self.setting = setting

    def where(self, path):
        """``path:line: msg``, the form the module reports."""
        if self.line:
            return "%s:%d: %s" % (path, self.line, self.msg)
        return "%s: %s" % (path, self.msg)


__all__ = ["ConfigRewriteError"]
