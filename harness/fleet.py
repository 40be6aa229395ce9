"""A fleet of inventory hosts that are all localhost, each with its own Celery config file.

For the config phase at fleet scale (tests/integration/test_fleet_config_phase.py and
bench/bench_fleet.py): the real ``playbooks/tune-celery.yml`` with ``--tags celery_tune_config`` (the role's
audit, rewrite, restart handlers and rollback state), ``serial`` and ``forks``, and per-host
files so every host has real work to do.
"""
import os
import shutil
import sys

import yaml

from harness.collection import COLLECTIONS_ROOT, REPO_ROOT
from harness.ansible_runner import run_playbook

SOURCE_CONFIG = os.path.join(REPO_ROOT, "tests", "fixtures", "celery_configs", "celeryconfig.py")
LEAN_SETTINGS = {
    "task_ignore_result": True,
    "task_store_errors_even_if_ignored": True,
    "result_expires": 3600,
    "result_extended": False,
}


def host_names(count):
    return ["host%02d" % number for number in range(1, count + 1)]


class Fleet:
    """``count`` hosts under ``workdir``: an inventory (group ``celery``) and a config file per host."""

    def __init__(self, workdir, count=50, serial=25):
        self.workdir = str(workdir)
        self.hosts = host_names(count)
        self.serial = serial
        self.inventory = os.path.join(self.workdir, "inventory.yml")
        self.playbook = os.path.join(REPO_ROOT, "playbooks", "tune-celery.yml")
        os.makedirs(self.workdir, exist_ok=True)
        hosts = dict((name, {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "celery_tune_config_path": self.config_path(name),
            # Every host has a restart to run, as in a real fleet; `true` keeps it cheap.
            "celery_tune_restart_command": "true",
        }) for name in self.hosts)
        group_vars = {
            "celery_tune_settings": LEAN_SETTINGS,
            "celery_tune_report_dir": os.path.join(self.workdir, "reports"),
        }
        with open(self.inventory, "w") as handle:
            yaml.safe_dump({"all": {"children": {"celery": {"hosts": hosts, "vars": group_vars}}}}, handle)
        self.reset()

    def config_path(self, host):
        return os.path.join(self.workdir, "hosts", host, "celeryconfig.py")

    def reset(self):
        """Every host back to the original config file."""
        for host in self.hosts:
            os.makedirs(os.path.dirname(self.config_path(host)), exist_ok=True)
            shutil.copyfile(SOURCE_CONFIG, self.config_path(host))

    def run(self, forks=10):
        """One ansible-playbook run of the role's config phase; returns the PlaybookRun."""
        return run_playbook(self.playbook, COLLECTIONS_ROOT, inventory=self.inventory, tags=["celery_tune_config"],
                            extra_vars={"celery_tune_serial": self.serial},
                            env={"ANSIBLE_FORKS": str(forks)})


__all__ = ["Fleet", "LEAN_SETTINGS", "SOURCE_CONFIG", "host_names"]
