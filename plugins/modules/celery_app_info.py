#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: celery_app_info
short_description: Ask a live Celery app for its effective result config, its tasks and its workers
version_added: 0.2.0
description:
  - Runs a small script under the app's own interpreter (O(python)) that imports the app the way
    C(celery -A) does, finalizes it and reports the effective result settings, the result backend
    and broker parsed, the backend transport options (C(global_keyprefix)), every registered task
    with its effective C(ignore_result) after C(task_annotations), and where the config came from.
  - From the backend it derives the result key patterns (with Celery's prefix rule) and the
    connection options the collection's Redis-facing modules take, without the password.
  - With O(workers=true) it also runs C(celery inspect ping), C(registered ignore_result) and
    C(conf) and returns what each worker answers.
  - A password in a URL, in transport options or in a secret-looking O(environment) entry is never
    returned or logged; RV(result_backend.password_set) says whether there is one.
  - Read-only; runs in check mode too.
author:
  - celery_ops maintainers (@celery-ops)
options:
  python:
    description:
      - The interpreter of the app's venv (the one that has Celery and the app's packages).
      - Defaults to the interpreter Ansible runs this module with.
    type: path
  app:
    description: The C(-A) value, e.g. C(proj) or C(proj.celery:app).
    type: str
    required: true
  chdir:
    description: The directory the app is imported from (C(--workdir)); it is put first on C(sys.path).
    type: path
  environment:
    description:
      - Extra environment of the app, e.g. C(DJANGO_SETTINGS_MODULE).
      - Values of entries whose name looks secret (C(PASS), C(SECRET), C(TOKEN), C(KEY), C(AUTH)) are
        masked wherever they would show up.
    type: dict
    default: {}
  timeout:
    description: Seconds each run of the app's interpreter may take.
    type: float
    default: 60
  workers:
    description: Also ask the running workers (C(celery inspect ping/registered/conf --json)).
    type: bool
    default: false
  inspect_timeout:
    description: Seconds C(celery inspect) waits for worker replies.
    type: float
    default: 2.0
  expect_settings:
    description:
      - Settings the app (and with O(workers=true) each worker) must resolve to; what does not is in
        RV(mismatches) and RV(worker_mismatches). The module does not fail on them.
    type: dict
    default: {}
  expect_task_overrides:
    description:
      - "C({task: {ignore_result: bool}}) that must resolve as given (the celery_config
        O(celery_ops.lean_results.celery_config#module:task_overrides) shape)."
    type: dict
    default: {}
  audited_tasks:
    description: Task names a static audit found; RV(cross_check) compares them with the registry.
    type: list
    elements: str
    default: []
  expect_workers:
    description: Worker names that must answer; those that do not are in RV(missing_workers).
    type: list
    elements: str
    default: []
notes:
  - Importing the app runs its module-level code, as every C(celery worker) start does.
  - Options are echoed in the task's C(invocation) at C(-vvv) like any option; keep secrets out of
    O(environment) (the app reads them from its own config or environment).
seealso:
  - module: celery_ops.lean_results.celery_task_audit
  - module: celery_ops.lean_results.result_keys_info
"""

EXAMPLES = r"""
- name: Ask the app where its results go
  celery_ops.lean_results.celery_app_info:
    python: /srv/app/venv/bin/python
    app: proj
    chdir: /srv/app
    environment:
      DJANGO_SETTINGS_MODULE: proj.settings
  register: app_info

- name: Count the result keys where the backend really writes them
  celery_ops.lean_results.result_keys_info:
    login_host: "{{ app_info.redis_connection.login_host }}"
    login_port: "{{ app_info.redis_connection.login_port }}"
    db: "{{ app_info.redis_connection.db }}"
    pattern: "{{ app_info.result_patterns.task }}"

- name: Check the running workers' config
  celery_ops.lean_results.celery_app_info:
    python: /srv/app/venv/bin/python
    app: proj
    chdir: /srv/app
    workers: true
    expect_settings:
      task_ignore_result: true
  register: live
  failed_when: live.worker_mismatches | length > 0
"""

RETURN = r"""
settings:
  description: The effective result settings (durations in seconds).
  returned: always
  type: dict
  sample: {task_ignore_result: false, result_expires: 86400.0, result_extended: false}
result_backend:
  description: C(result_backend) parsed; no password.
  returned: always
  type: dict
  contains:
    scheme: {description: URL scheme., type: str}
    kind: {description: "C(redis), C(sentinel), C(none) or the scheme's transport name.", type: str}
    host: {description: Host (not for sockets and Sentinel)., type: str}
    port: {description: Port., type: int}
    db: {description: Database number., type: int}
    unix_socket: {description: Socket path for C(socket://)/C(redis+socket://)., type: str}
    tls: {description: Whether TLS is used (C(rediss://) or C(redis_backend_use_ssl))., type: bool}
    sentinel: {description: "C({master, hosts, password_set}) for Sentinel URLs.", type: dict}
    username: {description: "The URL's user, if any.", type: str}
    password_set: {description: Whether the URL (or transport options) carries a password., type: bool}
    url: {description: The URL with its password masked., type: str}
  sample: {scheme: redis, kind: redis, host: 127.0.0.1, port: 6379, db: 2, tls: false, password_set: true}
broker:
  description: C(broker_url) parsed like RV(result_backend), plus C(default) (no broker_url set).
  returned: always
  type: dict
result_backend_transport_options:
  description: The backend transport options, secret-looking values masked.
  returned: always
  type: dict
broker_transport_options:
  description: The broker transport options, secret-looking values masked.
  returned: always
  type: dict
global_keyprefix:
  description: C(result_backend_transport_options.global_keyprefix) as set (empty when none).
  returned: always
  type: str
key_prefix:
  description: The prefix Celery really writes (C(_) appended unless it ends in C(:), C(_), C(-) or C(.)).
  returned: always
  type: str
result_patterns:
  description: SCAN patterns of the result keys.
  returned: always
  type: dict
  sample: {prefix: "billing:", task: "billing:celery-task-meta-*", group: "billing:celery-taskset-meta-*",
           chord_counters: ["billing:celery-taskset-meta-*.j", "billing:celery-taskset-meta-*.t", "billing:celery-taskset-meta-*.s"]}
redis_connection:
  description: Connection options for the collection's Redis-facing modules, without C(login_password).
  returned: always
  type: dict
  sample: {login_host: 127.0.0.1, login_port: 6379, db: 2, tls: false}
broker_on_result_redis:
  description: Whether the broker is the same Redis server as the result backend.
  returned: always
  type: bool
broker_same_db:
  description: Whether the broker is the same Redis server and db.
  returned: always
  type: bool
task_annotations:
  description: C(task_annotations) as the app resolved it.
  returned: always
  type: raw
tasks:
  description: Every registered task (Celery's own C(celery.*) left out) with its effective options.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Task name., type: str}
    ignore_result: {description: Effective C(ignore_result) after config and annotations., type: bool}
    store_errors_even_if_ignored: {description: Effective value., type: bool}
    module: {description: The module the task was defined in., type: str}
task_names:
  description: Names of RV(tasks).
  returned: always
  type: list
  elements: str
builtin_tasks:
  description: Names of Celery's own registered C(celery.*) tasks (left out of RV(tasks)).
  returned: always
  type: list
  elements: str
origin:
  description: Where the config came from (config source and file, namespace, loader, settings set in code).
  returned: always
  type: dict
versions:
  description: Celery, kombu and Python versions under the app's interpreter.
  returned: always
  type: dict
python_executable:
  description: The app's interpreter.
  returned: always
  type: str
mismatches:
  description: "Asked settings and task overrides that the app resolves otherwise: C({setting, expected, actual})."
  returned: always
  type: list
  elements: dict
cross_check:
  description:
    - Audit vs registry (C(audited_not_registered), C(registered_not_audited), C(both)).
    - C(keep_overrides) gives C(ignore_result=false) to each registered task the audit did not see that
      stores results today (the O(celery_ops.lean_results.celery_config#module:task_overrides) shape).
  returned: when O(audited_tasks) is given
  type: dict
workers:
  description: "C({worker: {ping, registered: {task: ignore_result}, conf}}) of every worker that answered."
  returned: when O(workers=true)
  type: dict
worker_mismatches:
  description: "C({worker: [{setting, expected, actual}]}) for workers whose live config is not what was asked."
  returned: when O(workers=true)
  type: dict
missing_workers:
  description: Names of O(expect_workers) that did not answer.
  returned: when O(workers=true)
  type: list
  elements: str
worker_errors:
  description: Failed C(celery inspect) runs (no replies is not an error).
  returned: when O(workers=true)
  type: list
  elements: str
traceback_tail:
  description: The last lines of the import traceback, secrets masked.
  returned: on import failure
  type: list
  elements: str
"""

import sys

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_app_info import (
    CeleryAppInfoError, cross_check, describe_app, inspect_workers, run_probe, settings_mismatches,
    subprocess_runner, task_mismatches, worker_mismatches)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            python=dict(type="path"),
            app=dict(type="str", required=True),
            chdir=dict(type="path"),
            environment=dict(type="dict", default={}),
            timeout=dict(type="float", default=60),
            workers=dict(type="bool", default=False),
            inspect_timeout=dict(type="float", default=2.0),
            expect_settings=dict(type="dict", default={}),
            expect_task_overrides=dict(type="dict", default={}),
            audited_tasks=dict(type="list", elements="str", default=[]),
            expect_workers=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    python = params["python"] or sys.executable
    runner = subprocess_runner(params["timeout"])
    try:
        raw = run_probe(runner, python, params["app"], params["chdir"], params["environment"],
                        sorted(params["expect_settings"]))
        info, secrets = describe_app(raw)
        info["mismatches"] = (settings_mismatches(params["expect_settings"], info["settings"])
                              + task_mismatches(params["expect_task_overrides"], info["tasks"]))
        if params["audited_tasks"]:
            info["cross_check"] = cross_check(params["audited_tasks"], info["task_names"], info["builtin_tasks"],
                                              info["tasks"])
        if params["workers"]:
            workers, errors = inspect_workers(runner, python, params["app"], params["chdir"], params["environment"],
                                              params["inspect_timeout"], secrets)
            info.update(workers=workers, worker_errors=errors,
                        missing_workers=sorted(set(params["expect_workers"]) - set(workers)),
                        worker_mismatches=worker_mismatches(workers, params["expect_settings"],
                                                            params["expect_task_overrides"]))
    except CeleryAppInfoError as exc:
        module.fail_json(msg=str(exc), **exc.details)
    module.exit_json(changed=False, **info)


if __name__ == "__main__":
    main()
