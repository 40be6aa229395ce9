# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Python source as bytes: offsets of ast nodes, literal values, bindings in a scope."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import codecs
import io
import re
import tokenize

from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.errors import ConfigRewriteError

_BOM = b"\xef\xbb\xbf"
_NEWLINE = re.compile(br"\r\n|\r|\n")
_CODING = re.compile(br"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


def _timedelta_seconds(node):
    """Seconds of ``timedelta(...)`` / ``datetime.timedelta(...)`` with literal arguments."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name != "timedelta":
        return None
    order = ("days", "seconds", "microseconds", "milliseconds", "minutes", "hours", "weeks")
    factor = {"days": 86400, "seconds": 1, "microseconds": 1e-6, "milliseconds": 1e-3,
              "minutes": 60, "hours": 3600, "weeks": 604800}
    total = 0
    try:
        pairs = list(zip(order, node.args)) + [(k.arg, k.value) for k in node.keywords]
        for key, arg in pairs:
            number = ast.literal_eval(arg)
            if key not in factor or isinstance(number, bool) or not isinstance(number, (int, float)):
                return None
            total += number * factor[key]
    except ValueError:
        return None
    return int(total) if float(total).is_integer() else total


DYNAMIC = object()
_ARITHMETIC = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
}


def _arithmetic(node):
    """Numbers like ``60 * 60 * 24``: constant arithmetic counts as a literal."""
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left, right = _arithmetic(node.left), _arithmetic(node.right)
        if left is None or right is None:
            return None
        try:
            return _ARITHMETIC[type(node.op)](left, right)
        except ZeroDivisionError:
            return None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _arithmetic(node.operand)
        return None if operand is None else (-operand if isinstance(node.op, ast.USub) else operand)
    if isinstance(node, ast.Constant) and not isinstance(node.value, bool) \
            and isinstance(node.value, (int, float)):
        return node.value
    return None


def literal_value(node):
    """The value of a literal node (timedelta with literal arguments counts), else DYNAMIC.

    Raises ConfigRewriteError, with the line, for a value nested deeper than MAX_DEPTH, before
    any recursive evaluation meets it.
    """
    check_depth(node)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    number = _arithmetic(node)
    if number is not None:
        return number
    if isinstance(node, ast.Call):
        seconds = _timedelta_seconds(node)
        if seconds is not None:
            return seconds
    return DYNAMIC


# ---------------------------------------------------------------- the source as bytes

MAX_DEPTH = 200


def check_depth(node):
    """Refuse an expression nested deeper than MAX_DEPTH (``1 + 1 + ...`` of 5,000 terms), with its
    line. Iterative, so the check itself cannot overflow."""
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigRewriteError("an expression is nested more than %d levels deep; refusing to "
                                     "evaluate it" % MAX_DEPTH, line=getattr(node, "lineno", None))
        for child in ast.iter_child_nodes(current):
            stack.append((child, depth + 1))


def _busiest_line(text):
    """The first line of the logical line with the most tokens (tokenize is iterative)."""
    best, best_count, start, count = None, 0, 1, 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if count == 0:
                start = token.start[0]
            count += 1
            if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                if count > best_count:
                    best, best_count = start, count
                count = 0
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return best


class Source(object):
    """The file's bytes, its tree, and byte offsets for ast positions (BOM and CRLF aware)."""

    def __init__(self, data):
        if not isinstance(data, bytes):
            raise TypeError("source must be bytes")
        self.data = data
        self.bom = _BOM if data.startswith(_BOM) else b""
        body = data[len(self.bom):]
        self._check_coding(body)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = body[:exc.start].count(b"\n") + 1
            raise ConfigRewriteError("the file is not valid UTF-8 (byte %d)" % (exc.start + len(self.bom)),
                                     line=line)
        try:
            self.tree = ast.parse(text)
        except (RecursionError, MemoryError):
            raise ConfigRewriteError("an expression is too long or nested too deeply to be parsed safely "
                                     "(Python's parser gave up); refusing the file", line=_busiest_line(text))
        except SyntaxError as exc:
            raise ConfigRewriteError("the file does not parse as Python: %s" % exc.msg, line=exc.lineno)
        except ValueError as exc:  # null bytes
            raise ConfigRewriteError("the file does not parse as Python: %s" % exc)
        starts = [0] + [m.end() for m in _NEWLINE.finditer(body)]
        self.line_starts = [len(self.bom) + s for s in starts]
        first = _NEWLINE.search(body)
        self.newline = first.group(0) if first else b"\n"

    @staticmethod
    def _check_coding(body):
        for line in body.split(b"\n", 2)[:2]:
            match = _CODING.match(line)
            if match:
                name = match.group(1).decode("ascii", "replace")
                try:
                    canonical = codecs.lookup(name).name
                except LookupError:
                    canonical = name
                if canonical != "utf-8":
                    raise ConfigRewriteError(
                        "the file declares the encoding %r; only UTF-8 files are rewritten" % name,
                        line=body[:body.find(line)].count(b"\n") + 1)
            if not line.strip().startswith(b"#") and line.strip():
                break

    def offset(self, lineno, col):
        return self.line_starts[lineno - 1] + col

    def start(self, node):
        return self.offset(node.lineno, node.col_offset)

    def end(self, node):
        return self.offset(node.end_lineno, node.end_col_offset)

    def line_of(self, offset):
        lo, hi = 0, len(self.line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    def value_span(self, node, bounds=None):
        """Byte span of a value, widened over parentheses that wrap only it (inside ``bounds``)."""
        start, end = self.start(node), self.end(node)
        data = self.data
        low, high = bounds or (0, len(data))
        while True:
            before = start
            while before > 0 and data[before - 1:before] in (b" ", b"\t", b"\f", b"\r", b"\n", b"\\"):
                before -= 1
            after = self._skip_blank(end)
            if before - 1 >= low and after + 1 <= high and data[before - 1:before] == b"(" \
                    and data[after:after + 1] == b")":
                start, end = before - 1, after + 1
            else:
                return start, end

    def _skip_blank(self, pos):
        """Past whitespace and line continuations, but not past a comment: a comment between a
        value and its closing parenthesis belongs to the file, so the parentheses stay."""
        data = self.data
        while pos < len(data) and data[pos:pos + 1] in (b" ", b"\t", b"\f", b"\r", b"\n", b"\\"):
            pos += 1
        return pos

    def comments_within(self, start, end):
        """(byte offset, text) of each comment token inside the value span [start, end).

        Only the span is tokenized, wrapped in parentheses so that its line breaks are
        implicit continuations, as they are in the file.
        """
        fragment = self.data[start:end].decode("utf-8")
        if "#" not in fragment:
            return []
        lines = ("(" + fragment + "\n)").splitlines(True)
        found = []
        try:
            for token in tokenize.generate_tokens(io.StringIO("".join(lines)).readline):
                if token.type == tokenize.COMMENT:
                    row, col = token.start
                    before = "".join(lines[:row - 1]) + lines[row - 1][:col]
                    found.append((start + len(before.encode("utf-8")) - 1, token.string.encode("utf-8")))
        except (tokenize.TokenError, IndentationError, SyntaxError):
            raise ConfigRewriteError("cannot tokenize the value at byte %d" % start, line=self.line_of(start))
        return found

    def _skip_forward(self, pos):
        data = self.data
        while pos < len(data):
            char = data[pos:pos + 1]
            if char in (b" ", b"\t", b"\f", b"\r", b"\n", b"\\"):
                pos += 1
            elif char == b"#":
                match = _NEWLINE.search(data, pos)
                pos = match.start() if match else len(data)
            else:
                break
        return pos

    def indent_of_line(self, lineno):
        start = self.line_starts[lineno - 1]
        pos = start
        while self.data[pos:pos + 1] in (b" ", b"\t"):
            pos += 1
        return self.data[start:pos]

    def line_end(self, lineno):
        """Offset just after the line break that ends ``lineno`` (the file's end if none)."""
        if lineno < len(self.line_starts):
            return self.line_starts[lineno]
        return len(self.data)

    def text(self, start, end):
        return self.data[start:end].decode("utf-8")


# ---------------------------------------------------------------- bindings in a scope

class Binding(object):
    """One assignment of a setting name: the statement, its value node, whether it is nested."""

    def __init__(self, name, stmt, value, nested):
        self.name = name
        self.stmt = stmt
        self.value = value
        self.nested = nested


def bound_names(target):
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        names = []
        for element in target.elts:
            inner = element.value if isinstance(element, ast.Starred) else element
            names.extend(bound_names(inner))
        return names
    return []


_COMPOUND_BODIES = ("body", "orelse", "finalbody")


def walk_scope(stmts, nested, out, problems, wanted):
    """Collect bindings of ``wanted`` names in a scope, through if/try/with/for but not defs."""
    for stmt in stmts:
        if isinstance(stmt, ast.Assign):
            simple = len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
            for target in stmt.targets:
                for name in bound_names(target):
                    if name not in wanted:
                        continue
                    if simple:
                        out.append(Binding(name, stmt, stmt.value, nested))
                    else:
                        problems.append((name, stmt, "is bound by a chained or unpacking assignment"))
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            if stmt.target.id in wanted and stmt.value is not None:
                out.append(Binding(stmt.target.id, stmt, stmt.value, nested))
        elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            if stmt.target.id in wanted:
                problems.append((stmt.target.id, stmt, "is changed by an augmented assignment"))
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                name = alias.asname or alias.name.split(".")[0]
                if name in wanted:
                    problems.append((name, stmt, "is bound by an import"))
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            for name in bound_names(stmt.target):
                if name in wanted:
                    problems.append((name, stmt, "is bound by a for loop"))
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if stmt.name in wanted:
                problems.append((stmt.name, stmt, "is bound by a def or class statement"))
            continue
        if isinstance(stmt, (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try)) \
                or type(stmt).__name__ in ("TryStar", "Match"):
            for field in _COMPOUND_BODIES:
                walk_scope(getattr(stmt, field, None) or [], True, out, problems, wanted)
            for handler in getattr(stmt, "handlers", None) or []:
                walk_scope(handler.body, True, out, problems, wanted)
            for case in getattr(stmt, "cases", None) or []:
                walk_scope(case.body, True, out, problems, wanted)


def definitely_assigns(stmts, name):
    """True when every path through ``stmts`` that falls off its end binds ``name``."""
    for stmt in stmts:
        if isinstance(stmt, ast.Raise):
            return True  # this path never falls off the end
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
            return True
        if isinstance(stmt, ast.AnnAssign) and stmt.value is not None and \
                isinstance(stmt.target, ast.Name) and stmt.target.id == name:
            return True
        if isinstance(stmt, ast.If) and definitely_assigns(stmt.body, name) and \
                definitely_assigns(stmt.orelse, name):
            return True
        if isinstance(stmt, (ast.With, ast.AsyncWith)) and definitely_assigns(stmt.body, name):
            return True
        if isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
            if definitely_assigns(stmt.finalbody, name):
                return True
            main = definitely_assigns(stmt.body, name) or definitely_assigns(stmt.orelse, name)
            if main and all(definitely_assigns(h.body, name) for h in stmt.handlers):
                return True
    return False


# ---------------------------------------------------------------- mappings: dicts and conf.update calls

_MUTATORS = ("update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__")


class Entry(object):
    """One ``name -> value`` of a mapping: a keyword of a call or a string key of a dict literal."""

    def __init__(self, name, key, value, container):
        self.name = name
        self.key = key            # the key's node in a dict literal, None for a keyword
        self.value = value
        self.container = container
        self.line = key.lineno if key is not None else value.lineno
        self.keyword = False      # handed to a call as a keyword (also through **mapping)


def top_level_dicts(tree):
    """Top-level names bound once to a dict literal that nothing in the file changes afterwards."""
    found = getattr(tree, "_lean_top_level_dicts", None)
    if found is None:
        found = tree._lean_top_level_dicts = _top_level_dicts(tree)
    return found


def _top_level_dicts(tree):
    bound, dicts = {}, {}
    for stmt in tree.body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
        for target in targets:
            for name in bound_names(target) if target is not None else []:
                bound[name] = bound.get(name, 0) + 1
                if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and isinstance(stmt.value, ast.Dict) \
                        and len(stmt.targets if isinstance(stmt, ast.Assign) else [1]) == 1:
                    dicts[name] = stmt.value
    changed = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.value, ast.Name):
            if isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)):
                changed.add(node.value.id)
            if isinstance(node, ast.Attribute) and node.attr in _MUTATORS:
                changed.add(node.value.id)
        elif isinstance(node, (ast.AugAssign,)) and isinstance(node.target, ast.Name):
            changed.add(node.target.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Global):
                    changed.update(sub.names)
    return dict((name, node) for name, node in dicts.items() if bound[name] == 1 and name not in changed)


def dict_entries(node, dicts, entries, unknown, seen=None):
    """The entries of a dict literal, following ``**NAME`` into top-level dicts of the file."""
    seen = set(seen or ())
    for key, value in zip(node.keys, node.values):
        if key is None:
            _unpack(value, dicts, entries, unknown, seen)
        elif isinstance(key, ast.Constant) and isinstance(key.value, str):
            entries.append(Entry(key.value, key, value, node))
        else:
            unknown.append((key.lineno, "a key that is not a string literal"))


def _unpack(value, dicts, entries, unknown, seen):
    if isinstance(value, ast.Dict):
        dict_entries(value, dicts, entries, unknown, seen)
    elif isinstance(value, ast.Name) and value.id in dicts and value.id not in seen:
        seen.add(value.id)
        dict_entries(dicts[value.id], dicts, entries, unknown, seen)
    else:
        unknown.append((value.lineno, "**%s is not a dict literal defined once in this file" %
                        (value.id if isinstance(value, ast.Name) else "<expression>")))


def call_entries(call, dicts, entries, unknown):
    """Entries of ``conf.update(...)`` in the order Python hands them over: positional, then keywords."""
    for arg in call.args:
        if isinstance(arg, ast.Dict):
            dict_entries(arg, dicts, entries, unknown)
        elif isinstance(arg, ast.Name) and arg.id in dicts:
            dict_entries(dicts[arg.id], dicts, entries, unknown, set([arg.id]))
        else:
            unknown.append((arg.lineno, "a positional argument that is not a dict literal"))
    first_keyword = len(entries)
    for keyword in call.keywords:
        if keyword.arg is None:
            _unpack(keyword.value, dicts, entries, unknown, set())
        else:
            entries.append(Entry(keyword.arg, None, keyword.value, call))
    for entry in entries[first_keyword:]:
        entry.keyword = True


__all__ = [
    "Binding", "DYNAMIC", "Entry", "MAX_DEPTH", "Source", "check_depth", "bound_names", "call_entries", "definitely_assigns",
    "dict_entries", "literal_value", "top_level_dicts", "walk_scope",
]
