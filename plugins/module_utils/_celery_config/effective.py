# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What Celery will see: the value of each setting, read from the source the way its loader reads it.

This reads the *new* bytes on its own, without the planner's notes, so a planner mistake shows
up as a value that differs from the one asked for. Four loader forms:

- ``module``: ``config_from_object(module or class)``; statements in order, the last binding
  wins; a new name wins over its old one; old and new names mixed without pairs make Celery
  raise "Cannot mix new and old setting keys".
- ``django``: ``config_from_object('django.conf:settings', namespace=NS)``; Django keeps only
  UPPERCASE names; Celery looks up ``NS_SETTING`` first; only Celery 5.7+ then falls back to the
  old name (5.2-5.6 ignore old names there: measured on 5.5.3), so a value that only an old name
  gives cannot be proven; no mix check.
- ``mapping``: a dict given as ``config_source=`` or to ``config_from_object``; like ``module``.
- ``update``: ``<app>.conf.update(...)`` calls; Celery keeps them in one dict in call order and,
  per setting, the name written last (old or new) wins.

A value that cannot be proven (an expression, a binding on some branches only, a star import
or an unknown ``**mapping`` after it) is reported as a problem with its line.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast

from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.settings import (
    CELERY_SETTINGS, OLD_TO_NEW, namespace_names, same_value,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.source import (
    DYNAMIC, call_entries, definitely_assigns, dict_entries, literal_value, top_level_dicts,
    walk_scope,
)

FORMS = ("module", "django", "mapping", "update")


class _Unknown(object):
    """A name whose value cannot be proven: why, and where."""

    def __init__(self, line, why, maybe_absent=False):
        self.line = line
        self.why = why
        self.maybe_absent = maybe_absent  # Celery may not see the name at all


class _Value(object):
    def __init__(self, name, value, line):
        self.name = name
        self.value = value
        self.line = line


def _known(namespace):
    return set(CELERY_SETTINGS) | set(OLD_TO_NEW) | namespace_names(namespace)


def _lookup_names(setting, form, namespace, uppercase_only):
    """The names Celery tries for ``setting``, in its order (celery/utils/collections.py _to_keys)."""
    names = []
    if form == "django" and namespace:
        names.append("%s_%s" % (namespace, setting.upper()))
    names.append(setting)
    names.append(CELERY_SETTINGS[setting][0])
    if uppercase_only:
        names = [n for n in names if n.isupper()]
    return names


# ---------------------------------------------------------------- module and class bodies

def _scope_state(stmts, known):
    """Name -> _Value or _Unknown after running ``stmts``, and the star-import line if one came last."""
    state = {}
    star = None
    for stmt in stmts:
        if isinstance(stmt, ast.ImportFrom) and any(alias.name == "*" for alias in stmt.names):
            star = stmt.lineno
            for name in list(state):
                state[name] = _Unknown(stmt.lineno, "a star import after it may set it again", True)
            continue
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name = stmt.targets[0].id
            if name in known:
                state[name] = _Value(name, literal_value(stmt.value), stmt.value.lineno)
            continue
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            if stmt.target.id in known and stmt.value is not None:
                state[stmt.target.id] = _Value(stmt.target.id, literal_value(stmt.value), stmt.value.lineno)
            continue
        nested_star = _nested_star_import(stmt)
        if nested_star:
            star = nested_star
            for name in list(state):
                state[name] = _Unknown(nested_star, "a star import after it may set it again", True)
        bindings, problems = [], []
        walk_scope([stmt], False, bindings, problems, known)
        for name, node, why in problems:
            state[name] = _Unknown(node.lineno, "%s %s" % (name, why))
        by_name = {}
        for binding in bindings:
            by_name.setdefault(binding.name, []).append(binding)
        for name, found in by_name.items():
            if any(p[0] == name for p in problems):
                continue
            values = [literal_value(b.value) for b in found]
            same = all(v is not DYNAMIC and _same(v, values[0]) for v in values)
            prior = state.get(name)
            if found[0].nested and not definitely_assigns([stmt], name):
                if same and isinstance(prior, _Value) and prior.value is not DYNAMIC \
                        and _same(prior.value, values[0]):
                    continue
                state[name] = _Unknown(found[0].stmt.lineno, "%s is set only on some branches" % name, True)
            elif not same:
                state[name] = _Unknown(found[0].stmt.lineno, "%s has different values on different branches" % name)
            else:
                state[name] = _Value(name, values[0], found[-1].value.lineno)
    return state, star


def _nested_star_import(stmt):
    """The line of a ``from x import *`` inside a compound statement (not inside a def/class)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return None
    for child in ast.iter_child_nodes(stmt):
        if isinstance(child, ast.ImportFrom) and any(alias.name == "*" for alias in child.names):
            return child.lineno
        if isinstance(child, ast.stmt) or isinstance(child, ast.excepthandler) or \
                type(child).__name__ == "match_case":
            found = _nested_star_import(child)
            if found:
                return found
    return None


def _same(left, right):
    return same_value(left, right)


def _kinds(names):
    kinds = set()
    for name in names:
        if name in CELERY_SETTINGS:
            kinds.add("new")
        elif name in OLD_TO_NEW:
            kinds.add("old")
    return kinds


def _mix_problem(present, lines):
    """Celery's detect_settings: old and new names without pairs raise ImproperlyConfigured."""
    new = set(n for n in present if n in CELERY_SETTINGS)
    old = set(n for n in present if n in OLD_TO_NEW and n not in CELERY_SETTINGS)
    if not new or not old:
        return None
    if len(old) > len(new):
        left = [n for n in new if CELERY_SETTINGS[n][0] not in present]
    else:
        left = [n for n in old if OLD_TO_NEW[n] not in present]
    if not left:
        return None
    first = min(left, key=lambda n: lines.get(n, 0))
    return (lines.get(first), None, "Celery would refuse this config: it mixes new and old setting names "
            "without pairs (%s); \"Cannot mix new and old setting keys\"" % ", ".join(sorted(left)))


# ---------------------------------------------------------------- the four forms

class EffectiveValues(object):
    """``values``: {setting: {"value", "line", "name"}}; ``problems``: [(line, setting, msg)]."""

    def __init__(self):
        self.values = {}
        self.problems = []


def read_effective(tree, form, settings, namespace="CELERY", scope=None, mapping=None, calls=None,
                   uppercase_only=False, inherited=None):
    """The value Celery sees for each of ``settings`` in ``tree`` (an ``ast.Module``).

    ``scope`` is the statement list of a module or class (forms module/django), ``mapping`` the
    dict node (form mapping), ``calls`` the ``conf.update`` Call nodes in order (form update).
    ``inherited`` is the line of a class whose bases may define settings.
    """
    known = _known(namespace)
    result = EffectiveValues()
    if form == "update":
        state, star = _update_state(tree, calls or [], result)
    elif form == "mapping":
        entries, unknown = [], []
        dict_entries(mapping, top_level_dicts(tree), entries, unknown)
        state = {}
        for entry in entries:
            if entry.name in known:
                state[entry.name] = _Value(entry.name, literal_value(entry.value), entry.value.lineno)
        star = unknown[-1][0] if unknown else None
        for line, why in unknown:
            for name in list(state):
                state[name] = _Unknown(line, why)
    else:
        state, star = _scope_state(scope if scope is not None else tree.body, known)
        if inherited and star is None:
            star = inherited
    if uppercase_only:
        state = dict((k, v) for k, v in state.items() if k.isupper())
    if form in ("module", "mapping") or (form == "update" and not _has_config_source(tree)):
        # conf.update without a config source: Celery checks the mix on the updates themselves
        present = set(k for k, v in state.items() if not getattr(v, "maybe_absent", False))
        maybe = set(state) - present
        lines = dict((k, v.line) for k, v in state.items())
        problem = _mix_problem(present, lines)
        if problem:
            result.problems.append(problem)
        elif maybe or star:
            # whether Celery accepts a mix depends on which names it sees: prove it or refuse
            names = set(state)
            if _kinds(names) == set(["new", "old"]):
                first = min(maybe, key=lambda n: lines[n]) if maybe else None
                result.problems.append((lines[first] if first else star, None,
                                        "cannot prove Celery accepts these names: old and new setting names "
                                        "are mixed and whether %s is set decides if Celery refuses them" %
                                        (first if first else "what a star import brings")))
            elif star and _kinds(names):
                result.problems.append((star, None, "cannot prove Celery accepts this config: the star import "
                                        "may bring setting names of the other style (old or new), and "
                                        "Celery refuses them mixed"))
    for setting in settings:
        _resolve(setting, form, namespace, uppercase_only, state, star, result)
    return result


def _has_config_source(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("config_from_object", "config_from_envvar"):
            return True
        if isinstance(node, ast.keyword) and node.arg == "config_source":
            return True
    return False


def _resolve(setting, form, namespace, uppercase_only, state, star, result):
    if form == "update":
        names = [setting, CELERY_SETTINGS[setting][0]]
        found = [state[n] for n in names if n in state]
        # the name written last wins (Celery folds old names into new ones in dict order)
        found.sort(key=lambda v: getattr(v, "order", 0))
        chosen = found[-1] if found else None
        if chosen is None and star:
            chosen = _Unknown(star, "a mapping whose content cannot be proven may set it")
    else:
        chosen = None
        for name in _lookup_names(setting, form, namespace, uppercase_only):
            if name in state:
                chosen = state[name]
                if form == "django" and name == CELERY_SETTINGS[setting][0] and name != _lookup_names(
                        setting, form, namespace, False)[0]:
                    chosen = _Unknown(chosen.line, "it is set under its old name %s, which only Celery 5.7+ reads "
                                      "under the Django namespace (5.2-5.6 ignore it and use the default)" % name)
                break
            if star:
                chosen = _Unknown(star, "a star import (or a mapping that cannot be proven) may set %s, "
                                  "which Celery reads first" % name)
                break
    if chosen is None:
        result.values[setting] = {"value": _default(setting), "line": None, "name": None}
    elif isinstance(chosen, _Unknown):
        result.problems.append((chosen.line, setting, "cannot prove the value Celery sees: %s" % chosen.why))
    elif chosen.value is DYNAMIC:
        result.problems.append((chosen.line, setting, "%s is an expression, not a literal; cannot prove the "
                                "value Celery sees" % chosen.name))
    else:
        result.values[setting] = {"value": chosen.value, "line": chosen.line, "name": chosen.name}


class _Default(object):
    """Celery's own default applies: nothing in the file sets the setting."""

    def __repr__(self):
        return "<Celery default>"


DEFAULT = _Default()


def _default(setting):
    return DEFAULT


def _update_state(tree, calls, result):
    dicts = top_level_dicts(tree)
    state = {}
    order = 0
    star = None
    for call in calls:
        entries, unknown = [], []
        call_entries(call, dicts, entries, unknown)
        seen_keywords = set()
        for entry in entries:
            if entry.keyword:
                if entry.name in seen_keywords:
                    result.problems.append((entry.line, OLD_TO_NEW.get(entry.name, entry.name),
                                            "%s is given twice to one call; Python raises TypeError "
                                            "(multiple values for keyword argument)" % entry.name))
                seen_keywords.add(entry.name)
            order += 1
            value = _Value(entry.name, literal_value(entry.value), entry.value.lineno)
            value.order = order
            if entry.name in state:
                value.order = state[entry.name].order if hasattr(state[entry.name], "order") else order
                # a dict keeps the first insertion's position and the last value
            state[entry.name] = value
        if unknown:
            star = unknown[-1][0]
            for name in list(state):
                state[name] = _Unknown(unknown[-1][0], unknown[-1][1])
    return state, star


__all__ = ["DEFAULT", "EffectiveValues", "FORMS", "read_effective"]
