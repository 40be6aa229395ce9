# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the settings live, the naming style, and the byte edits that set each value."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import re

from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.effective import (
    DEFAULT, read_effective,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.errors import ConfigRewriteError
from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.settings import (
    ANNOTATIONS, CELERY_SETTINGS, DEFAULT_NAMESPACE, DJANGO_MARKERS, MODULE_TARGET, STYLES,
    BOOL_TASK_OPTIONS, check_setting_name, classify_names, coerce, group_of, known_names, render,
    same_value, setting_of, written_name,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.source import (
    DYNAMIC, Source, bound_names, call_entries, definitely_assigns, dict_entries, literal_value,
    top_level_dicts, walk_scope,
)


class RewritePlan(object):
    """What a rewrite does: the new bytes, the style and target used, one change per value."""

    def __init__(self, new_bytes, style, target, changes, warnings):
        self.effective = {}
        self.form = None
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
    """Where settings are written: kind is module, class, call (``conf.update``) or dict."""

    def __init__(self, kind, label, scope=None, node=None, calls=None, dicts=None):
        self.kind = kind
        self.label = label
        self.scope = scope
        self.node = node
        self.calls = calls or []
        self.dicts = dicts or {}

    def entries(self):
        """(entries, unknown) of a call or dict target, in the order Celery reads them."""
        entries, unknown = [], []
        if self.kind == "call":
            for _receiver, call in self.calls:
                call_entries(call, self.dicts, entries, unknown)
        elif self.kind == "dict":
            dict_entries(self.node, self.dicts, entries, unknown)
        return entries, unknown

    def names(self, known):
        if self.kind in ("call", "dict"):
            return [e.name for e in self.entries()[0] if e.name in known]
        bindings, problems = [], []
        walk_scope(self.scope, False, bindings, problems, known)
        return [b.name for b in bindings] + [p[0] for p in problems]


def _unpacked_names(calls):
    """Names of dicts handed to ``conf.update`` (``**NAME`` or positionally): part of the call target."""
    names = set()
    for _receiver, call in calls:
        for node in list(call.args) + [k.value for k in call.keywords if k.arg is None]:
            if isinstance(node, ast.Name):
                names.add(node.id)
    return names


def find_target(source, object_name, namespace):
    """Pick the module, a class, a top-level dict or the ``conf.update`` call that holds the settings."""
    tree = source.tree
    known = known_names(namespace)
    calls = _update_calls(source)
    dicts = top_level_dicts(tree)
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
            return Target("call", object_name, calls=chosen, dicts=dicts)
        for cls in classes:
            if cls.name == object_name:
                return Target("class", cls.name, scope=cls.body, node=cls)
        if object_name in dicts:
            return Target("dict", object_name, node=dicts[object_name], dicts=dicts)
        raise ConfigRewriteError(
            "object %r is neither a top-level class, a top-level dict defined once, '<app>.conf.update' "
            "nor 'module'" % object_name)
    candidates = []
    module_names = [n for n in module.names(known) if n not in dicts]
    if module_names:
        candidates.append((module, _first_line(tree.body, module_names)))
    for cls in classes:
        target = Target("class", cls.name, scope=cls.body, node=cls)
        if target.names(known):
            candidates.append((target, cls.lineno))
    unpacked = _unpacked_names(calls)
    for name, node in sorted(dicts.items(), key=lambda item: item[1].lineno):
        target = Target("dict", name, node=node, dicts=dicts)
        if name not in unpacked and name not in known and target.names(known):
            candidates.append((target, node.lineno))
    receivers = []
    for receiver, _call in calls:
        if receiver not in receivers:
            receivers.append(receiver)
    for receiver in receivers:
        chosen = [(r, c) for r, c in calls if r == receiver]
        candidates.append((Target("call", receiver + ".conf.update", calls=chosen, dicts=dicts),
                           chosen[0][1].lineno))
    if len(candidates) > 1:
        raise ConfigRewriteError(
            "settings live in several places (%s); the app may load any of them, so choose one with "
            "object" % ", ".join("%s on line %d" % (t.label, line) for t, line in candidates),
            line=candidates[1][1])
    if candidates:
        return candidates[0][0]
    if _creates_app(tree):
        raise ConfigRewriteError(
            "the file creates a Celery app but has no settings and no <app>.conf.update(...) call; "
            "add one or point path at the config module")
    return module


def _first_line(stmts, names):
    wanted = set(names)
    for stmt in stmts:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
        for target in targets:
            if target is not None and wanted & set(bound_names(target)):
                return stmt.lineno
    return stmts[0].lineno if stmts else 1


_DJANGO_PATH_PARTS = ("settings.py",)


def is_django_settings(source, path=None):
    """A Django settings module: its marker names, a DJANGO_SETTINGS_MODULE reference or its path."""
    names = set()
    for stmt in source.tree.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            for t in getattr(stmt, "targets", None) or [stmt.target]:
                names.update(bound_names(t))
    if names & DJANGO_MARKERS:
        return True
    if b"DJANGO_SETTINGS_MODULE" in source.data:
        return True
    if path:
        parts = path.replace("\\", "/").split("/")
        if parts[-1].endswith("settings.py") or (len(parts) > 1 and parts[-2] == "settings"):
            return True
    return False


def _name_lines(target, known):
    if target.kind in ("call", "dict"):
        return dict((e.name, e.line) for e in target.entries()[0] if e.name in known)
    bindings, problems = [], []
    walk_scope(target.scope, False, bindings, problems, known)
    lines = dict((p[0], p[1].lineno) for p in problems)
    lines.update((b.name, b.stmt.lineno) for b in bindings)
    return lines


def pick_style(source, target, style, namespace, warnings, django_file=False):
    """The naming style to write in; refuse what Celery would refuse (old and new names mixed).

    Under a namespace (style django) Celery reads the new name first and falls back to the old
    one, so old and new names may coexist there.
    """
    known = known_names(namespace)
    lines = _name_lines(target, known)
    found = classify_names(list(lines), namespace)
    new, ns_only, old_only, either = found["celery"], found["django"], found["legacy"], found["either"]

    def mixed(first, second):
        line = max(lines.get(first[0], 0), lines.get(second[0], 0)) or None
        return ConfigRewriteError(
            "the %s mixes new and old setting names (%s and %s) without a namespace; Celery refuses "
            "such a config (\"Cannot mix new and old setting keys\"). Rename them to one style first" %
            (target.label, first[0], second[0]), line=line)

    mapping = target.kind in ("call", "dict")
    if mapping and style == "django":
        raise ConfigRewriteError("style django applies to a settings module, not to %s" % target.label)
    if style == "auto":
        if mapping:
            old = old_only + either
            if new and old:
                raise mixed(new, old)
            return "legacy" if old else "celery"
        if django_file and target.kind == "module":
            if new:
                warnings.append("this is a Django settings file and %s is lowercase: Celery reads only "
                                "UPPERCASE %s_* names through Django, so it has no effect; the settings "
                                "are written as %s_* names" % (", ".join(sorted(new)), namespace, namespace))
            return "django"
        if ns_only:
            return "django"
        if old_only or either:
            if new:
                raise mixed(new, old_only + either)
            return "legacy"
        return "celery"
    if style == "celery" and (old_only or either):
        raise ConfigRewriteError(
            "the %s uses old setting names (%s); writing new names would mix styles, which Celery "
            "refuses. Use style legacy" % (target.label, (old_only + either)[0]),
            line=lines.get((old_only + either)[0]))
    if style == "celery" and django_file and target.kind == "module":
        warnings.append("this looks like Django settings: Celery reads only UPPERCASE names from them "
                        "(style django), so lowercase names written here take effect only when the app "
                        "loads this file without Django")
    if style == "legacy" and new:
        raise ConfigRewriteError(
            "the %s uses new setting names (%s); writing old names would mix styles, which Celery "
            "refuses. Use style celery" % (target.label, new[0]), line=lines.get(new[0]))
    return style


# ---------------------------------------------------------------- the plan

def _single_name_target(stmt):
    """The one Name an assignment binds (``X = v``, ``X: t = v``), else None."""
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0]
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return stmt.target
    return None


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
        self._names = None

    # -- small helpers
    def _add(self, start, end, text, change=None, skip=0):
        if isinstance(text, str):
            text = text.encode("utf-8")
        self.edits.append(_Edit(start, end, len(self.edits), text, change, skip))

    def _refuse(self, msg, node, setting):
        raise ConfigRewriteError(msg, line=getattr(node, "lineno", None), setting=setting)

    def name(self, setting):
        """The name to write: in style django always the namespaced new name, which every Celery
        reads first (an old name there is read by Celery 5.7 only: see apply_setting)."""
        return written_name(setting, self.style, self.namespace)

    def _old_django_bindings(self, setting, name):
        """Plain ``OLD = value`` statements of a setting a Django file sets under its old name only.

        Celery 5.2-5.6 never read old names under the Django namespace (measured on 5.5.3:
        ``CELERY_TASK_RESULT_EXPIRES = 3600`` leaves result_expires at its 1-day default); 5.7
        falls back to them. So such a setting is renamed in place, never left for 5.7 alone."""
        if self.style != "django" or self.target.kind not in ("module", "class"):
            return []
        old = CELERY_SETTINGS[setting][0]
        if old == name or old not in self._scope_names() or name in self._scope_names():
            return []
        bindings = self._bindings(setting, old)
        for binding in bindings:
            stmt = binding.stmt
            if _single_name_target(stmt) is None:
                self._refuse("%s is set under its old name in a form that cannot be renamed in place (only "
                             "Celery 5.7 reads old names under the Django namespace); write %s = ... instead"
                             % (old, name), stmt, setting)
        return bindings

    def _rename(self, setting, binding, name, value):
        """``OLD = before`` becomes ``NEW = value`` on the same line, comments and layout kept."""
        start = self.src.start(_single_name_target(binding.stmt))
        change = {"setting": setting, "name": name, "renamed_from": binding.name,
                  "before": "%s = %s" % (binding.name, self.src.text(*self.src.value_span(binding.value)).strip()),
                  "after": "%s = %s" % (name, render(value))}
        self._add(start, start + len(binding.name.encode("utf-8")), name, change)
        self.set_value(setting, name, binding.value, value, quiet=True)

    def _scope_names(self):
        if self._names is None:
            bindings, problems = [], []
            walk_scope(self.target.scope, False, bindings, problems, known_names(self.namespace))
            self._names = set(b.name for b in bindings) | set(p[0] for p in problems)
        return self._names

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

    def set_value(self, setting, name, node, value, extra=None, bounds=None, quiet=False):
        """Replace the value's own tokens; ``quiet``: part of a change already recorded (a rename)."""
        current = literal_value(node)
        start, end = self.src.value_span(node, bounds)
        before = self.src.text(start, end)
        kept = b""
        if current is DYNAMIC or not same_value(current, value):
            kept = self._kept_comments(setting, name, node, start, end)
        if current is DYNAMIC:
            if self.on_dynamic != "replace":
                self._refuse("%s is set from an expression (%s), not a literal; on_dynamic=replace "
                             "overwrites it" % (name, " ".join(before.split())), node, setting)
        elif same_value(current, value):
            return
        change = {"setting": setting, "name": name, "before": before, "after": render(value)}
        change.update(extra or {})
        self._add(start, end, change["after"].encode("utf-8") + kept, None if quiet else change)

    def _kept_comments(self, setting, name, node, start, end):
        """Comments inside a value that is replaced: carried behind the new value, on its line."""
        inside = self.src.comments_within(start, end)
        if not inside:
            return b""
        data = self.src.data
        rest = data[end:self.src.line_end(self.src.line_of(end))]
        if rest.strip():
            self._refuse("%s: the value holds a comment (line %d) and code follows it on its last line; "
                         "replacing the value would drop the comment. Move it out of the value first" %
                         (name, self.src.line_of(inside[0][0])), node, setting)
        texts = [text for _offset, text in inside]
        return b"  " + b" ".join(texts)

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

    # -- call and dict targets: entries of mappings
    def _mapping_value(self, setting, name):
        """The node that holds ``name`` in a call or dict target (the one Celery reads), else None."""
        entries, unknown = self.target.entries()
        if unknown:
            errors = [ConfigRewriteError("%s: %s; cannot prove which settings it holds" % (self.target.label, why),
                                         line=line, setting=setting) for line, why in unknown]
            raise ConfigRewriteError.combine(errors)
        found = [e for e in entries if e.name == name]
        if not found:
            return None
        entry = found[-1]
        if isinstance(entry.container, ast.Call):
            bounds = (self._call_opener(entry.container) + 1, self.src.end(entry.container) - 1)
        else:
            bounds = (self.src.start(entry.container) + 1, self.src.end(entry.container) - 1)
        return entry.value, bounds

    def _mapping_insert(self, setting, name, value_text, change):
        """Add ``name`` where Celery reads it last: the dict, the last call's dict or its keywords."""
        if self.target.kind == "dict":
            return self._dict_insert(self.target.node, name, value_text, change)
        call = self.target.calls[-1][1]
        positional = [a for a in call.args if isinstance(a, ast.Dict)]
        named = [k for k in call.keywords if k.arg is not None]
        unpacked = [k.value for k in call.keywords if k.arg is None]
        if positional and not named and not unpacked:
            return self._dict_insert(positional[-1], name, value_text, change)
        if named or not (call.args or unpacked):
            return self.insert_item(call, self._call_elements(call), "%s=%s" % (name, value_text),
                                    change, self._call_opener(call))
        if unpacked and not call.args and isinstance(unpacked[-1], (ast.Name, ast.Dict)):
            node = unpacked[-1]
            if isinstance(node, ast.Name):
                node = self.target.dicts.get(node.id)
            if node is not None:
                return self._dict_insert(node, name, value_text, change)
        self._refuse("cannot tell where in %s(...) a new %s would take effect" % (self.target.label, name),
                     call, setting)

    def _dict_insert(self, node, name, value_text, change):
        quote = "'"
        for key in node.keys:
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                quote = self.src.data[self.src.start(key):self.src.start(key) + 1].decode("ascii", "replace")
                break
        key_text = render(name)
        if quote == '"' and "'" not in name and '"' not in name:
            key_text = '"%s"' % name
        self.insert_item(node, self._dict_elements(node), "%s: %s" % (key_text, value_text), change,
                         self.src.start(node))

    # -- one setting
    def apply_setting(self, setting, value):
        name = self.name(setting)
        if self.target.kind in ("call", "dict"):
            found = self._mapping_value(setting, name)
            if found:
                self.set_value(setting, name, found[0], value, bounds=found[1])
            else:
                change = {"setting": setting, "name": name, "before": None, "after": render(value)}
                self._mapping_insert(setting, name, render(value), change)
            return
        old_bindings = self._old_django_bindings(setting, name)
        if old_bindings:
            for binding in old_bindings:
                self._rename(setting, binding, name, value)
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
        if self.target.kind in ("call", "dict"):
            found = self._mapping_value(setting, name)
            if found is None:
                change = {"setting": setting, "name": name, "before": None, "after": render(overrides)}
                self._mapping_insert(setting, name, render(overrides), change)
                return
            values = [found[0]]
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


def _normalise(settings, task_overrides, errors):
    wanted = []
    for name, value in (settings or {}).items():
        try:
            setting = check_setting_name(name)
            wanted.append((setting, coerce(setting, value)))
        except ConfigRewriteError as exc:
            errors.append(exc)
    overrides = {}
    for task, options in (task_overrides or {}).items():
        if not isinstance(options, dict) or not options:
            errors.append(ConfigRewriteError("task_overrides[%r] must be a non-empty mapping of task options, "
                                             "e.g. {ignore_result: false}" % task, setting=ANNOTATIONS))
            continue
        overrides[str(task)] = {}
        for option, value in options.items():
            if not isinstance(option, str) or not option.isidentifier():
                errors.append(ConfigRewriteError("task_overrides[%r] has an option %r that is not a task "
                                                 "attribute name" % (task, option), setting=ANNOTATIONS))
                continue
            if option in BOOL_TASK_OPTIONS:
                try:
                    value = coerce("task_ignore_result", value)
                except ConfigRewriteError:
                    errors.append(ConfigRewriteError("task_overrides[%r].%s expects a boolean, got %r" %
                                                     (task, option, value), setting=ANNOTATIONS))
            overrides[str(task)][option] = value
    if overrides and any(setting == ANNOTATIONS for setting, _v in wanted):
        errors.append(ConfigRewriteError("give task_annotations either in settings or as task_overrides, "
                                         "not both", setting=ANNOTATIONS))
    return wanted, overrides


def plan_rewrite(source, settings=None, task_overrides=None, style="auto", namespace=DEFAULT_NAMESPACE,
                 object_name=None, on_dynamic="fail", path=None, _verify=True):
    """Plan the rewrite of ``source`` (bytes or a parsed Source); nothing is written.

    Returns a RewritePlan whose ``new_bytes`` equal ``source`` when nothing has to change, and
    whose ``effective`` holds the value Celery will see for each requested setting, read from the
    new bytes. Raises ConfigRewriteError listing every problem, each with its line when one is
    known, when the file cannot be rewritten so that Celery sees the values asked for.
    ``path`` only helps to recognise a Django settings file (``settings.py``, ``settings/*.py``).
    """
    if style not in STYLES + ("auto",):
        raise ConfigRewriteError("unknown style %r; use auto, celery, django or legacy" % style)
    if on_dynamic not in ("fail", "replace"):
        raise ConfigRewriteError("unknown on_dynamic %r; use fail or replace" % on_dynamic)
    namespace = namespace or ""
    errors = []
    wanted, overrides = _normalise(settings, task_overrides, errors)
    src = source if isinstance(source, Source) else Source(source)
    target = find_target(src, object_name, namespace)
    warnings = []
    django_file = is_django_settings(src, path)
    chosen = pick_style(src, target, style, namespace, warnings, django_file)
    planner = _Planner(src, chosen, namespace, target, on_dynamic)
    planner.warnings.extend(warnings)
    for setting, value in wanted:
        try:
            planner.apply_setting(setting, value)
        except ConfigRewriteError as exc:
            errors.append(exc)
        if setting == "result_expires" and not value:
            planner.warnings.append("result_expires=%r stores results without a TTL" % (value,))
    if overrides:
        try:
            planner.apply_overrides(overrides)
        except ConfigRewriteError as exc:
            errors.append(exc)
    if errors:
        raise ConfigRewriteError.combine(errors)
    planner.flush_items()
    new_bytes, edits = planner.splice()
    changes = [e.change for e in edits if e.change is not None]
    plan = RewritePlan(new_bytes, chosen, target.label, changes, planner.warnings)
    if not _verify:
        return plan
    if edits:
        # one tree at a time: the old one is not needed to read the new bytes (a 5 MB file
        # costs hundreds of MB per tree)
        src.tree = target = planner = None
        new_src = Source(new_bytes)
        _check(new_src, edits, settings, task_overrides, style, namespace, object_name, path)
        new_target = find_target(new_src, object_name, namespace)
    else:
        new_src, new_target = src, target
    try:
        plan.effective = check_effective(new_src, new_target, chosen, namespace, django_file, wanted, overrides)
    except ConfigRewriteError as exc:
        # lines of the original file, which is the one left in place
        problems = [(_old_line(src, new_src, edits, line), setting, msg) for line, setting, msg in exc.problems]
        raise ConfigRewriteError.combine([ConfigRewriteError(m, line=l, setting=s) for l, s, m in problems])
    plan.form = loader_form(new_target, chosen)
    return plan


def _old_line(src, new_src, edits, line):
    """The line of the original file that line ``line`` of the rewritten file comes from."""
    if not line or not edits:
        return line
    offset = new_src.line_starts[line - 1]
    shift = 0
    for edit in sorted(edits, key=lambda e: (e.start, e.seq)):
        new_start = edit.start + shift
        if offset < new_start:
            break
        if offset < new_start + len(edit.text):
            return src.line_of(edit.start)
        shift += len(edit.text) - (edit.end - edit.start)
    return src.line_of(max(0, offset - shift))


def loader_form(target, style):
    """How Celery reads this target: module, django (namespace), mapping or update."""
    if target.kind == "call":
        return "update"
    if target.kind == "dict":
        return "mapping"
    return "django" if style == "django" else "module"


def check_effective(src, target, style, namespace, django_file, wanted, overrides):
    """Read the new source as Celery's loader would; refuse unless every value is the one asked for."""
    form = loader_form(target, style)
    settings = [s for s, _v in wanted]
    if overrides:
        settings.append(ANNOTATIONS)
    inherited = None
    if target.kind == "class" and any(not (isinstance(b, ast.Name) and b.id == "object") for b in target.node.bases):
        inherited = target.node.lineno
    seen = read_effective(src.tree, form, settings, namespace, scope=target.scope, mapping=target.node,
                          calls=[c for _r, c in target.calls], inherited=inherited,
                          uppercase_only=(form == "django" and django_file and target.kind == "module"))
    problems = list(seen.problems)
    for setting, value in wanted:
        got = seen.values.get(setting)
        if got is None:
            continue
        if got["value"] is DEFAULT or not same_value(got["value"], value):
            problems.append((got["line"], setting, "Celery would see %s, not %r, after this rewrite" %
                             ("its default" if got["value"] is DEFAULT else repr(got["value"]), value)))
    got = seen.values.get(ANNOTATIONS)
    if overrides and got is not None:
        annotations = got["value"] if isinstance(got["value"], dict) else {}
        for task, options in overrides.items():
            for option, value in options.items():
                have = annotations.get(task, {}).get(option, DEFAULT) if isinstance(annotations.get(task), dict) \
                    else DEFAULT
                if have is DEFAULT or not same_value(have, value):
                    problems.append((got["line"], ANNOTATIONS, "Celery would not see %s=%r for %s" %
                                     (option, value, task)))
    if problems:
        raise ConfigRewriteError.combine([ConfigRewriteError(m, line=l, setting=s) for l, s, m in problems])
    return dict((s, {"value": v["value"], "line": v["line"]}) for s, v in seen.values.items())


def _check(new_src, edits, settings, task_overrides, style, namespace, object_name, path):
    """Set each change's line, and require that a second plan of the new bytes is a no-op."""
    try:
        again = plan_rewrite(new_src, settings, task_overrides, style, namespace, object_name,
                             "fail", path=path, _verify=False)
    except ConfigRewriteError as exc:
        raise ConfigRewriteError("internal error: the rewritten file does not check out: %s" % exc.msg,
                                 line=exc.line, setting=exc.setting)
    if again.new_bytes != new_src.data:
        raise ConfigRewriteError("internal error: the rewrite does not converge (%r)" % again.changes)
    shift = 0
    for edit in edits:
        if edit.change is not None:
            edit.change["line"] = new_src.line_of(edit.start + shift + edit.skip)
        shift += len(edit.text) - (edit.end - edit.start)


__all__ = [
    "RewritePlan", "check_effective", "find_target", "is_django_settings", "loader_form", "pick_style",
    "plan_rewrite",
]
