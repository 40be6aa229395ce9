"""pytest fixtures for Redis topologies: TLS certificates and servers, a cluster, Sentinel.

The cluster and the Sentinel set are module-scoped (they take a few seconds to form); tests that
change them (a failover) say so in their name and run last in their module, or use the
function-scoped ``*_factory`` fixtures.
"""
import pytest

from harness.fixtures import stopped_at_end
from harness.topologies import RedisCluster, ReplicatedRedis, TlsRedisServer, make_tls_certs


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory):
    """Paths of a CA, a server certificate (127.0.0.1/localhost), a client certificate, another CA."""
    return make_tls_certs(tmp_path_factory.mktemp("tls-certs"))


@pytest.fixture
def tls_redis_factory(tmp_path, tls_certs):
    """Start TLS-only redis-servers: ``tls_redis_factory(auth_clients=True, acl_users=[...])``."""
    yield from stopped_at_end(
        lambda index, **kwargs: TlsRedisServer(tmp_path / ("tls-redis-%d" % index), tls_certs, **kwargs))


@pytest.fixture
def cluster_factory(tmp_path_factory):
    """Start Redis Clusters: ``cluster_factory(primaries=3, replicas_per_primary=1, acl_users=[...])``."""
    yield from stopped_at_end(lambda _index, **kwargs: RedisCluster(tmp_path_factory.mktemp("cluster"), **kwargs))


@pytest.fixture
def replicated_factory(tmp_path_factory):
    """Start a primary with replicas and a Sentinel: ``replicated_factory(replica_count=2, acl_users=[...])``."""
    yield from stopped_at_end(lambda _index, **kwargs: ReplicatedRedis(tmp_path_factory.mktemp("replicated"), **kwargs))


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory):
    """A 6-node cluster (3 primaries, 3 replicas) shared by the tests of one module."""
    cluster = RedisCluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def redis_sentinel_set(tmp_path_factory):
    """A primary, 2 replicas and one Sentinel (master name ``lean``) shared by one test module."""
    replicated = ReplicatedRedis(tmp_path_factory.mktemp("replicated"))
    try:
        yield replicated.start()
    finally:
        replicated.stop()
