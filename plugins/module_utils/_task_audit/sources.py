# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source files, module names, imports and name resolution."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import fnmatch
import json
import keyword
import os
import re
import stat
import subprocess
import sys

from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit.vocabulary import PRUNED_DIRS
from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit.values import TaskAuditError, _dotted


def _excluded(path, root, patterns):
    if not patterns:
        return False
    rel = os.path.relpath(path, root).replace(os.sep, "/")
    candidates = (rel, path.replace(os.sep, "/"), os.path.abspath(path).replace(os.sep, "/"),
                  os.path.basename(path))
    return any(fnmatch.fnmatchcase(c, p) for p in patterns for c in candidates)


def find_source_files(paths, exclude=None, with_entries=False):
    """Every ``.py`` file under ``paths`` (files or directories), minus ``exclude`` globs.

    Hidden directories, ``__pycache__``, ``site-packages``, ``node_modules`` and virtualenv roots
    (a ``pyvenv.cfg`` inside) are never entered.
    """
    patterns = list(exclude or [])
    found = []
    seen = set()
    for path in paths:
        if not os.path.exists(path):
            raise TaskAuditError("path %s does not exist" % path)
        if os.path.isfile(path):
            root = os.path.dirname(path) or "."
            if not _excluded(path, root, patterns) and path not in seen:
                seen.add(path)
                found.append((path, root))
            continue
        for dirpath, dirnames, filenames in os.walk(path):
            keep = []
            for name in sorted(dirnames):
                sub = os.path.join(dirpath, name)
                if name.startswith(".") or name in PRUNED_DIRS:
                    continue
                if os.path.exists(os.path.join(sub, "pyvenv.cfg")) or _excluded(sub, path, patterns):
                    continue
                keep.append(name)
            dirnames[:] = keep
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                if name.endswith(".py") and full not in seen and not _excluded(full, path, patterns):
                    seen.add(full)
                    found.append((full, path))
    if with_entries:
        return found
    return [path for path, _entry in found]


def _is_identifier(name):
    return name.isidentifier() and not keyword.iskeyword(name)


# Top-level names that are never the app's own packages, whatever folders the tree holds
# (``proj/celery.py`` is the app module, ``from celery import Celery`` is not a vote for ``proj/``).
_EXTERNAL_TOPS = frozenset(getattr(sys, "stdlib_module_names", ())) | frozenset((
    "celery", "kombu", "billiard", "amqp", "vine", "redis", "django", "flask", "fastapi",
    "sqlalchemy", "requests", "pydantic", "__future__"))


# Run by the app's own interpreter (``python -c``): parse one file, print its tree as JSON.
# Written for any Python 3; nothing but the standard library.
_SUMMARISER = r"""
import ast, json, sys
sys.setrecursionlimit(20000)
def conv(node):
    if isinstance(node, ast.AST):
        out = {"_t": type(node).__name__}
        for field in node._fields:
            out[field] = conv(getattr(node, field, None))
        for attr in ("lineno", "col_offset", "end_lineno", "end_col_offset"):
            if getattr(node, attr, None) is not None:
                out["_" + attr] = getattr(node, attr)
        return out
    if isinstance(node, list):
        return [conv(item) for item in node]
    if node is None or isinstance(node, (str, bool, int, float)):
        return node
    if isinstance(node, bytes):
        return {"_bytes": node.decode("latin-1")}
    return {"_repr": repr(node)}
try:
    with open(sys.argv[1], "rb") as handle:
        tree = ast.parse(handle.read(), filename=sys.argv[1])
except SyntaxError as exc:
    print(json.dumps({"error": str(exc.msg), "line": exc.lineno}))
    sys.exit(0)
except Exception as exc:
    print(json.dumps({"error": "%s: %s" % (type(exc).__name__, exc), "line": None}))
    sys.exit(0)
print(json.dumps({"tree": conv(tree), "version": list(sys.version_info[:3])}))
"""


def parse_with(python, path, timeout=60):
    """Parse ``path`` with another interpreter: (tree or None, (error, line) or None)."""
    try:
        # Pure logic, no AnsibleModule here (the audit also runs from tests and bench).
        proc = subprocess.run([python, "-c", _SUMMARISER, path], stdout=subprocess.PIPE,  # pylint: disable=ansible-bad-function
                              stderr=subprocess.PIPE, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, ("the interpreter %s did not run: %s" % (python, exc), None)
    try:
        answer = json.loads(proc.stdout.decode("utf-8"))
    except ValueError:
        return None, ("the interpreter %s gave no answer: %s"
                      % (python, proc.stderr.decode("utf-8", "replace").strip()[-300:]), None)
    if "error" in answer:
        return None, ("%s (parsed with %s)" % (answer["error"], python), answer.get("line"))
    try:
        return _rebuild(answer["tree"]), None
    except (RecursionError, KeyError, TypeError, ValueError) as exc:
        return None, ("the tree from %s could not be read: %s" % (python, exc), None)


_UNKNOWN_CONSTRUCT = "__celery_audit_unknown_construct__"


def _rebuild(data):
    """Host ast nodes from the JSON tree. A node type the host lacks becomes a call of an
    unknown function over its sub-expressions, so whatever it refers to counts as escaping."""
    if isinstance(data, list):
        return [_rebuild(item) for item in data]
    if not isinstance(data, dict):
        return data
    if "_bytes" in data:
        return data["_bytes"].encode("latin-1")
    if "_repr" in data:
        return Ellipsis if data["_repr"] == "Ellipsis" else data["_repr"]
    kind = data["_t"]
    cls = getattr(ast, kind, None)
    fields = dict((k, _rebuild(v)) for k, v in data.items() if not k.startswith("_"))
    position = dict((k[1:], v) for k, v in data.items() if k in ("_lineno", "_col_offset",
                                                                 "_end_lineno", "_end_col_offset"))
    for field in ("body", "orelse", "finalbody"):
        if isinstance(fields.get(field), list):  # an unknown statement rebuilt as a call
            fields[field] = [ast.Expr(value=item, lineno=getattr(item, "lineno", 1), col_offset=0)
                             if isinstance(item, ast.expr) else item for item in fields[field]]
    if cls is not None and isinstance(cls, type) and issubclass(cls, ast.AST):
        node = cls(**dict((k, v) for k, v in fields.items() if k in cls._fields))
        for key, value in position.items():
            setattr(node, key, value)
        return node
    line = position.get("lineno", 1)
    exprs, stmts = [], []
    for value in fields.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, ast.expr):
                exprs.append(item)
            elif isinstance(item, ast.stmt):
                stmts.append(item)
    call = ast.Call(func=ast.Name(id=_UNKNOWN_CONSTRUCT, ctx=ast.Load()), args=exprs, keywords=[])
    node = ast.If(test=call, body=stmts, orelse=[]) if stmts else call
    for item in ast.walk(node):
        if getattr(item, "lineno", None) is None and "lineno" in getattr(item, "_attributes", ()):
            item.lineno, item.col_offset = line, 0
            item.end_lineno, item.end_col_offset = line, 0
    return node


# Files that may define, use or look up a task keep their trees from the start; the others
# ("cold") are reduced to what name resolution needs and their words, and parsed again only
# when one of their words becomes relevant to the analysis (bounded memory on large apps).
_WORDS = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_HOT = re.compile(rb"celery|[Tt]ask|delay|apply_async|AsyncResult|GroupResult|ResultSet|"
                  rb"update_state|signature|subtask|chord|chain|group|backend|\.si?\(|"
                  rb"getattr\(\s*(?!self\b|cls\b)|import_module|__import__")
_UNKNOWN_DECORATOR = re.compile(
    rb"^[ \t]*@(?!(?:property|staticmethod|classmethod|abstractmethod|override|cached_property|"
    rb"functools\.wraps|wraps|dataclass|dataclasses\.dataclass|abc\.abstractmethod|"
    rb"[A-Za-z_]\w*\.(?:setter|getter|deleter))\b)", re.MULTILINE)

_IMPORT_LINE = re.compile(rb"^[ \t]*(?:from[ \t]+([A-Za-z_][\w.]*)[ \t]+import[ \t]+([^\n;]+)"
                          rb"|import[ \t]+([A-Za-z_][\w. \t,]*))", re.MULTILINE)


def _collect_imported(source, imported):
    """Absolute module names in the import lines of ``source`` (bytes), into ``imported``."""
    for match in _IMPORT_LINE.finditer(source):
        if match.group(1):
            module, names = match.group(1).decode("ascii", "replace"), match.group(2)
            for name in re.split(rb"[\s,()]+", names):
                if name and name not in (b"as", b"\\") and not name.startswith(b"#"):
                    imported.add("%s.%s" % (module, name.decode("ascii", "replace")))
        else:
            for name in re.split(rb"\s*,\s*", match.group(3)):
                if name.split():
                    imported.add(name.split()[0].decode("ascii", "replace"))


class ModuleNamer:
    """Dotted module names as Celery registers them (``fn.__module__``).

    A file's name is its path below its import root. The import root is, in order: the deepest
    entry of ``import_roots`` holding the file; the folder under which most of the app's own
    absolute imports resolve (``from pkg.x import y`` votes for the folder holding ``pkg/``);
    else the walk up from the file through folders whose names are identifiers, up to the
    highest folder with an ``__init__.py`` (folders without one in between are namespace
    packages). A folder whose name is not an identifier is never a package, so a name never
    holds a path, ``@`` or ``-``.
    """

    def __init__(self, import_roots=None):
        self.explicit = sorted((os.path.abspath(r) for r in import_roots or []),
                               key=lambda r: -len(r))
        self.inferred = {}   # folder -> votes
        self._init = {}

    def _has_init(self, directory):
        found = self._init.get(directory)
        if found is None:
            found = os.path.isfile(os.path.join(directory, "__init__.py"))
            self._init[directory] = found
        return found

    def infer(self, files, imported):
        """Vote for import roots: ``files`` (path, entry) found, ``imported`` dotted names."""
        below = {}  # top-level name -> {folder holding it: set of second-level names}
        for path, entry in files:
            directory = os.path.dirname(os.path.abspath(path))
            stop = os.path.dirname(os.path.abspath(entry)) if entry else directory
            parts = [os.path.basename(path)[:-3]]
            current = directory
            while True:
                holder = current
                top = parts[-1]
                second = parts[-2] if len(parts) > 1 else None
                below.setdefault(top, {}).setdefault(holder, set()).add(second)
                if current == stop or os.path.dirname(current) == current:
                    break
                parts.append(os.path.basename(current))
                current = os.path.dirname(current)
        votes = {}
        for dotted in imported:
            pieces = dotted.split(".")
            if pieces[0] in _EXTERNAL_TOPS or not pieces[0]:
                continue
            for holder, seconds in below.get(pieces[0], {}).items():
                if len(pieces) > 1 and pieces[1] not in seconds and None not in seconds \
                        and "__init__" not in seconds:
                    continue  # pkg/ is there but not pkg/x: not this folder's package
                votes[holder] = votes.get(holder, 0) + 1
        self.inferred = votes

    def name(self, path, entry=None):
        directory, filename = os.path.split(os.path.abspath(path))
        stem = filename[:-3] if filename.endswith(".py") else filename
        parts = [] if stem == "__init__" else [stem]
        for root in self.explicit:
            found = self._below(directory, root, parts)
            if found:
                return found
        best = None
        for root, votes in self.inferred.items():
            found = self._below(directory, root, parts)
            if found and (best is None or votes > best[0]
                          or (votes == best[0] and len(root) < len(best[1]))):
                best = (votes, root, found)
        if best is not None:
            return best[2]
        return self._walk(directory, parts, entry) or stem

    @staticmethod
    def _below(directory, root, parts):
        rel = os.path.relpath(directory, root)
        if rel == os.curdir:
            components = []
        elif rel.startswith(os.pardir):
            return None
        else:
            components = rel.split(os.sep)
        names = components + parts
        if names and all(_is_identifier(n) for n in names):
            return ".".join(names)
        return None

    def _walk(self, directory, parts, entry):
        stop = os.path.abspath(entry) if entry else None
        chain = []
        current = directory
        inside = stop is not None and (current + os.sep).startswith(stop.rstrip(os.sep) + os.sep)
        while True:
            base = os.path.basename(current)
            if not base or not _is_identifier(base):
                break
            package = self._has_init(current)
            if not inside and not package:
                break  # above the audited folder only regular packages count
            chain.append((base, package))
            if current == stop:
                inside = False
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
        top = max([i for i, (_base, package) in enumerate(chain) if package] or [-1])
        names = [chain[i][0] for i in range(top, -1, -1)] + parts
        if names and all(_is_identifier(n) for n in names):
            return ".".join(names)
        return None


def module_name_for(path, _package_cache=None, entry=None, import_roots=None):
    """The dotted module name of ``path`` (see :class:`ModuleNamer`), without inferred roots."""
    return ModuleNamer(import_roots).name(path, entry)


# ---------------------------------------------------------------------------------------------
# Per module: symbols, imports, tasks
# ---------------------------------------------------------------------------------------------

class Module:
    """One parsed source file and what it defines and imports."""

    def __init__(self, name, path, tree, is_package, celery_name=None):
        self.name = name
        self.celery_name = celery_name or name
        self.path = path
        self.tree = tree
        self.package = self.celery_name if is_package else self.celery_name.rpartition(".")[0]
        self.imports = {}     # local name -> qualified name
        self.functions = {}   # local name -> qualified name (module level only)
        self.classes = {}     # local name -> ClassDef
        self.aliases = {}     # module-level variable -> set of abstract values
        self.task_names = {}  # local name -> Celery task name (functions and task classes)
        self.star_imports = []
        self.cold = False
        self.words = frozenset()
        self.hot = True
        self.entry = None
        self.function_defs = {}     # module-level function name -> FunctionDef
        self.decorator_assigns = {}  # module-level ``name = <call or attribute>``: maybe a decorator
        self.import_nodes = []    # filled while its units are indexed (one walk of the tree)
        self.register_calls = []

    def freeze(self):
        """Keep only what resolving names needs; drop the tree (see ``_HOT``)."""
        self.import_nodes = []
        stack = list(self.tree.body)
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self.import_nodes.append(node)
            elif isinstance(node, (ast.If, ast.Try, ast.With)) or type(node).__name__ == "TryStar":
                for field in ("body", "orelse", "finalbody", "handlers"):
                    stack.extend(getattr(node, field, ()) or ())
            elif isinstance(node, ast.ExceptHandler):
                stack.extend(node.body)
        self.collect_imports()
        self.classes = dict((name, ast.ClassDef(
            name=name, bases=node.bases, keywords=[], decorator_list=[],
            body=[s for s in node.body if isinstance(s, (ast.Assign, ast.AnnAssign))]))
            for name, node in self.classes.items())
        self.function_defs = {}
        self.decorator_assigns = {}
        self.tree = None
        self.cold = True

    def collect_imports(self):
        for node in self.import_nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.imports[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        self.imports.setdefault(top, top)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = self.package.split(".") if self.package else []
                    if node.level > 1:
                        package = package[:len(package) - (node.level - 1)]
                    base = ".".join(p for p in package + ([base] if base else []) if p)
                for alias in node.names:
                    if alias.name == "*":
                        self.star_imports.append(base)
                        continue
                    target = "%s.%s" % (base, alias.name) if base else alias.name
                    self.imports[alias.asname or alias.name] = target
        for node in self.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions[node.name] = "%s.%s" % (self.name, node.name)
                self.function_defs[node.name] = node
            elif isinstance(node, ast.ClassDef):
                self.classes[node.name] = node
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name) \
                    and isinstance(node.value, (ast.Call, ast.Attribute, ast.Name)):
                self.decorator_assigns[node.targets[0].id] = node.value


class Sources:
    """Loading the files and resolving names: a part of :class:`Audit`."""

    def load(self):
        """Every file is read once for its import lines (votes for the import roots) and its
        words. Files that may touch a task ("hot") are parsed; the others ("cold") are only
        named, and parsed when one of their words becomes relevant (see ``Flow.thaw``)."""
        namer = ModuleNamer(self.import_roots)
        found = find_source_files(self.paths, self.exclude, with_entries=True)
        imported = set()
        readable = []
        for path, entry in found:
            source = self._read(path)
            if source is None:
                continue
            _collect_imported(source, imported)
            words = frozenset(sys.intern(w.decode("ascii")) for w in _WORDS.findall(source))
            hot = bool(_HOT.search(source) or _UNKNOWN_DECORATOR.search(source))
            readable.append((path, entry, words, source if hot else None))
        namer.infer(found, imported)
        by_name = {}
        for path, entry, words, source in readable:
            tree = None
            if source is not None:
                tree = self._parse(path, source)
                if tree is None:
                    continue
            name = namer.name(path, entry)
            is_package = os.path.basename(path) == "__init__.py"
            key = name
            if name in by_name:
                self.warn("duplicate_module", path, None,
                          "module %s also found at %s; Celery registers the tasks of whichever "
                          "it imports, both audited under the same name" % (name, by_name[name]))
                key = "%s#%d" % (name, len(self.modules))
            else:
                by_name[name] = path
            module = Module(key, path, tree, is_package, celery_name=name)
            module.entry = entry
            module.words = words
            module.hot = source is not None
            module.cold = source is None
            self.modules[key] = module
        self.unparsed_names = {}  # path -> module name of the files not parsed
        for path, entry, line, why, source in self.unparsed:
            self.unparsed_names[path] = namer.name(path, entry)

    def _peek(self, path):
        """The bytes of a regular file within the size cap, or None; no warnings."""
        try:
            info = os.stat(path)
            if not stat.S_ISREG(info.st_mode) or info.st_size > self.max_file_bytes:
                return None
            with open(path, "rb") as handle:
                return handle.read(self.max_file_bytes + 1)
        except (IOError, OSError):
            return None

    def _read(self, path):
        """The bytes of a regular file; None (with a warning) for anything else."""
        try:
            info = os.stat(path)
        except OSError as exc:
            self.warn("unreadable", path, None, "cannot read: %s" % exc)
            return None
        if not stat.S_ISREG(info.st_mode):
            # A FIFO or device named *.py would block the open() forever.
            self.warn("not_a_file", path, None, "not a regular file, skipped")
            return None
        if info.st_size > self.max_file_bytes:
            self._unparsed(path, None, "larger than %d bytes" % self.max_file_bytes, None)
            return None
        try:
            with open(path, "rb") as handle:
                return handle.read(self.max_file_bytes + 1)
        except (IOError, OSError) as exc:
            self.warn("unreadable", path, None, "cannot read: %s" % exc)
            return None

    def _parse(self, path, source):
        try:
            return ast.parse(source, filename=path)
        except SyntaxError as exc:
            error, line = exc.msg, exc.lineno
        except (ValueError, UnicodeDecodeError) as exc:
            error, line = str(exc), None
        except (RecursionError, MemoryError):
            error, line = "too deeply nested for the parser", None
        if self.python:
            tree, app_error = parse_with(self.python, path)
            if tree is not None:
                return tree
            if app_error:
                error, line = app_error
        self._unparsed(path, line, error, source)
        return None

    def _unparsed(self, path, line, why, source):
        """A file the audit cannot read as Python: every task it names counts as unknown."""
        self.warn("syntax_error", path, line,
                  "does not parse (%s); every task it defines, names or imports counts as "
                  "needing its result (reason unknown)%s"
                  % (why, "" if self.python else "; set the option python to the app's "
                     "interpreter to parse newer syntax"))
        entry = None
        for candidate in self.paths:
            if os.path.abspath(path).startswith(os.path.abspath(candidate)):
                entry = candidate if os.path.isdir(candidate) else os.path.dirname(candidate)
        self.unparsed.append((path, entry, line, why, source))

    # -- name resolution ---------------------------------------------------------------------

    def resolve(self, qualified, depth=0):
        """What a dotted name designates in the code base: (kind, value) or None."""
        if qualified in self._resolve_cache:
            return self._resolve_cache[qualified]
        self._resolve_cache[qualified] = None  # cycles in re-exports resolve to nothing
        found = self._resolve(qualified, depth)
        self._resolve_cache[qualified] = found
        return found

    def _resolve(self, qualified, depth):
        if depth > 8:
            return None
        if qualified in self.modules:
            return ("module", qualified)
        if qualified in self.task_by_qual:
            return ("task", self.task_by_qual[qualified])
        parent, _dot, attr = qualified.rpartition(".")
        if not parent:
            return None
        owner = self.resolve(parent, depth + 1)
        if owner is None:
            return None
        kind, value = owner
        if kind == "module":
            module = self.modules[value]
            if module.cold:
                if self.thaw_on_resolve:
                    # Not parsed yet: parse it next round, and look again then.
                    self.promote_requests.setdefault(module.name, set()).add(attr)
                return None
            if attr in module.task_names:
                return ("task", module.task_names[attr])
            if attr in module.functions:
                return ("function", module.functions[attr])
            if attr in module.classes:
                return ("class", "%s.%s" % (value, attr))
            if attr in module.aliases:
                return ("values", module.aliases[attr])
            if attr in module.imports:
                return self.resolve(module.imports[attr], depth + 1)
            for star in module.star_imports:
                found = self.resolve("%s.%s" % (star, attr), depth + 1)
                if found:
                    return found
            return None
        if kind == "class":
            if qualified in self.unit_by_qual:
                return ("function", qualified)
        return None

    def qualify(self, module, name):
        """The qualified name a module-level name stands for, or None."""
        if name in module.task_names or name in module.functions or name in module.classes \
                or name in module.aliases:
            return "%s.%s" % (module.name, name)
        return module.imports.get(name)

    def qualify_node(self, module, node):
        """Qualified name of a Name/Attribute chain rooted at a module-level name."""
        text = _dotted(node)
        if not text:
            return None
        head, _dot, rest = text.partition(".")
        base = self.qualify(module, head)
        if base is None:
            for star in module.star_imports:
                if self.resolve("%s.%s" % (star, head)):
                    base = "%s.%s" % (star, head)
                    break
        if base is None:
            return None
        return base + ("." + rest if rest else "")

    def celery_api(self, module, node):
        """The name of the Celery API a Name/Attribute stands for (``chain``, ``AsyncResult``)."""
        if isinstance(node, ast.Name):
            qualified = module.imports.get(node.id)
            if qualified is None:
                if node.id in module.functions or node.id in module.classes:
                    return None
                return node.id
            if qualified.split(".")[0] in ("celery", "kombu"):
                return qualified.rpartition(".")[2]
            return None
        if isinstance(node, ast.Attribute):
            qualified = self.qualify_node(module, node)
            if qualified is not None:
                root = qualified.split(".")[0]
                if root not in ("celery", "kombu") and root not in self._roots():
                    return None  # itertools.chain, functools..., not Celery's canvas
            return node.attr
        return None

    def _roots(self):
        if not hasattr(self, "_root_names"):
            self._root_names = set(m.split(".")[0] for m in self.modules)
        return self._root_names

    # -- discovery ----------------------------------------------------------------------------
