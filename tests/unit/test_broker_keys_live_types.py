"""The broker finder on a live broker: a key may change type between SCAN, TYPE and the read."""
import pytest

from ansible_collections.celery_ops.lean_results.plugins.module_utils import _broker_keys


class WrongType(Exception):
    pass


class LiveBroker(object):
    """A client stand-in: a binding that is not a set, and a queue that stopped being a list."""

    def __init__(self):
        self.keys = {b"_kombu.binding.celery": "string", b"celery": "list"}

    def scan(self, cursor=0, match=None, count=None):
        return 0, [key for key in self.keys if key.startswith(b"_kombu")]

    def smembers(self, name):
        raise WrongType("WRONGTYPE Operation against a key holding the wrong kind of value")

    def llen(self, name):
        raise WrongType("WRONGTYPE Operation against a key holding the wrong kind of value")

    zcard = hlen = llen

    def pipeline(self, transaction=False):
        client = self

        class Pipe(object):
            names = []

            def type(self, name):
                self.names.append(name)

            def execute(self, raise_on_error=False):
                return [client.keys.get(name, "none").encode() for name in self.names]
        return Pipe()


def test_a_key_that_changed_type_still_counts_and_does_not_fail():
    report, _chords = _broker_keys.find_broker_keys_on([LiveBroker()])
    assert report["found"] and report["bindings"] == ["_kombu.binding.celery"]
    assert report["queues"] == [{"name": "celery", "type": "list", "length": 1}]


def test_other_errors_still_raise():
    broker = LiveBroker()

    def refused(name):
        raise WrongType("NOPERM this user has no permissions to run the 'smembers' command")
    broker.smembers = refused
    with pytest.raises(WrongType, match="NOPERM"):
        _broker_keys.find_broker_keys_on([broker])
