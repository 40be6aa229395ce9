# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Celery vocabulary the audit knows: task options, result reads, canvas names."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

# celery/app/task.py, the Task class attributes (and ``from_config``):
TASK_CLASS_OPTIONS = frozenset((
    "name", "typing", "max_retries", "default_retry_delay", "rate_limit", "ignore_result",
    "trail", "send_events", "store_errors_even_if_ignored", "serializer", "time_limit",
    "soft_time_limit", "backend", "track_started", "acks_late", "acks_on_failure_or_timeout",
    "acks_on_failure", "acks_on_timeout", "retry_on_worker_lost",  # new in Celery 5.7
    "reject_on_worker_lost", "throws", "expires", "priority", "resultrepr_maxsize",
    "request_stack", "abstract", "store_eager_result", "Strategy", "Request",
    "MaxRetriesExceededError", "OperationalError",
))
# celery/app/task.py ``extract_exec_options``: read from the task when it is sent.
EXEC_OPTIONS = frozenset((
    "queue", "routing_key", "exchange", "priority", "expires", "serializer", "delivery_mode",
    "compression", "time_limit", "soft_time_limit", "immediate", "mandatory",
))
# celery/app/base.py ``Celery.task`` and ``Celery._task_from_fun`` keyword arguments.
DECORATOR_OPTIONS = frozenset((
    "name", "base", "bind", "shared", "filter", "lazy", "pydantic", "pydantic_strict",
    "pydantic_context", "pydantic_dump_kwargs",
))
# celery/app/autoretry.py ``add_autoretry_behaviour``.
AUTORETRY_OPTIONS = frozenset((
    "autoretry_for", "dont_autoretry_for", "retry_kwargs", "retry_backoff", "retry_backoff_max",
    "retry_jitter",
))
# Every public attribute of ``celery.app.task.Task`` (Celery 5.7): a decorator keyword sets the
# attribute of that name on the task class, so ``on_failure=handler`` is as real as
# ``acks_on_failure=True``. tests/unit/test_task_audit.py checks this list against the Celery
# installed in the test environment.
TASK_ATTRIBUTES = frozenset((
    "AsyncResult", "MaxRetriesExceededError", "OperationalError", "Request", "Strategy",
    "abstract", "acks_late", "acks_on_failure", "acks_on_failure_or_timeout", "acks_on_timeout",
    "add_around", "add_to_chord", "add_trail", "after_return", "annotate", "app", "apply",
    "apply_async", "backend", "before_start", "bind", "chunks", "default_retry_delay", "delay",
    "expires", "from_config", "ignore_result", "map", "max_retries", "name", "on_bound",
    "on_failure", "on_replace", "on_retry", "on_success", "pop_request", "priority",
    "push_request", "rate_limit", "reject_on_worker_lost", "replace", "request", "request_stack",
    "resultrepr_maxsize", "retry", "retry_on_worker_lost", "run", "s", "send_event",
    "send_events", "serializer", "shadow_name", "si", "signature", "signature_from_request",
    "soft_time_limit", "starmap", "start_strategy", "store_errors_even_if_ignored", "subtask",
    "subtask_from_request", "throws", "time_limit", "track_started", "trail", "typing",
    "update_state",
))
# Task options of Celery 5.2 to 5.7 that are not Task attributes in every release.
RELEASE_OPTIONS = frozenset((
    "store_eager_result",       # 5.1+
    "pydantic", "pydantic_strict", "pydantic_context", "pydantic_dump_kwargs",  # 5.5+
    "retry_on_worker_lost",     # 5.7
))
VALID_OPTIONS = TASK_CLASS_OPTIONS | EXEC_OPTIONS | DECORATOR_OPTIONS | AUTORETRY_OPTIONS \
    | TASK_ATTRIBUTES | RELEASE_OPTIONS

# Reading any of these on an AsyncResult/GroupResult needs the result in the backend.
READ_ATTRS = frozenset((
    "forget", "name", "args", "kwargs", "queue", "worker", "retries",  # backend meta, or drop it
    "get", "wait", "ready", "successful", "failed", "state", "status", "result", "info",
    "join", "join_native", "collect", "traceback", "children", "then", "completed_count",
    "waiting", "iterate", "date_done", "maybe_throw", "maybe_reraise", "supports_native_join",
))
# The id leaves with these: to rebuild the result elsewhere (``result_from_tuple``,
# ``GroupResult.restore``).
ID_ATTRS = frozenset(("id", "task_id", "as_tuple", "as_list", "save"))
# Attributes of a result that give more results of the same tasks.
RESULT_PASSTHROUGH_ATTRS = frozenset(("results", "pop", "copy", "values", "items", "__iter__"))
SEND_METHODS = frozenset(("delay", "apply_async"))
SIGNATURE_METHODS = frozenset(("s", "si", "signature", "subtask"))
SIG_PASSTHROUGH_METHODS = frozenset(("clone", "set", "set_immutable", "replace", "on_error"))
# Built-in tasks a task method sends instead of the task itself.
BUILTIN_METHODS = {"map": "celery.map", "starmap": "celery.starmap", "chunks": "celery.starmap"}
CONTAINER_ADD_METHODS = frozenset(("append", "add", "extend", "insert", "update", "setdefault",
                                   "appendleft", "put", "put_nowait"))
TRANSPARENT_CALLS = frozenset(("list", "tuple", "set", "frozenset", "sorted", "reversed", "zip",
                               "enumerate", "iter", "next", "dict", "filter", "itertools.chain",
                               "itertools.chain.from_iterable", "itertools.islice", "copy.copy",
                               "copy.deepcopy"))
LOG_METHODS = frozenset(("debug", "info", "warning", "warn", "error", "exception", "critical", "log"))
CANVAS_NAMES = frozenset(("chain", "group", "chord", "signature", "Signature", "subtask", "chunks", "xmap",
                          "xstarmap"))
RESULT_CLASS_NAMES = frozenset(("AsyncResult", "GroupResult", "ResultSet", "EagerResult",
                                "AbortableAsyncResult"))
# Result backend methods that read stored results by id (``app.backend.get_task_meta(id)``).
BACKEND_READ_METHODS = frozenset((
    "get_task_meta", "get_result", "get_status", "get_state", "get_traceback", "get_children",
    "get_many", "wait_for", "wait_for_pending", "restore_group", "get_group_meta",
    "_get_task_meta_for", "get_task_meta_for"))
# What may be done with a task object without its result going anywhere.
CONTAINER_METHODS = frozenset(("keys", "values", "items", "get", "index", "count", "copy", "pop",
                               "setdefault", "__contains__", "__getitem__"))
TASK_SAFE_ATTRS = frozenset((
    "name", "__name__", "__qualname__", "__module__", "__doc__", "__wrapped__", "apply", "run",
    "__call__", "app", "request", "typing", "backend", "AsyncResult", "update_state", "retry",
    "subtask_from_request", "shadow_name")) | CONTAINER_METHODS
RESULT_SAFE_ATTRS = frozenset(("parent", "revoke", "backend", "app", "ignored", "__iter__",
                               "results", "pop", "copy", "values", "items"))
SIGNATURE_SAFE_ATTRS = frozenset((
    "delay", "apply_async", "freeze", "clone", "set", "link", "link_error", "on_error",
    "set_immutable", "replace", "options", "args", "kwargs", "task", "name", "immutable",
    "subtask_type", "id", "tasks", "apply", "type", "app", "stamp", "body", "__or__",
    "set_parent_id", "keys", "values", "items", "get")) | CONTAINER_METHODS
TASK_DECORATOR_NAMES = frozenset(("task", "shared_task"))
# Celery modules whose ``Task`` makes a class a task class.
PRUNED_DIRS = frozenset(("__pycache__", "site-packages", "node_modules"))

KINDS = ("result_read", "chain_result_read", "chord_body_result_read", "chord_header",
         "group_result_read", "id_escapes", "update_state", "unknown")


# Files larger than this are not parsed (generated code, data dumps): their tasks count as unknown.
MAX_FILE_BYTES = 4 * 1024 * 1024
