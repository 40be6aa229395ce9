"""The module shell (RedisModule) with a stand-in for AnsibleModule and a stand-in topology."""
import pytest
from ansible.module_utils.testing import patch_module_args  # ansible-core 2.19+, all we support
from redis import exceptions as rex

from ansible_collections.celery_ops.lean_results.plugins.module_utils import _redis_module
from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_connection import RedisModuleError
from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_memory import RedisMemoryError
from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_memory_run import MEMORY_FAILURES
from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_module import (
    Failure,
    OptionError,
    RedisModule,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_info_run import check_sample
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait import (
    ResultKeysWaitError,
    WaitInterrupted,
)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys_wait_run import (
    WAIT_FAILURES,
    refuse_wrong_numbers,
)

PARAMS = {"login_host": "redis.internal", "login_port": 6380, "login_user": "app",
          "login_password": "hunter2-secret"}


class Ended(SystemExit):
    """exit_json/fail_json of the stand-in: like AnsibleModule's, a SystemExit that carries the result."""

    def __init__(self, how, fields):
        super(Ended, self).__init__(1 if how == "failed" else 0)
        self.how = how
        self.fields = fields


class StandInModule(object):
    """The slice of AnsibleModule the shell uses."""

    def __init__(self, params=None, check_mode=False):
        self.params = dict(PARAMS, **(params or {}))
        self.check_mode = check_mode
        self.warnings = []

    def warn(self, text):
        self.warnings.append(text)

    def fail_json(self, **fields):
        raise Ended("failed", fields)

    def exit_json(self, **fields):
        raise Ended("exited", fields)


class StandInTopology(object):
    def __init__(self):
        self.closed = 0

    def close(self):
        self.closed += 1


class StandInProbe(StandInTopology):
    """A TopologyProbe that has found no topology (what _where() reads of it)."""

    topology = None


class ModuleOwnError(Exception):
    pass


def run(fn, check=None, failures=(), topology=None):
    """Run ``fn`` in a shell; (how it ended, its fields, the topology, the module)."""
    module = StandInModule()
    topology = topology or StandInTopology()
    shell = RedisModule(module, "SCAN/TTL", connect=lambda params: topology, failures=failures)
    with pytest.raises(Ended) as ended:
        shell.run(fn, check=check)
    return ended.value.how, ended.value.fields, topology, module


def raising(exc, fill=None):
    def fn(_shell, _topology, result):
        result.update(fill or {})
        raise exc
    return fn


def filling(**fields):
    def fn(_shell, _topology, result):
        result.update(fields)
    return fn


@pytest.mark.parametrize("exc, failures, expected", [
    pytest.param(RedisModuleError("the cluster at x lists no reachable primary"), (),
                 "the cluster at x lists no reachable primary", id="redis-module-error-as-worded"),
    pytest.param(OptionError("sample must be 0 or more, got -1"), (), "sample must be 0 or more, got -1",
                 id="option-error-as-worded"),
    pytest.param(rex.ConnectionError("Error 111 connecting. Connection refused."), (),
                 "cannot connect to redis.internal:6380", id="redis-error-described"),
    pytest.param(rex.NoPermissionError("this user has no permissions to run the 'scan' command"), (),
                 "ACL SETUSER app +scan", id="noperm-names-command"),
    pytest.param(rex.ResponseError("ERR odd hunter2-secret"), (), "Redis error at redis.internal:6380 running SCAN/TTL",
                 id="unknown-redis-error-names-the-module-commands"),
    pytest.param(ModuleOwnError("refusing pattern '*'"), (Failure(ModuleOwnError),), "refusing pattern '*'",
                 id="module-error-as-worded"),
    pytest.param(ModuleOwnError("raw"), (Failure(ModuleOwnError, describe=lambda *_: dict(msg="reworded")),),
                 "reworded", id="module-error-reworded"),
    pytest.param(ModuleOwnError("first"), (Failure(Exception, describe=lambda *_: dict(msg="by Exception")),
                                           Failure(ModuleOwnError, describe=lambda *_: dict(msg="too late"))),
                 "by Exception", id="first-matching-failure-wins"),
])
def test_an_error_ends_the_run_with_a_message(exc, failures, expected):
    how, fields, topology, _module = run(raising(exc), failures=failures)
    assert how == "failed"
    assert expected in fields["msg"]
    assert "hunter2-secret" not in fields["msg"]
    assert topology.closed == 1


@pytest.mark.parametrize("kept, partial, expected", [
    pytest.param(("before", "nodes"), dict(before=1, nodes=[2], risks=["x"]), dict(before=1, nodes=[2]),
                 id="only-the-declared-fields"),
    pytest.param(("before", "nodes"), dict(before=1), dict(before=1), id="a-field-not-reached-is-left-out"),
    pytest.param((), dict(before=1), {}, id="nothing-declared-nothing-kept"),
])
def test_a_module_error_keeps_the_declared_fields(kept, partial, expected):
    _how, fields, _topology, _module = run(raising(ModuleOwnError("no"), partial),
                                           failures=(Failure(ModuleOwnError, kept=kept),))
    assert fields == dict(expected, msg="no")


@pytest.mark.parametrize("exc", [
    pytest.param(RedisModuleError("gone"), id="redis-module-error"),
    pytest.param(rex.ConnectionError("refused"), id="redis-error"),
])
def test_other_errors_keep_no_field(exc):
    _how, fields, _topology, _module = run(raising(exc, dict(before=1)),
                                           failures=(Failure(ModuleOwnError, kept=("before",)),))
    assert sorted(fields) == ["msg"]


@pytest.mark.parametrize("details, expected", [
    pytest.param({}, dict(before={"maxmemory": 0}, changes=[{"parameter": "maxmemory"}], msg="refused"),
                 id="refused-before-setting"),
    pytest.param(dict(after={"maxmemory": 5}),
                 dict(before={"maxmemory": 0}, changes=[{"parameter": "maxmemory"}], msg="refused",
                      after={"maxmemory": 5}, changed=True, persisted=False),
                 id="set-but-not-persisted"),
])
def test_redis_memory_failure_fields(details, expected):
    partial = dict(before={"maxmemory": 0}, changes=[{"parameter": "maxmemory"}], risks=["low headroom"])
    _how, fields, _topology, _module = run(raising(RedisMemoryError("refused", **details), partial),
                                           failures=MEMORY_FAILURES)
    assert fields == expected


@pytest.mark.parametrize("exc, partial, expected, expected_warnings", [
    pytest.param(ResultKeysWaitError("refusing pattern '*'", dict(broker_keys={"found": True}, expedited=0)), {},
                 dict(msg="refusing pattern '*'", broker_keys={"found": True}, expedited=0, changed=False), [],
                 id="refusal-with-the-wait-figures"),
    pytest.param(ResultKeysWaitError("not met", dict(expedited=3, changed=True, warnings=["slow"])),
                 dict(broker_keys={"found": False}),
                 dict(msg="not met (changed before the failure: 3 keys had their TTL capped)", expedited=3,
                      changed=True, broker_keys={"found": False}), ["slow"],
                 id="says-what-was-done"),
    pytest.param(WaitInterrupted("SIGTERM"), {},
                 dict(msg="interrupted by SIGTERM before the wait began; nothing was changed"), [],
                 id="interrupted-before-the-wait"),
])
def test_result_keys_wait_failure_fields(exc, partial, expected, expected_warnings):
    module = StandInModule()
    shell = RedisModule(module, "SCAN/PEXPIRE/CONFIG", connect=lambda params: StandInProbe(), failures=WAIT_FAILURES)
    with pytest.raises(Ended) as ended:
        shell.run(raising(exc, partial))
    assert (ended.value.fields, module.warnings) == (expected, expected_warnings)


def test_a_wait_error_caused_by_redis_is_worded_by_the_shared_mapping():
    exc = ResultKeysWaitError("OutOfMemoryError: OOM command not allowed")
    exc.cause = rex.ResponseError("OOM command not allowed when used memory > 'maxmemory'.")
    exc.context = "capping TTLs on redis.internal:6380"
    _how, fields, _topology, _module = run(raising(exc), failures=WAIT_FAILURES, topology=StandInProbe())
    assert fields["msg"].startswith("capping TTLs on redis.internal:6380. the server at redis.internal:6380 is out of "
                                    "memory (OOM) running SCAN/TTL")


@pytest.mark.parametrize("fn, expected_closes", [
    pytest.param(filling(count=1), 1, id="success"),
    pytest.param(raising(ModuleOwnError("no")), 1, id="module-error"),
    pytest.param(raising(rex.TimeoutError("slow")), 1, id="redis-error"),
    pytest.param(raising(KeyboardInterrupt()), 1, id="keyboard-interrupt"),
])
def test_the_topology_is_closed_however_the_run_ends(fn, expected_closes):
    topology = StandInTopology()
    shell = RedisModule(StandInModule(), "SCAN", connect=lambda params: topology,
                        failures=(Failure(ModuleOwnError),))
    with pytest.raises((Ended, KeyboardInterrupt)):
        shell.run(fn)
    assert topology.closed == expected_closes


def test_a_refused_option_ends_the_run_before_anything_connects():
    connected = []

    def refuse(_shell):
        raise OptionError("batch_size must be 1 or more, got 0")
    shell = RedisModule(StandInModule(), "SCAN", connect=connected.append)
    with pytest.raises(Ended) as ended:
        shell.run(filling(), check=refuse)
    assert ended.value.fields == dict(msg="batch_size must be 1 or more, got 0")
    assert connected == []


def test_a_failed_connect_has_nothing_to_close_and_is_described():
    def refused(params):
        raise rex.ConnectionError("Connection refused")
    shell = RedisModule(StandInModule(), "PING", connect=refused)
    with pytest.raises(Ended) as ended:
        shell.run(filling())
    assert "cannot connect to redis.internal:6380" in ended.value.fields["msg"]


def test_a_failure_exit_of_the_module_code_is_not_reworded():
    def fail_directly(shell, _topology, _result):
        shell.module.fail_json(msg="as the module said")
    how, fields, topology, _module = run(fail_directly, failures=(Failure(Exception),))
    assert (how, fields, topology.closed) == ("failed", dict(msg="as the module said"), 1)


@pytest.mark.parametrize("fn, expected_result, expected_warnings", [
    pytest.param(filling(count=2, warnings=["no key matched"]), dict(count=2), ["no key matched"],
                 id="result-warnings-become-ansible-warnings"),
    pytest.param(filling(count=2), dict(count=2), [], id="no-warnings"),
    pytest.param(lambda shell, _topology, result: shell.warn("said during the run"), {}, ["said during the run"],
                 id="warned-during-the-run"),
])
def test_success_exits_with_the_result(fn, expected_result, expected_warnings):
    how, fields, _topology, module = run(fn)
    assert (how, fields, module.warnings) == ("exited", expected_result, expected_warnings)


def test_without_redis_py_the_module_fails_naming_the_library(monkeypatch):
    monkeypatch.setattr(_redis_module, "HAS_REDIS", False)
    monkeypatch.setattr(_redis_module, "REDIS_IMPORT_ERROR", "Traceback: No module named 'redis'")
    with pytest.raises(Ended) as ended:
        RedisModule(StandInModule(), "PING", connect=lambda params: pytest.fail("connected without redis-py"))
    assert "redis" in ended.value.fields["msg"] and "required" in ended.value.fields["msg"]
    assert ended.value.fields["exception"] == "Traceback: No module named 'redis'"


def test_build_merges_the_connection_options_with_the_module_own():
    with patch_module_args(dict(login_port=6390, pattern="x-*", _ansible_check_mode=True)):
        shell = RedisModule.build(dict(pattern=dict(type="str"), sample=dict(type="int", default=7)), "SCAN")
    assert (shell.params["login_port"], shell.params["login_host"], shell.params["pattern"],
            shell.params["sample"]) == (6390, "localhost", "x-*", 7)
    assert shell.check_mode is True


@pytest.mark.parametrize("sample, expected", [
    pytest.param(True, "sample must be a whole number, got the boolean True", id="yaml-yes"),
    pytest.param(-1, "sample must be 0 or more, got -1", id="negative"),
    pytest.param(0, None, id="zero-skips-the-estimate"),
    pytest.param(1000, None, id="default"),
])
def test_result_keys_info_sample_check(sample, expected):
    shell = RedisModule(StandInModule(dict(sample=sample)), "SCAN", connect=lambda params: None)
    if expected is None:
        check_sample(shell)
        return
    with pytest.raises(OptionError, match="^%s$" % expected):
        check_sample(shell)


NUMBERS = dict(max_ttl=None, min_reduction=None, target_count=None, timeout=600, poll_interval=2.0, batch_size=1000)


@pytest.mark.parametrize("raw, params, expected", [
    pytest.param(dict(max_ttl=True), dict(max_ttl=1), "max_ttl must be a whole number, got the boolean True",
                 id="yaml-yes-is-no-ttl"),
    pytest.param(dict(min_reduction=False), dict(min_reduction=0.0), "min_reduction must be a number, got the boolean",
                 id="yaml-no-is-no-ratio"),
    pytest.param({}, dict(poll_interval=float("nan")), "poll_interval must be a finite number", id="nan"),
    pytest.param({}, dict(min_reduction=float("inf")), "min_reduction must be a finite number", id="inf"),
    pytest.param(dict(max_ttl=60), dict(max_ttl=60), None, id="a-number-passes"),
])
def test_result_keys_wait_refuses_what_is_no_number(raw, params, expected):
    if expected is None:
        refuse_wrong_numbers(dict(NUMBERS, **params), raw)
        return
    with pytest.raises(OptionError, match=expected):
        refuse_wrong_numbers(dict(NUMBERS, **params), raw)
