#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: celery_config
short_description: Rewrite a Celery config file so the app's loader sees lean result settings
version_added: 1.0.0
description:
  - Sets Celery settings (for example C(task_ignore_result), C(result_expires)) in an existing
    Python config file and merges per-task options into its C(task_annotations), changing only the
    bytes of the values it sets. Comments (also inside a multi-line value), formatting, a UTF-8 BOM
    and CRLF line ends are kept.
  - Finds where the settings live and writes in the file's own style, both detected
    automatically. Targets are module-level assignments (a C(celeryconfig.py) or Django settings),
    the attributes of a class used as the config object, a top-level dict given as
    the C(config_source) argument of C(Celery) or to C(config_from_object), or an C(<app>.conf.update) call
    (its keywords, a dict literal argument, or C(**NAME) of a dict literal in the same file).
    Styles are C(celery) (C(result_expires)), C(django) (C(CELERY_RESULT_EXPIRES), read with
    C(namespace='CELERY')) and C(legacy) (C(CELERY_TASK_RESULT_EXPIRES)).
  - B(The guarantee.) After planning, the new content is read the way Celery's loader reads that
    target (statement order, C(conf.update) order, new names over old ones, the Django namespace
    where only UPPERCASE names count). The module reports C(changed) only when Celery will see
    exactly the values asked for; otherwise it refuses, lists every problem as
    C(file:line:setting), and leaves the file byte-for-byte as it was. RV(effective) returns what
    Celery will see.
  - In a Django settings file (C(INSTALLED_APPS), C(ROOT_URLCONF), C(MIDDLEWARE), a
    C(DJANGO_SETTINGS_MODULE) reference, or a path C(settings.py) / C(settings/*.py)) settings are
    written as C(CELERY_*) names, because Celery's Django integration reads only those; lowercase
    Celery names there are reported as warnings, never extended. A setting already set under its
    old name (C(CELERY_DEFAULT_QUEUE)) is renamed in place to its C(CELERY_*) new name, since only
    Celery 5.7 reads old names under the Django namespace (5.2 to 5.6 ignore them).
  - A setting that is missing is added beside the related ones (same name group, for example
    C(result_*)), else after the last setting, else at the end; for a class as a class attribute,
    for a dict as a new key, for C(conf.update) as a new keyword argument, or in its dict.
  - A setting assigned inside C(if)/C(else) or C(try)/C(except) is set on every branch that can
    win; when it is set only on some branches the module refuses instead of editing half of them.
  - Refuses, leaving the file byte-for-byte as it was and naming file and line, a file that does
    not parse, a non-UTF-8 file or encoding declaration, anything but a regular file (a device, a
    FIFO), a file larger than O(max_file_size), an unknown setting name (the closest valid name is
    suggested), a value of the wrong type (the types come from Celery 5.7's defaults), names Celery
    would refuse as mixed, settings in several places the app may load, and existing values that
    are not literals unless O(on_dynamic=replace).
author:
  - celery_ops maintainers (@celery-ops)
extends_documentation_fragment:
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
    description: Computes the same changes, effective values and diff without writing; O(validate) does not run.
  diff_mode:
    support: full
    description: Shows the file before and after, with URL passwords masked.
options:
  path:
    description:
      - The Celery config file to rewrite. It must exist; the module never creates it.
      - A symlink is followed; its target is edited and the link kept.
    type: path
    required: true
  settings:
    description:
      - Celery's lowercase setting names (as in Celery's docs, for example C(task_ignore_result),
        C(result_expires), C(result_failure_expires), C(task_store_errors_even_if_ignored),
        C(result_extended)) mapped to their values. They are written under the name the file's
        style uses.
      - Values are written as Python literals (V(true) becomes C(True), V(null) becomes C(None)).
        Each must have the setting's type (boolean, integer >= 0, number >= 0, string, mapping);
        strings given for boolean or numeric settings are converted, anything else is refused.
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
        and from Django markers.
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
      - The name of a top-level class (C(Config)), a top-level dict (C(CELERY_CONFIG)), a call
        C(<app>.conf.update) (for example C(app.conf.update)), or V(module) for module-level
        assignments.
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
  max_file_size:
    description:
      - The largest file read, in bytes. Larger files are refused before they are read.
    type: int
    default: 8388608
  allow_read_only:
    description:
      - Rewrite a file that has no write bit (mode C(0444)). Without it such a file is refused.
    type: bool
    default: false
notes:
  - The file is replaced atomically (temp file, fsync, rename, fsync of the directory) under an
    advisory lock, and only when it is still what was read (inode, size, mtime, SHA-256), so two
    runs at once cannot lose an update. Mode, owner, group and SELinux context are kept; a
    non-root user that could not keep them (a file of another owner, a group it is not in) is
    refused instead.
  - A file with several hard links is refused (a rename would leave the other names on the old
    content); with O(unsafe_writes=true) it is rewritten in place under the same lock and check.
  - Assignments made in functions or by C(app.conf.X = ...) statements are not seen. A
    C(from x import *) after a setting, or before one that Celery reads only as a fallback, is
    refused, because the imported module may set it.
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

- name: Settings kept in a dict given to Celery(config_source=CELERY_CONFIG)
  celery_ops.lean_results.celery_config:
    path: /srv/billing/proj/celery.py
    object: CELERY_CONFIG
    settings:
      result_expires: 3600
      result_failure_expires: 604800

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
  description: Where the settings were written, V(module), a class or dict name, or C(<app>.conf.update).
  returned: success
  type: str
  sample: module
form:
  description: How Celery's loader reads the target, V(module), V(django), V(mapping) or V(update).
  returned: success
  type: str
  sample: django
effective:
  description:
    - For each requested setting, the value Celery will see after the run, read from the new
      content the way its loader reads it, and the line that sets it (null when Celery's default
      applies). URL passwords are masked.
  returned: success
  type: dict
  sample: {"result_expires": {"value": 3600, "line": 12}}
changes:
  description: One entry per value written or added; empty when nothing changed. URL passwords in
    C(before)/C(after) are masked.
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
link_target:
  description: When O(path) is a symlink, the file it points to, which is the one edited.
  returned: when O(path) is a symlink
  type: str
  sample: /srv/app/releases/42/celeryconfig.py
problems:
  description: On refusal, every problem found, each with its line and setting.
  returned: failure
  type: list
  elements: dict
"""


import os
from shlex import quote as shlex_quote

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native, to_text

from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config import (
    ConfigRewriteError,
    plan_rewrite,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._safe_file import (
    DEFAULT_MAX_BYTES,
    SafeFileError,
    read_regular,
    replace,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._secrets import mask_url_passwords


def _mask(value):
    """URL passwords masked in a value Celery will see (strings, through containers)."""
    if isinstance(value, str):
        return mask_url_passwords(value)
    if isinstance(value, dict):
        return dict((k, _mask(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_mask(v) for v in value]
    return value


def masked_changes(changes):
    out = []
    for change in changes:
        change = dict(change)
        for key in ("before", "after"):
            if change.get(key):
                change[key] = mask_url_passwords(change[key])
        out.append(change)
    return out


def validator(module, command):
    """A callable that runs ``command`` on the temp file (needs only ``module.run_command``)."""
    if not command:
        return None

    def run(temp):
        rc, out, err = module.run_command(command % shlex_quote(temp))
        if rc != 0:
            raise ConfigRewriteError("validate command failed (rc=%d): %s %s" % (rc, out, err))
    return run


def _problems(exc):
    return [dict(line=line, setting=setting, msg=msg) for line, setting, msg in exc.problems]


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
            max_file_size=dict(type="int", default=DEFAULT_MAX_BYTES),
            allow_read_only=dict(type="bool", default=False),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    if params["validate"] and "%s" not in params["validate"]:
        module.fail_json(msg="validate must contain %%s: %s" % params["validate"])
    try:
        snapshot = read_regular(path, params["max_file_size"])
    except SafeFileError as exc:
        module.fail_json(msg="%s: %s" % (path, exc), changed=False)
    before = snapshot.data
    try:
        plan = plan_rewrite(before, params["settings"], params["task_overrides"], params["style"],
                            params["namespace"], params["object"], params["on_dynamic"], path=path)
    except ConfigRewriteError as exc:
        module.fail_json(msg=mask_url_passwords(exc.where(path)), line=exc.line, setting=exc.setting,
                         problems=_problems(exc), changed=False)
    for warning in plan.warnings:
        module.warn("%s: %s" % (path, warning))

    changed = plan.new_bytes != before
    effective = dict((k, dict(value=_mask(v["value"]), line=v["line"])) for k, v in plan.effective.items())
    result = dict(changed=changed, style=plan.style, target=plan.target, form=plan.form,
                  changes=masked_changes(plan.changes), effective=effective)
    if snapshot.real != os.path.abspath(path):
        result["link_target"] = snapshot.real
    if module._diff:
        result["diff"] = [dict(before_header=path, after_header=path,
                               before=mask_url_passwords(to_text(before, errors="surrogate_or_strict")),
                               after=mask_url_passwords(to_text(plan.new_bytes, errors="surrogate_or_strict")))]
    if changed and not module.check_mode:
        if params["backup"]:
            result["backup_file"] = module.backup_local(snapshot.real)
        try:
            replace(snapshot, plan.new_bytes, validator(module, params["validate"]),
                    unsafe_writes=params["unsafe_writes"], allow_read_only=params["allow_read_only"])
        except (ConfigRewriteError, SafeFileError) as exc:
            result.update(changed=False, msg="%s: %s" % (path, exc))
            module.fail_json(**result)
        except (IOError, OSError) as exc:
            module.fail_json(msg="%s: cannot write: %s" % (path, to_native(exc)), changed=False)

    attr_diff = dict(before=dict(path=snapshot.real), after=dict(path=snapshot.real))
    file_args = module.load_file_common_arguments(params)
    file_args["path"] = snapshot.real
    result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"], diff=attr_diff)
    if module._diff and (len(attr_diff["before"]) > 1 or len(attr_diff["after"]) > 1):
        result["diff"].append(attr_diff)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
