# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception of the rewrite: what went wrong, where, about which setting."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ConfigRewriteError(Exception):
    """The file cannot be rewritten safely; ``line`` and ``setting`` say where and what.

    ``problems`` lists every problem found in one run as ``(line, setting, msg)``; the first
    one is also ``line``/``setting``/``msg``.
    """

    def __init__(self, msg, line=None, setting=None, problems=None):
        super(ConfigRewriteError, self).__init__(msg)
        self.msg = msg
        self.line = line
        self.setting = setting
        self.problems = list(problems) if problems else [(line, setting, msg)]

    @classmethod
    def combine(cls, errors):
        """One error that lists the problems of ``errors`` in line order."""
        problems = []
        for error in errors:
            for problem in error.problems:
                if problem not in problems:
                    problems.append(problem)
        problems.sort(key=lambda p: (p[0] is None, p[0] or 0))
        line, setting, msg = problems[0]
        if len(problems) > 1:
            msg = "%d problems: %s" % (len(problems), "; ".join(_one(p) for p in problems))
        return cls(msg, line=line, setting=setting, problems=problems)

    def where(self, path):
        """``path:line: msg`` for each problem, the form the module reports."""
        return "\n".join(_located(path, line, setting, msg) for line, setting, msg in self.problems)


def _one(problem):
    line, setting, msg = problem
    head = "line %d" % line if line else "file"
    return "%s%s: %s" % (head, " (%s)" % setting if setting else "", msg)


def _located(path, line, setting, msg):
    where = "%s:%d" % (path, line) if line else path
    if setting:
        where += ":%s" % setting
    return "%s: %s" % (where, msg)


__all__ = ["ConfigRewriteError"]
