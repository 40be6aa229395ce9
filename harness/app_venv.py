"""A venv of another Python (3.12 or 3.13) with Celery and redis-py: the app's own interpreter.

Built once and cached outside the clone (``~/.cache/lean_results/appvenv-<py>``); pyenv's shims
are broken here, so the real interpreters under ``~/.pyenv/versions`` are used.
"""
import glob
import os
import subprocess
import sys

CACHE = os.path.expanduser("~/.cache/lean_results")
PACKAGES = ("celery[redis]>=5.3,<5.8",)


def base_interpreter():
    """A real 3.12 or 3.13 interpreter under pyenv, other than the one running the tests."""
    running = "%d.%d" % sys.version_info[:2]
    for minor in [m for m in ("3.12", "3.13") if m != running]:
        found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/%s.*/bin/python%s" % (minor, minor))))
        if found:
            return minor, found[-1]
    raise RuntimeError("no Python 3.12 or 3.13 under ~/.pyenv/versions: the app venv needs one")


def app_python(minor=None):
    """The app venv's python (built on first use)."""
    if minor is None:
        minor, base = base_interpreter()
    else:
        found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/%s.*/bin/python%s" % (minor, minor))))
        base = found[-1]
    venv = os.path.join(CACHE, "appvenv-%s" % minor)
    python = os.path.join(venv, "bin", "python")
    marker = os.path.join(venv, ".installed")
    if not os.path.exists(marker):
        subprocess.run([base, "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"] + list(PACKAGES),
                       check=True)
        open(marker, "w").close()
    return python
