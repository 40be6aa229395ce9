"""The one secret masker: URLs, redis.conf lines, option values."""
import pytest

from ansible_collections.celery_ops.lean_results.plugins.module_utils import _secrets

MASK = _secrets.MASK


@pytest.mark.parametrize("text, expected", [
    pytest.param("redis://:s3cret@10.0.0.5:6379/1", "redis://:%s@10.0.0.5:6379/1" % MASK, id="redis-no-user"),
    pytest.param("amqp://guest:pw@rabbit//", "amqp://guest:%s@rabbit//" % MASK, id="amqp-user"),
    pytest.param("rediss://app:p%40ss@host:6380/0?ssl_cert_reqs=required",
                 "rediss://app:%s@host:6380/0?ssl_cert_reqs=required" % MASK, id="rediss-quoted"),
    pytest.param("broker_url = 'redis://u:a@h/0'  # and redis://:b@h2/1",
                 "broker_url = 'redis://u:%s@h/0'  # and redis://:%s@h2/1" % (MASK, MASK), id="two-in-line"),
    pytest.param("sentinel://:pw@s1:26379;sentinel://:pw@s2:26379",
                 "sentinel://:%s@s1:26379;sentinel://:%s@s2:26379" % (MASK, MASK), id="sentinel-list"),
])
def test_url_passwords_are_masked(text, expected):
    assert _secrets.mask_url_passwords(text) == expected


@pytest.mark.parametrize("text", [
    pytest.param("redis://localhost:6379/0", id="no-userinfo"),
    pytest.param("redis://user@localhost/0", id="user-only"),
    pytest.param("result_expires = 3600", id="not-a-url"),
    pytest.param("http://host:8080/path", id="port-not-password"),
    pytest.param("", id="empty"),
])
def test_text_without_url_passwords_is_unchanged(text):
    assert _secrets.mask_url_passwords(text) == text


def test_redis_conf_secrets_are_masked_in_conf_and_diff():
    conf = "port 6379\nrequirepass hunter2\n-masterauth old pw\n+masterauth newpw\nuser app on >apppw ~* +@all\n"
    masked = _secrets.mask_redis_conf(conf)
    for secret in ("hunter2", "old pw", "newpw", "apppw"):
        assert secret not in masked
    assert "port 6379\n" in masked and "user app on >%s ~* +@all" % MASK in masked


def test_option_values_and_everything_at_once():
    params = {"login_password": "pw1", "sentinel_password": "pw2", "login_host": "h"}
    text = "pw1 redis://:zz@h/0 pw2"
    assert _secrets.mask_all(text, params) == "%s redis://:%s@h/0 %s" % (MASK, MASK, MASK)
    assert _secrets.without_secret_options(params) == {"login_host": "h"}
