# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Abstract values the flow analysis computes, and small helpers over ast nodes."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
from collections import namedtuple


class TaskAuditError(Exception):
    """A path to audit does not exist or cannot be read."""


# Abstract values of expressions. ``readset`` is a frozenset of (task name, reason kind):
# the tasks whose stored results a read of this value needs, and why.
TaskV = namedtuple("TaskV", "names dynamic")           # a task object (or what it might be)
SigV = namedtuple("SigV", "readset members shape")      # a signature; shape task/chain/group/chord
ResV = namedtuple("ResV", "readset members origin")     # an AsyncResult / GroupResult of a call
RebuiltV = namedtuple("RebuiltV", "origin")             # AsyncResult rebuilt from an id
ChordPartialV = namedtuple("ChordPartialV", "header")   # chord(header), waiting for its body
ConstV = namedtuple("ConstV", "value")                  # a literal string
MethodV = namedtuple("MethodV", "receiver method")      # a bound method: ``send = t.delay``
FuncV = namedtuple("FuncV", "qual bound")               # a function or method of the app
IdV = namedtuple("IdV", "readset origin")               # the id of a result
InstV = namedtuple("InstV", "cls")                      # an instance of one of the app's classes
ModuleV = namedtuple("ModuleV", "name")                 # a module of the app holding tasks (None: any)

# What module globals, class attributes and parameters keep (the rest does not travel).
ALIAS_VALUES = (TaskV, SigV, ConstV, FuncV, MethodV, InstV, ModuleV)
PARAM_VALUES = (TaskV, SigV, ResV, RebuiltV, ChordPartialV, FuncV, MethodV, IdV, InstV, ModuleV)

Task = namedtuple("Task", "name file line ignore_result options node kind module bind node_base")


def _relabel(readset, kind):
    """Results read through a composite: plain reads become ``kind``, the rest stay."""
    return frozenset((name, kind if why == "result_read" else why) for name, why in readset)


def _dotted(node):
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _describe(node):
    """A short text for a node in a reason's detail."""
    if isinstance(node, ast.Call):
        inner = _describe(node.func)
        return (inner + "()") if inner else "a call"
    text = _dotted(node)
    if text:
        return text
    if isinstance(node, ast.Attribute):
        return "%s.%s" % (_describe(node.value), node.attr)
    if isinstance(node, ast.Subscript):
        return "%s[...]" % _describe(node.value)
    return type(node).__name__.lower()


def _literal(node):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _is_literal(node):
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def _option_value(node):
    """A JSON-friendly view of an option's value: the literal, or the source name."""
    if _is_literal(node):
        value = _literal(node)
        if isinstance(value, (str, int, float, bool)) or value is None:
            return value
        return repr(value)
    return _describe(node)
