"""The config phase at fleet scale: the role celery_tune (--tags celery_tune_config) over 50 inventory hosts
(aliases of localhost, each with its own config file), forks 10 against forks 1 as the reference."""
import tempfile
import time

from harness.fleet import Fleet

HOSTS = 50
FORKS = 10


def _timed(fleet, forks):
    fleet.reset()  # every host has a file to rewrite
    started = time.monotonic()
    run = fleet.run(forks=forks)
    elapsed = time.monotonic() - started
    if run.returncode != 0:
        raise RuntimeError("the config phase failed with forks=%d:\n%s" % (forks, run.output[-3000:]))
    changed = sum(1 for record in run.records
                  if record["action"].endswith("celery_config") and record["result"].get("changed"))
    if changed != HOSTS:
        raise RuntimeError("expected %d rewritten configs, got %d" % (HOSTS, changed))
    return elapsed


def run():
    fleet = Fleet(tempfile.mkdtemp(prefix="bench-fleet-"), count=HOSTS, serial=HOSTS)
    parallel = _timed(fleet, FORKS)
    serial = _timed(fleet, 1)
    return [{
        "name": "config phase of the role, %d hosts, forks %d" % (HOSTS, FORKS),
        "value": round(parallel, 2),
        "unit": "s",
        "reference": "same with forks 1",
        "reference_value": round(serial, 2),
        "ratio": round(serial / parallel, 2),
    }]


if __name__ == "__main__":
    for entry in run():
        print(entry)
