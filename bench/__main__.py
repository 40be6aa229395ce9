"""`make bench`: run every bench/bench_*.py side by side in one run, write bench/results.json.

Each bench module exposes ``run() -> list of {name, value, unit, reference, reference_value,
ratio}``. Machines here are shared and noisy: compare the ratios, not the absolute figures.
"""
import importlib
import json
import os
import pkgutil
import sys
import time
import traceback

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(BENCH_DIR, "results.json")


def bench_modules(selected):
    names = sorted(info.name for info in pkgutil.iter_modules([BENCH_DIR]) if info.name.startswith("bench_"))
    return [name for name in names if not selected or any(word in name for word in selected)]


def format_table(entries):
    rows = [("benchmark", "value", "reference", "ratio")]
    for entry in entries:
        rows.append((
            entry["name"],
            "%s %s" % (_number(entry["value"]), entry["unit"]),
            "%s: %s %s" % (entry["reference"], _number(entry["reference_value"]), entry["unit"])
            if entry.get("reference_value") is not None else entry.get("reference") or "",
            _number(entry.get("ratio")),
        ))
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _number(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return "%.3g" % value if abs(value) < 100 else "%.0f" % value
    return str(value)


def main(argv):
    entries = []
    failures = []
    for name in bench_modules(argv):
        print("== %s" % name, flush=True)
        started = time.monotonic()
        try:
            module = importlib.import_module("bench." + name)
            produced = module.run()
        except Exception:  # one broken bench must not hide the others' figures
            failures.append(name)
            traceback.print_exc()
            continue
        for entry in produced:
            entry.setdefault("bench", name)
            print("   %s: %s %s" % (entry["name"], _number(entry["value"]), entry["unit"]), flush=True)
        entries.extend(produced)
        print("   (%.1f s)" % (time.monotonic() - started), flush=True)
    with open(RESULTS, "w") as handle:
        json.dump(entries, handle, indent=2)
    print()
    print(format_table(entries))
    print("\nwritten to %s" % os.path.relpath(RESULTS))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
