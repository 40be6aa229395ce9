# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the settings live, the naming style, and the byte edits that set each value."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import re

from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.errors import ConfigRewriteError
from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.settings import (
    ANNOTATIONS, CELERY_SETTINGS, DEFAULT_NAMESPACE, DJANGO_MARKERS, MODULE_TARGET, STYLES,
    BOOL_TASK_OPTIONS, check_setting_name, classify_names, coerce, group_of, known_names, render,
    same_value, setting_of, written_name,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.source import (
    DYNAMIC, Source, bound_names, definitely_assigns, literal_value, walk_scope,
)


class RewritePlan(object):
    """What a rewrite does: the new bytes, the style and target used, one change per value."""

    def __init__(self, new_bytes, style, target, changes, warnings):
        self.new_bytes = new_bytes
        self.style = style
        self.target = target
        self.changes = changes
        self.warnings = warnings

    def __repr__(self):
        return "RewritePlan(style=%r, target=%r, changes=%r)" % (self.style, self.target, self.changes)


# ---------------------------------------------------------------- where the settings live

def _update_calls(source):
    """Top-level ``<receiver>.conf.update(...)`` calls, as (receiver text, Call node)."""
    calls = []
    for stmt in source.tree.body:
        call = getattr(stmt, "value", None) if isinstance(stmt, ast.Expr) else None
        func = getattr(call, "func", None)
        if isinstance(call, ast.Call) and isinstance(func, ast.Attribute) and func.attr == "update" \
                and isinstance(func.value, ast.Attribute) and func.value.attr == "conf":
            receiver = source.text(source.start(func.value.value), source.end(func.value.value))
            calls.append((receiver, call))
    return calls


def _creates_app(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name == "Celery":
                return True
    return False


class Target(object):
    """Where settings are written: kind is module, class or call."""

    def __init__(self, kind, label, scope=None, node=None, calls=None):
        self.kind = kind
        self.label = label
        self.scope = scope
        self.node = node
        self.calls = calls or []

    def names(self, known):
        if self.kind == "call":
            return [k.arg for _r, call in self.calls for k in call.keywords if k.arg in known]
        bindings, problems = [], []
        walk_scope(self.scope, False, bindings, problems, known)
        return [b.name for b in bindings] + [p[0] for p in problems]


def find_target(source, object_name, namespace):
    """Pick the module, the class or the ``conf.update`` call that holds the settings."""
    tree = source.tree
    known = known_names(namespace)
    calls = _update_calls(source)
    classes = [stmt for stmt in tree.body if isinstance(stmt, ast.ClassDef)]
    module = Target("module", MODULE_TARGET, scope=tree.body)
    if object_name:
        if object_name == MODULE_TARGET:
            return module
        if object_name.endswith(".conf.update"):
            receiver = object_name[:-len(".conf.update")]
            chosen = [(r, c) for r, c in calls if r == receiver]
            if not chosen:
                raise ConfigRewriteError("no top-level call %s(...) in the file" % object_name)
            return Target("call", object_name, calls=chosen)
        for cls in classes:
            if cls.name == object_name:
                return Target("class", cls.name, scope=cls.body, node=cls)
        raise ConfigRewriteError(
            "object %r is neither a top-level class, '<app>.conf.update' nor 'module'" % object_name)
    candidates = []
    if module.names(known):
        candidates.append(module)
    for cls in classes:
        target = Target("class", cls.name, scope=cls.body, node=cls)
        if target.names(known):
            candidates.append(target)
    receivers = []
    for receiver, _call in calls:
        if receiver not in receivers:
            receivers.append(receiver)
    for receiver in receivers:
        candidates.append(Target("call", receiver + ".conf.update",
                                 calls=[(r, c) for r, c in calls if r == receiver]))
    if len(candidates) > 1:
        raise ConfigRewriteError(
            "settings live in several places (%s); choose one with object" %
            ", ".join(t.label for t in candidates))
    if candidates:
        return candidates[0]
    if _creates_app(tree):
        raise ConfigRewriteError(
            "the file creates a Celery app but has no settings and no <app>.conf.update(...) call; "
            "add one or point path at the config module")
    return module


def pick_style(source, target, style, namespace, warnings):
    """The naming style to write in; refuse files that mix old and new names."""
    known = known_names(namespace)
    found = classify_names(target.names(known), namespace)
    module_names = set()
    if target.kind == "module":
        for stmt in source.tree.body:
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                for t in getattr(stmt, "targets", None) or [stmt.target]:
                    module_names.update(bound_names(t))
    django_file = bool(module_names & DJANGO_MARKERS)
    new, ns_only, old_only, either = found["celery"], found["django"], found["legacy"], found["either"]

    def mixed(first, second):
        return ConfigRewriteError(
            "the %s mixes new and old setting names (%s and %s); Celery refuses such a config. "
            "Rename them to one style first" % (target.label, first[0], second[0]))

    if target.kind == "call" and style == "django":
        raise ConfigRewriteError("style django applies to a settings module, not to %s" % target.label)
    if style == "auto":
        if target.kind == "call":
            old = old_only + either
            if new and old:
                raise mixed(new, old)
            return "legacy" if old else "celery"
        if ns_only and old_only:
            raise mixed(ns_only, old_only)
        if ns_only:
            return "django"
        if old_only or (either and not django_file):
            if new:
                raise mixed(new, old_only + either)
            return "legacy"
        if either:
            return "django"
        if new:
            return "celery"
        return "django" if django_file else "celery"
    if style == "celery" and (old_only or either):
        raise ConfigRewriteError(
            "the %s uses old setting names (%s); writing new names would mix styles, which Celery "
            "refuses. Use style legacy" % (target.label, (old_only + either)[0]))
    if style == "celery" and django_file and target.kind == "module":
        warnings.append("this looks like Django settings: Celery reads only UPPERCASE names from them "
                        "(style django), so lowercase names written here may have no effect")
    if style == "legacy" and new:
        raise ConfigRewriteError(
            "the %s uses new setting names (%s); writing old names would mix styles, which Celery "
            "refuses. Use style celery" % (target.label, new[0]))
    return style


# ---------------------------------------------------------------- the plan

class _Edit(object):
    def __init__(self, start, end, seq, text, change=None, skip=0):
        self.start = start
        self.end = end
        self.seq = seq
        self.text = text
        self.change = change
        self.skip = skip  # bytes of the inserted text before the value the change points at


class _Planner(object):

    def __init__(self, source, style, namespace, target, on_dynamic):
        self.src = source
        self.style = style
        self.namespace = namespace
        self.target = target
        self.on_dynamic = on_dynamic
        self.edits = []
        self.warnings = []
        self._containers = {}
        self._eof_newline = None
        self._container_order = []

    # -- small helpers
    def _add(self, start, end, text, change=None, skip=0):
        if isinstance(text, str):
            text = text.encode("utf-8")
        self.edits.append(_Edit(start, end, len(self.edits), text, change, skip))

    def _refuse(self, msg, node, setting):
        raise ConfigRewriteError(msg, line=getattr(node, "lineno", None), setting=setting)

    def name(self, setting):
        return written_name(setting, self.style, self.namespace)

    def _bindings(self, setting, name):
        bindings, problems = [], []
        walk_scope(self.target.scope, False, bindings, problems, set([name]))
        if problems:
            bound, stmt, why = sorted(problems, key=lambda p: p[1].lineno)[0]
            self._refuse("%s %s; cannot set it safely" % (bound, why), stmt, setting)
        bindings.sort(key=lambda b: (b.stmt.lineno, b.stmt.col_offset))
        return bindings

    def _effective(self, setting, name, bindings):
        """The bindings to edit so that every path ends with the new value."""
        tops = [i for i, b in enumerate(bindings) if not b.nested]
        if tops:
            return bindings[tops[-1]:]
        if definitely_assigns(self.target.scope, name):
            return bindings
        lines = ", ".join(str(b.stmt.lineno) for b in bindings)
        self._refuse("%s is set only on some branches (lines %s); elsewhere Celery would use its "
                     "default. Set it unconditionally first" % (name, lines), bindings[0].stmt, setting)

    def set_value(self, setting, name, node, value, extra=None, bounds=None):
        current = literal_value(node)
        start, end = self.src.value_span(node, bounds)
        before = self.src.text(start, end)
        if current is DYNAMIC:
            if self.on_dynamic != "replace":
                self._refuse("%s is set from an expression (%s), not a literal; on_dynamic=replace "
                             "overwrites it" % (name, " ".join(before.split())), node, setting)
        elif same_value(current, value):
            return
        change = {"setting": setting, "name": name, "before": before, "after": render(value)}
        change.update(extra or {})
        self._add(start, end, change["after"], change)

    # -- module and class targets
    def _statement_anchor(self, setting):
        """Line after which a missing setting goes: beside its group, else the last setting."""
        same, other = None, None
        for index, stmt in enumerate(self.target.scope):
            names = []
            if isinstance(stmt, ast.Assign):
                for t in stmt.targets:
                    names.extend(bound_names(t))
            elif isinstance(stmt, ast.AnnAssign):
                names.extend(bound_names(stmt.target))
            keys = [setting_of(n, self.style, self.namespace) for n in names]
            keys = [k for k in keys if k]
            if keys:
                other = index
                if any(group_of(k) == group_of(setting) for k in keys):
                    same = index
        index = same if same is not None else other
        if index is None:
            return None
        scope = self.target.scope
        while index + 1 < len(scope) and scope[index + 1].lineno == scope[index].end_lineno:
            index += 1
        return scope[index].end_lineno

    def add_statement(self, setting, name, value_text, change):
        indent = b""
        line = self._statement_anchor(setting)
        if self.target.kind == "class":
            body = self.target.scope
            if body[0].lineno == self.target.node.lineno:
                self._refuse("class %s keeps its body on the class line; cannot add %s" %
                             (self.target.label, name), self.target.node, setting)
            indent = self.src.indent_of_line(body[0].lineno)
            if line is None:
                line = body[-1].end_lineno
        if line is None:
            offset = len(self.src.data)
        else:
            offset = self.src.line_end(line)
        prefix = b""
        if offset == len(self.src.data) and self.src.data and not self.src.data.endswith((b"\n", b"\r")) \
                and not self._eof_newline:
            prefix = self._eof_newline = self.src.newline
        text = prefix + indent + ("%s = %s" % (name, value_text)).encode("utf-8") + self.src.newline
        self._add(offset, offset, text, change, skip=len(prefix) + len(indent))

    # -- containers: dict literals and call arguments
    def insert_item(self, node, elements, item, change, opener):
        """Queue ``item`` as a new last element of a dict display or a call's argument list."""
        key = (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)
        if key not in self._containers:
            self._containers[key] = (node, elements, opener, [])
            self._container_order.append(key)
        self._containers[key][3].append((item.encode("utf-8"), change))

    def flush_items(self):
        for key in self._container_order:
            self._flush_container(*self._containers[key])

    def _flush_container(self, node, elements, opener, items):
        src, data = self.src, self.src.data
        close = src.end(node) - 1
        bounds = (opener + 1, close)
        close_line = src.line_of(close)
        close_start = src.line_starts[close_line - 1]
        closing_alone = not data[close_start:close].strip()
        if not elements:
            if src.line_of(opener) == close_line or not closing_alone:
                for number, (item, change) in enumerate(items):
                    joint = b", " if number else b""
                    self._add(close, close, joint + item, change, skip=len(joint))
                return
            indent = src.indent_of_line(close_line) + b"    "
            for item, change in items:
                self._add(close_start, close_start, indent + item + b"," + src.newline, change, skip=len(indent))
            return
        last = max(elements, key=lambda e: src.value_span(e[1], bounds)[1])
        last_end = src.value_span(last[1], bounds)[1]
        has_comma = b"," in re.sub(br"#[^\r\n]*", b"", data[last_end:close])
        if closing_alone and src.line_of(last_end) < close_line:
            if last[0] == src.line_of(opener):
                indent = src.indent_of_line(close_line) + b"    "
            else:
                indent = src.indent_of_line(last[0])
            if not has_comma:
                self._add(last_end, last_end, b",")
            for item, change in items:
                self._add(close_start, close_start, indent + item + b"," + src.newline, change, skip=len(indent))
        elif has_comma:
            for number, (item, change) in enumerate(items):
                joint = b", " if number else (b"" if data[close - 1:close] in (b" ", b"\t") else b" ")
                self._add(close, close, joint + item, change, skip=len(joint))
        else:
            for item, change in items:
                self._add(last_end, last_end, b", " + item, change, skip=2)

    def _dict_elements(self, node):
        return [(value.lineno if key is None else key.lineno, value) for key, value in zip(node.keys, node.values)]

    def _call_elements(self, call):
        elements = [(arg.lineno, arg) for arg in call.args]
        for keyword in call.keywords:
            elements.append((getattr(keyword, "lineno", keyword.value.lineno), keyword.value))
        return elements

    def _call_opener(self, call):
        return self.src._skip_forward(self.src.end(call.func))

    # -- one setting
    def apply_setting(self, setting, value):
        name = self.name(setting)
        if self.target.kind == "call":
            found = None
            for _receiver, call in self.target.calls:
                for keyword in call.keywords:
                    if keyword.arg == name:
                        found = (call, keyword)
            if found:
                call = found[0]
                bounds = (self._call_opener(call) + 1, self.src.end(call) - 1)
                self.set_value(setting, name, found[1].value, value, bounds=bounds)
            else:
                call = self.target.calls[-1][1]
                change = {"setting": setting, "name": name, "before": None, "after": render(value)}
                self.insert_item(call, self._call_elements(call), "%s=%s" % (name, render(value)),
                                 change, self._call_opener(call))
            return
        bindings = self._bindings(setting, name)
        if not bindings:
            change = {"setting": setting, "name": name, "before": None, "after": render(value)}
            self.add_statement(setting, name, render(value), change)
            return
        for binding in self._effective(setting, name, bindings):
            self.set_value(setting, name, binding.value, value)

    # -- task_annotations
    def apply_overrides(self, overrides):
        setting = ANNOTATIONS
        name = self.name(setting)
        values = []
        if self.target.kind == "call":
            found = None
            for _receiver, call in self.target.calls:
                for keyword in call.keywords:
                    if keyword.arg == name:
                        found = keyword.value
            if found is None:
                call = self.target.calls[-1][1]
                change = {"setting": setting, "name": name, "before": None, "after": render(overrides)}
                self.insert_item(call, self._call_elements(call), "%s=%s" % (name, render(overrides)),
                                 change, self._call_opener(call))
                return
            values = [found]
        else:
            bindings = self._bindings(setting, name)
            if not bindings:
                change = {"setting": setting, "name": name, "before": None, "after": render(overrides)}
                self.add_statement(setting, name, render(overrides), change)
                return
            values = [b.value for b in self._effective(setting, name, bindings)]
        for node in values:
            self._merge_annotations(setting, name, node, overrides)

    def _merge_annotations(self, setting, name, node, overrides):
        if not isinstance(node, ast.Dict):
            self._refuse("%s is not a dict literal (%s); cannot merge task_overrides into it. Make it a "
                         "dict literal" % (name, self.src.text(*self.src.value_span(node)).strip()),
                         node, setting)
        index = {}
        for position, key in enumerate(node.keys):
            if key is None:
                self._refuse("%s unpacks another mapping (**); cannot tell which annotations win" % name,
                             node.values[position], setting)
            literal = literal_value(key)
            if literal is DYNAMIC:
                self._refuse("%s has a key that is not a literal" % name, key, setting)
            index[literal] = position
        wildcard = index.get("*")
        if wildcard is not None:
            self._check_wildcard(setting, name, node.values[wildcard], overrides)
        for task, options in overrides.items():
            if task not in index:
                change = {"setting": setting, "name": name, "task": task, "before": None,
                          "after": render(options)}
                self.insert_item(node, self._dict_elements(node), "%s: %s" % (render(task), render(options)),
                                 change, self.src.start(node))
                continue
            inner = node.values[index[task]]
            if not isinstance(inner, ast.Dict):
                self._refuse("%s[%r] is not a dict literal; cannot merge into it" % (name, task), inner, setting)
            inner_index = {}
            for position, key in enumerate(inner.keys):
                literal = DYNAMIC if key is None else literal_value(key)
                if literal is DYNAMIC:
                    self._refuse("%s[%r] has a key that is not a literal" % (name, task), inner, setting)
                inner_index[literal] = position
            for option, value in options.items():
                extra = {"task": task, "option": option}
                if option in inner_index:
                    self.set_value(setting, name, inner.values[inner_index[option]], value, extra)
                else:
                    change = {"setting": setting, "name": name, "before": None, "after": render(value)}
                    change.update(extra)
                    self.insert_item(inner, self._dict_elements(inner), "%s: %s" % (render(option), render(value)),
                                     change, self.src.start(inner))

    def _check_wildcard(self, setting, name, node, overrides):
        """Celery applies the '*' annotation after the task's own: it would win."""
        wild = literal_value(node)
        if not isinstance(wild, dict):
            self._refuse("%s['*'] is not a dict literal; cannot tell whether it overrides "
                         "task_overrides" % name, node, setting)
        for task, options in overrides.items():
            for option, value in options.items():
                if option in wild and not same_value(wild[option], value):
                    self._refuse("%s['*'] sets %s=%r for every task, and Celery applies it after "
                                 "the task's own annotation, so %s would not get %s=%r. Change the "
                                 "'*' entry first" % (name, option, wild[option], task, option, value),
                                 node, setting)

    # -- result
    def splice(self):
        data = self.src.data
        edits = sorted(self.edits, key=lambda e: (e.start, e.seq))
        for first, second in zip(edits, edits[1:]):
            if second.start < first.end:
                raise ConfigRewriteError("internal error: overlapping edits at byte %d" % second.start)
        for edit in reversed(edits):
            data = data[:edit.start] + edit.text + data[edit.end:]
        return data, edits


def _normalise(settings, task_overrides):
    wanted = []
    for name, value in (settings or {}).items():
        setting = check_setting_name(name)
        wanted.append((setting, coerce(setting, value)))
    overrides = {}
    for task, options in (task_overrides or {}).items():
        if not isinstance(options, dict) or not options:
            raise ConfigRewriteError("task_overrides[%r] must be a non-empty mapping of task options, "
                                     "e.g. {ignore_result: false}" % task, setting=ANNOTATIONS)
        overrides[str(task)] = {}
        for option, value in options.items():
            if not isinstance(option, str) or not option.isidentifier():
                raise ConfigRewriteError("task_overrides[%r] has an option %r that is not a task "
                                         "attribute name" % (task, option), setting=ANNOTATIONS)
            if option in BOOL_TASK_OPTIONS and isinstance(value, str):
                value = coerce("task_ignore_result", value)
            overrides[str(task)][option] = value
    if overrides and any(setting == ANNOTATIONS for setting, _v in wanted):
        raise ConfigRewriteError("give task_annotations either in settings or as task_overrides, "
                                 "not both", setting=ANNOTATIONS)
    return wanted, overrides


def plan_rewrite(source, settings=None, task_overrides=None, style="auto", namespace=DEFAULT_NAMESPACE,
                 object_name=None, on_dynamic="fail", _verify=True):
    """Plan the rewrite of ``source`` (bytes); nothing is written.

    Returns a RewritePlan whose ``new_bytes`` equal ``source`` when nothing has to change.
    Raises ConfigRewriteError, with ``line`` when one is known, when the file cannot be
    rewritten safely.
    """
    if style not in STYLES + ("auto",):
        raise ConfigRewriteError("unknown style %r; use auto, celery, django or legacy" % style)
    if on_dynamic not in ("fail", "replace"):
        raise ConfigRewriteError("unknown on_dynamic %r; use fail or replace" % on_dynamic)
    namespace = namespace or ""
    wanted, overrides = _normalise(settings, task_overrides)
    src = Source(source)
    target = find_target(src, object_name, namespace)
    warnings = []
    chosen = pick_style(src, target, style, namespace, warnings)
    planner = _Planner(src, chosen, namespace, target, on_dynamic)
    planner.warnings.extend(warnings)
    if chosen == "django":
        for name in target.names(known_names(namespace)):
            if name in CELERY_SETTINGS:
                planner.warnings.append("%s is lowercase: Celery reads only UPPERCASE %s_* names from "
                                        "Django settings, so it has no effect" % (name, namespace))
    for setting, value in wanted:
        planner.apply_setting(setting, value)
        if setting == "result_expires" and not value:
            planner.warnings.append("result_expires=%r stores results without a TTL" % (value,))
    if overrides:
        planner.apply_overrides(overrides)
    planner.flush_items()
    new_bytes, edits = planner.splice()
    changes = [e.change for e in edits if e.change is not None]
    if edits and _verify:
        _check(new_bytes, edits, settings, task_overrides, style, namespace, object_name, on_dynamic)
    return RewritePlan(new_bytes, chosen, target.label, changes, planner.warnings)


def _check(new_bytes, edits, settings, task_overrides, style, namespace, object_name, on_dynamic):
    """Parse the result again, set each change's line, and require that a second plan is a no-op."""
    try:
        again = plan_rewrite(new_bytes, settings, task_overrides, style, namespace, object_name,
                             "fail", _verify=False)
    except ConfigRewriteError as exc:
        raise ConfigRewriteError("internal error: the rewritten file does not check out: %s" % exc.msg,
                                 line=exc.line, setting=exc.setting)
    if again.new_bytes != new_bytes:
        raise ConfigRewriteError("internal error: the rewrite does not converge (%r)" % again.changes)
    new_src = Source(new_bytes)
    shift = 0
    for edit in edits:
        if edit.change is not None:
            edit.change["line"] = new_src.line_of(edit.start + shift + edit.skip)
        shift += len(edit.text) - (edit.end - edit.start)


__all__ = ["RewritePlan", "find_target", "pick_style", "plan_rewrite"]
