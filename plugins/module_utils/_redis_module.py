# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one shell of every Redis-facing module: options, redis-py, topology, errors, clean-up.

A module file holds its docs, its own options and a few lines of ``main()``::

    shell = RedisModule.build(dict(pattern=dict(type="str")), command="SCAN/TTL")
    shell.run(measure)  # measure(shell, topology, result) fills ``result``

The shell merges the connection options of the ``redis_connection`` doc fragment into the
module's own, fails with missing_required_lib() without redis-py, connects, turns every
exception into a message fit for an operator (never a password), keeps on failure the fields
a module promises, turns ``result["warnings"]`` into Ansible warnings, and closes every client
whatever happens.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_connection import (
    HAS_REDIS,
    REDIS_IMPORT_ERROR,
    RedisModuleError,
    connect,
    connect_topology,
    describe_redis_error,
    params_for_node,
    redis_connection_argument_spec,
)


class OptionError(Exception):
    """An option refused before anything connects; its message is the whole failure."""


class Failure(object):
    """How one of a module's own exceptions ends its run.

    ``kept`` names the fields of the partial result that the failure still returns (what was
    found or done before it). ``describe(shell, topology, result, exc)`` returns more fields:
    ``msg`` replaces ``str(exc)``, ``warnings`` become Ansible warnings.
    """

    def __init__(self, error, kept=(), describe=None):
        self.error = error
        self.kept = tuple(kept)
        self.describe = describe

    def fields(self, shell, topology, result, exc):
        fields = dict((key, result[key]) for key in self.kept if key in result)
        fields["msg"] = str(exc)
        if self.describe is not None:
            fields.update(self.describe(shell, topology, result, exc))
        return fields


class RedisModule(object):
    """One run of a Redis-facing module.

    ``module`` is the slice of AnsibleModule the shell uses: ``params``, ``check_mode``,
    ``warn``, ``fail_json`` and ``exit_json`` (a test passes a small stand-in).
    ``command`` names what the module sends, for the message of an unexpected Redis error.
    ``connect(params)`` returns what the module works on, anything with a ``close()``; by
    default the Topology of connect_topology(), with its replicas connected when
    ``connect_replicas`` (CONFIG is per node). ``failures`` are the module's own exceptions
    (Failure entries, the first that matches wins).
    """

    def __init__(self, module, command, connect=None, connect_replicas=False, failures=()):
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self.command = command
        self.failures = tuple(failures)
        self._connect = connect or (lambda params: connect_topology(params, connect_replicas=connect_replicas))
        if not HAS_REDIS:
            module.fail_json(msg=missing_required_lib("redis"), exception=REDIS_IMPORT_ERROR)

    @classmethod
    def build(cls, argument_spec, command, connect=None, connect_replicas=False, failures=(), **module_options):
        """The AnsibleModule of the connection options plus ``argument_spec``, in check mode too.

        ``module_options`` go to AnsibleModule as they are (mutually_exclusive, required_if, ...).
        """
        spec = redis_connection_argument_spec()
        spec.update(argument_spec)
        module_options.setdefault("supports_check_mode", True)
        module = AnsibleModule(argument_spec=spec, **module_options)
        return cls(module, command, connect=connect, connect_replicas=connect_replicas, failures=failures)

    def warn(self, text):
        self.module.warn(text)

    def open_db(self, node, number):
        """A client for database ``number`` of ``node`` alone (broker keys are looked for in every database)."""
        return connect(dict(params_for_node(self.params, node), db=number))

    def run(self, fn, check=None):
        """``check(shell)`` refuses options (OptionError) before anything connects; then connect and
        ``fn(shell, topology, result)``, which fills ``result``; exit with it, or fail."""
        result = {}
        topology = None
        try:
            if check is not None:
                check(self)
            topology = self._connect(self.params)
            fn(self, topology, result)
        except BaseException as exc:  # a module's own error may be one (a signal unwinding a wait)
            fields = self.failure_fields(topology, result, exc)
            if fields is None:  # SystemExit of exit_json/fail_json, KeyboardInterrupt: not ours to word
                raise
            self._warn_all(fields.pop("warnings", []))
            self.module.fail_json(**fields)
        finally:
            if topology is not None:
                topology.close()
        self._warn_all(result.pop("warnings", []))
        self.module.exit_json(**result)

    def failure_fields(self, topology, result, exc):
        """What the module fails with after ``exc`` (``msg`` and more), or None when it is no failure to word."""
        for failure in self.failures:
            if isinstance(exc, failure.error):
                return failure.fields(self, topology, result, exc)
        if isinstance(exc, (OptionError, RedisModuleError)):  # already worded for an operator
            return dict(msg=str(exc))
        if isinstance(exc, Exception):  # a Redis error mid-way: the same readable mapping as at connect
            return dict(msg=describe_redis_error(exc, self.params, command=self.command))
        return None

    def _warn_all(self, warnings):
        for text in warnings:
            self.module.warn(text)


__all__ = ["Failure", "OptionError", "RedisModule"]
