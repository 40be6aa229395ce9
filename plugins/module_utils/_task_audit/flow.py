# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flow analysis: where each task's objects, signatures, results and ids go."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast

from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit.vocabulary import *  # noqa: F401,F403
from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit.values import *  # noqa: F401,F403
from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit.values import _relabel, _dotted, _describe, _literal, _is_literal


class _FunctionUnit:
    """A function (or a module's top level) to analyse, with what it may refer to."""

    __slots__ = ("module", "qual", "node", "body", "parent", "class_name", "names", "env",
                 "returns", "is_module", "nodes", "binders", "value_returns", "children",
                 "update_state_calls", "local_names", "env_seq")

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
            top = []
            unit = _FunctionUnit(module, module.name + ".<module>", module.tree, top, None, None,
                                 is_module=True)
            self._add_unit(unit)
            for stmt in module.tree.body:
                self._collect(module, stmt, unit, None, module.name, top)

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
            for child in stmt.body:
                self._collect(module, child, parent, stmt.name, "%s.%s" % (prefix, stmt.name),
                              parent_body)
        elif parent_body is not None:
            parent_body.append(stmt)

    # -- the analysis ---------------------------------------------------------------------------

    def analyse(self):
        interesting = set(("delay", "apply_async", "send_task", "AsyncResult", "GroupResult",
                           "ResultSet", "getattr", "tasks", "restore", "freeze", "update_state"))
        interesting |= SIGNATURE_METHODS | CANVAS_NAMES | RESULT_CLASS_NAMES | set(BUILTIN_METHODS)
        interesting.add("result_from_tuple")
        for task in self.tasks.values():
            interesting.add(task.node.name)
        for module in self.modules.values():
            for alias in module.imports:
                if self.resolve(module.imports[alias]) and \
                        self.resolve(module.imports[alias])[0] == "task":
                    interesting.add(alias)
        # Module-level aliases first (``charge_task = app.register_task(Charge())``).
        for unit in self.units:
            if unit.is_module:
                env = _Analyser(self, unit).environment()
                for name, values in env.items():
                    kept = frozenset(v for v in values if isinstance(v, (TaskV, SigV, ConstV)))
                    if kept:
                        unit.module.aliases[name] = kept
                        for value in kept:
                            if isinstance(value, TaskV):
                                interesting.add(name)
        self._resolve_cache = {}
        # Summaries of what functions return, to a fixed point (bounded).
        summarised = set()
        candidates = [u for u in self.units if not u.is_module and u.value_returns]
        watch = interesting
        seq = 0
        for _round in range(4):
            changed = set()
            for unit in candidates:
                if unit.names.isdisjoint(watch):
                    continue
                analyser = _Analyser(self, unit)
                returns = analyser.returns()
                unit.local_names, unit.env_seq = analyser.local_names, seq
                seq += 1
                if returns != unit.returns:
                    unit.returns = returns
                    changed.add(unit.node.name)
                    self.summary_changes[unit.node.name] = seq
            if not changed:
                break
            summarised |= changed
            watch = changed  # only callers of what changed can change next
        relevant = interesting | summarised
        for unit in self.units:
            parent = unit.parent
            closure = parent is not None and not parent.is_module and any(
                parent.env.get(name) for name in unit.names)
            if closure or not unit.names.isdisjoint(relevant):
                analyser = _Analyser(self, unit)
                # The variables found while summarising still hold unless a callee's summary
                # changed since.
                fresh = unit.env_seq is not None and not any(
                    self.summary_changes.get(name, -1) > unit.env_seq for name in unit.names)
                analyser.scan(reuse_environment=fresh)
        self._task_bodies()
        self._settle()

    def _task_bodies(self):
        for task in self.tasks.values():
            if task.kind == "function":
                roots = [self.unit_by_node.get(id(task.node))]
            else:
                prefix = "%s.%s." % (task.module, task.node.name)
                roots = [u for u in self.units if u.module.name == task.module
                         and u.qual.startswith(prefix)]
            stack = [u for u in roots if u is not None]
            while stack:
                unit = stack.pop()
                stack.extend(unit.children)
                for node in unit.update_state_calls:
                    self.need(task.name, "update_state", task.file, node.lineno,
                              "%s() reports progress from the task body; pollers read its state"
                              % _describe(node.func))

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

    def __init__(self, audit, unit):
        self.audit = audit
        self.unit = unit
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
            for arg in list(getattr(args, "posonlyargs", [])) + args.args + args.kwonlyargs:
                self.local_names.add(arg.arg)
                self.params.add(arg.arg)
                self.env[arg.arg] = _EMPTY
            for arg in (args.vararg, args.kwarg):
                if arg is not None:
                    self.local_names.add(arg.arg)
                    self.params.add(arg.arg)
                    self.env[arg.arg] = _EMPTY

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

    def _bind_from(self, node):
        if isinstance(node, ast.Assign):
            values = self.ev(node.value)
            for target in node.targets:
                self._bind(target, values)
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
            values.update(v for v in self.ev(node.value)
                          if isinstance(v, (TaskV, SigV, ResV, RebuiltV, ChordPartialV)))
        return frozenset(values)

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
        base = self.ev(node.value)
        if not base and isinstance(node.value, (ast.Name, ast.Attribute)) and \
                not (isinstance(node.value, ast.Name) and node.value.id in self.local_names):
            found = self._global(node)
            if found:
                return found
        if node.attr == "tasks" and not base and isinstance(node.value, (ast.Name, ast.Attribute)):
            # app.tasks / current_app.tasks: the registry, indexed by a runtime name.
            return _EMPTY
        out = set()
        for value in base:
            if isinstance(value, ResV):
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
        callee = self.ev(func)
        out = set()
        for value in callee:
            if isinstance(value, ChordPartialV):
                body = self._sig_of(self._union(node.args[:1]))
                for sig in body:
                    out.add(ResV(_relabel(sig.readset, "chord_body_result_read"),
                                 sig.members | value.header, self._origin(node)))
            elif isinstance(value, SigV) and value.shape != "task":
                out.add(ResV(value.readset, value.members, self._origin(node)))
        if out:
            return frozenset(out)
        tasks = frozenset(v for v in callee if isinstance(v, TaskV))
        if tasks and self._is_class_ref(func):
            return tasks  # instantiating a class-based task gives the task
        api = self.audit.celery_api(self.module, func)
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
                    out.add(RebuiltV(self._origin(node)))
                    handled = True
            elif isinstance(value, SigV):
                if method in SEND_METHODS or method == "freeze":
                    out.add(ResV(value.readset, value.members, self._origin(node)))
                    handled = True
                elif method in SIG_PASSTHROUGH_METHODS:
                    out.add(value)
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

    def _ev_api(self, node, api):
        if api == "send_task":
            values = self.ev(node.args[0]) if node.args else self._keyword_values(node, "name")
            names, dynamic = self._literal_task_names(values, node, "send_task")
            kind = "unknown" if dynamic else "result_read"
            readset = frozenset((n, kind) for n in names)
            return frozenset([ResV(readset, readset, self._origin(node))])
        if api in ("signature", "subtask"):
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
            return frozenset([RebuiltV(self._origin(node))])
        if api == "getattr" and len(node.args) >= 2:
            qualified = self.audit.qualify_node(self.module, node.args[0]) \
                if isinstance(node.args[0], (ast.Name, ast.Attribute)) else None
            found = self.audit.resolve(qualified) if qualified else None
            module_name = found[1] if found and found[0] == "module" else None
            names = self.ev(node.args[1])
            consts = [v.value for v in names if isinstance(v, ConstV)]
            pool = self._all_tasks(module_name)
            if consts and len(consts) == len(names):
                picked = frozenset(n for n in pool if n.rpartition(".")[2] in consts or n in consts)
                if picked:
                    return frozenset([TaskV(picked, len(consts) > 1)])
            return frozenset([TaskV(pool, True)])
        return None

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
            if not flat:  # not a canvas chain after all (itertools.chain?): pass results on
                return frozenset(v for v in self._union(node.args) if isinstance(v, ResV))
            if len(node.args) == 1:
                last = flat  # one iterable of members: any may be last
            else:
                last = parts[-1]
            readset = frozenset().union(*[s.readset for s in last]) if last else _EMPTY
            members = frozenset().union(*[s.members for s in flat])
            if len(parts) > 1 and any(s.shape == "group" for part in parts[:-1] for s in part):
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

    def _escape(self, values, sink, node):
        for value in values:
            if isinstance(value, (ResV, SigV)):
                what = "result" if isinstance(value, ResV) else "signature"
                self.audit.need_readset(
                    value.readset, self.path, node.lineno,
                    "%s %s: handed to code the audit cannot follow (%s)"
                    % (what, _describe(node), sink), kind="unknown")
            elif isinstance(value, RebuiltV):
                self.audit.rebuild_reads.append((self.path, node.lineno, "%s %s" % (value.origin, sink)))

    def _id_escape(self, values, node, how):
        for value in values:
            if isinstance(value, ResV):
                self.audit.id_escapes.append((value.readset, self.path, node.lineno,
                                              "result id of %s escapes (%s)" % (value.origin, how)))

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
        elif api == "chain" and len(node.args) > 1:
            for arg in node.args[:-1]:
                groups = [s for s in self._sig_of(self.ev(arg)) if s.shape == "group"]
                self._chord_headers(groups, node)
        if isinstance(func, ast.Name) and func.id in ("str", "repr"):
            for arg in node.args:
                self._id_escape(self.ev(arg), node, "%s()" % func.id)
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
                "print", "len", "str", "repr", "isinstance", "bool", "type", "id"):
            return None
        api = self.audit.celery_api(self.module, func)
        if api in CANVAS_NAMES or api in RESULT_CLASS_NAMES or api in (
                "send_task", "restore", "register_task", "getattr"):
            return None
        if self.ev(func):
            return None
        return "passed to %s" % _describe(node)

