# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find the Celery tasks whose results are read, by static analysis of the app source.

Nothing of the app is imported or run: every file is parsed with :mod:`ast`. The answer is
conservative on purpose. A task wrongly marked "can ignore" makes the app hang silently on
the read; a task wrongly marked "needs" only costs memory. So whatever the analysis cannot
follow (a result handed to code it does not see, a task picked by a runtime name) counts as
a read, with a reason of kind ``unknown`` that says where the trail was lost.

The analysis, per function, is flow-insensitive: a variable holds the union of everything
ever assigned to it, containers collapse to their elements. Results returned by a helper
reach the callers the audit can resolve; when it finds none, the result counts as read."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import gc
import os

from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit.vocabulary import (
    KINDS, MAX_FILE_BYTES, VALID_OPTIONS)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit.values import TaskAuditError
from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit.sources import Sources, find_source_files, module_name_for
from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit.discovery import Discovery
from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit.flow import Flow
from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit.report import Report, format_finding


class Audit(Sources, Discovery, Flow, Report):
    """The whole audit of one code base; ``run()`` returns the module's result dict."""

    def __init__(self, paths, exclude=None, python=None, import_roots=None,
                 max_file_bytes=MAX_FILE_BYTES):
        self.paths = list(paths)
        self.exclude = list(exclude or [])
        self.python = python
        self.import_roots = list(import_roots or [])
        self.max_file_bytes = max_file_bytes
        self.unparsed = []            # (path, entry, line, why, source) of files not parsed
        self.unparsed_names = {}
        self.fallback_tasks = {}      # Celery name -> (file, line): tasks seen only in unparsed files
        self.params = {}              # unit qual -> {parameter: values its callers pass}
        self.changed_params = set()   # quals whose parameters received more this round
        self.changed_attrs = set()    # class attributes that received more this round
        self.call_edges = {}          # unit qual -> quals of the units it calls
        self.class_attrs = {}         # (class qual, attribute) -> values
        self._units_by_class = None
        self._api_words = frozenset()
        self.thaw_on_resolve = False
        self.promote_requests = {}    # cold module -> names whose callers wait for it
        self.context_returns = {}     # (unit qual, arguments) -> what it returns for them
        self.attrs_by_name = {}       # attribute -> values of every class attribute so named
        self.modules = {}
        self.tasks = {}               # Celery name -> Task
        self.task_by_qual = {}        # python qualified name -> Celery name
        self.task_classes = {}        # qualified class name -> (Module, ClassDef)
        self.warnings = []
        self._warned = set()
        self.reasons = {}             # Celery name -> {reason tuple}
        self.units = []
        self.unit_by_qual = {}
        self.unit_by_node = {}
        self.summary_changes = {}     # function name -> sequence number of its last change
        self.called = set()
        self.returned = []            # (unit, values, line)
        self.id_escapes = []          # (readset, file, line, detail)
        self.rebuild_reads = []       # (file, line, detail)
        self._resolve_cache = {}
        self.tasks_by_short = {}      # function/class name -> Celery names, for unresolved imports

    # -- warnings and reasons ------------------------------------------------------------------

    def warn(self, kind, path, line, message):
        key = (kind, path, line, message)
        if key not in self._warned:  # evaluation runs more than once over the same code
            self._warned.add(key)
            self.warnings.append({"kind": kind, "file": path, "line": line, "message": message})

    def need(self, name, kind, path, line, detail):
        self.reasons.setdefault(name, set()).add((kind, path, line, detail))

    def need_readset(self, readset, path, line, detail, kind=None):
        for name, why in readset:
            self.need(name, kind if kind and why != "unknown" else why, path, line, detail)

    # -- loading --------------------------------------------------------------------------------

    def run(self):
        self.load()
        self.build_units()
        for unit in self.units:
            unit.index()
        for module in self.modules.values():
            if not module.cold:
                module.collect_imports()
        self.discover()
        self.analyse()
        return self.report()


def _runnable(program):
    if os.sep in program:
        return os.path.isfile(program) and os.access(program, os.X_OK)
    return any(os.access(os.path.join(d, program), os.X_OK)
               for d in os.environ.get("PATH", "").split(os.pathsep) if d)


def audit(paths, exclude=None, python=None, import_roots=None):
    """Audit the Celery app under ``paths``; the dict the ``celery_task_audit`` module returns."""
    if isinstance(paths, str):
        paths = [paths]
    if not paths:
        raise TaskAuditError("paths is empty: give the directories or files of the app source")
    if python and not _runnable(python):
        raise TaskAuditError("python %s is not an executable interpreter" % python)
    # Millions of AST nodes stay alive for the whole audit and make no reference cycles worth
    # collecting: the cyclic collector would walk them over and over (quadratic time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return Audit(paths, exclude, python=python, import_roots=import_roots).run()
    finally:
        if collecting:
            gc.enable()


__all__ = ["audit", "format_finding", "Audit", "TaskAuditError", "find_source_files", "module_name_for",
           "VALID_OPTIONS", "KINDS"]
