# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rewrite a Celery configuration file in place, touching only the bytes of the values it sets.

The file is located with ``ast`` and edited by splicing bytes, from the end backwards, so
comments, formatting, a UTF-8 BOM and CRLF line ends survive. The result is parsed again and
planned again: a second plan of the new bytes must find nothing to change.

Four places can hold the settings (the *target*): module-level assignments, the attributes of
a class used as the config object, and keyword arguments of ``<app>.conf.update(...)``. Three
naming styles exist (the *style*): ``celery`` (``task_ignore_result``), ``django``
(``CELERY_TASK_IGNORE_RESULT`` read with ``namespace='CELERY'``) and ``legacy``
(``CELERY_IGNORE_RESULT``).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import codecs
import difflib
import math
import re

# Every Celery setting: new lowercase name -> (old name, type), generated from
# celery/app/defaults.py (Celery 5.6: ``flatten(NAMESPACES)`` and ``_TO_OLD_KEY``).
CELERY_SETTINGS = {
    'accept_content': ('CELERY_ACCEPT_CONTENT', 'list'),
    'arangodb_backend_settings': ('CELERY_ARANGODB_BACKEND_SETTINGS', 'dict'),
    'azureblockblob_base_path': ('AZUREBLOCKBLOB_BASE_PATH', 'str'),
    'azureblockblob_connection_timeout': ('AZUREBLOCKBLOB_CONNECTION_TIMEOUT', 'int'),
    'azureblockblob_container_name': ('AZUREBLOCKBLOB_CONTAINER_NAME', 'str'),
    'azureblockblob_read_timeout': ('AZUREBLOCKBLOB_READ_TIMEOUT', 'int'),
    'azureblockblob_retry_increment_base': ('AZUREBLOCKBLOB_RETRY_INCREMENT_BASE', 'int'),
    'azureblockblob_retry_initial_backoff_sec': ('AZUREBLOCKBLOB_RETRY_INITIAL_BACKOFF_SEC', 'int'),
    'azureblockblob_retry_max_attempts': ('AZUREBLOCKBLOB_RETRY_MAX_ATTEMPTS', 'int'),
    'beat_cron_starting_deadline': ('CELERYBEAT_CRON_STARTING_DEADLINE', 'int'),
    'beat_max_loop_interval': ('CELERYBEAT_MAX_LOOP_INTERVAL', 'float'),
    'beat_schedule': ('CELERYBEAT_SCHEDULE', 'dict'),
    'beat_schedule_filename': ('CELERYBEAT_SCHEDULE_FILENAME', 'str'),
    'beat_scheduler': ('CELERYBEAT_SCHEDULER', 'str'),
    'beat_sync_every': ('CELERYBEAT_SYNC_EVERY', 'int'),
    'broker_channel_error_retry': ('BROKER_CHANNEL_ERROR_RETRY', 'bool'),
    'broker_connection_max_retries': ('BROKER_CONNECTION_MAX_RETRIES', 'int'),
    'broker_connection_retry': ('BROKER_CONNECTION_RETRY', 'bool'),
    'broker_connection_retry_on_startup': ('BROKER_CONNECTION_RETRY_ON_STARTUP', 'bool'),
    'broker_connection_timeout': ('BROKER_CONNECTION_TIMEOUT', 'float'),
    'broker_failover_strategy': ('BROKER_FAILOVER_STRATEGY', 'str'),
    'broker_heartbeat': ('BROKER_HEARTBEAT', 'int'),
    'broker_heartbeat_checkrate': ('BROKER_HEARTBEAT_CHECKRATE', 'int'),
    'broker_host': ('BROKER_HOST', 'str'),
    'broker_login_method': ('BROKER_LOGIN_METHOD', 'str'),
    'broker_native_delayed_delivery_queue_type': ('BROKER_NATIVE_DELAYED_DELIVERY_QUEUE_TYPE', 'str'),
    'broker_password': ('BROKER_PASSWORD', 'str'),
    'broker_pool_limit': ('BROKER_POOL_LIMIT', 'int'),
    'broker_port': ('BROKER_PORT', 'int'),
    'broker_read_url': ('BROKER_READ_URL', 'str'),
    'broker_transport': ('BROKER_TRANSPORT', 'str'),
    'broker_transport_options': ('BROKER_TRANSPORT_OPTIONS', 'dict'),
    'broker_url': ('BROKER_URL', 'str'),
    'broker_use_ssl': ('BROKER_USE_SSL', 'bool'),
    'broker_user': ('BROKER_USER', 'str'),
    'broker_vhost': ('BROKER_VHOST', 'str'),
    'broker_write_url': ('BROKER_WRITE_URL', 'str'),
    'cache_backend': ('CELERY_CACHE_BACKEND', 'str'),
    'cache_backend_options': ('CELERY_CACHE_BACKEND_OPTIONS', 'dict'),
    'cassandra_auth_kwargs': ('CASSANDRA_AUTH_KWARGS', 'str'),
    'cassandra_auth_provider': ('CASSANDRA_AUTH_PROVIDER', 'str'),
    'cassandra_bundle_path': ('CASSANDRA_BUNDLE_PATH', 'str'),
    'cassandra_entry_ttl': ('CASSANDRA_ENTRY_TTL', 'float'),
    'cassandra_keyspace': ('CASSANDRA_KEYSPACE', 'str'),
    'cassandra_options': ('CASSANDRA_OPTIONS', 'dict'),
    'cassandra_port': ('CASSANDRA_PORT', 'str'),
    'cassandra_read_consistency': ('CASSANDRA_READ_CONSISTENCY', 'str'),
    'cassandra_servers': ('CASSANDRA_SERVERS', 'list'),
    'cassandra_table': ('CASSANDRA_TABLE', 'str'),
    'cassandra_write_consistency': ('CASSANDRA_WRITE_CONSISTENCY', 'str'),
    'control_exchange': ('CONTROL_EXCHANGE', 'str'),
    'control_queue_durable': ('CONTROL_QUEUE_DURABLE', 'bool'),
    'control_queue_exclusive': ('CONTROL_QUEUE_EXCLUSIVE', 'bool'),
    'control_queue_expires': ('CONTROL_QUEUE_EXPIRES', 'float'),
    'control_queue_ttl': ('CONTROL_QUEUE_TTL', 'float'),
    'cosmosdbsql_collection_name': ('COSMOSDBSQL_COLLECTION_NAME', 'str'),
    'cosmosdbsql_consistency_level': ('COSMOSDBSQL_CONSISTENCY_LEVEL', 'str'),
    'cosmosdbsql_database_name': ('COSMOSDBSQL_DATABASE_NAME', 'str'),
    'cosmosdbsql_max_retry_attempts': ('COSMOSDBSQL_MAX_RETRY_ATTEMPTS', 'int'),
    'cosmosdbsql_max_retry_wait_time': ('COSMOSDBSQL_MAX_RETRY_WAIT_TIME', 'int'),
    'couchbase_backend_settings': ('CELERY_COUCHBASE_BACKEND_SETTINGS', 'dict'),
    'database_create_tables_at_setup': ('DATABASE_CREATE_TABLES_AT_SETUP', 'bool'),
    'database_engine_options': ('CELERY_RESULT_ENGINE_OPTIONS', 'dict'),
    'database_short_lived_sessions': ('CELERY_RESULT_DB_SHORT_LIVED_SESSIONS', 'bool'),
    'database_table_names': ('CELERY_RESULT_DB_TABLENAMES', 'dict'),
    'database_table_schemas': ('DATABASE_TABLE_SCHEMAS', 'dict'),
    'database_url': ('CELERY_RESULT_DBURI', 'str'),
    'elasticsearch_max_retries': ('CELERY_ELASTICSEARCH_MAX_RETRIES', 'int'),
    'elasticsearch_retry_on_timeout': ('CELERY_ELASTICSEARCH_RETRY_ON_TIMEOUT', 'bool'),
    'elasticsearch_save_meta_as_text': ('CELERY_ELASTICSEARCH_SAVE_META_AS_TEXT', 'bool'),
    'elasticsearch_timeout': ('CELERY_ELASTICSEARCH_TIMEOUT', 'float'),
    'enable_utc': ('ENABLE_UTC', 'bool'),
    'event_exchange': ('CELERY_EVENT_EXCHANGE', 'str'),
    'event_queue_durable': ('CELERY_EVENT_QUEUE_DURABLE', 'bool'),
    'event_queue_exclusive': ('CELERY_EVENT_QUEUE_EXCLUSIVE', 'bool'),
    'event_queue_expires': ('CELERY_EVENT_QUEUE_EXPIRES', 'float'),
    'event_queue_prefix': ('CELERY_EVENT_QUEUE_PREFIX', 'str'),
    'event_queue_ttl': ('CELERY_EVENT_QUEUE_TTL', 'float'),
    'event_serializer': ('CELERY_EVENT_SERIALIZER', 'str'),
    'gcs_base_path': ('GCS_BASE_PATH', 'str'),
    'gcs_bucket': ('GCS_BUCKET', 'str'),
    'gcs_project': ('GCS_PROJECT', 'str'),
    'gcs_ttl': ('GCS_TTL', 'float'),
    'imports': ('CELERY_IMPORTS', 'tuple'),
    'include': ('CELERY_INCLUDE', 'tuple'),
    'mongodb_backend_settings': ('CELERY_MONGODB_BACKEND_SETTINGS', 'dict'),
    'redis_backend_use_ssl': ('CELERY_REDIS_BACKEND_USE_SSL', 'dict'),
    'redis_db': ('CELERY_REDIS_DB', 'int'),
    'redis_host': ('CELERY_REDIS_HOST', 'str'),
    'redis_max_connections': ('CELERY_REDIS_MAX_CONNECTIONS', 'int'),
    'redis_password': ('CELERY_REDIS_PASSWORD', 'str'),
    'redis_port': ('CELERY_REDIS_PORT', 'int'),
    'redis_retry_on_timeout': ('CELERY_REDIS_RETRY_ON_TIMEOUT', 'bool'),
    'redis_socket_connect_timeout': ('CELERY_REDIS_SOCKET_CONNECT_TIMEOUT', 'float'),
    'redis_socket_keepalive': ('CELERY_REDIS_SOCKET_KEEPALIVE', 'bool'),
    'redis_socket_timeout': ('CELERY_REDIS_SOCKET_TIMEOUT', 'float'),
    'redis_username': ('CELERY_REDIS_USERNAME', 'str'),
    'result_accept_content': ('RESULT_ACCEPT_CONTENT', 'list'),
    'result_backend': ('CELERY_RESULT_BACKEND', 'str'),
    'result_backend_always_retry': ('CELERY_RESULT_BACKEND_ALWAYS_RETRY', 'bool'),
    'result_backend_base_sleep_between_retries_ms': ('CELERY_RESULT_BACKEND_BASE_SLEEP_BETWEEN_RETRIES_MS', 'int'),
    'result_backend_max_retries': ('CELERY_RESULT_BACKEND_MAX_RETRIES', 'float'),
    'result_backend_max_sleep_between_retries_ms': ('CELERY_RESULT_BACKEND_MAX_SLEEP_BETWEEN_RETRIES_MS', 'int'),
    'result_backend_transport_options': ('CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS', 'dict'),
    'result_cache_max': ('CELERY_MAX_CACHED_RESULTS', 'int'),
    'result_chord_join_timeout': ('CELERY_RESULT_CHORD_JOIN_TIMEOUT', 'float'),
    'result_chord_retry_interval': ('CELERY_RESULT_CHORD_RETRY_INTERVAL', 'float'),
    'result_compression': ('CELERY_RESULT_COMPRESSION', 'str'),
    'result_exchange': ('CELERY_RESULT_EXCHANGE', 'str'),
    'result_exchange_type': ('CELERY_RESULT_EXCHANGE_TYPE', 'str'),
    'result_expires': ('CELERY_TASK_RESULT_EXPIRES', 'float'),
    'result_extended': ('CELERY_RESULT_EXTENDED', 'bool'),
    'result_persistent': ('CELERY_RESULT_PERSISTENT', 'bool'),
    'result_serializer': ('CELERY_RESULT_SERIALIZER', 'str'),
    's3_access_key_id': ('S3_ACCESS_KEY_ID', 'str'),
    's3_base_path': ('S3_BASE_PATH', 'str'),
    's3_bucket': ('S3_BUCKET', 'str'),
    's3_endpoint_url': ('S3_ENDPOINT_URL', 'str'),
    's3_region': ('S3_REGION', 'str'),
    's3_secret_access_key': ('S3_SECRET_ACCESS_KEY', 'str'),
    'security_cert_store': ('CELERY_SECURITY_CERT_STORE', 'str'),
    'security_certificate': ('CELERY_SECURITY_CERTIFICATE', 'str'),
    'security_digest': ('CELERY_SECURITY_DIGEST', 'str'),
    'security_key': ('CELERY_SECURITY_KEY', 'str'),
    'security_key_password': ('CELERY_SECURITY_KEY_PASSWORD', 'str'),
    'task_acks_late': ('CELERY_ACKS_LATE', 'bool'),
    'task_acks_on_failure_or_timeout': ('CELERY_ACKS_ON_FAILURE_OR_TIMEOUT', 'bool'),
    'task_allow_error_cb_on_chord_header': ('CELERY_ALLOW_ERROR_CB_ON_CHORD_HEADER', 'bool'),
    'task_always_eager': ('CELERY_ALWAYS_EAGER', 'bool'),
    'task_annotations': ('CELERY_ANNOTATIONS', 'any'),
    'task_compression': ('CELERY_MESSAGE_COMPRESSION', 'str'),
    'task_create_missing_queue_exchange_type': ('CELERY_CREATE_MISSING_QUEUE_EXCHANGE_TYPE', 'str'),
    'task_create_missing_queue_type': ('CELERY_CREATE_MISSING_QUEUE_TYPE', 'str'),
    'task_create_missing_queues': ('CELERY_CREATE_MISSING_QUEUES', 'bool'),
    'task_default_delivery_mode': ('CELERY_DEFAULT_DELIVERY_MODE', 'str'),
    'task_default_exchange': ('CELERY_DEFAULT_EXCHANGE', 'str'),
    'task_default_exchange_type': ('CELERY_DEFAULT_EXCHANGE_TYPE', 'str'),
    'task_default_priority': ('CELERY_DEFAULT_PRIORITY', 'str'),
    'task_default_queue': ('CELERY_DEFAULT_QUEUE', 'str'),
    'task_default_queue_type': ('CELERY_DEFAULT_QUEUE_TYPE', 'str'),
    'task_default_rate_limit': ('CELERY_DEFAULT_RATE_LIMIT', 'str'),
    'task_default_routing_key': ('CELERY_DEFAULT_ROUTING_KEY', 'str'),
    'task_eager_propagates': ('CELERY_EAGER_PROPAGATES_EXCEPTIONS', 'bool'),
    'task_ignore_result': ('CELERY_IGNORE_RESULT', 'bool'),
    'task_inherit_parent_priority': ('CELERY_INHERIT_PARENT_PRIORITY', 'bool'),
    'task_protocol': ('CELERY_TASK_PROTOCOL', 'int'),
    'task_publish_retry': ('CELERY_TASK_PUBLISH_RETRY', 'bool'),
    'task_publish_retry_policy': ('CELERY_TASK_PUBLISH_RETRY_POLICY', 'dict'),
    'task_queue_max_priority': ('CELERY_QUEUE_MAX_PRIORITY', 'int'),
    'task_queues': ('CELERY_QUEUES', 'dict'),
    'task_reject_on_worker_lost': ('CELERY_REJECT_ON_WORKER_LOST', 'bool'),
    'task_remote_tracebacks': ('CELERY_REMOTE_TRACEBACKS', 'bool'),
    'task_routes': ('CELERY_ROUTES', 'any'),
    'task_send_sent_event': ('CELERY_SEND_TASK_SENT_EVENT', 'bool'),
    'task_serializer': ('CELERY_TASK_SERIALIZER', 'str'),
    'task_soft_time_limit': ('CELERYD_TASK_SOFT_TIME_LIMIT', 'float'),
    'task_store_eager_result': ('CELERY_STORE_EAGER_RESULT', 'bool'),
    'task_store_errors_even_if_ignored': ('CELERY_STORE_ERRORS_EVEN_IF_IGNORED', 'bool'),
    'task_time_limit': ('CELERYD_TASK_TIME_LIMIT', 'float'),
    'task_track_started': ('CELERY_TRACK_STARTED', 'bool'),
    'timezone': ('CELERY_TIMEZONE', 'str'),
    'worker_agent': ('CELERYD_AGENT', 'str'),
    'worker_autoscaler': ('CELERYD_AUTOSCALER', 'str'),
    'worker_cancel_long_running_tasks_on_connection_loss': ('CELERYD_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS', 'bool'),
    'worker_concurrency': ('CELERYD_CONCURRENCY', 'int'),
    'worker_consumer': ('CELERYD_CONSUMER', 'str'),
    'worker_deduplicate_successful_tasks': ('CELERYD_DEDUPLICATE_SUCCESSFUL_TASKS', 'bool'),
    'worker_detect_quorum_queues': ('CELERYD_DETECT_QUORUM_QUEUES', 'bool'),
    'worker_direct': ('CELERY_WORKER_DIRECT', 'bool'),
    'worker_disable_prefetch': ('CELERYD_DISABLE_PREFETCH', 'bool'),
    'worker_disable_rate_limits': ('CELERY_DISABLE_RATE_LIMITS', 'bool'),
    'worker_enable_prefetch_count_reduction': ('CELERYD_ENABLE_PREFETCH_COUNT_REDUCTION', 'bool'),
    'worker_enable_remote_control': ('CELERY_ENABLE_REMOTE_CONTROL', 'bool'),
    'worker_enable_soft_shutdown_on_idle': ('CELERYD_ENABLE_SOFT_SHUTDOWN_ON_IDLE', 'bool'),
    'worker_eta_task_limit': ('CELERYD_ETA_TASK_LIMIT', 'int'),
    'worker_hijack_root_logger': ('CELERYD_HIJACK_ROOT_LOGGER', 'bool'),
    'worker_log_color': ('CELERYD_LOG_COLOR', 'bool'),
    'worker_log_format': ('CELERYD_LOG_FORMAT', 'str'),
    'worker_lost_wait': ('CELERYD_WORKER_LOST_WAIT', 'float'),
    'worker_max_memory_per_child': ('CELERYD_MAX_MEMORY_PER_CHILD', 'int'),
    'worker_max_tasks_per_child': ('CELERYD_MAX_TASKS_PER_CHILD', 'int'),
    'worker_pool': ('CELERYD_POOL', 'str'),
    'worker_pool_putlocks': ('CELERYD_POOL_PUTLOCKS', 'bool'),
    'worker_pool_restarts': ('CELERYD_POOL_RESTARTS', 'bool'),
    'worker_prefetch_multiplier': ('CELERYD_PREFETCH_MULTIPLIER', 'int'),
    'worker_proc_alive_timeout': ('CELERYD_PROC_ALIVE_TIMEOUT', 'float'),
    'worker_redirect_stdouts': ('CELERY_REDIRECT_STDOUTS', 'bool'),
    'worker_redirect_stdouts_level': ('CELERY_REDIRECT_STDOUTS_LEVEL', 'str'),
    'worker_send_task_events': ('CELERY_SEND_EVENTS', 'bool'),
    'worker_soft_shutdown_timeout': ('CELERYD_SOFT_SHUTDOWN_TIMEOUT', 'float'),
    'worker_state_db': ('CELERYD_STATE_DB', 'str'),
    'worker_task_log_format': ('CELERYD_TASK_LOG_FORMAT', 'str'),
    'worker_timer': ('CELERYD_TIMER', 'str'),
    'worker_timer_precision': ('CELERYD_TIMER_PRECISION', 'float'),
}

OLD_TO_NEW = dict((old, new) for new, (old, _type) in CELERY_SETTINGS.items())

STYLES = ("celery", "django", "legacy")
MODULE_TARGET = "module"
DEFAULT_NAMESPACE = "CELERY"
ANNOTATIONS = "task_annotations"

# Names only a Django settings module has; they break a tie between old names and
# namespace names that are spelled the same (CELERY_RESULT_EXTENDED is both).
DJANGO_MARKERS = frozenset((
    "INSTALLED_APPS", "MIDDLEWARE", "ROOT_URLCONF", "DATABASES", "SECRET_KEY", "WSGI_APPLICATION",
))

_BOM = b"\xef\xbb\xbf"
_NEWLINE = re.compile(br"\r\n|\r|\n")
_CODING = re.compile(br"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_BOOL_TASK_OPTIONS = ("ignore_result", "store_errors_even_if_ignored", "acks_late", "track_started")
_TRUE_STRINGS = ("true", "yes", "on", "1", "y")
_FALSE_STRINGS = ("false", "no", "off", "0", "n")


class ConfigRewriteError(Exception):
    """The file cannot be rewritten safely; ``line`` and ``setting`` say where and what."""

    def __init__(self, msg, line=None, setting=None):
        super(ConfigRewriteError, self).__init__(msg)
        self.msg = msg
        self.line = line
        self.setting = setting

    def where(self, path):
        """``path:line: msg``, the form the module reports."""
        if self.line:
            return "%s:%d: %s" % (path, self.line, self.msg)
        return "%s: %s" % (path, self.msg)


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


# ---------------------------------------------------------------- values and names

def render(value):
    """Python source for a value: True/False/None, numbers, strings with repr, containers."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigRewriteError("cannot write %r as a Python literal" % (value,))
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "{%s}" % ", ".join("%s: %s" % (render(k), render(v)) for k, v in value.items())
    if isinstance(value, list):
        return "[%s]" % ", ".join(render(v) for v in value)
    if isinstance(value, tuple):
        if len(value) == 1:
            return "(%s,)" % render(value[0])
        return "(%s)" % ", ".join(render(v) for v in value)
    raise ConfigRewriteError("cannot write a value of type %s: %r" % (type(value).__name__, value))


def same_value(left, right):
    """Equality that tells True from 1 and 1.5 from '1.5', through containers."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return set(left) == set(right) and all(same_value(left[k], right[k]) for k in left)
    if isinstance(left, (list, tuple)):
        return len(left) == len(right) and all(same_value(a, b) for a, b in zip(left, right))
    return left == right


def coerce(setting, value):
    """Bring a value from YAML/Jinja to the type Celery's defaults declare for ``setting``."""
    kind = CELERY_SETTINGS[setting][1]
    if isinstance(value, str) and kind == "bool":
        lowered = value.strip().lower()
        if lowered in _TRUE_STRINGS:
            return True
        if lowered in _FALSE_STRINGS:
            return False
        raise ConfigRewriteError("%s expects a boolean, got %r" % (setting, value), setting=setting)
    if isinstance(value, str) and kind in ("int", "float"):
        try:
            number = float(value)
        except ValueError:
            raise ConfigRewriteError("%s expects a number, got %r" % (setting, value), setting=setting)
        return int(number) if number.is_integer() else number
    if kind == "float" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def check_setting_name(name):
    """Refuse a name Celery does not know, suggesting the closest valid one."""
    if name in CELERY_SETTINGS:
        return name
    if name in OLD_TO_NEW:
        hint = OLD_TO_NEW[name]
    else:
        close = difflib.get_close_matches(name.lower(), list(CELERY_SETTINGS), n=1, cutoff=0.6)
        hint = close[0] if close else None
    msg = "unknown Celery setting %r in settings" % name
    if hint:
        msg += "; did you mean %r?" % hint
    raise ConfigRewriteError(msg, setting=name)


def written_name(setting, style, namespace):
    if style == "django":
        return "%s_%s" % (namespace, setting.upper()) if namespace else setting.upper()
    if style == "legacy":
        return CELERY_SETTINGS[setting][0]
    return setting


def classify_names(names, namespace):
    """Sort setting names found in a file into new, namespace-only, old-only and shared ones."""
    django = _namespace_names(namespace)
    found = {"celery": [], "django": [], "legacy": [], "either": []}
    for name in names:
        if name in CELERY_SETTINGS:
            found["celery"].append(name)
        elif name in django and name in OLD_TO_NEW:
            found["either"].append(name)
        elif name in django:
            found["django"].append(name)
        elif name in OLD_TO_NEW:
            found["legacy"].append(name)
    return found


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


_DYNAMIC = object()
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
    """The value of a literal node (timedelta with literal arguments counts), else _DYNAMIC."""
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
    return _DYNAMIC


# ---------------------------------------------------------------- the source as bytes

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
            after = self._skip_forward(end)
            if before - 1 >= low and after + 1 <= high and data[before - 1:before] == b"(" \
                    and data[after:after + 1] == b")":
                start, end = before - 1, after + 1
            else:
                return start, end

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


def _bound_names(target):
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        names = []
        for element in target.elts:
            names.extend(_bound_names(getattr(element, "value", element) if isinstance(element, ast.Starred)
                                      else element))
        return names
    return []


_COMPOUND_BODIES = ("body", "orelse", "finalbody")


def _walk_scope(stmts, nested, out, problems, wanted):
    """Collect bindings of ``wanted`` names in a scope, through if/try/with/for but not defs."""
    for stmt in stmts:
        if isinstance(stmt, ast.Assign):
            simple = len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
            for target in stmt.targets:
                for name in _bound_names(target):
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
            for name in _bound_names(stmt.target):
                if name in wanted:
                    problems.append((name, stmt, "is bound by a for loop"))
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if stmt.name in wanted:
                problems.append((stmt.name, stmt, "is bound by a def or class statement"))
            continue
        if isinstance(stmt, (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try)) \
                or type(stmt).__name__ in ("TryStar", "Match"):
            for field in _COMPOUND_BODIES:
                _walk_scope(getattr(stmt, field, None) or [], True, out, problems, wanted)
            for handler in getattr(stmt, "handlers", None) or []:
                _walk_scope(handler.body, True, out, problems, wanted)
            for case in getattr(stmt, "cases", None) or []:
                _walk_scope(case.body, True, out, problems, wanted)


def _definitely_assigns(stmts, name):
    """True when every path through ``stmts`` that falls off its end binds ``name``."""
    for stmt in stmts:
        if isinstance(stmt, ast.Raise):
            return True  # this path never falls off the end
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
            return True
        if isinstance(stmt, ast.AnnAssign) and stmt.value is not None and \
                isinstance(stmt.target, ast.Name) and stmt.target.id == name:
            return True
        if isinstance(stmt, ast.If) and _definitely_assigns(stmt.body, name) and \
                _definitely_assigns(stmt.orelse, name):
            return True
        if isinstance(stmt, (ast.With, ast.AsyncWith)) and _definitely_assigns(stmt.body, name):
            return True
        if isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
            if _definitely_assigns(stmt.finalbody, name):
                return True
            main = _definitely_assigns(stmt.body, name) or _definitely_assigns(stmt.orelse, name)
            if main and all(_definitely_assigns(h.body, name) for h in stmt.handlers):
                return True
    return False


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
        _walk_scope(self.scope, False, bindings, problems, known)
        return [b.name for b in bindings] + [p[0] for p in problems]


def find_target(source, object_name, namespace):
    """Pick the module, the class or the ``conf.update`` call that holds the settings."""
    tree = source.tree
    known = _known_names(namespace)
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


_NAMESPACE_NAMES = {}


def _namespace_names(namespace):
    """``<NAMESPACE>_<SETTING>`` for every setting, cached per namespace."""
    if namespace not in _NAMESPACE_NAMES:
        prefix = namespace + "_" if namespace else ""
        _NAMESPACE_NAMES[namespace] = frozenset(prefix + key.upper() for key in CELERY_SETTINGS)
    return _NAMESPACE_NAMES[namespace]


def _known_names(namespace):
    return set(CELERY_SETTINGS) | set(OLD_TO_NEW) | _namespace_names(namespace)


def pick_style(source, target, style, namespace, warnings):
    """The naming style to write in; refuse files that mix old and new names."""
    known = _known_names(namespace)
    found = classify_names(target.names(known), namespace)
    module_names = set()
    if target.kind == "module":
        for stmt in source.tree.body:
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                for t in getattr(stmt, "targets", None) or [stmt.target]:
                    module_names.update(_bound_names(t))
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


def _group(setting):
    return setting.split("_", 1)[0]


def _setting_of(name, style, namespace):
    """The lowercase setting a name written in ``style`` stands for, or None."""
    if style == "django":
        prefix = namespace + "_" if namespace else ""
        if name.startswith(prefix) and name.isupper():
            key = name[len(prefix):].lower()
            return key if key in CELERY_SETTINGS else None
        return None
    if style == "legacy":
        return OLD_TO_NEW.get(name)
    return name if name in CELERY_SETTINGS else None


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
        _walk_scope(self.target.scope, False, bindings, problems, set([name]))
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
        if _definitely_assigns(self.target.scope, name):
            return bindings
        lines = ", ".join(str(b.stmt.lineno) for b in bindings)
        self._refuse("%s is set only on some branches (lines %s); elsewhere Celery would use its "
                     "default. Set it unconditionally first" % (name, lines), bindings[0].stmt, setting)

    def set_value(self, setting, name, node, value, extra=None, bounds=None):
        current = literal_value(node)
        start, end = self.src.value_span(node, bounds)
        before = self.src.text(start, end)
        if current is _DYNAMIC:
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
                    names.extend(_bound_names(t))
            elif isinstance(stmt, ast.AnnAssign):
                names.extend(_bound_names(stmt.target))
            keys = [_setting_of(n, self.style, self.namespace) for n in names]
            keys = [k for k in keys if k]
            if keys:
                other = index
                if any(_group(k) == _group(setting) for k in keys):
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
            if literal is _DYNAMIC:
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
                literal = _DYNAMIC if key is None else literal_value(key)
                if literal is _DYNAMIC:
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
            if option in _BOOL_TASK_OPTIONS and isinstance(value, str):
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
        for name in target.names(_known_names(namespace)):
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


__all__ = [
    "ANNOTATIONS", "CELERY_SETTINGS", "ConfigRewriteError", "DEFAULT_NAMESPACE", "OLD_TO_NEW",
    "RewritePlan", "STYLES", "check_setting_name", "plan_rewrite", "render", "same_value",
    "written_name",
]
