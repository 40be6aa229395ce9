# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Celery's settings: the table, the three naming styles, values and their types."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import difflib
import math

from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config.errors import ConfigRewriteError

# Every Celery setting: new lowercase name -> (old name, type), generated from Celery 5.7's
# celery/app/defaults.py (``flatten(NAMESPACES)`` and ``_TO_OLD_KEY``); types are normalised to
# str, bool, int, float, dict, list, tuple and any. tests/unit/test_celery_config_settings_table.py
# fails when the installed Celery has a setting this table lacks.
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
    'beat_enable_remote_control': ('CELERYBEAT_ENABLE_REMOTE_CONTROL', 'bool'),
    'beat_max_loop_interval': ('CELERYBEAT_MAX_LOOP_INTERVAL', 'float'),
    'beat_remote_control_max_tick_age': ('CELERYBEAT_REMOTE_CONTROL_MAX_TICK_AGE', 'float'),
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
    'broker_pool_acquire_timeout': ('BROKER_POOL_ACQUIRE_TIMEOUT', 'float'),
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
    'database_engine_callback': ('DATABASE_ENGINE_CALLBACK', 'any'),
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
    'result_chord_expires': ('CELERY_RESULT_CHORD_EXPIRES', 'float'),
    'result_chord_join_timeout': ('CELERY_RESULT_CHORD_JOIN_TIMEOUT', 'float'),
    'result_chord_retry_interval': ('CELERY_RESULT_CHORD_RETRY_INTERVAL', 'float'),
    'result_compression': ('CELERY_RESULT_COMPRESSION', 'str'),
    'result_exchange': ('CELERY_RESULT_EXCHANGE', 'str'),
    'result_exchange_type': ('CELERY_RESULT_EXCHANGE_TYPE', 'str'),
    'result_expires': ('CELERY_TASK_RESULT_EXPIRES', 'float'),
    'result_extended': ('CELERY_RESULT_EXTENDED', 'bool'),
    'result_failure_expires': ('CELERY_RESULT_FAILURE_EXPIRES', 'float'),
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
    'task_acks_on_failure': ('CELERY_ACKS_ON_FAILURE', 'bool'),
    'task_acks_on_failure_or_timeout': ('CELERY_ACKS_ON_FAILURE_OR_TIMEOUT', 'bool'),
    'task_acks_on_timeout': ('CELERY_ACKS_ON_TIMEOUT', 'bool'),
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
    'task_repr_maxlevels': ('CELERY_REPR_MAXLEVELS', 'int'),
    'task_retry_on_worker_lost': ('CELERY_RETRY_ON_WORKER_LOST', 'bool'),
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
    'worker_concurrency': ('CELERYD_CONCURRENCY', 'any'),
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
    'worker_log_datefmt': ('CELERYD_LOG_DATEFMT', 'str'),
    'worker_log_format': ('CELERYD_LOG_FORMAT', 'str'),
    'worker_lost_wait': ('CELERYD_WORKER_LOST_WAIT', 'float'),
    'worker_max_memory_per_child': ('CELERYD_MAX_MEMORY_PER_CHILD', 'int'),
    'worker_max_tasks_per_child': ('CELERYD_MAX_TASKS_PER_CHILD', 'int'),
    'worker_pool': ('CELERYD_POOL', 'str'),
    'worker_pool_putlocks': ('CELERYD_POOL_PUTLOCKS', 'bool'),
    'worker_pool_restarts': ('CELERYD_POOL_RESTARTS', 'bool'),
    'worker_pool_start_method': ('CELERYD_POOL_START_METHOD', 'str'),
    'worker_prefetch_multiplier': ('CELERYD_PREFETCH_MULTIPLIER', 'int'),
    'worker_proc_alive_timeout': ('CELERYD_PROC_ALIVE_TIMEOUT', 'float'),
    'worker_redirect_stdouts': ('CELERY_REDIRECT_STDOUTS', 'bool'),
    'worker_redirect_stdouts_level': ('CELERY_REDIRECT_STDOUTS_LEVEL', 'str'),
    'worker_send_task_events': ('CELERY_SEND_EVENTS', 'bool'),
    'worker_soft_shutdown_timeout': ('CELERYD_SOFT_SHUTDOWN_TIMEOUT', 'float'),
    'worker_state_db': ('CELERYD_STATE_DB', 'str'),
    'worker_task_log_datefmt': ('CELERYD_TASK_LOG_DATEFMT', 'str'),
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

BOOL_TASK_OPTIONS = ("ignore_result", "store_errors_even_if_ignored", "acks_late", "track_started")
_TRUE_STRINGS = ("true", "yes", "on", "1", "y")
_FALSE_STRINGS = ("false", "no", "off", "0", "n")

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


def _kind_name(kind):
    return {"str": "a string", "bool": "a boolean", "int": "an integer >= 0", "float": "a number >= 0",
            "dict": "a mapping", "list": "a list", "tuple": "a list"}.get(kind, kind)


def coerce(setting, value):
    """Bring a value from YAML/Jinja to the type Celery's defaults declare for ``setting``.

    Refuses a value of another type, naming the setting: ``result_expires: true``,
    ``task_ignore_result: 5``, ``result_expires: [1, 2]`` and ``result_expires: -5`` are
    all refused. ``None`` (YAML ``null``) is kept: it is Celery's own "not set".
    """
    kind = CELERY_SETTINGS[setting][1]
    if value is None or kind == "any":
        return value

    def wrong():
        return ConfigRewriteError("%s expects %s, got %r" % (setting, _kind_name(kind), value), setting=setting)

    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in _TRUE_STRINGS:
                return True
            if lowered in _FALSE_STRINGS:
                return False
        raise wrong()
    if kind in ("int", "float"):
        if isinstance(value, bool):
            raise wrong()
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise wrong()
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise wrong()
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if kind == "int" and not isinstance(value, int):
            raise wrong()
        return value
    if kind == "str":
        if isinstance(value, str):
            return value
        raise wrong()
    if kind == "dict":
        if isinstance(value, dict):
            return value
        raise wrong()
    if kind in ("list", "tuple"):
        if isinstance(value, (list, tuple)) or isinstance(value, str):
            return value
        raise wrong()
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
    django = namespace_names(namespace)
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


_NAMESPACE_NAMES = {}


def namespace_names(namespace):
    """``<NAMESPACE>_<SETTING>`` for every setting, cached per namespace."""
    if namespace not in _NAMESPACE_NAMES:
        prefix = namespace + "_" if namespace else ""
        _NAMESPACE_NAMES[namespace] = frozenset(prefix + key.upper() for key in CELERY_SETTINGS)
    return _NAMESPACE_NAMES[namespace]


def known_names(namespace):
    return set(CELERY_SETTINGS) | set(OLD_TO_NEW) | namespace_names(namespace)


def group_of(setting):
    return setting.split("_", 1)[0]


def setting_of(name, style, namespace):
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


__all__ = [
    "ANNOTATIONS", "BOOL_TASK_OPTIONS", "CELERY_SETTINGS", "DEFAULT_NAMESPACE", "DJANGO_MARKERS",
    "MODULE_TARGET", "OLD_TO_NEW", "STYLES", "check_setting_name", "classify_names", "coerce", "group_of",
    "known_names", "namespace_names", "render", "same_value", "setting_of", "written_name",
]
