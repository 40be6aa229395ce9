# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # Kept in lockstep with redis_connection_argument_spec() in module_utils/_redis_connection.py.
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host name or address of the Redis (or Valkey) server.
      - Ignored when O(login_unix_socket) is set.
    type: str
    default: localhost
  login_port:
    description:
      - TCP port of the server.
    type: int
    default: 6379
  login_unix_socket:
    description:
      - Path of the server's unix socket; used instead of O(login_host) and O(login_port).
    type: path
  login_user:
    description:
      - ACL user name (Redis 6+). Leave unset for the C(default) user.
    type: str
  login_password:
    description:
      - Password of O(login_user), or of the C(default) user (C(requirepass)).
      - Never shown in output or logs.
    type: str
  db:
    description:
      - Database number that holds the Celery result keys.
    type: int
    default: 0
  tls:
    description:
      - Connect with TLS.
    type: bool
    default: false
  validate_certs:
    description:
      - With O(tls), check the server certificate against O(ca_certs) (or the system CAs) and
        its host name against O(login_host).
    type: bool
    default: true
  ca_certs:
    description:
      - CA bundle that signed the server certificate, for O(tls).
    type: path
  client_cert_file:
    description:
      - Client certificate, for servers that require one (C(tls-auth-clients yes)).
    type: path
  client_key_file:
    description:
      - Private key of O(client_cert_file).
    type: path
  protocol:
    description:
      - RESP version to speak. redis-py 8 speaks RESP3 by default; servers before Redis 6
        understand only RESP2, so this defaults to C(2), which every server speaks.
    type: int
    choices: [2, 3]
    default: 2
  cluster:
    description:
      - Whether the server is part of a Redis Cluster.
      - C(auto) asks the server whether cluster mode is enabled (C(cluster_enabled) in C(INFO cluster)),
        which works on Redis and on Valkey (Valkey 8 reports C(server_mode:cluster) and no C(redis_mode)
        line). On a cluster, modules that are
        cluster-aware find every node from C(CLUSTER NODES) and talk to each with the same
        credentials and TLS settings. C(no) treats a cluster node as one server.
    type: str
    choices: [auto, 'yes', 'no']
    default: auto
  connect_timeout:
    description:
      - Seconds to wait for a connection and for each reply.
    type: float
    default: 10
  sentinel_hosts:
    description:
      - Redis Sentinels to ask for the current primary of O(sentinel_master), as C(host:port)
        (port 26379 when left out). The first Sentinel that answers names the primary and its
        replicas; O(login_host) and O(login_port) are then ignored.
      - Sentinels are reached with the TLS settings of the data nodes (O(tls), O(ca_certs), ...).
    type: list
    elements: str
  sentinel_master:
    description:
      - Name of the master as the Sentinels monitor it (C(sentinel monitor NAME ...)).
      - Required with O(sentinel_hosts).
    type: str
  sentinel_user:
    description:
      - ACL user for the Sentinels, when they require one.
    type: str
  sentinel_password:
    description:
      - Password for the Sentinels (their C(requirepass) or O(sentinel_user)'s password).
      - Never shown in output or logs.
    type: str
requirements:
  - redis-py >= 4.5 (the C(redis) Python package) on the host that runs the module
notes:
  - The module runs where Redis is reachable; use C(delegate_to) or C(run_once) in a fleet.
"""
