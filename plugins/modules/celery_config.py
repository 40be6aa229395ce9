#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: celery_config
short_description: Rewrite a Celery config file in place with lean result settings
version_added: 1.0.0
description:
  - Sets Celery settings (for example C(task_ignore_result), C(result_expires)) in an existing
    Python config file and merges per-task options into its C(task_annotations), changing only the
    bytes of the values it sets. Comments, formatting, a UTF-8 BOM and CRLF line ends are kept.
  - Finds where the settings live and writes in the file's own style, both detected
    automatically. Targets are module-level assignments (a C(celeryconfig.py) or Django settings),
    the attributes of a class used as the config object, or the keyword arguments of an
    C(<app>.conf.update) call. Styles are C(celery) (C(result_expires)), C(django)
    (C(CELERY_RESULT_EXPIRES), read with C(namespace='CELERY')) and C(legacy)
    (C(CELERY_TASK_RESULT_EXPIRES)); old and new names are never mixed.
  - A setting that is missing is added beside the related ones (same name group, for example
    C(result_*)), else after the last setting, else at the end; for a class as a class attribute,
    for C(conf.update) as a new keyword argument.
  - A setting assigned inside C(if)/C(else) or C(try)/C(except) is set on every branch that can
    win; when it is set only on some branches the module refuses instead of editing half of them.
  - Refuses, leaving the file byte-for-byte as it was and naming file and line, a file that does
    not parse, a non-UTF-8 file or encoding declaration, a missing path or a directory, an unknown
    setting name (the closest valid name is suggested), names of mixed styles, and existing values
    that are not literals unless O(on_dynamic=replace).
author:
  - celery_ops maintainers (@celery-ops)
extends_documentation_fragment:
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
    description: Computes the same changes and diff without writing; O(validate) does not run.
  diff_mode:
    support: full
    description: Shows the file before and after.
options:
  path:
    description:
      - The Celery config file to rewrite. It must exist; the module never creates it.
    type: path
    required: true
  settings:
    description:
      - Celery's lowercase setting names (as in Celery's docs, for example C(task_ignore_result),
        C(result_expires), C(task_store_errors_even_if_ignored), C(result_extended)) mapped to
        their values. They are written under the name the file's style uses.
      - Values are written as Python literals (V(true) becomes C(True), V(null) becomes C(None));
        strings given for boolean or numeric settings are converted to the setting's type.
      - Existing values that are equal (C(3600), C(60 * 60) and a C(timedelta) of one hour are all
        3600 seconds) are left alone.
    type: dict
    default: {}
  task_overrides:
    description:
      - Task name mapped to task options (for example task C(tasks.report) mapped to
        C(ignore_result=false)), merged into the config's C(task_annotations). Existing annotations
        are kept.
      - The module refuses when the annotations value is not a dict literal, or when its C('*')
        entry sets the same option to another value (Celery applies C('*') last, so it would win).
    type: dict
    default: {}
  style:
    description:
      - The naming style to write. V(auto) detects it from the names the target already uses
        (Django settings files are recognised by C(INSTALLED_APPS) and similar names).
    type: str
    choices: [auto, celery, django, legacy]
    default: auto
  namespace:
    description:
      - The namespace the Django project passes to C(app.config_from_object) as its C(namespace) argument.
        Names in style V(django) are C(<namespace>_<SETTING>).
    type: str
    default: CELERY
  object:
    description:
      - Where the settings live, when auto-detection finds more than one place or none.
      - The name of a top-level class (C(Config)), a call C(<app>.conf.update) (for example
        C(app.conf.update)), or V(module) for module-level assignments.
    type: str
  on_dynamic:
    description:
      - What to do when a value to change is not a literal (an environment look-up, a call, an
        expression on other names). V(fail) refuses and names file, line and setting; V(replace)
        overwrites the expression with the literal.
    type: str
    choices: [fail, replace]
    default: fail
  backup:
    description:
      - Keep a timestamped copy of the original file when it changes.
    type: bool
    default: false
  validate:
    description:
      - A command run on the new content, in a temporary file passed as C(%s), before it replaces
        the file, as in M(ansible.builtin.template). A non-zero exit leaves the file unchanged.
      - The command runs without a shell.
    type: str
notes:
  - The file is replaced atomically; owner, group and mode are kept unless given.
  - Assignments made by C(from x import *), in functions, or by C(app.conf.X = ...) statements are
    not seen; make sure nothing later in the file overrides the values written.
seealso:
  - module: celery_ops.lean_results.celery_task_audit
  - name: Celery configuration and defaults
    description: The setting names, old and new.
    link: https://docs.celeryq.dev/en/stable/userguide/configuration.html
"""

EXAMPLES = r"""
- name: Make the Celery result backend lean
  celery_ops.lean_results.celery_config:
    path: /srv/app/celeryconfig.py
    settings:
      task_ignore_result: true
      task_store_errors_even_if_ignored: true
      result_expires: 3600
      result_extended: false
    task_overrides:
      reports.tasks.build_report:
        ignore_result: false
    backup: true
    validate: /srv/app/venv/bin/python -m py_compile %s

- name: Django settings read with namespace='CELERY' (writes CELERY_TASK_IGNORE_RESULT ...)
  celery_ops.lean_results.celery_config:
    path: /srv/site/mysite/settings.py
    style: django
    settings:
      task_ignore_result: true
      result_expires: 3600

- name: A module with both a Config class and app.conf.update; write into the call
  celery_ops.lean_results.celery_config:
    path: /srv/app/proj/celery.py
    object: app.conf.update
    settings:
      result_expires: 3600
"""

RETURN = r"""
changed:
  description: Whether the file content or its attributes changed (or would change in check mode).
  returned: always
  type: bool
style:
  description: The naming style used, detected or given.
  returned: success
  type: str
  sample: celery
target:
  description: Where the settings were written, V(module), a class name, or C(<app>.conf.update).
  returned: success
  type: str
  sample: module
changes:
  description: One entry per value written or added; empty when nothing changed.
  returned: success
  type: list
  elements: dict
  contains:
    setting:
      description: Celery's lowercase setting name.
      type: str
      sample: result_expires
    name:
      description: The name as written in the file.
      type: str
      sample: CELERY_TASK_RESULT_EXPIRES
    before:
      description: The source text of the old value; null when the setting was added.
      type: str
      sample: "60 * 60 * 24"
    after:
      description: The source text written.
      type: str
      sample: "3600"
    line:
      description: The line of the value in the rewritten file.
      type: int
      sample: 12
    task:
      description: For C(task_annotations) entries, the task name.
      type: str
      returned: for task_overrides
    option:
      description: For C(task_annotations) entries, the task option; absent when a whole task entry was added.
      type: str
      returned: for task_overrides
  sample:
    - setting: task_ignore_result
      name: task_ignore_result
      before: "False"
      after: "True"
      line: 4
backup_file:
  description: The backup copy of the original file.
  returned: when O(backup=true) and the file changed
  type: str
  sample: /srv/app/celeryconfig.py.12345.2026-01-01@10:00:00~
line:
  description: On refusal, the line of the file the refusal is about.
  returned: failure
  type: int
setting:
  description: On refusal, the setting the refusal is about.
  returned: failure
  type: str
"""

import os
import tempfile
from shlex import quote as shlex_quote

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native, to_text

from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config import (
    ConfigRewriteError,
    plan_rewrite,
)


def read_config(path):
    """The file's bytes; refuses a missing path or a directory."""
    if os.path.isdir(path):
        raise ConfigRewriteError("is a directory, not a Celery config file")
    if not os.path.exists(path):
        raise ConfigRewriteError("no such file")
    with open(path, "rb") as handle:
        return handle.read()


def write_config(module, path, data, validate):
    """Write ``data`` to a temp file beside ``path``, validate it, move it over ``path``.

    Needs only ``module.run_command``, ``module.atomic_move`` and ``module.params``. The temp
    file lives in the target directory so the move is atomic; it never outlives the call.
    """
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if validate:
            rc, out, err = module.run_command(validate % shlex_quote(tmp))
            if rc != 0:
                raise ConfigRewriteError("validate command failed (rc=%d): %s %s" % (rc, out, err))
        module.atomic_move(tmp, path, unsafe_writes=module.params["unsafe_writes"])
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            settings=dict(type="dict", default={}),
            task_overrides=dict(type="dict", default={}),
            style=dict(type="str", default="auto", choices=["auto", "celery", "django", "legacy"]),
            namespace=dict(type="str", default="CELERY"),
            object=dict(type="str"),
            on_dynamic=dict(type="str", default="fail", choices=["fail", "replace"]),
            backup=dict(type="bool", default=False),
            validate=dict(type="str"),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    if params["validate"] and "%s" not in params["validate"]:
        module.fail_json(msg="validate must contain %%s: %s" % params["validate"])
    try:
        before = read_config(path)
        plan = plan_rewrite(before, params["settings"], params["task_overrides"], params["style"],
                            params["namespace"], params["object"], params["on_dynamic"])
    except ConfigRewriteError as exc:
        module.fail_json(msg=exc.where(path), line=exc.line, setting=exc.setting, changed=False)
    for warning in plan.warnings:
        module.warn("%s: %s" % (path, warning))

    changed = plan.new_bytes != before
    result = dict(changed=changed, style=plan.style, target=plan.target, changes=plan.changes)
    if module._diff:
        result["diff"] = [dict(before_header=path, after_header=path,
                               before=to_text(before, errors="surrogate_or_strict"),
                               after=to_text(plan.new_bytes, errors="surrogate_or_strict"))]
    if changed and not module.check_mode:
        if params["backup"]:
            result["backup_file"] = module.backup_local(path)
        try:
            write_config(module, path, plan.new_bytes, params["validate"])
        except ConfigRewriteError as exc:
            result.update(changed=False, msg=exc.where(path))
            module.fail_json(**result)
        except (IOError, OSError) as exc:
            module.fail_json(msg="%s: cannot write: %s" % (path, to_native(exc)), changed=False)

    attr_diff = dict(before=dict(path=path), after=dict(path=path))
    file_args = module.load_file_common_arguments(params)
    result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"], diff=attr_diff)
    if module._diff and (len(attr_diff["before"]) > 1 or len(attr_diff["after"]) > 1):
        result["diff"].append(attr_diff)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
