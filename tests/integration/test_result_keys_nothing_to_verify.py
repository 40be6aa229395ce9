"""A fall of nothing is never verified: result_keys_info says where result-shaped keys are, and
result_keys_wait answers "nothing to verify" (real redis-server, real ansible-playbook)."""
import redis


def fill(server, db, prefix, count, ttl=86400):
    client = redis.Redis(host=server.host, port=server.port, db=db, protocol=2)
    with client.pipeline(transaction=False) as pipe:
        for index in range(count):
            pipe.set("%scelery-task-meta-%d" % (prefix, index), b"{}", ex=ttl)
        pipe.execute()


def test_info_warns_and_names_the_prefix_and_the_other_db(redis_server, ansible_module):
    fill(redis_server, 0, "billing:", 50)
    fill(redis_server, 2, "", 30)

    result = ansible_module("result_keys_info", dict(redis_server.login(), pattern="celery-task-meta-*"))
    assert result["count"] == 0
    assert result["elsewhere"]["prefixes"] == {"billing:": 50}
    assert result["elsewhere"]["other_dbs"] == {"db2": 30}
    assert "[WARNING]" in ansible_module.last_run.output
    assert "'billing:' (50 seen)" in ansible_module.last_run.output and "db2 holds 30 keys" in ansible_module.last_run.output

    found = ansible_module("result_keys_info", dict(redis_server.login(), pattern="billing:celery-task-meta-*"))
    assert found["count"] == 50 and found["elsewhere"] is None and "[WARNING]" not in ansible_module.last_run.output


def test_wait_from_a_baseline_of_nothing_is_not_met(redis_server, ansible_module):
    fill(redis_server, 0, "billing:", 20)
    args = dict(redis_server.login(), pattern="celery-task-meta-*", min_reduction=2, timeout=5, fail_on_unmet=False)

    counted = ansible_module("result_keys_wait", args)
    assert counted["met"] is False and counted["reason"] == "nothing to verify", counted
    assert counted["baseline"] == 0

    given = ansible_module("result_keys_wait", dict(args, baseline=0, target_count=0))
    assert given["met"] is False and given["reason"] == "nothing to verify"

    failing = ansible_module("result_keys_wait", dict(args, fail_on_unmet=True))
    assert failing["failed"] and "nothing to verify" in failing["msg"]

    # The pattern that matches the keys is measured as before (a real baseline, no such reason).
    real = ansible_module("result_keys_wait", dict(args, pattern="billing:celery-task-meta-*", max_ttl=1,
                                                   expedite=True, timeout=20))
    assert real["met"] is True and real["baseline"] == 20 and "reason" not in real
