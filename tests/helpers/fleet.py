"""A fleet of inventory hosts that are all localhost, each with its own Celery config file.

For the config phase at fleet scale (tests/integration/test_fleet_config_phase.py and
bench/bench_fleet.py): the real ``celery_config`` module, real ansible-playbook, ``serial`` and
``forks``, and per-host files so every host has real work to do.
"""
import os
import shutil
import sys

import yaml

from tests.conftest import COLLECTIONS_ROOT, REPO_ROOT
from tests.helpers.ansible_runner import run_playbook

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
    """``count`` hosts under ``workdir``: an inventory, a playbook and a config file per host."""

    def __init__(self, workdir, count=50, serial=25):
        self.workdir = str(workdir)
        self.hosts = host_names(count)
        self.serial = serial
        self.inventory = os.path.join(self.workdir, "inventory.yml")
        self.playbook = os.path.join(self.workdir, "config-phase.yml")
        os.makedirs(self.workdir, exist_ok=True)
        hosts = dict((name, {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "celery_config_path": self.config_path(name),
        }) for name in self.hosts)
        with open(self.inventory, "w") as handle:
            yaml.safe_dump({"all": {"children": {"celery_fleet": {"hosts": hosts}}}}, handle)
        play = [{
            "name": "Config phase over the fleet",
            "hosts": "celery_fleet",
            "gather_facts": False,
            "serial": serial,
            "tasks": [{
                "name": "Rewrite the Celery config with lean result settings",
                "celery_ops.lean_results.celery_config": {
                    "path": "{{ celery_config_path }}",
                    "settings": LEAN_SETTINGS,
                },
            }],
        }]
        with open(self.playbook, "w") as handle:
            yaml.safe_dump(play, handle, sort_keys=False)
        self.reset()

    def config_path(self, host):
        return os.path.join(self.workdir, "hosts", host, "celeryconfig.py")

    def reset(self):
        """Every host back to the original config file."""
        for host in self.hosts:
            os.makedirs(os.path.dirname(self.config_path(host)), exist_ok=True)
            shutil.copyfile(SOURCE_CONFIG, self.config_path(host))

    def run(self, forks=10):
        """One ansible-playbook run of the config phase; returns the PlaybookRun."""
        return run_playbook(self.playbook, COLLECTIONS_ROOT, inventory=self.inventory,
                            env={"ANSIBLE_FORKS": str(forks)})


__all__ = ["Fleet", "LEAN_SETTINGS", "SOURCE_CONFIG", "host_names"]
