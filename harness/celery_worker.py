"""A real Celery worker (solo pool) in its own process, stopped by pid."""
import os
import signal
import subprocess
import sys
import time

VENV_BIN = os.path.dirname(sys.executable)


class CeleryWorker:
    """``celery -A app worker`` run from ``app_dir`` with ``env`` added to the environment.

    The app reads its broker/backend from whatever ``env`` gives it (e.g. a
    ``CELERY_CONFIG_MODULE`` or a ``REDIS_URL``): the worker only supplies the process.
    """

    def __init__(self, app, app_dir, env=None, queues=None, log_path=None, extra_args=()):
        self.app = app
        self.app_dir = str(app_dir)
        self.env = dict(env or {})
        self.queues = queues
        self.log_path = log_path or os.path.join(self.app_dir, "worker-%d.log" % id(self))
        self.extra_args = list(extra_args)
        self.process = None

    def start(self, timeout=30.0):
        argv = [os.path.join(VENV_BIN, "celery"), "-A", self.app, "worker", "-P", "solo", "-c", "1",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info",
                "-n", "test-%d@%%h" % os.getpid()]
        if self.queues:
            argv += ["-Q", ",".join(self.queues)]
        argv += self.extra_args
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [self.app_dir, env.get("PYTHONPATH")]))
        env.update(self.env)
        self._log = open(self.log_path, "ab")
        self._offset = self._log.tell()
        self.process = subprocess.Popen(argv, cwd=self.app_dir, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("celery worker exited with %s:\n%s" % (self.process.returncode, self.read_log()))
            if " ready." in self.read_log(since_start=True):
                return
            time.sleep(0.1)
        raise RuntimeError("celery worker not ready after %ss:\n%s" % (timeout, self.read_log()))

    def read_log(self, since_start=False):
        try:
            with open(self.log_path, "rb") as handle:
                if since_start:
                    handle.seek(self._offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout=20.0):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # warm shutdown: finishes the task at hand
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def restart(self):
        self.stop()
        return self.start()
