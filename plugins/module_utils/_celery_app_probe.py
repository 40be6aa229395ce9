# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The script celery_app_info runs under the app's own interpreter (``python -c PROBE_SCRIPT``).

It is a string, not code of this interpreter: the app's Python may be another version, in
another venv, on the managed host; only the app's own packages (Celery) are there. It reads a
JSON request on stdin, imports and finalizes the app the way ``celery -A`` does, and prints one
JSON document after ``PROBE_MARKER`` (anything the app prints on import goes to stderr). It
returns raw setting values: the module parses and masks them before anything leaves it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

PROBE_MARKER = "@@celery_app_info@@"

PROBE_SCRIPT = r'''
import datetime, json, os, sys, traceback

MARKER = "@@celery_app_info@@"
RESULT_SETTINGS = (
    "task_ignore_result", "task_store_errors_even_if_ignored", "task_track_started",
    "result_expires", "result_extended", "result_persistent", "result_serializer",
    "result_compression", "result_accept_content", "result_chord_join_timeout",
    "result_failure_expires", "result_chord_expires", "result_backend_always_retry",
    "result_key_prefix", "redis_backend_use_ssl", "broker_use_ssl",
)


def plain(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return dict((str(key), plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(item) for item in value]
    return repr(value)


def module_file(name):
    module = sys.modules.get(name) if isinstance(name, str) else None
    return getattr(module, "__file__", None)


def origin(app):
    source = getattr(app, "_config_source", None)
    found = {
        "main": app.main,
        "namespace": getattr(app, "namespace", None),
        "loader": "%s.%s" % (type(app.loader).__module__, type(app.loader).__name__),
        "celery_config_module": os.environ.get("CELERY_CONFIG_MODULE"),
        "django_settings_module": os.environ.get("DJANGO_SETTINGS_MODULE"),
        "app_module": type(app).__module__ if type(app).__module__ != "celery.app.base" else None,
        "set_in_code": sorted(str(key) for key in getattr(app.conf, "changes", {}) or {}
                              if key != "deprecated_settings"),
    }
    if isinstance(source, str):
        found["config_source"] = source
        found["config_file"] = module_file(source.split(":")[0])
    elif source is not None:
        found["config_source"] = "%s.%s" % (getattr(source, "__module__", "?"), getattr(source, "__name__", type(source).__name__))
        found["config_file"] = module_file(getattr(source, "__module__", None)) or module_file(getattr(source, "__name__", None))
    else:
        found["config_source"] = None
        found["config_file"] = None
    return found


def describe(app, asked):
    conf = app.conf
    settings = {}
    for name in RESULT_SETTINGS + tuple(name for name in asked if name not in RESULT_SETTINGS):
        try:
            settings[name] = plain(conf[name])
        except KeyError:
            pass
    annotations = conf.get("task_annotations")
    tasks = []
    for name in sorted(app.tasks):
        task = app.tasks[name]
        tasks.append({
            "name": name,
            "ignore_result": bool(task.ignore_result),
            "store_errors_even_if_ignored": bool(getattr(task, "store_errors_even_if_ignored", False)),
            "builtin": name.startswith("celery."),
            "module": getattr(task, "__module__", None),
        })
    import celery
    try:
        import kombu
        kombu_version = kombu.__version__
    except ImportError:
        kombu_version = None
    return {
        "ok": True,
        "settings": settings,
        "result_backend": conf.get("result_backend"),
        "broker_url": conf.get("broker_url") or conf.get("broker_write_url"),
        "result_backend_transport_options": plain(conf.get("result_backend_transport_options") or {}),
        "broker_transport_options": plain(conf.get("broker_transport_options") or {}),
        "task_annotations": plain(annotations) if annotations is not None else None,
        "tasks": tasks,
        "origin": origin(app),
        "versions": {"celery": celery.__version__, "kombu": kombu_version,
                     "python": "%d.%d.%d" % sys.version_info[:3]},
        "python_executable": sys.executable,
    }


def main():
    request = json.loads(sys.stdin.read() or "{}")
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # what the app prints on import must not break our JSON
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as celery -A does
    try:
        from celery.app.utils import find_app
        app = find_app(request["app"])
        app.loader.import_default_modules()
        app.finalize(auto=True)
        answer = describe(app, tuple(request.get("settings") or ()))
    except BaseException as exc:  # SystemExit from a settings module is a failed import too
        answer = {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc),
                  "traceback": traceback.format_exc(), "python_executable": sys.executable}
    sys.stdout = real_stdout
    real_stdout.write("\n" + MARKER + json.dumps(answer, default=repr) + "\n")
    real_stdout.flush()


main()
'''

__all__ = ["PROBE_MARKER", "PROBE_SCRIPT"]
