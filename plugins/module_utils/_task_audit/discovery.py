# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Task discovery: decorators, Task subclasses, names and options."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import difflib

from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit.vocabulary import TASK_DECORATOR_NAMES, VALID_OPTIONS
from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit.values import Task, _describe, _dotted, _is_literal, _literal, _option_value


def _decorator_task_call(decorator, module):
    """(is a task decorator, the Call node carrying its options or None)."""
    call = decorator if isinstance(decorator, ast.Call) else None
    target = decorator.func if call is not None else decorator
    if isinstance(target, ast.Attribute):
        return target.attr in TASK_DECORATOR_NAMES, call
    if isinstance(target, ast.Name):
        if target.id == "shared_task":
            return True, call
        qualified = module.imports.get(target.id, "")
        if target.id == "task" or qualified.rpartition(".")[2] in TASK_DECORATOR_NAMES:
            return qualified.split(".")[0] == "celery" or target.id == "shared_task", call
    return False, None


class Discovery:
    """Finding the tasks: a part of :class:`Audit`."""

    def discover(self):
        self._task_aliases = []
        for unit in self.units:
            node = unit.node
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.decorator_list:
                self._function_task(unit.module, node)
        for module in self.modules.values():
            if not module.cold:
                self._call_form_tasks(module)
        self._class_tasks()
        for task in self.tasks.values():
            self.modules[task.module].task_names.setdefault(task.node.name, task.name)
            self.task_by_qual.setdefault("%s.%s" % (task.module, task.node.name), task.name)
            self.tasks_by_short.setdefault(task.node.name, set()).add(task.name)
        for module_key, alias, name in self._task_aliases:
            self.modules[module_key].task_names[alias] = name
            self.task_by_qual.setdefault("%s.%s" % (module_key, alias), name)
            self.tasks_by_short.setdefault(alias, set()).add(name)
        self._resolve_cache = {}

    def _add_task(self, task):
        if task.name in self.tasks:
            other = self.tasks[task.name]
            self.warn("duplicate_task", task.file, task.line,
                      "task name %s already defined at %s:%s; Celery keeps the first registered"
                      % (task.name, other.file, other.line))
            return
        self.tasks[task.name] = task

    def task_decorator(self, module, decorator, depth=0):
        """The options (a list of keywords) if ``decorator`` makes a task, else None.

        Follows aliases (``retrying = shared_task(max_retries=3)``, ``task = app.task``),
        re-exports, and the app's own decorator factories that call ``app.task``.
        """
        is_task, call = _decorator_task_call(decorator, module)
        if is_task:
            return list(call.keywords) if call is not None else []
        if depth > 4:
            return None
        call = decorator if isinstance(decorator, ast.Call) else None
        target = call.func if call is not None else decorator
        keywords = list(call.keywords) if call is not None else []
        if not isinstance(target, (ast.Name, ast.Attribute)):
            return None
        qualified = self.qualify_node(module, target)
        if not qualified:
            return None
        owner, _dot, attr = qualified.rpartition(".")
        holder = self.modules.get(owner)
        if holder is None:
            return None
        if attr in holder.imports and holder.imports[attr] != qualified:
            return self.task_decorator(holder, ast.Name(id=attr, ctx=ast.Load()), depth + 1) \
                if call is None else None
        assigned = holder.decorator_assigns.get(attr)
        if assigned is not None:
            found = self.task_decorator(holder, assigned, depth + 1)
            if found is not None:
                return found + keywords
        factory = holder.function_defs.get(attr)
        if factory is not None and self._is_factory(holder, factory):
            return keywords
        return None

    def _is_factory(self, module, function):
        """A function of the app that builds tasks: its body uses a task decorator."""
        for node in ast.walk(function):
            if isinstance(node, (ast.Attribute, ast.Name, ast.Call)) and node is not function:
                is_task, _call = _decorator_task_call(node, module)
                if is_task:
                    return True
        return False

    def _function_task(self, module, node):
        for decorator in node.decorator_list:
            keywords = self.task_decorator(module, decorator)
            if keywords is None:
                text = _dotted(decorator.func if isinstance(decorator, ast.Call) else decorator)
                if text and "task" in text.rpartition(".")[2].lower():
                    self.warn("unresolved_decorator", module.path, decorator.lineno,
                              "%s looks like a task decorator on %s but the audit cannot tell "
                              "what it does; if it makes a task, that task is not audited"
                              % (text, node.name))
                continue
            self._register_function(module, node, keywords, node.lineno)
            return

    def _call_form_tasks(self, module):
        """``process = app.task(process_fn)`` and ``app.task(name="x")(fn)`` at module level."""
        for stmt in module.tree.body:
            value = stmt.value if isinstance(stmt, (ast.Assign, ast.Expr)) else None
            if not isinstance(value, ast.Call) or len(value.args) != 1 or value.keywords \
                    and not isinstance(value.func, ast.Call):
                continue
            decorator = value.func
            keywords = self.task_decorator(module, decorator) if isinstance(decorator, ast.Call) \
                else self.task_decorator(module, decorator)
            if keywords is None or not isinstance(value.args[0], ast.Name):
                continue
            qualified = self.qualify_node(module, value.args[0])
            owner, _dot, fname = (qualified or "").rpartition(".")
            holder = self.modules.get(owner)
            function = holder.function_defs.get(fname) if holder is not None else None
            if function is None:
                continue
            name = self._register_function(holder, function, keywords, value.lineno)
            if name and isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        self._task_aliases.append((module.name, target.id, name))

    def _register_function(self, module, node, keywords, line):
        options = {}
        name = None
        allowed = set(VALID_OPTIONS)
        base = None
        for keyword in keywords:
            if keyword.arg == "base":
                allowed |= self._base_attributes(module, keyword.value)
                base = keyword.value
        for keyword in keywords:
            if keyword.arg is None:
                self.warn("dynamic_options", module.path, keyword.value.lineno,
                          "task %s: options passed as **%s cannot be read"
                          % (node.name, _describe(keyword.value)))
                continue
            options[keyword.arg] = _option_value(keyword.value)
            if keyword.arg not in allowed:
                self._unknown_option(module, keyword.arg, keyword.value.lineno, node.name, allowed)
        if "name" in options:
            named = [k for k in keywords if k.arg == "name"][-1].value
            if isinstance(options["name"], str) and _is_literal(named):
                name = options["name"]
            else:
                self.warn("dynamic_name", module.path, node.lineno,
                          "task %s: name= is not a literal; using the computed name" % node.name)
        if name is None:
            name = "%s.%s" % (module.celery_name, node.name)
        ignore = options.get("ignore_result")
        self._add_task(Task(name, module.path, node.lineno,
                            ignore if isinstance(ignore, bool) else None, options, node,
                            "function", module.name, options.get("bind") is True, base))
        return name

    def _unknown_option(self, module, option, line, task_name, allowed):
        close = difflib.get_close_matches(option, sorted(allowed), n=1, cutoff=0.75)
        hint = "; did you mean %s?" % close[0] if close else ""
        self.warn("unknown_option", module.path, line,
                  "task %s: unknown option %s=, Celery accepts it silently and ignores it%s"
                  % (task_name, option, hint))

    def _base_attributes(self, module, node):
        """Attributes a custom base class of the code base defines: valid task options too."""
        names = set()
        qualified = self.qualify_node(module, node)
        found = self.resolve(qualified) if qualified else None
        if found and found[0] == "class":
            owner, _dot, cls = found[1].rpartition(".")
            class_def = self.modules[owner].classes.get(cls) if owner in self.modules else None
            if class_def is not None:
                for stmt in class_def.body:
                    for target in _assigned_names(stmt):
                        names.add(target)
        return names

    def _is_task_class(self, module, class_def, seen):
        for base in class_def.bases:
            text = _dotted(base) or ""
            if text.rpartition(".")[2] == "Task":
                qualified = self.qualify_node(module, base) or text
                found = self.resolve(qualified)
                if found is None or found[0] != "class":
                    return True
            qualified = self.qualify_node(module, base)
            found = self.resolve(qualified) if qualified else None
            if found and found[0] == "class" and found[1] not in seen:
                owner, _dot, cls = found[1].rpartition(".")
                parent = self.modules[owner].classes.get(cls) if owner in self.modules else None
                if parent is not None and self._is_task_class(self.modules[owner], parent,
                                                              seen | {found[1]}):
                    return True
        return False

    def _class_tasks(self):
        registered = {}
        for module in self.modules.values():
            for node in module.register_calls:
                if isinstance(node, ast.Call) and node.args and (
                        (isinstance(node.func, ast.Attribute)
                         and (node.func.attr == "register_task"
                              or (node.func.attr == "register"
                                  and _dotted(node.func.value or "") and
                                  (_dotted(node.func.value) or "").endswith("tasks"))))
                        or (isinstance(node.func, ast.Name) and node.func.id == "register_task")):
                    target = node.args[0]
                    if isinstance(target, ast.Call):
                        target = target.func
                    qualified = self.qualify_node(module, target)
                    if qualified:
                        registered.setdefault(qualified, (module.path, node.lineno))
        for module in self.modules.values():
            for class_name, class_def in module.classes.items():
                qualified = "%s.%s" % (module.name, class_name)
                if not self._is_task_class(module, class_def, frozenset([qualified])):
                    continue
                attrs = {}
                for stmt in class_def.body:
                    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
                            and isinstance(stmt.targets[0], ast.Name):
                        attrs[stmt.targets[0].id] = stmt
                    elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) \
                            and stmt.value is not None:
                        attrs[stmt.target.id] = stmt
                literal_name = None
                if "name" in attrs and _is_literal(attrs["name"].value):
                    literal_name = _literal(attrs["name"].value)
                if qualified not in registered and not isinstance(literal_name, str):
                    continue  # a base class for other tasks, not a task itself
                if _literal(attrs["abstract"].value) is True if "abstract" in attrs else False:
                    continue
                options = {}
                for attr, stmt in attrs.items():
                    if attr in VALID_OPTIONS:
                        options[attr] = _option_value(stmt.value)
                    elif difflib.get_close_matches(attr, sorted(VALID_OPTIONS), n=1, cutoff=0.85):
                        self._unknown_option(module, attr, stmt.lineno, class_name, VALID_OPTIONS)
                name = literal_name if isinstance(literal_name, str) else \
                    "%s.%s" % (module.celery_name, class_name)
                ignore = options.get("ignore_result")
                task = Task(name, module.path, class_def.lineno,
                            ignore if isinstance(ignore, bool) else None, options, class_def,
                            "class", module.name, True, None)
                self._add_task(task)
                self.task_classes[qualified] = (module, class_def)

    # -- units --------------------------------------------------------------------------------


def _assigned_names(stmt):
    if isinstance(stmt, ast.Assign):
        return [t.id for t in stmt.targets if isinstance(t, ast.Name)]
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return [stmt.target.id]
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    return []
