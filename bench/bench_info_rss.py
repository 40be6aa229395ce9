"""result_keys_info's pass over 5,000,000 keys: peak RSS of the process that runs it (goal: at most 50 MB).

The pass runs in a subprocess of its own (the module's work without Ansible around it: connect,
the topology, every TTL, the memory sample, the broker keys), and reports its peak RSS with
resource.getrusage (ru_maxrss), next to the same process's RSS before the pass. The TTLs are
spread over 82,800 distinct seconds, so the histogram holds as many entries as a day of
Celery's default result_expires would.
"""
import json
import os
import subprocess
import sys
import tempfile

# Importing the test set-up puts the collection on sys.path under its Ansible name.
from harness.collection import COLLECTIONS_ROOT
from harness.redis_server import RedisServer

KEYS = 5000000
RSS_GOAL_MB = 50.0

LOAD_SCRIPT = """
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = first, last do redis.call('SET', 'celery-task-meta-' .. i, 'r', 'EX', 3600 + i % 82800) end
return last - first + 1
"""

# The child: what result_keys_info's main() does, measured from the inside.
CHILD = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.celery_ops.lean_results.plugins.module_utils._redis_connection import (
    connect_topology, redis_connection_argument_spec)
from ansible_collections.celery_ops.lean_results.plugins.module_utils._result_keys import topology_result_keys_report
params = dict((name, spec.get("default")) for name, spec in redis_connection_argument_spec().items())
params.update(login_host=sys.argv[2], login_port=int(sys.argv[3]))
topology = connect_topology(params)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = topology_result_keys_report(topology, sample=1000)
topology.close()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(before_kb=before, peak_kb=peak, count=report["count"], ttl=report["ttl"],
                      seconds=report["scan_seconds"])))
"""


def run():
    server = RedisServer(tempfile.mkdtemp(prefix="bench-info-rss-")).start()
    try:
        client = server.admin()
        script = client.register_script(LOAD_SCRIPT)
        for first in range(0, KEYS, 250000):
            script(args=[first, min(first + 250000, KEYS) - 1])
        output = subprocess.run([sys.executable, "-c", CHILD, COLLECTIONS_ROOT, server.host, str(server.port)],
                                capture_output=True, text=True, check=True, env=dict(os.environ)).stdout
    finally:
        server.stop()
    figures = json.loads(output.strip().splitlines()[-1])
    assert figures["count"] == KEYS, figures
    peak_mb = figures["peak_kb"] / 1024.0
    return [
        dict(name="result_keys_info pass over 5M keys (%.0f s): peak RSS (the same process before the pass: %.1f MB; "
             "ttl %s)" % (figures["seconds"], figures["before_kb"] / 1024.0, figures["ttl"]),
             value=round(peak_mb, 1), unit="MB", reference="goal", reference_value=RSS_GOAL_MB,
             ratio=round(peak_mb / RSS_GOAL_MB, 2)),
    ]


if __name__ == "__main__":
    for entry in run():
        print(entry)
