"""bench/bench_scan.py runs on every redis-py we support (4.5 to 8.x; make test-matrix has 4.6 and 8)."""
import redis

from bench.bench_scan import pure_python_parser, resp2


def test_the_pure_python_parser_is_found_on_this_redis_py():
    parser = pure_python_parser()
    expected = "PythonParser" if int(redis.__version__.split(".")[0]) < 5 else "_RESP2Parser"
    assert parser.__name__ == expected
    connection = redis.Connection(host="127.0.0.1", port=1, parser_class=parser, **resp2())  # not connected
    assert isinstance(connection._parser, parser)  # pylint: disable=protected-access
