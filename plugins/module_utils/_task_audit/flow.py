# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flow analysis: where each task's objects, signatures, results and ids go."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import re

from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit.vocabulary import (
    BACKEND_READ_METHODS, BUILTIN_METHODS, CANVAS_NAMES, CONTAINER_ADD_METHODS,
    CONTAINER_METHODS, ID_ATTRS, LOG_METHODS, READ_ATTRS, RESULT_CLASS_NAMES,
    RESULT_PASSTHROUGH_ATTRS, RESULT_SAFE_ATTRS, SEND_METHODS, SIGNATURE_METHODS,
    SIGNATURE_SAFE_ATTRS, SIG_PASSTHROUGH_METHODS, TASK_SAFE_ATTRS, TRANSPARENT_CALLS,
    VALID_OPTIONS,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit.values import (
    ALIAS_VALUES, ChordPartialV, ConstV, FuncV, IdV, InstV, MethodV, ModuleV, PARAM_VALUES,
    RebuiltV, ResV, SigV, TaskV,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit.values import _relabel, _dotted, _describe
from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit.discovery import _assigned_names


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_DEF = re.compile(r"^\s*(?:async\s+)?def\s+([A-Za-z_][A-Za-z0-9_]*)")
_LITERAL_NAME = re.compile(r"name\s*=\s*[\"']([^\"']+)[\"']")


def _value_readset(value):
    """The (task, kind) pairs a value leads to, without following functions."""
    if isinstance(value, TaskV):
        return frozenset((n, "unknown") for n in value.names)
    if isinstance(value, (SigV, ResV, IdV)):
        return value.readset
    if isinstance(value, MethodV):
        return _value_readset(value.receiver)
    if isinstance(value, ChordPartialV):
        return value.header
    return frozenset()


def _lines(path, source):
    """(number, text) of each line of a file not parsed; read line by line when not in memory."""
    if source is not None:
        for number, row in enumerate(source.decode("utf-8", "replace").splitlines(), 1):
            yield number, row
        return
    try:
        with open(path, "rb") as handle:
            for number, row in enumerate(handle, 1):
                yield number, row.decode("utf-8", "replace")
    except (IOError, OSError):
        return


def _task_defs_in_lines(lines):
    """(line, function name, name= literal or None) of what looks like a task definition:
    a ``def`` right under decorators one of which mentions ``task``."""
    decorators = []
    for number, row in lines:
        stripped = row.strip()
        if stripped.startswith("@"):
            decorators.append(stripped)
            continue
        found = _DEF.match(row)
        if found and any("task" in d for d in decorators):
            named = None
            for decorator in decorators:
                literal = _LITERAL_NAME.search(decorator)
                if literal and "task" in decorator:
                    named = literal.group(1)
            yield number, found.group(1), named
        if stripped and not stripped.startswith("#"):
            decorators = []


class _FunctionUnit:
    """A function (or a module's top level) to analyse, with what it may refer to."""

    __slots__ = ("module", "qual", "node", "body", "parent", "class_name", "names", "env",
                 "returns", "is_module", "nodes", "binders", "value_returns", "children",
                 "update_state_calls", "local_names", "env_seq", "calls", "class_bodies",
                 "tuple_returns")

    def __init__(self, module, qual, node, body, parent, class_name, is_module=False):
        self.module = module
        self.qual = qual
        self.node = node
        self.body = body
        self.parent = parent
        self.class_name = class_name
        self.is_module = is_module
        self.names = set()
        self.env = {}
        self.returns = frozenset()
        self.nodes = []
        self.binders = []
        self.value_returns = []
        self.children = []
        self.update_state_calls = []
        self.local_names = None
        self.env_seq = None
        self.calls = []
        self.tuple_returns = None
        self.class_bodies = []   # module units: (class qual, class-body statements)

    def index(self):
        """Walk the body once: the names it uses, the nodes that bind, the returns with a value."""
        names = self.names
        for stmt in self.body:
            for node in _walk_no_defs(stmt):
                self.nodes.append(node)
                if isinstance(node, ast.Name):
                    names.add(node.id)
                elif isinstance(node, ast.Attribute):
                    names.add(node.attr)
                    continue
                elif isinstance(node, ast.Return):
                    if node.value is not None:
                        self.value_returns.append(node)
                    continue
                elif isinstance(node, (ast.Import, ast.ImportFrom)):
                    self.module.import_nodes.append(node)
                    continue
                elif isinstance(node, ast.Call):
                    self.calls.append(node)
                    func = node.func
                    attr = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                    if attr in CONTAINER_ADD_METHODS:
                        self.binders.append(node)
                    elif attr in ("register_task", "register"):
                        self.module.register_calls.append(node)
                    elif attr == "update_state":
                        self.update_state_calls.append(node)
                    continue
                if isinstance(node, _BINDERS):
                    self.binders.append(node)


class Flow:
    """Building the units and running the analysis: a part of :class:`Audit`."""

    def build_units(self):
        for module in self.modules.values():
            if not module.cold:
                self._module_units(module)

    def _module_units(self, module):
        """The units of one module (its top level, functions, methods); the new units."""
        first = len(self.units)
        top = []
        unit = _FunctionUnit(module, module.name + ".<module>", module.tree, top, None, None,
                             is_module=True)
        self._add_unit(unit)
        for stmt in module.tree.body:
            self._collect(module, stmt, unit, None, module.name, top)
        return self.units[first:]

    def thaw(self, module, interesting):
        """Parse a cold module again and bring it into the analysis; its units' quals."""
        source = self._read(module.path)
        tree = self._parse(module.path, source) if source is not None else None
        module.cold = False
        if tree is None:
            return set()
        module.tree = tree
        module.import_nodes = []
        module.imports, module.functions, module.classes = {}, {}, {}
        units = self._module_units(module)
        for unit in units:
            unit.index()
        module.collect_imports()
        self._units_by_class = None
        self._resolve_cache = {}
        self._module_aliases(units[0], interesting)
        return set(u.qual for u in units)

    def _thaw_touching(self, relevant, interesting):
        """Thaw the cold modules that name something relevant or were asked for."""
        quals = set()
        api = self._api_words
        for module in list(self.modules.values()):
            if module.cold and (module.name in self.promote_requests or any(
                    word not in api for word in module.words.intersection(relevant))):
                quals |= self.thaw(module, interesting)
        self.promote_requests = {}
        return quals

    def _add_unit(self, unit):
        self.units.append(unit)
        self.unit_by_qual.setdefault(unit.qual, unit)
        self.unit_by_node[id(unit.node)] = unit
        if unit.parent is not None:
            unit.parent.children.append(unit)

    def _collect(self, module, stmt, parent, class_name, prefix, parent_body):
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            unit = _FunctionUnit(module, "%s.%s" % (prefix, stmt.name), stmt, stmt.body, parent,
                                 class_name)
            self._add_unit(unit)
            for child in _nested_defs(stmt.body):
                self._collect(module, child, unit, None, unit.qual + ".<locals>", None)
        elif isinstance(stmt, ast.ClassDef):
            if parent is not None and parent.is_module and parent_body is not None:
                parent.class_bodies.append(("%s.%s" % (prefix, stmt.name),
                                            [s for s in stmt.body if isinstance(
                                                s, (ast.Assign, ast.AnnAssign)) and s.value]))
            for child in stmt.body:
                self._collect(module, child, parent, stmt.name, "%s.%s" % (prefix, stmt.name),
                              parent_body)
        elif parent_body is not None:
            parent_body.append(stmt)

    # -- the analysis ---------------------------------------------------------------------------

    def analyse(self):
        interesting = set(("delay", "apply_async", "send_task", "AsyncResult", "GroupResult",
                           "ResultSet", "getattr", "tasks", "restore", "freeze", "update_state",
                           "Signature", "AbortableAsyncResult"))
        interesting |= SIGNATURE_METHODS | CANVAS_NAMES | RESULT_CLASS_NAMES | set(BUILTIN_METHODS)
        interesting |= BACKEND_READ_METHODS
        interesting.add("result_from_tuple")
        # Celery's own words: a cold file holding only these (``"%s"`` gives ``s``, ``map()``)
        # touches no task; the file-level check (``_HOT``) already caught the ones that do.
        self._api_words = frozenset(interesting)
        for task in self.tasks.values():
            interesting.add(task.node.name)
        for module in self.modules.values():
            for alias in module.imports:
                if self.resolve(module.imports[alias]) and \
                        self.resolve(module.imports[alias])[0] == "task":
                    interesting.add(alias)
            interesting.update(module.task_names)
        # Module-level aliases first (``charge_task = app.register_task(Charge())``), and
        # the class attributes bound in class bodies (``job = crunch``).
        for unit in self.units:
            if unit.is_module:
                self._module_aliases(unit, interesting)
        self._resolve_cache = {}
        # What functions return and what their callers pass them, to a fixed point.
        # After the first round only the units that see a change are analysed again: they
        # name a function whose returns changed, an alias or attribute that changed, their
        # parameters received more, or they are nested in a unit analysed again.
        relevant = set(interesting)
        self.thaw_on_resolve = True
        self._thaw_touching(relevant, interesting)
        relevant |= interesting
        dirty_names, dirty_quals = None, None
        for _round in range(12):
            self.changed_params, self.changed_attrs = set(), set()
            self.context_returns = {}
            changed = set()
            redone = set()
            for unit in self.units:
                if not self._relevant(unit, relevant):
                    continue
                if dirty_names is not None and unit.qual not in dirty_quals \
                        and unit.names.isdisjoint(dirty_names) \
                        and (unit.parent is None or unit.parent.qual not in redone):
                    continue
                redone.add(unit.qual)
                analyser = _Analyser(self, unit)
                if unit.is_module:
                    if _round:
                        changed |= self._module_aliases(unit, interesting)
                    self._guarded(unit, analyser.evaluate_calls)
                    continue
                returns = self._guarded(unit, analyser.returns)
                self._guarded(unit, analyser.evaluate_calls)
                if returns is not None and returns != unit.returns:
                    unit.returns = returns
                    changed.add(unit.node.name)
            relevant |= changed
            relevant.update(self.attrs_by_name)
            waiting = set()
            for names in self.promote_requests.values():
                waiting |= names
            dirty_names = changed | self.changed_attrs | waiting
            dirty_quals = self.changed_params | self._thaw_touching(relevant, interesting)
            relevant |= interesting
            if changed:
                self._resolve_cache = {}
            if not dirty_names and not dirty_quals:
                break
        else:
            self.warn("analysis_incomplete", None, None,
                      "the flow analysis did not settle in 12 rounds; what it found so far is "
                      "reported")
        self.context_returns = {}
        for unit in self.units:
            if self._relevant(unit, relevant):
                self._guarded(unit, _Analyser(self, unit).scan)
        self._task_bodies()
        self._settle()
        self._unparsed_tasks()

    def _relevant(self, unit, relevant):
        if unit.qual in self.params or not unit.names.isdisjoint(relevant):
            return True
        parent = unit.parent
        return parent is not None and not parent.is_module and any(
            parent.env.get(name) for name in unit.names)

    def _guarded(self, unit, step):
        """Run one step of a unit's analysis; a tree too deep to follow makes its tasks unknown."""
        try:
            return step()
        except RecursionError:
            line = getattr(unit.node, "lineno", None)
            self.warn("too_deep", unit.module.path, line,
                      "%s is nested too deeply to analyse; every task it names counts as "
                      "needing its result" % unit.qual)
            names = set()
            for short in unit.names:
                names |= self.tasks_by_short.get(short, set())
            names |= set(t.name for t in self.tasks.values() if t.file == unit.module.path)
            for name in names:
                self.need(name, "unknown", unit.module.path, line,
                          "in %s, too deeply nested to analyse" % unit.qual)
            return None

    def _module_aliases(self, unit, interesting):
        """Module globals and class-body attributes; the names whose values changed."""
        changed = set()
        analyser = _Analyser(self, unit)
        env = self._guarded(unit, analyser.environment) or {}
        for name, values in env.items():
            kept = frozenset(v for v in values if isinstance(v, ALIAS_VALUES))
            if kept and kept != unit.module.aliases.get(name):
                changed.add(name)
                unit.module.aliases[name] = kept
                if any(not isinstance(v, ConstV) for v in kept):
                    interesting.add(name)  # a string alone reaches nothing by itself
        for class_qual, stmts in unit.class_bodies:
            for stmt in stmts:
                for target in _assigned_names(stmt):
                    try:
                        values = analyser.ev(stmt.value)
                    except RecursionError:
                        continue
                    kept = frozenset(v for v in values if isinstance(v, ALIAS_VALUES)
                                     and not isinstance(v, ConstV))
                    if kept:
                        self.add_class_attr(class_qual, target, kept)
                        interesting.add(target)
        return changed

    def add_class_attr(self, class_qual, attr, values):
        key = (class_qual, attr)
        old = self.class_attrs.get(key, _EMPTY)
        if not values <= old:
            self.class_attrs[key] = old | values
            self.attrs_by_name[attr] = self.attrs_by_name.get(attr, _EMPTY) | values
            self.changed_attrs.add(attr)

    def bind_params(self, unit, values_by_param):
        slot = self.params.setdefault(unit.qual, {})
        for name, values in values_by_param.items():
            values = frozenset(v for v in values if isinstance(v, PARAM_VALUES))
            if not values:
                continue
            old = slot.get(name, _EMPTY)
            if not values <= old:
                slot[name] = old | values
                self.changed_params.add(unit.qual)

    def class_bases(self, class_qual, seen=None):
        """The app's own classes ``class_qual`` inherits from, nearest first."""
        seen = seen if seen is not None else set()
        owner, _dot, name = class_qual.rpartition(".")
        module = self.modules.get(owner)
        class_def = module.classes.get(name) if module is not None else None
        out = []
        if class_def is None:
            return out
        for base in class_def.bases:
            qualified = self.qualify_node(module, base)
            found = self.resolve(qualified) if qualified else None
            if found and found[0] == "class" and found[1] not in seen:
                seen.add(found[1])
                out.append(found[1])
                out.extend(self.class_bases(found[1], seen))
        return out

    def method_unit(self, class_qual, method, include_self=True):
        classes = ([class_qual] if include_self else []) + self.class_bases(class_qual)
        for cls in classes:
            unit = self.unit_by_qual.get("%s.%s" % (cls, method))
            if unit is not None:
                return unit
        return None

    def class_carries_values(self, class_qual):
        """Whether an instance of the class can lead to a task: a followed attribute, or a
        method that returns or is handed something the audit follows."""
        if self._units_by_class is None:
            self._class_units(class_qual)
        for cls in [class_qual] + self.class_bases(class_qual):
            if any(key[0] == cls for key in self.class_attrs):
                return True
            for unit in self._units_by_class.get(cls, ()):
                if unit.returns or unit.qual in self.params:
                    return True
        return False

    def class_attr(self, class_qual, attr):
        values = _EMPTY
        for cls in [class_qual] + self.class_bases(class_qual):
            values = values | self.class_attrs.get((cls, attr), _EMPTY)
        return values

    def _unparsed_tasks(self):
        """Files the audit could not parse: every task they name counts as unknown."""
        if not self.unparsed:
            return
        words = {}
        for task in self.tasks.values():
            words.setdefault(task.node.name, set()).add(task.name)
            words.setdefault(task.name.rpartition(".")[2], set()).add(task.name)
        # Functions that return something followed, and followed class attributes: a file that
        # names them may read what they lead to.
        leads = {}
        for unit in self.units:
            if unit.returns and not unit.is_module:
                leads.setdefault(unit.node.name, set()).update(unit.returns)
        for attr, values in self.attrs_by_name.items():
            leads.setdefault(attr, set()).update(values)
        readsets = dict((name, frozenset(n for v in values for n, _why in _value_readset(v)))
                        for name, values in leads.items())
        for name, names in readsets.items():
            if names:
                words.setdefault(name, set()).update(names)
        for path, _entry, _line, why, source in self.unparsed:
            for number, row in _lines(path, source):
                for word in _WORD.findall(row):
                    for piece in set([word, word.rpartition(".")[2]]):
                        for name in words.get(piece, ()):
                            self.need(name, "unknown", path, number,
                                      "named in a file the audit cannot parse (%s)" % why)
                    if word in self.tasks:
                        self.need(word, "unknown", path, number,
                                  "named in a file the audit cannot parse (%s)" % why)
            for number, name, celery_name in _task_defs_in_lines(_lines(path, source)):
                task_name = celery_name or "%s.%s" % (self.unparsed_names.get(path, "?"), name)
                if task_name not in self.tasks:
                    self.fallback_tasks.setdefault(task_name, (path, number))
                self.need(task_name, "unknown", path, number,
                          "a task defined in a file the audit cannot parse (%s)" % why)

    def _task_bodies(self):
        """Progress reports and the task's own id, from its body and whatever it calls:
        helpers, methods of its ``base=`` class, ``current_task`` in a shared helper."""
        for task in self.tasks.values():
            module = self.modules[task.module]
            if task.kind == "function":
                roots = [self.unit_by_node.get(id(task.node))]
                base = task.node_base
                if base is not None:
                    qualified = self.qualify_node(module, base)
                    found = self.resolve(qualified) if qualified else None
                    if found and found[0] == "class":
                        roots.extend(self._class_units(found[1]))
            else:
                roots = self._class_units("%s.%s" % (task.module, task.node.name))
            seen = set()
            stack = [u for u in roots if u is not None]
            readset = frozenset([(task.name, "result_read")])
            while stack:
                unit = stack.pop()
                if unit.qual in seen:
                    continue
                seen.add(unit.qual)
                stack.extend(unit.children)
                stack.extend(self._static_callees(unit))
                for node in unit.update_state_calls:
                    self.need(task.name, "update_state", unit.module.path, node.lineno,
                              "%s() reports progress for the task (reached from its body); "
                              "pollers read its state" % _describe(node.func))
                for node in unit.nodes:
                    if isinstance(node, ast.Attribute) and node.attr == "id" \
                            and isinstance(node.value, ast.Attribute) \
                            and node.value.attr == "request":
                        self.id_escapes.append((readset, unit.module.path, node.lineno,
                                                "the task keeps its own id (%s)"
                                                % _describe(node)))
                        break

    def _class_units(self, class_qual):
        if self._units_by_class is None:
            self._units_by_class = {}
            for unit in self.units:
                if unit.class_name:
                    self._units_by_class.setdefault(unit.qual.rpartition(".")[0], []).append(unit)
        units = []
        for cls in [class_qual] + self.class_bases(class_qual):
            units.extend(self._units_by_class.get(cls, ()))
        return units

    def _static_callees(self, unit):
        """The app's own functions and methods a unit calls, by name alone."""
        found = []
        class_qual = unit.qual.rpartition(".")[0] if unit.class_name else None
        for call in unit.calls:
            func = call.func
            if class_qual and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                    and func.value.id in ("self", "cls"):
                target = self.method_unit(class_qual, func.attr)
                if target is not None:
                    found.append(target)
                continue
            if isinstance(func, (ast.Name, ast.Attribute)):
                qualified = self.qualify_node(unit.module, func)
                resolved = self.resolve(qualified) if qualified else None
                if resolved and resolved[0] == "function":
                    target = self.unit_by_qual.get(resolved[1])
                    if target is not None:
                        found.append(target)
        return found

    def _settle(self):
        for unit, values, line in self.returned:
            if unit.qual in self.called:
                continue
            for value in values:
                detail = ("returned from %s(), whose callers are not in the audited code"
                          % unit.qual)
                if isinstance(value, (ResV, SigV)):
                    self.need_readset(value.readset, unit.module.path, line,
                                      "result " + detail, kind="unknown")
                elif isinstance(value, RebuiltV):
                    self.rebuild_reads.append((unit.module.path, line,
                                               "AsyncResult rebuilt and " + detail))
        if self.rebuild_reads:
            self.rebuild_reads.sort(key=lambda r: (r[0], r[1] or 0))
            first = self.rebuild_reads[0]
            where = "%s:%s" % (first[0], first[1])
            more = len(self.rebuild_reads) - 1
            for readset, path, line, detail in self.id_escapes:
                self.need_readset(readset, path, line, "%s; results are rebuilt from ids and read "
                                  "at %s%s" % (detail, where,
                                               " and %d more places" % more if more else ""),
                                  kind="id_escapes")

    # -- the answer -----------------------------------------------------------------------------


def _nested_defs(body):
    """Function definitions nested in a function body (any statement depth)."""
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node
            continue
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                stack.append(child)


def _walk_no_defs(node):
    """ast.walk that does not enter nested function or class definitions."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        for child in ast.iter_child_nodes(current):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            stack.append(child)


_EMPTY = frozenset()
_BINDERS = (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor, ast.comprehension,
            ast.withitem, ast.NamedExpr, ast.Global, ast.Nonlocal)


class _Analyser:
    """Abstract interpretation of one function: its variables, its returns, its reads."""

    def __init__(self, audit, unit, override=None, depth=0):
        self.audit = audit
        self.unit = unit
        self.override = override  # parameter values of one call site, for its own returns
        self.depth = depth
        self.module = unit.module
        self.path = unit.module.path
        self.env = {}
        if unit.parent is not None and not unit.parent.is_module:
            self.env = dict(unit.parent.env)
        self.local_names = set()
        self.params = set()
        self.memo = {}
        self._params()

    def _params(self):
        node = self.unit.node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            passed = self.audit.params.get(self.unit.qual, {}) if self.override is None \
                else self.override
            defaults = list(args.defaults) + [d for d in args.kw_defaults if d is not None]
            default_values = self._union(defaults) if defaults else _EMPTY
            for arg in list(getattr(args, "posonlyargs", [])) + args.args + args.kwonlyargs:
                self.local_names.add(arg.arg)
                self.params.add(arg.arg)
                # A default value may be a task too (``def run(job=crunch)``).
                self.env[arg.arg] = passed.get(arg.arg, _EMPTY) | default_values
            for arg in (args.vararg, args.kwarg):
                if arg is not None:
                    self.local_names.add(arg.arg)
                    self.params.add(arg.arg)
                    self.env[arg.arg] = passed.get(arg.arg, _EMPTY)

    # -- environment --------------------------------------------------------------------------

    def environment(self):
        for _pass in range(6):
            self.memo = {}
            before = dict(self.env)
            for node in self.unit.binders:
                self._bind_from(node)
            if self.env == before:
                break
        self.memo = {}
        if self.override is None:
            self.unit.env = self.env
        return self.env

    def _bind(self, target, values):
        if isinstance(target, ast.Name):
            self.local_names.add(target.id)
            old = self.env.get(target.id, _EMPTY)
            new = old | values
            if new != old:
                self.env[target.id] = new
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._bind(element, values)
        elif isinstance(target, ast.Starred):
            self._bind(target.value, values)
        elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) \
                and target.value.id in self.local_names:
            self._bind(target.value, values)
        elif self._self_attribute(target):
            kept = frozenset(v for v in values if isinstance(v, ALIAS_VALUES)
                             and not isinstance(v, ConstV))
            if kept:
                self.audit.add_class_attr(self._class_qual(), target.attr, kept)

    def _self_attribute(self, target):
        """``self.x`` (or ``cls.x``) in a method: a class attribute the audit follows."""
        return isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
            and target.value.id in ("self", "cls") and self._class_qual() is not None

    def _positional(self, node, count):
        """Values of each element of a tuple of ``count`` items, or None when not known."""
        if isinstance(node, (ast.Tuple, ast.List)) and len(node.elts) == count \
                and not any(isinstance(e, ast.Starred) for e in node.elts):
            return [self.ev(e) for e in node.elts]
        if isinstance(node, ast.Call):
            callee = self.ev(node.func)
            if not callee or not all(isinstance(v, FuncV) for v in callee):
                return None
            out = [_EMPTY] * count
            for value in callee:
                unit = self.audit.unit_by_qual.get(value.qual)
                shape = unit.tuple_returns if unit is not None else None
                if shape is None or len(shape) != count:
                    return None
                out = [a | b for a, b in zip(out, shape)]
            self.ev(node)  # the call itself: arguments reach the callee
            return out
        return None

    def _bind_from(self, node):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, (ast.Tuple, ast.List)):
                    parts = self._positional(node.value, len(target.elts))
                    if parts is not None and not any(isinstance(e, ast.Starred)
                                                     for e in target.elts):
                        for element, values in zip(target.elts, parts):
                            self._bind(element, values)
                        continue
                self._bind(target, self.ev(node.value))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            if node.value is not None:
                self._bind(node.target, self.ev(node.value))
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            self._bind(node.target, self.ev(node.iter))
        elif isinstance(node, ast.withitem):
            if node.optional_vars is not None:
                self._bind(node.optional_vars, self.ev(node.context_expr))
        elif isinstance(node, ast.NamedExpr):
            self._bind(node.target, self.ev(node.value))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in CONTAINER_ADD_METHODS \
                and isinstance(node.func.value, ast.Name):
            values = _EMPTY
            for arg in node.args:
                values = values | self.ev(arg)
            if values:
                self._bind(node.func.value, values)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            for name in node.names:
                self.local_names.discard(name)

    # -- returns ------------------------------------------------------------------------------

    def returns(self):
        self.environment()
        values = set()
        for node in self.unit.value_returns:
            values.update(v for v in self.ev(node.value) if isinstance(v, PARAM_VALUES))
        if self.override is None:
            self.unit.tuple_returns = self._tuple_shape()
        return frozenset(values)

    def _tuple_shape(self):
        """Per position, what the function returns when every return gives a tuple of the same
        length: literals, calls of functions that do, ``None`` (which nobody unpacks)."""
        lengths = set(len(n.value.elts) for n in self.unit.value_returns
                      if isinstance(n.value, ast.Tuple))
        if len(lengths) != 1:
            return None
        count = lengths.pop()
        shape = [_EMPTY] * count
        for node in self.unit.value_returns:
            value = node.value
            if isinstance(value, ast.Constant) and value.value is None:
                continue
            parts = self._positional(value, count)
            if parts is None:
                return None
            shape = [a | b for a, b in zip(shape, parts)]
        return shape

    def evaluate_calls(self):
        """Evaluate every call once: what the app's own functions are passed reaches them."""
        for node in self.unit.calls:
            self.ev(node)

    def _bind_call(self, node, unit, bound):
        """Hand the values of a call's arguments to the parameters of ``unit``."""
        fn = unit.node
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return
        args = fn.args
        positional = [a.arg for a in list(getattr(args, "posonlyargs", [])) + args.args]
        if bound and positional:
            positional = positional[1:]
        names = set(positional) | set(a.arg for a in args.kwonlyargs)
        values = {}
        spread = _EMPTY
        for index, arg in enumerate(node.args):
            if isinstance(arg, ast.Starred):
                spread = spread | self.ev(arg.value)
            elif index < len(positional):
                values[positional[index]] = values.get(positional[index], _EMPTY) | self.ev(arg)
            elif args.vararg is not None:
                values[args.vararg.arg] = values.get(args.vararg.arg, _EMPTY) | self.ev(arg)
            else:
                spread = spread | self.ev(arg)
        for keyword in node.keywords:
            if keyword.arg is None or (keyword.arg not in names and args.kwarg is None):
                spread = spread | self.ev(keyword.value)
            elif keyword.arg in names:
                values[keyword.arg] = values.get(keyword.arg, _EMPTY) | self.ev(keyword.value)
            else:
                values[args.kwarg.arg] = values.get(args.kwarg.arg, _EMPTY) | self.ev(keyword.value)
        if spread:
            every = names | set(a.arg for a in (args.vararg, args.kwarg) if a is not None)
            for name in every:
                values[name] = values.get(name, _EMPTY) | spread
        self.audit.bind_params(unit, values)
        return values

    def _returns_for(self, unit, passed):
        """What ``unit`` returns for this call's arguments (``dispatch(crunch)`` gives
        crunch's result, not that of every task ever dispatched). Reads inside the callee are
        still found with every caller's values."""
        passed = dict((k, frozenset(v for v in vs if isinstance(v, PARAM_VALUES)))
                      for k, vs in (passed or {}).items())
        passed = dict((k, v) for k, v in passed.items() if v)
        if not passed or not unit.value_returns or self.depth >= 3:
            return unit.returns
        key = (unit.qual, frozenset(passed.items()))
        cache = self.audit.context_returns
        if key in cache:
            return cache[key]
        cache[key] = unit.returns  # a recursive call sees the summary over all callers
        analyser = _Analyser(self.audit, unit, override=passed, depth=self.depth + 1)
        found = self.audit._guarded(unit, analyser.returns)
        cache[key] = unit.returns if found is None else found
        return cache[key]

    def _class_qual(self):
        """The class whose method this unit is, or None."""
        if not self.unit.class_name:
            return None
        return self.unit.qual.rpartition(".")[0]

    # -- evaluation -----------------------------------------------------------------------------

    def ev(self, node):
        key = id(node)
        found = self.memo.get(key)
        if found is None:
            self.memo[key] = _EMPTY  # recursion guard
            found = self._ev(node)
            self.memo[key] = found
        return found

    def _global(self, node):
        """Abstract value of a Name/Attribute that refers to something outside the function."""
        qualified = self.audit.qualify_node(self.module, node)
        found = self.audit.resolve(qualified) if qualified else None
        if found is None:
            # Not resolvable in the audited code (an import from elsewhere, a star import):
            # a name that a task bears counts as that task.
            short = node.id if isinstance(node, ast.Name) else node.attr
            if qualified is not None or isinstance(node, ast.Attribute):
                names = self.audit.tasks_by_short.get(short)
                if names and (qualified is None or not qualified.startswith(self.module.name + ".")):
                    return frozenset([TaskV(frozenset(names), False)])
            return _EMPTY
        kind, value = found
        if kind == "task":
            return frozenset([TaskV(frozenset([value]), False)])
        if kind == "class" and value in self.audit.task_classes:
            module, class_def = self.audit.task_classes[value]
            name = self.audit.modules[module.name].task_names.get(class_def.name)
            if name:
                return frozenset([TaskV(frozenset([name]), False)])
        if kind == "values":
            return value
        if kind == "module" and isinstance(node, ast.Name) and self._all_tasks(value):
            # A module that holds tasks, as a value: getattr() on it picks among them.
            return frozenset([ModuleV(value)])
        if kind == "function" and value in self.audit.unit_by_qual:
            return frozenset([FuncV(value, False)])
        if kind in ("function", "class"):
            owner = value.rpartition(".")[0]
            holder = self.audit.modules.get(owner) or self.audit.modules.get(
                owner.rpartition(".")[0])
            if holder is not None and holder.cold:
                # Follow it next round, once its module is parsed again.
                short = value.rpartition(".")[2]
                self.audit.promote_requests.setdefault(holder.name, set()).update(
                    self.unit.names & set([short]) or set([short]))
        return _EMPTY

    def _ev(self, node):
        if isinstance(node, ast.Name):
            inherited = node.id in self.env and node.id not in self.module.imports
            if node.id in self.local_names or inherited:
                return self.env.get(node.id, _EMPTY)
            return self._global(node)
        if isinstance(node, ast.Attribute):
            return self._ev_attribute(node)
        if isinstance(node, ast.Call):
            return self._ev_call(node)
        if isinstance(node, ast.Constant):
            return frozenset([ConstV(node.value)]) if isinstance(node.value, str) else _EMPTY
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return self._union(node.elts)
        if isinstance(node, ast.Dict):
            return self._union(node.values)
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp)):
            return self.ev(node.elt)
        if isinstance(node, ast.DictComp):
            return self.ev(node.value)
        if isinstance(node, ast.IfExp):
            return self.ev(node.body) | self.ev(node.orelse)
        if isinstance(node, ast.BoolOp):
            return self._union(node.values)
        if isinstance(node, (ast.NamedExpr, ast.Await, ast.Starred)):
            return self.ev(node.value)
        if isinstance(node, ast.Subscript):
            return self._ev_subscript(node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self._ev_pipe(node)
        return _EMPTY

    def _union(self, nodes):
        values = _EMPTY
        for node in nodes:
            if node is not None:
                values = values | self.ev(node)
        return values

    def _all_tasks(self, module_name=None):
        names = [t.name for t in self.audit.tasks.values()
                 if module_name is None or t.module == module_name]
        return frozenset(names)

    def _ev_attribute(self, node):
        class_qual = self._class_qual()
        receiver = node.value
        if class_qual is not None and isinstance(receiver, ast.Name) \
                and receiver.id in ("self", "cls"):
            unit = self.audit.method_unit(class_qual, node.attr)
            if unit is not None:
                return frozenset([FuncV(unit.qual, True)])
            found = self.audit.class_attr(class_qual, node.attr)
            if found:
                return found
        if class_qual is not None and isinstance(receiver, ast.Call) \
                and isinstance(receiver.func, ast.Name) and receiver.func.id == "super":
            unit = self.audit.method_unit(class_qual, node.attr, include_self=False)
            if unit is not None:
                return frozenset([FuncV(unit.qual, True)])
            return self.audit.class_attr(class_qual, node.attr)
        if isinstance(receiver, (ast.Name, ast.Attribute)) and not (
                isinstance(receiver, ast.Name) and receiver.id in self.local_names):
            qualified = self.audit.qualify_node(self.module, receiver)
            found = self.audit.resolve(qualified) if qualified else None
            if found and found[0] == "class":
                values = self.audit.class_attr(found[1], node.attr)
                if values:
                    return values
        base = self.ev(node.value)
        if base and all(isinstance(v, ModuleV) for v in base) and not (
                isinstance(node.value, ast.Name) and node.value.id in self.local_names):
            base = _EMPTY  # ``tasks.alpha``: resolved by name below
        if not base and isinstance(node.value, (ast.Name, ast.Attribute)) and \
                not (isinstance(node.value, ast.Name) and node.value.id in self.local_names):
            found = self._global(node)
            if found:
                return found
        if not base and node.attr in self.audit.attrs_by_name:
            # ``obj.job`` on an object the audit cannot type: any class attribute of that name.
            return self.audit.attrs_by_name[node.attr]
        if node.attr == "tasks" and not base and isinstance(node.value, (ast.Name, ast.Attribute)):
            # app.tasks / current_app.tasks: the registry, indexed by a runtime name.
            return _EMPTY
        out = set()
        for value in base:
            if isinstance(value, InstV):
                unit = self.audit.method_unit(value.cls, node.attr)
                if unit is not None:
                    out.add(FuncV(unit.qual, True))
                else:
                    out.update(self.audit.class_attr(value.cls, node.attr))
                continue
            if isinstance(value, TaskV) and node.attr in (SEND_METHODS | SIGNATURE_METHODS
                                                          | set(BUILTIN_METHODS)):
                out.add(MethodV(value, node.attr))
            elif isinstance(value, SigV) and node.attr in SEND_METHODS | {"freeze"}:
                out.add(MethodV(value, node.attr))
            elif isinstance(value, ResV) and node.attr in ("id", "task_id"):
                out.add(IdV(value.readset, value.origin))
            elif isinstance(value, ResV):
                if node.attr in RESULT_PASSTHROUGH_ATTRS:
                    out.add(value)
                elif node.attr == "parent":
                    out.add(ResV(_relabel(value.members, "chain_result_read"), value.members,
                                 value.origin))
            elif isinstance(value, RebuiltV) and node.attr in RESULT_PASSTHROUGH_ATTRS | {"parent"}:
                out.add(value)
            elif isinstance(value, ConstV):
                continue
        return frozenset(out)

    def _ev_subscript(self, node):
        base = self.ev(node.value)
        if isinstance(node.value, ast.Attribute) and node.value.attr == "tasks" and not base:
            # app.tasks[name]: the registry, indexed by a runtime name
            return frozenset([TaskV(self._all_tasks(), True)])
        return base  # containers collapse to their elements

    def _sig_of(self, values):
        """Signatures a value stands for (tasks count as their default signature)."""
        out = []
        for value in values:
            if isinstance(value, SigV):
                out.append(value)
            elif isinstance(value, TaskV):
                kind = "unknown" if value.dynamic else "result_read"
                readset = frozenset((n, kind) for n in value.names)
                out.append(SigV(readset, readset, "task"))
        return out

    def _ev_pipe(self, node):
        left = self._sig_of(self.ev(node.left))
        right = self._sig_of(self.ev(node.right))
        if not left and not right:
            return _EMPTY
        members = frozenset().union(*[s.members for s in left + right])
        if right:
            readset = frozenset().union(*[s.readset for s in right])
            if any(s.shape == "group" for s in left):
                self._chord_headers([s for s in left if s.shape == "group"], node)
                readset = _relabel(readset, "chord_body_result_read")
                return frozenset([SigV(readset, members, "chord")])
            return frozenset([SigV(_relabel(readset, "chain_result_read"), members, "chain")])
        return frozenset(left)

    def _literal_task_names(self, values, call, what):
        """Tasks a runtime name may be: the literal names it holds, else every task."""
        consts = [v.value for v in values if isinstance(v, ConstV)]
        if consts and len(consts) == len(values):
            names = set()
            for const in consts:
                if const in self.audit.tasks:
                    names.add(const)
                else:
                    self.audit.warn("unknown_task_name", self.path, call.lineno,
                                    "%s names %r, not a task found in the audited code"
                                    % (what, const))
            return frozenset(names), len(consts) > 1
        return self._all_tasks(), True

    def _ev_call(self, node):
        func = node.func
        if isinstance(func, ast.Attribute):
            receiver = self.ev(func.value)
            method = func.attr
            if receiver:
                out = self._ev_method(node, receiver, method)
                if out is not None:
                    return out
        if isinstance(func, ast.Attribute) and func.attr == "get" \
                and isinstance(func.value, ast.Attribute) and func.value.attr == "tasks" \
                and not self.ev(func.value):
            names = self._union(node.args[:1])
            consts = [v.value for v in names if isinstance(v, ConstV)]
            if consts and len(consts) == len(names) and all(c in self.audit.tasks for c in consts):
                return frozenset([TaskV(frozenset(consts), len(consts) > 1)])
            return frozenset([TaskV(self._all_tasks(), True)])
        callee = self.ev(func)
        out = set()
        called_app = False
        for value in callee:
            if isinstance(value, MethodV):
                found = self._ev_method(node, frozenset([value.receiver]), value.method)
                out.update(found or ())
                continue
            if isinstance(value, FuncV):
                unit = self.audit.unit_by_qual.get(value.qual)
                if unit is not None:
                    called_app = True
                    passed = self._bind_call(node, unit, value.bound)
                    self.audit.called.add(unit.qual)
                    out.update(self._returns_for(unit, passed))
                continue
            if isinstance(value, ChordPartialV):
                body = self._sig_of(self._union(node.args[:1]))
                for sig in body:
                    out.add(ResV(_relabel(sig.readset, "chord_body_result_read"),
                                 sig.members | value.header, self._origin(node)))
            elif isinstance(value, SigV) and value.shape != "task":
                out.add(ResV(value.readset, value.members, self._origin(node)))
        if out or called_app:
            return frozenset(out)
        tasks = frozenset(v for v in callee if isinstance(v, TaskV))
        if tasks and self._is_class_ref(func):
            return tasks  # instantiating a class-based task gives the task
        if not callee and isinstance(func, (ast.Name, ast.Attribute)):
            qualified = self.audit.qualify_node(self.module, func)
            found = self.audit.resolve(qualified) if qualified else None
            if found and found[0] == "class" and found[1] not in self.audit.task_classes \
                    and self.audit.class_carries_values(found[1]):
                init = self.audit.method_unit(found[1], "__init__")
                if init is not None:
                    self._bind_call(node, init, True)
                    self.audit.called.add(init.qual)
                return frozenset([InstV(found[1])])
        api = self.audit.celery_api(self.module, func)
        if self._is_partial(func):
            api = "partial"
        if (self.audit.qualify_node(self.module, func) if isinstance(func, (ast.Name, ast.Attribute))
                else None) in ("importlib.import_module", "__import__") or _dotted(func) in (
                    "__import__", "importlib.import_module"):
            return frozenset([ModuleV(None)])
        if api is not None and not callee:
            found = self._ev_api(node, api)
            if found is not None:
                return found
        # A function of the code base: what it returns.
        target = self._callee_unit(func)
        if target is not None:
            return target.returns
        if _dotted(func) in TRANSPARENT_CALLS:
            return self._union(node.args)
        return _EMPTY

    def _is_partial(self, func):
        if not isinstance(func, (ast.Name, ast.Attribute)):
            return False
        return (self.audit.qualify_node(self.module, func) or _dotted(func)) == "functools.partial"

    def _is_class_ref(self, func):
        if not isinstance(func, (ast.Name, ast.Attribute)):
            return False
        qualified = self.audit.qualify_node(self.module, func)
        found = self.audit.resolve(qualified) if qualified else None
        if found and found[0] == "task":
            return self.audit.tasks[found[1]].kind == "class"
        return bool(found) and found[0] == "class"

    def _callee_unit(self, func):
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                and func.value.id in ("self", "cls") and self.unit.class_name:
            prefix = self.unit.qual.rpartition(".")[0]
            return self.audit.unit_by_qual.get("%s.%s" % (prefix, func.attr))
        if isinstance(func, ast.Name) and func.id in self.local_names:
            return None
        qualified = self.audit.qualify_node(self.module, func) if isinstance(
            func, (ast.Name, ast.Attribute)) else None
        if qualified is None:
            return None
        found = self.audit.resolve(qualified)
        if found and found[0] == "function":
            return self.audit.unit_by_qual.get(found[1])
        return None

    def _origin(self, node):
        return "%s at line %d" % (_describe(node), node.lineno)

    def _ev_method(self, node, receiver, method):
        out = set()
        handled = False
        for value in receiver:
            if isinstance(value, TaskV):
                kind = "unknown" if value.dynamic else "result_read"
                readset = frozenset((n, kind) for n in value.names)
                if method in SEND_METHODS:
                    out.add(ResV(readset, readset, self._origin(node)))
                    self._caller_id(node, readset)
                    handled = True
                elif method in SIGNATURE_METHODS:
                    out.add(SigV(readset, readset, "task"))
                    handled = True
                elif method in BUILTIN_METHODS:
                    builtin = frozenset([(BUILTIN_METHODS[method], kind)])
                    shape = "group" if method == "chunks" else "chain"
                    out.add(SigV(_relabel(builtin, "group_result_read") if method == "chunks"
                                 else builtin, builtin | readset, shape))
                    handled = True
                elif method == "AsyncResult":
                    out.add(self._rebuild(node))
                    handled = True
                elif method in CONTAINER_METHODS:
                    out.add(value)  # a container of tasks, collapsed to its elements
                    handled = True
            elif isinstance(value, SigV):
                if method in SEND_METHODS or method == "freeze":
                    out.add(ResV(value.readset, value.members, self._origin(node)))
                    self._caller_id(node, value.readset, frozen=method == "freeze")
                    handled = True
                elif method in SIG_PASSTHROUGH_METHODS:
                    out.add(value)
                    self._caller_id(node, value.readset)
                    handled = True
                elif method == "link":
                    handled = True  # returns the callback signature, already tracked
            elif isinstance(value, ResV):
                if method in RESULT_PASSTHROUGH_ATTRS:
                    out.add(value)
                    handled = True
            elif isinstance(value, RebuiltV) and method in RESULT_PASSTHROUGH_ATTRS:
                out.add(value)
                handled = True
            elif isinstance(value, ConstV):
                continue
        if handled:
            return frozenset(out)
        return None

    def _caller_id(self, node, readset, frozen=False):
        """An id the caller picks (``task_id=``) or learns before the result exists (``freeze``)."""
        for keyword in node.keywords:
            if keyword.arg == "task_id":
                self.audit.id_escapes.append((readset, self.path, node.lineno,
                                              "the caller chose the id (task_id=)"))
        if frozen:
            self.audit.id_escapes.append((readset, self.path, node.lineno,
                                          "freeze() gives the id before the result exists"))

    def _rebuild(self, node):
        """``AsyncResult(x)``: the result of the task ``x`` is the id of, or of any task."""
        inner = self._union(node.args[:1]) | self._keyword_values(node, "id")
        ids = [v for v in inner if isinstance(v, IdV)]
        if ids and len(ids) == len(inner):
            readset = frozenset().union(*[v.readset for v in ids])
            return ResV(readset, readset, self._origin(node))
        return RebuiltV(self._origin(node))

    def _ev_api(self, node, api):
        if api == "partial" and node.args:
            target = self.ev(node.args[0])
            rest = self._union(node.args[1:]) | self._union([k.value for k in node.keywords])
            for value in target:
                unit = self.audit.unit_by_qual.get(value.qual) if isinstance(value, FuncV) else None
                if unit is not None and rest:
                    fn = unit.node.args
                    every = [a.arg for a in list(getattr(fn, "posonlyargs", [])) + fn.args
                             + fn.kwonlyargs] + [a.arg for a in (fn.vararg, fn.kwarg) if a]
                    self.audit.bind_params(unit, dict((name, rest) for name in every))
            return frozenset(v for v in target if isinstance(v, (FuncV, MethodV, TaskV, SigV)))
        if api == "send_task":
            values = self.ev(node.args[0]) if node.args else self._keyword_values(node, "name")
            names, dynamic = self._literal_task_names(values, node, "send_task")
            kind = "unknown" if dynamic else "result_read"
            readset = frozenset((n, kind) for n in names)
            return frozenset([ResV(readset, readset, self._origin(node))])
        if api in ("signature", "subtask", "Signature"):
            values = self.ev(node.args[0]) if node.args else self._keyword_values(node, "varies")
            sigs = self._sig_of(values)
            if sigs:
                return frozenset(sigs)
            names, dynamic = self._literal_task_names(values, node, api + "()")
            kind = "unknown" if dynamic else "result_read"
            readset = frozenset((n, kind) for n in names)
            return frozenset([SigV(readset, readset, "task")])
        if api in ("chain", "group", "chord"):
            return self._ev_canvas(node, api)
        if api in ("register_task", "register") and node.args:
            return frozenset(v for v in self.ev(node.args[0]) if isinstance(v, TaskV))
        if api in ("AsyncResult", "restore", "GroupResult", "ResultSet", "EagerResult",
                   "result_from_tuple"):
            inner = self._union(node.args) | self._union([k.value for k in node.keywords])
            results = frozenset(v for v in inner if isinstance(v, (ResV, RebuiltV)))
            if results:
                return results
            return frozenset([self._rebuild(node)])
        if api == "getattr" and len(node.args) >= 2:
            return self._ev_getattr(node)
        return None

    def _name_pattern(self, node):
        """A regex for the attribute names ``node`` may spell: ``"x"``, ``"%s_perms" % r``,
        ``f"{r}_perms"``, ``"run_" + kind``; None when nothing of it is known."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return re.escape(node.value)
        if isinstance(node, ast.JoinedStr):
            return "".join(re.escape(v.value) if isinstance(v, ast.Constant) else ".*"
                           for v in node.values)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) \
                and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
            pieces = re.split(r"%[-#0 +]*\d*(?:\.\d+)?[sdrif]", node.left.value)
            return ".*".join(re.escape(p) for p in pieces)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self._name_pattern(node.left), self._name_pattern(node.right)
            return (left or ".*") + (right or ".*") if left or right else None
        values = self.ev(node)
        consts = [v.value for v in values if isinstance(v, ConstV)]
        if consts and len(consts) == len(values):
            return "|".join(re.escape(c) for c in consts)
        return None

    def _ev_getattr(self, node):
        """``getattr(obj, name)``: what the attributes so named can be, and nothing else.

        On a module of the app, its tasks; on ``self`` or an instance, the class attributes and
        methods; on an object the audit cannot see, any class attribute of that name and any
        task that bears it. A name with no known part on an unknown object is any task.
        """
        target, name_node = node.args[0], node.args[1]
        pattern = self._name_pattern(name_node)
        matches = re.compile("(?:%s)$" % pattern).match if pattern is not None else (lambda s: True)
        out = set()
        qualified = self.audit.qualify_node(self.module, target) \
            if isinstance(target, (ast.Name, ast.Attribute)) else None
        found = self.audit.resolve(qualified) if qualified else None
        if found and found[0] == "module":
            picked = frozenset(n for n in self._all_tasks(found[1])
                               if matches(self.audit.tasks[n].node.name) or matches(n))
            return frozenset([TaskV(picked, len(picked) > 1)]) if picked else _EMPTY
        classes = []
        class_qual = self._class_qual()
        if class_qual and isinstance(target, ast.Name) and target.id in ("self", "cls"):
            classes.append(class_qual)
        elif found and found[0] == "class":
            classes.append(found[1])
        receiver = self.ev(target)
        classes.extend(v.cls for v in receiver if isinstance(v, InstV))
        for value in receiver:
            if isinstance(value, ModuleV):
                picked = frozenset(n for n in self._all_tasks(value.name)
                                   if matches(self.audit.tasks[n].node.name) or matches(n))
                if picked:
                    out.add(TaskV(picked, len(picked) > 1 or pattern is None))
        for value in receiver:
            if isinstance(value, (TaskV, SigV, ResV)) and pattern is not None:
                # getattr(task, "delay") and the like: a bound method
                for attr in SEND_METHODS | SIGNATURE_METHODS:
                    if matches(attr):
                        out.add(MethodV(value, attr))
        for cls in classes:
            for (owner, attr), values in self.audit.class_attrs.items():
                if owner in [cls] + self.audit.class_bases(cls) and matches(attr):
                    out.update(values)
            for unit in self.audit._class_units(cls):
                if matches(unit.node.name):
                    out.add(FuncV(unit.qual, True))
        if classes or receiver:
            return frozenset(out)
        # An object the audit cannot type. Modules of the app are followed as values (ModuleV),
        # so this is no module of ours: it may still hold a class attribute of that name, or,
        # when the name is known, a task imported under it.
        for attr, values in self.audit.attrs_by_name.items():
            if matches(attr):
                out.update(values)
        if pattern is not None:
            picked = frozenset(n for n in self._all_tasks()
                               if matches(self.audit.tasks[n].node.name) or matches(n))
            if picked:
                out.add(TaskV(picked, len(picked) > 1))
        return frozenset(out)

    def _keyword_values(self, node, name):
        for keyword in node.keywords:
            if keyword.arg == name:
                return self.ev(keyword.value)
        return _EMPTY

    def _canvas_parts(self, node):
        """Member signatures of chain(...)/group(...): positional args or one iterable."""
        parts = []
        for arg in node.args:
            parts.append(self._sig_of(self.ev(arg)))
        return parts

    def _chain_parts(self, node):
        """The members of ``chain(...)`` in order, and whether that order is known."""
        args = node.args
        if len(args) == 1 and isinstance(args[0], (ast.List, ast.Tuple)) \
                and not any(isinstance(e, ast.Starred) for e in args[0].elts):
            args = args[0].elts
        elif len(args) == 1 or any(isinstance(a, ast.Starred) for a in args):
            return [self._sig_of(self._union(args))], False
        return [self._sig_of(self.ev(arg)) for arg in args], True

    def _ev_canvas(self, node, api):
        parts = self._canvas_parts(node)
        flat = [s for part in parts for s in part]
        if api == "group":
            if not flat:
                return frozenset([SigV(_EMPTY, _EMPTY, "group")])
            readset = _relabel(frozenset().union(*[s.readset for s in flat]), "group_result_read")
            members = frozenset().union(*[s.members for s in flat])
            return frozenset([SigV(readset, members, "group")])
        if api == "chain":
            parts, ordered = self._chain_parts(node)
            flat = [s for part in parts for s in part]
            if not flat:  # not a canvas chain after all (itertools.chain?): pass results on
                return frozenset(v for v in self._union(node.args) if isinstance(v, ResV))
            if ordered:
                last = parts[-1]
                heads = [s for part in parts[:-1] for s in part if s.shape == "group"]
            else:
                # chain(*parts), chain(steps): any member may come last, any group may be
                # followed by a task (Celery then builds a chord).
                last = flat
                heads = [s for s in flat if s.shape == "group"] if len(flat) > 1 else []
            readset = frozenset().union(*[s.readset for s in last]) if last else _EMPTY
            members = frozenset().union(*[s.members for s in flat])
            if heads:
                self._chord_headers(heads, node)
                return frozenset([SigV(_relabel(readset, "chord_body_result_read"), members,
                                       "chord")])
            return frozenset([SigV(_relabel(readset, "chain_result_read"), members, "chain")])
        # chord(header, body=None)
        header = self._sig_of(self.ev(node.args[0])) if node.args else \
            self._sig_of(self._keyword_values(node, "header"))
        header_members = frozenset().union(*[s.readset for s in header]) if header else _EMPTY
        body_values = self.ev(node.args[1]) if len(node.args) > 1 else \
            self._keyword_values(node, "body")
        body = self._sig_of(body_values)
        self._chord_headers(header, node)
        if not body:
            return frozenset([ChordPartialV(header_members)])
        readset = _relabel(frozenset().union(*[s.readset for s in body]), "chord_body_result_read")
        members = frozenset().union(*[s.members for s in body]) | header_members
        return frozenset([SigV(readset, members, "chord")])

    # -- the scan: reads, escapes, chord headers ------------------------------------------------

    def scan(self, reuse_environment=False):
        if reuse_environment:
            self.env = self.unit.env
            self.local_names = self.unit.local_names
        else:
            self.environment()
        for stmt in self.unit.body:
            self._scan_stmt(stmt)

    def _scan_stmt(self, stmt):
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return
        if isinstance(stmt, ast.Assign):
            sink = None
            for target in stmt.targets:
                sink = sink or self._target_sink(target)
                self._scan_target(target)
            self._scan_expr(stmt.value, sink)
            return
        if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
            self._scan_target(stmt.target)
            if stmt.value is not None:
                self._scan_expr(stmt.value, self._target_sink(stmt.target))
            return
        if isinstance(stmt, ast.Return):
            if stmt.value is not None:
                if self.unit.is_module:
                    self._scan_expr(stmt.value, "returned")
                else:
                    values = frozenset(v for v in self.ev(stmt.value)
                                       if isinstance(v, (SigV, ResV, RebuiltV)))
                    if values:
                        self.audit.returned.append((self.unit, values, stmt.lineno))
                    self._scan_expr(stmt.value, None)
            return
        self._scan_children(stmt)

    def _scan_children(self, node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                self._scan_stmt(child)
            elif isinstance(child, ast.expr):
                self._scan_expr(child, None)
            else:  # withitem, excepthandler, match_case, ...
                self._scan_children(child)

    def _target_sink(self, target):
        if isinstance(target, ast.Name):
            return None
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                sink = self._target_sink(element)
                if sink:
                    return sink
            return None
        if isinstance(target, ast.Starred):
            return self._target_sink(target.value)
        if isinstance(target, ast.Subscript) and self._tracked(target.value):
            return None
        if self._self_attribute(target):
            # Task objects, signatures and functions are followed as class attributes;
            # a result or an id kept on an instance may be read by anything holding it.
            return "stored in %s" % _describe(target)
        return "stored in %s" % _describe(target)

    def _tracked(self, node):
        """A local container of this function, whose contents the analysis follows."""
        return isinstance(node, ast.Name) and node.id in self.local_names \
            and node.id not in self.params

    def _scan_target(self, target):
        if isinstance(target, ast.Attribute):
            self._scan_expr(target.value, None)
        elif isinstance(target, ast.Subscript):
            self._scan_expr(target.value, None)
            self._scan_expr(target.slice, None)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._scan_target(element)

    def _readset(self, value, depth=0):
        """The tasks whose results a value may lead to."""
        if isinstance(value, TaskV):
            kind = "unknown" if value.dynamic else "result_read"
            return frozenset((n, kind) for n in value.names)
        if isinstance(value, (SigV, ResV, IdV)):
            return value.readset
        if isinstance(value, MethodV):
            return self._readset(value.receiver, depth)
        if isinstance(value, ChordPartialV):
            return value.header
        if isinstance(value, ModuleV):
            return frozenset((n, "unknown") for n in self._all_tasks(value.name))
        if isinstance(value, FuncV) and depth < 3:
            unit = self.audit.unit_by_qual.get(value.qual)
            if unit is not None:
                return frozenset().union(*([self._readset(v, depth + 1) for v in unit.returns]
                                           or [_EMPTY]))
        return _EMPTY

    _WHAT = {TaskV: "task object", SigV: "signature", ResV: "result", MethodV: "task method",
             ModuleV: "module of tasks",
             FuncV: "function", ChordPartialV: "chord header", IdV: "result id"}

    def _escape(self, values, sink, node):
        for value in values:
            if isinstance(value, RebuiltV):
                self.audit.rebuild_reads.append((self.path, node.lineno, "%s %s" % (value.origin, sink)))
            elif isinstance(value, IdV):
                self.audit.id_escapes.append((value.readset, self.path, node.lineno,
                                              "result id of %s escapes (%s)" % (value.origin, sink)))
            elif type(value) in self._WHAT:
                readset = self._readset(value)
                if readset:
                    self.audit.need_readset(
                        readset, self.path, node.lineno,
                        "%s %s: handed to code the audit cannot follow (%s)"
                        % (self._WHAT[type(value)], _describe(node), sink), kind="unknown")

    def _id_escape(self, values, node, how):
        for value in values:
            if isinstance(value, (ResV, IdV)):
                self.audit.id_escapes.append((value.readset, self.path, node.lineno,
                                              "result id of %s escapes (%s)" % (value.origin, how)))

    def _odd_attribute(self, values, node):
        """Any use of a task, signature or result the audit does not know counts as a read."""
        attr = node.attr
        for value in values:
            if isinstance(value, TaskV):
                if attr == "update_state":
                    for name in value.names:
                        self.audit.need(name, "update_state", self.path, node.lineno,
                                        "%s reports progress; pollers read its state"
                                        % _describe(node))
                    continue
                known = TASK_SAFE_ATTRS | SEND_METHODS | SIGNATURE_METHODS | VALID_OPTIONS \
                    | set(BUILTIN_METHODS) | CONTAINER_ADD_METHODS
            elif isinstance(value, SigV):
                known = SIGNATURE_SAFE_ATTRS | SIG_PASSTHROUGH_METHODS | CONTAINER_ADD_METHODS \
                    | READ_ATTRS
            elif isinstance(value, ResV):
                known = RESULT_SAFE_ATTRS | READ_ATTRS | ID_ATTRS | RESULT_PASSTHROUGH_ATTRS \
                    | CONTAINER_ADD_METHODS | CONTAINER_METHODS
            else:
                continue
            if attr not in known and not attr.startswith("__"):
                self.audit.need_readset(
                    self._readset(value), self.path, node.lineno,
                    "%s: .%s of a %s is not a use the audit knows"
                    % (_describe(node), attr, self._WHAT[type(value)]), kind="unknown")

    def _read(self, values, node, attr):
        for value in values:
            if isinstance(value, ResV):
                self.audit.need_readset(value.readset, self.path, node.lineno,
                                        ".%s on the result of %s" % (attr, value.origin))
            elif isinstance(value, RebuiltV):
                self.audit.rebuild_reads.append((self.path, node.lineno,
                                                 ".%s on %s" % (attr, value.origin)))

    def _chord_headers(self, sigs, node):
        for sig in sigs:
            for name, _why in sig.readset:
                self.audit.need(name, "chord_header", self.path, node.lineno,
                                "header of a chord built at line %d: Celery requires stored "
                                "results for chord headers" % node.lineno)

    def _scan_expr(self, node, sink):
        if sink is not None:
            values = self.ev(node)
            if values:
                self._escape(values, sink, node)
        if isinstance(node, ast.Attribute):
            values = self.ev(node.value)
            if values:
                if node.attr in READ_ATTRS:
                    self._read(values, node, node.attr)
                elif node.attr in ID_ATTRS:
                    self._id_escape(values, node, "." + node.attr)
                self._odd_attribute(values, node)
            self._scan_expr(node.value, None)
            return
        if isinstance(node, ast.Call):
            self._scan_call(node)
            return
        if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Starred, ast.IfExp, ast.BoolOp,
                             ast.Await)):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self._scan_expr(child, sink if child is not getattr(node, "test", None) else None)
            return
        if isinstance(node, ast.Dict):
            for key in node.keys:
                if key is not None:
                    self._scan_expr(key, None)
            for value in node.values:
                self._scan_expr(value, sink)
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            for generator in node.generators:
                self._scan_expr(generator.iter, None)
                for condition in generator.ifs:
                    self._scan_expr(condition, None)
            if isinstance(node, ast.DictComp):
                self._scan_expr(node.key, None)
                self._scan_expr(node.value, sink)
            else:
                self._scan_expr(node.elt, sink)
            return
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            if node.value is not None:
                self._scan_expr(node.value, "yielded")
            return
        if isinstance(node, ast.FormattedValue):
            self._id_escape(self.ev(node.value), node, "formatted into a string")
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Mod):
                self._id_escape(self.ev(node.right), node, "formatted into a string")
            if isinstance(node.op, ast.BitOr):
                left = self._sig_of(self.ev(node.left))
                if any(s.shape == "group" for s in left) and self._sig_of(self.ev(node.right)):
                    self._chord_headers([s for s in left if s.shape == "group"], node)
        if isinstance(node, ast.Lambda):
            self._scan_expr(node.body, None)
            return
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self._scan_expr(child, None)

    def _scan_call(self, node):
        func = node.func
        self._scan_expr(func, None)
        arg_sink = self._arg_sink(node)
        api = self.audit.celery_api(self.module, func) if not self.ev(func) else None
        if api == "chord":
            header = self._sig_of(self.ev(node.args[0])) if node.args else \
                self._sig_of(self._keyword_values(node, "header"))
            self._chord_headers(header, node)
        if isinstance(func, ast.Name) and func.id in ("str", "repr", "format"):
            for arg in node.args[:1]:
                self._id_escape(self.ev(arg), node, "%s()" % func.id)
        if isinstance(func, ast.Attribute) and func.attr in BACKEND_READ_METHODS \
                and "backend" in (_describe(func.value) or "").lower():
            self._read(frozenset([self._rebuild(node)]), node, func.attr)
        if isinstance(func, ast.Attribute) and func.attr == "replace" and \
                isinstance(func.value, ast.Name) and func.value.id == "self" and node.args:
            for sig in self._sig_of(self.ev(node.args[0])):
                self.audit.need_readset(
                    sig.readset, self.path, node.lineno,
                    "self.replace(): the replaced task's result becomes this one's, and the "
                    "audit does not follow who reads it", kind="unknown")
        for arg in node.args:
            self._scan_expr(arg, arg_sink)
        for keyword in node.keywords:
            if keyword.arg in ("link", "link_error"):
                self._scan_expr(keyword.value, None)  # callbacks travel in the message
            else:
                self._scan_expr(keyword.value, arg_sink)
        target = self._callee_unit(func)
        if target is not None:
            self.audit.called.add(target.qual)

    def _arg_sink(self, node):
        """Where a call's arguments go: None when the audit follows them, else a description."""
        func = node.func
        if isinstance(func, ast.Attribute):
            receiver = self.ev(func.value)
            if receiver:
                return None  # task methods, canvas methods, result methods, tracked containers
            if func.attr in CONTAINER_ADD_METHODS and self._tracked(func.value):
                return None
            if func.attr in LOG_METHODS and "log" in (_dotted(func.value) or "").lower():
                return None
        if _dotted(func) in TRANSPARENT_CALLS or _dotted(func) in (
                "print", "len", "str", "repr", "isinstance", "bool", "type", "id", "callable",
                "hasattr", "issubclass", "hash"):
            return None
        api = self.audit.celery_api(self.module, func)
        if api in CANVAS_NAMES or api in RESULT_CLASS_NAMES or api in (
                "send_task", "restore", "register_task", "getattr"):
            return None
        if self.ev(func):
            return None
        return "passed to %s" % _describe(node)
