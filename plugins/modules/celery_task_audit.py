#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: celery_task_audit
short_description: Find the Celery tasks whose results are read, by static analysis of the app source
version_added: 1.0.0
description:
  - Parses the Python source of a Celery app with C(ast); nothing of the app is imported or run.
  - Finds every task (C(@app.task), C(@<anything>.task) with options, C(@shared_task), C(@celery.task),
    bare or with options, decorator aliases such as C(retrying = shared_task) with options, re-exported
    decorators (C(task = app.task)), the app's own decorator factories that call C(app.task), the call form
    C(app.task) called on a function, and C(Task) subclasses registered with C(register_task) or carrying a C(name)) and
    computes its Celery name as Celery registers it.
  - Sound by construction - a task is "can ignore" only when every reference to it (the task object, its
    signatures, the results of its calls and their ids) was followed to an end the audit understands
    and none of them reads a result. References are followed through the app's own functions and methods
    (parameters, returns, tuples, C(self.), C(super), inherited methods), module globals, class
    attributes, containers, C(functools.partial) and bound-method aliases. Whatever cannot be followed
    makes the task C(needs_result=true) with a reason of kind C(unknown) that names the file and line.
  - Decides for each task whether its stored result is needed, with the evidence in
    RV(tasks[].reasons). A task needs it for a read (C(.get), C(.wait), C(.ready), C(.successful), C(.failed), C(.state), C(.status),
    C(.result), C(.info), C(.join), ...) of the result of its call, directly or through a variable
    or a helper's C(return); a result id that escapes while an C(AsyncResult) is rebuilt from an id
    and read somewhere in the code; the last task of a chain or the body of a chord whose result is
    read; a chord header; a member of a group whose result is read; a task that reports progress with
    C(update_state).
  - Chain members and C(link=) callbacks do not need stored results; their values travel in messages.
  - Conservative where it cannot tell (dynamic dispatch, C(send_task) with a runtime name, a result
    handed to code it cannot follow), it answers C(needs_result=true) with a reason of kind C(unknown).
  - Returns RV(task_overrides) ready for M(celery_ops.lean_results.celery_config).
  - Read-only.
author:
  - celery_ops maintainers (@celery-ops)
attributes:
  check_mode:
    support: full
    description: The module changes nothing; in check mode it audits just the same.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
options:
  paths:
    description:
      - Directories or C(.py) files of the app source, on the managed host.
      - Module names (and so default task names) are the path of each file below its import root, as
        Celery registers them. The import root is the deepest O(import_roots) entry holding the file;
        else the folder under which most of the app's own absolute imports resolve (C(from pkg.x import y)
        votes for the folder holding C(pkg/)); else the highest folder with an C(__init__.py) reached by
        walking up through folders whose names are identifiers. Folders without C(__init__.py) inside a
        package are namespace packages; a folder whose name is not an identifier is never a package.
    type: list
    elements: path
    required: true
  exclude:
    description:
      - Glob patterns of files or directories to skip, matched against the path relative to the
        entry of O(paths) it was found under, the full path and the base name (C(*) also matches C(/)).
      - Hidden directories, C(__pycache__), C(site-packages), C(node_modules) and virtualenvs
        (directories holding a C(pyvenv.cfg)) are always skipped.
    type: list
    elements: str
    default: []
  python:
    description:
      - The app's own Python interpreter on the managed host, for example the C(bin/python) of its
        virtualenv.
      - Files the interpreter running the module cannot parse (syntax newer than it knows) are parsed
        by this one instead (C(python -c) prints the tree as JSON; nothing of the app is imported).
      - Without it, or when even it cannot parse a file, every task that file defines, names or imports
        counts as C(needs_result=true) with reason C(unknown), with a C(syntax_error) warning.
    type: path
  import_roots:
    description:
      - Folders the app is imported from (what its C(sys.path) holds, for example the folder the worker
        is started in). Task names are then the path below the deepest root holding each file.
      - Give it when the inferred names differ from what C(celery -A APP inspect registered) shows.
    type: list
    elements: path
    default: []
notes:
  - Files that do not parse give a warning with file and line; see O(python). A file without any Celery word
    is parsed (and so reported) only once one of its words matters to the analysis. Files that are not regular
    files (a FIFO named C(*.py)) are skipped with a warning, never opened. Files over 4 MiB and code too deeply
    nested to analyse count as C(unknown) for every task they name.
  - A C(send_task) or C(signature) with a name the audit cannot read, whose result is read, makes
    every task of the code base need its result (reason C(unknown)); a C(getattr) on a module with a computed name makes
    every task of that module need it. Give literal names to narrow the answer.
  - Built-in tasks that carry results of C(.map), C(.starmap) and C(.chunks) (C(celery.map),
    C(celery.starmap)) appear in RV(tasks) with RV(tasks[].builtin=true) when those results are read.
seealso:
  - module: celery_ops.lean_results.celery_config
  - module: celery_ops.lean_results.result_keys_info
"""

EXAMPLES = r"""
- name: Audit the app source
  celery_ops.lean_results.celery_task_audit:
    paths:
      - /srv/shop/src
    exclude:
      - "*/migrations/*"
      - "*/tests/*"
  register: audit

- name: Audit with the app's own interpreter and import root
  celery_ops.lean_results.celery_task_audit:
    paths:
      - /srv/shop/src
    python: /srv/shop/venv/bin/python
    import_roots:
      - /srv/shop/src
  register: audit

- name: Show which tasks keep their results, and why
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.reasons | map(attribute='kind') | unique | join(', ') }}"
  loop: "{{ audit.tasks | selectattr('needs_result') }}"
  loop_control:
    label: "{{ item.name }}"

- name: Ignore results by default, keep them where they are read
  celery_ops.lean_results.celery_config:
    path: /srv/shop/src/shop/celeryconfig.py
    settings:
      task_ignore_result: true
      task_store_errors_even_if_ignored: true
    task_overrides: "{{ audit.task_overrides }}"
"""

RETURN = r"""
tasks:
  description: Every task found, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The Celery task name.
      type: str
      returned: always
      sample: proj.billing.tasks.charge_card
    file:
      description: File that defines the task (null for a built-in task).
      type: str
      returned: always
    line: {description: Line of the definition., type: int, returned: always}
    ignore_result:
      description: C(ignore_result) as declared on the task, null when not declared (or not a literal).
      type: bool
      returned: always
    options:
      description: The options declared on the task (literals as values, other expressions as text).
      type: dict
      returned: always
    needs_result:
      description: Whether the task must keep storing its results.
      type: bool
      returned: always
    builtin:
      description: True for a Celery built-in task (C(celery.starmap)) whose results are read.
      type: bool
      returned: when the task is not in the audited code
    reasons:
      description: The evidence; empty when the task can ignore its results.
      type: list
      elements: dict
      returned: always
      contains:
        kind:
          description:
            - C(result_read), C(chain_result_read), C(chord_body_result_read), C(chord_header),
              C(group_result_read), C(id_escapes), C(update_state) or C(unknown).
          type: str
          returned: always
        file: {description: File of the evidence., type: str, returned: always}
        line: {description: Line of the evidence., type: int, returned: always}
        detail: {description: What was found there., type: str, returned: always}
  sample:
    - name: proj.billing.tasks.charge_card
      file: /srv/shop/src/proj/billing/tasks.py
      line: 6
      ignore_result: null
      options: {}
      needs_result: true
      reasons:
        - kind: result_read
          file: /srv/shop/src/proj/web/views.py
          line: 28
          detail: .get on the result of charge_card.delay() at line 28
summary:
  description: Counts over RV(tasks).
  returned: always
  type: dict
  contains:
    total: {description: Tasks found., type: int, returned: always}
    need_result: {description: Tasks that need stored results., type: int, returned: always}
    can_ignore: {description: Tasks that can ignore their results., type: int, returned: always}
    percent_needing:
      description: Share of tasks that need results, in percent (one decimal).
      type: float
      returned: always
  sample: {total: 120, need_result: 9, can_ignore: 111, percent_needing: 7.5}
task_overrides:
  description:
    - "C({name: {ignore_result: false}}) for each task that needs results and does not already
      declare C(ignore_result=False): the O(celery_ops.lean_results.celery_config#module:task_overrides) input."
  returned: always
  type: dict
  sample: {proj.billing.tasks.charge_card: {ignore_result: false}}
warnings:
  description:
    - "The findings of RV(audit_warnings) as text, C(file:line: message); Ansible displays them."
  returned: when there are findings
  type: list
  elements: str
  sample:
    - "/srv/shop/src/proj/billing/tasks.py:20: task audit_log: unknown option ignore_results=, Celery accepts it
      silently and ignores it; did you mean ignore_result?"
audit_warnings:
  description:
    - Findings with C(kind), C(file), C(line), C(message), for example an unknown or misspelled
      task option (C(ignore_results=)), a file that does not parse, a C(send_task) name that no
      task bears, a task that declares C(ignore_result=True) although its result is read.
    - C(kind) is one of C(unknown_option), C(dynamic_options), C(dynamic_name), C(syntax_error),
      C(unreadable), C(not_a_file), C(too_deep), C(duplicate_module), C(duplicate_task),
      C(unknown_task_name), C(unresolved_decorator), C(analysis_incomplete),
      C(ignore_result_conflict).
  returned: always
  type: list
  elements: dict
  sample:
    - kind: unknown_option
      file: /srv/shop/src/proj/billing/tasks.py
      line: 20
      message: "task audit_log: unknown option ignore_results=, Celery accepts it silently and ignores it;
        did you mean ignore_result?"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit import (
    TaskAuditError,
    audit,
    format_finding,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", required=True),
            exclude=dict(type="list", elements="str", default=[]),
            python=dict(type="path"),
            import_roots=dict(type="list", elements="path", default=[]),
        ),
        supports_check_mode=True,
    )
    try:
        result = audit(module.params["paths"], module.params["exclude"],
                       python=module.params["python"], import_roots=module.params["import_roots"])
    except TaskAuditError as exc:
        module.fail_json(msg=str(exc))
    # Ansible owns the ``warnings`` key (a list of strings it displays): the findings go there
    # as text, and in full, with their kind, file and line, as ``audit_warnings``.
    findings = result.pop("warnings")
    for finding in findings:
        module.warn(format_finding(finding))
    module.exit_json(changed=False, audit_warnings=findings, **result)


if __name__ == "__main__":
    main()
