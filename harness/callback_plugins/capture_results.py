"""Test-only callback: writes every task result as one JSON line to $LEAN_RESULTS_CAPTURE."""
import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: capture_results
type: aggregate
short_description: write task results to a JSON-lines file (tests only)
description: Writes each task result to the file named by the LEAN_RESULTS_CAPTURE variable.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "capture_results"
    CALLBACK_NEEDS_ENABLED = False

    def _write(self, status, result):
        path = os.environ.get("LEAN_RESULTS_CAPTURE")
        if not path:
            return
        record = {
            "status": status,
            "task": result._task.get_name(),
            "action": result._task.action,
            "host": result._host.get_name(),
            "result": result._result,
        }
        with open(path, "a") as handle:
            handle.write(json.dumps(record, default=str) + "\n")

    def v2_runner_on_ok(self, result):
        self._write("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write("failed", result)

    def v2_runner_on_skipped(self, result):
        self._write("skipped", result)

    def v2_runner_on_unreachable(self, result):
        self._write("unreachable", result)
