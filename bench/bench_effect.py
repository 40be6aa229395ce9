"""The effect of the rollout on a real workload, with time scaled down to fit in about 2 minutes.

The demo shop (demo/app: 30 tasks, 5% of calls read a result) runs under its stock config with
results kept 600 s (a day, scaled down 144x) at 60 calls/s against a private redis-server, with two
Celery workers. The rollout (demo/playbooks/rollout.yml: audit, rewrite, restart producers and
workers, maxmemory/policy, wait, verify) then sets result_expires = 30 s while the workload runs.

Steady state under the stock config would take 600 s to reach, so it is computed: the measured
store rate (result keys written per second) x 600 s, and the measured bytes per key on top of the
server's memory before the workload. Under the lean config steady state is reached in 30 s and is
measured. Time to a verified fall: the pre-wait part of the rollout plus the wait, with expedite
measured; without expedite the module's forecast of the last old key's expiry from the keys' TTLs
(returned at once, not waited).
"""
import json
import os
import tempfile
import time

from harness.collection import COLLECTIONS_ROOT
from harness.ansible_runner import run_playbook

from demo.__main__ import FALLBACK_PLAYBOOK, write_inventory
from demo.stack import Stack

STOCK_EXPIRES = 600
LEAN_EXPIRES = 30
RATE = 60.0
REFERENCE_TEAM_KEYS_RATIO = 7.0
GOAL_KEYS_RATIO = 20.0
GOAL_MEMORY_RATIO = 10.0


def _rollout(stack, run_dir, expedite, wait_timeout):
    variables = {
        "demo_config_path": stack.config_path,
        "demo_settings": {"task_ignore_result": True, "task_store_errors_even_if_ignored": True,
                          "result_expires": LEAN_EXPIRES, "result_extended": False},
        "demo_audit_paths": [stack.app_dir],
        "demo_restart_command": stack.restart_script,
        "demo_redis": {"login_host": stack.backend.host, "login_port": stack.backend.port},
        "demo_maxmemory": "256mb",
        "demo_min_reduction": 10.0,
        "demo_expedite": expedite,
        "demo_wait_timeout": wait_timeout,
        "demo_report_dir": run_dir,
    }
    inventory = write_inventory(run_dir, variables)
    started = time.monotonic()
    run = run_playbook(FALLBACK_PLAYBOOK, COLLECTIONS_ROOT, inventory=inventory, timeout=600)
    seconds = time.monotonic() - started
    if run.returncode:
        raise RuntimeError("rollout failed:\n%s" % run.output[-4000:])
    return seconds, run.result("result_keys_wait")


def _stock_phase(stack, window):
    """Result keys stored per second, bytes per key, and the traffic, over ``window`` seconds."""
    keys_first, memory_first, started = stack.result_keys(), stack.backend.admin().info("memory")["used_memory"], time.monotonic()
    measured = stack.measure(window)
    elapsed = time.monotonic() - started
    new_keys = measured["result_keys"] - keys_first
    return new_keys / elapsed, (measured["used_memory"] - memory_first) / float(max(new_keys, 1)), measured


def run():
    run_dir = tempfile.mkdtemp(prefix="bench-effect-")
    stack = Stack(run_dir, rate=RATE)
    try:
        stack.prepare(stock_expires=STOCK_EXPIRES)
        stack.start_redis()
        stack.write_restart_script()
        stack.start_workers()
        base_memory = stack.backend.admin().info("memory")["used_memory"]
        stack.start_workload()
        time.sleep(10)  # warm up: every process connected, queues at their usual depth
        store_rate, bytes_per_key, stock = _stock_phase(stack, 30)
        before_keys = store_rate * STOCK_EXPIRES
        before_memory = base_memory + before_keys * bytes_per_key

        # Rollout without expedite: the wait returns at once with the forecast of the fall.
        plain_seconds, plain_wait = _rollout(stack, run_dir, expedite=False, wait_timeout=5)
        pre_wait = plain_seconds - plain_wait["elapsed"]
        # The last old key's expiry (the 10x target is met within seconds of it: the old keys were
        # written over the last minute with the same 600 s TTL).
        without_expedite = pre_wait + plain_wait["forecast"]["last_expiry_after"]
        # The same rollout with expedite (the config is lean already, so no second restart).
        _seconds, expedited_wait = _rollout(stack, run_dir, expedite=True, wait_timeout=300)
        with_expedite = pre_wait + expedited_wait["elapsed"]

        with open(os.path.join(run_dir, "waits.json"), "w") as handle:
            json.dump({"pre_wait": pre_wait, "plain": plain_wait, "expedited": expedited_wait}, handle, indent=2)
        time.sleep(max(0.0, LEAN_EXPIRES + 5 - expedited_wait["elapsed"]))  # every pre-rollout key expired
        after = stack.measure(10)
        stack.stop_workload()
        ledger = stack.drain(60)
    finally:
        stack.stop()
    keys_ratio = before_keys / max(after["result_keys"], 1)
    memory_ratio = before_memory / after["used_memory"]
    lost = max(0, ledger["expected"] - ledger["done"])
    bad_reads = ledger["reads_failed"] + ledger["reads_hung"]
    return [
        dict(name="steady-state result keys, lean %ds (measured) vs stock %ds (store rate x expiry)" % (
            LEAN_EXPIRES, STOCK_EXPIRES), value=after["result_keys"], unit="keys", reference="stock config",
            reference_value=round(before_keys), ratio=round(keys_ratio, 1)),
        dict(name="fewer steady-state result keys (x), vs the reference team's 7x (goal 20x)", value=round(keys_ratio, 1),
             unit="x", reference="reference team", reference_value=REFERENCE_TEAM_KEYS_RATIO,
             ratio=round(keys_ratio / REFERENCE_TEAM_KEYS_RATIO, 1)),
        dict(name="steady-state used memory, lean (measured) vs stock (base + rate x expiry x bytes/key)",
             value=after["used_memory"], unit="bytes", reference="stock config", reference_value=round(before_memory),
             ratio=round(memory_ratio, 1)),
        dict(name="less used memory at steady state (x) (goal 10x)", value=round(memory_ratio, 1), unit="x",
             reference="goal", reference_value=GOAL_MEMORY_RATIO, ratio=round(memory_ratio / GOAL_MEMORY_RATIO, 2)),
        dict(name="task runs lost across the rollout (of %d)" % ledger["expected"], value=lost, unit="tasks",
             reference="goal", reference_value=0, ratio=None),
        dict(name="reads of results failed or hung (of %d)" % ledger["reads"], value=bad_reads, unit="reads",
             reference="goal", reference_value=0, ratio=None),
        dict(name="rollout to verified fall, with expedite (measured) vs without (forecast from TTLs)",
             value=round(with_expedite, 1), unit="s", reference="without expedite",
             reference_value=round(without_expedite, 1), ratio=round(without_expedite / with_expedite, 1)),
        dict(name="Redis commands/s, lean vs stock (same workload, %.0f result keys/s stored before)" % store_rate,
             value=round(after["commands_per_s"]), unit="commands/s", reference="stock config",
             reference_value=round(stock["commands_per_s"]), ratio=round(stock["commands_per_s"] / after["commands_per_s"], 2)),
        dict(name="Redis network bytes/s (in+out), lean vs stock", value=round(after["net_bytes_per_s"]), unit="bytes/s",
             reference="stock config", reference_value=round(stock["net_bytes_per_s"]),
             ratio=round(stock["net_bytes_per_s"] / after["net_bytes_per_s"], 2)),
    ]
