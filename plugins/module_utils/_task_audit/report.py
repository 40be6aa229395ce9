# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The answer: tasks, summary, task_overrides, warnings."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class Report:
    """Shaping the result: a part of :class:`Audit`."""

    def report(self):
        tasks = []
        overrides = {}
        names = set(self.tasks) | set(self.reasons)
        for name in sorted(names):
            task = self.tasks.get(name)
            fallback = self.fallback_tasks.get(name)
            reasons = sorted(self.reasons.get(name, ()), key=lambda r: (r[1] or "", r[2] or 0, r[0], r[3]))
            entry = {
                "name": name,
                "file": task.file if task else (fallback[0] if fallback else None),
                "line": task.line if task else (fallback[1] if fallback else None),
                "ignore_result": task.ignore_result if task else None,
                "options": dict(task.options) if task else {},
                "needs_result": bool(reasons),
                "reasons": [{"kind": k, "file": f, "line": ln, "detail": d} for k, f, ln, d in reasons],
            }
            if task is None and fallback is None:
                entry["builtin"] = name.startswith("celery.")
            tasks.append(entry)
            if reasons and entry["ignore_result"] is not False:
                overrides[name] = {"ignore_result": False}
                if entry["ignore_result"] is True:
                    self.warn("ignore_result_conflict", task.file, task.line,
                              "task %s declares ignore_result=True but its result is read (%s:%s)"
                              % (name, reasons[0][1], reasons[0][2]))
        need = sum(1 for t in tasks if t["needs_result"])
        total = len(tasks)
        summary = {
            "total": total,
            "need_result": need,
            "can_ignore": total - need,
            "percent_needing": round(100.0 * need / total, 1) if total else 0.0,
        }
        warnings = sorted(self.warnings, key=lambda w: (w["file"] or "", w["line"] or 0, w["message"]))
        return {"tasks": tasks, "summary": summary, "task_overrides": overrides,
                "warnings": warnings}


def format_finding(finding):
    """A warning as one line of text: ``file:line: message``."""
    where = finding["file"] or "?"
    if finding.get("line"):
        where = "%s:%s" % (where, finding["line"])
    return "%s: %s" % (where, finding["message"])
