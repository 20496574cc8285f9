# SPDX-License-Identifier: MIT
"""A private dbus-daemon and the real asyncd on it, for the benchmark.

The bus is started once per benchmark session (`dbus-daemon --session`, so it
has the session bus's 1 GB message limits, needed by the million-task job);
asyncd is started fresh for every measured run, so that its VmHWM is the peak of
that run alone and no finished job of an earlier run stays in its memory.
"""

import functools
import os
import shutil
import signal
import subprocess
import tempfile
import time

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

NAME = "io.asyncd1"
UNIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "units", "asyncd.service.in")


@functools.cache
def unit_environment(path=UNIT):
    """The Environment= assignments of asyncd's unit: the daemon is measured in the environment
    systemd gives it."""
    env = {}
    with open(path) as f:
        for line in f:
            if line.startswith("Environment="):
                for assignment in line.split("=", 1)[1].split():
                    key, _, value = assignment.partition("=")
                    env[key] = value
    return env


def _connect(address):
    flags = (Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION)
    return Gio.DBusConnection.new_for_address_sync(address, flags, None, None)


def _name_owner_pid(conn, name):
    try:
        r = conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                           "GetConnectionUnixProcessID", GLib.Variant("(s)", (name,)),
                           GLib.VariantType("(u)"), Gio.DBusCallFlags.NONE, 2000, None)
        return r.unpack()[0]
    except GLib.Error:
        return None


class Bus:
    def __init__(self, workdir):
        if not shutil.which("dbus-daemon"):
            raise RuntimeError("dbus-daemon not found: install dbus (scripts/install-deps.sh)")
        self.dir = tempfile.mkdtemp(prefix="bus-", dir=workdir)
        self.log_path = os.path.join(workdir, "logs", "dbus-daemon.log")
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile",
                                          "--print-address=1", f"--address=unix:path={self.dir}/bus"],
                                         stdout=subprocess.PIPE, stderr=log, text=True,
                                         start_new_session=True)
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            with open(self.log_path, errors="replace") as f:
                raise RuntimeError("dbus-daemon did not start: " + f.read()[-2000:])
        self.pid = self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Daemon:
    def __init__(self, binary, bus, log_path, extra=(), wrapper=()):
        self.binary = binary
        cmd = list(wrapper) + [binary, f"--bus-address={bus.address}", "--max-transfers=2000",
               "--max-tasks-per-job=1000000", "--log-level=warning"] + list(extra)
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env=os.environ | unit_environment())
        self.pid = self.proc.pid
        conn = _connect(bus.address)
        try:
            deadline = time.monotonic() + 20
            while True:
                if _name_owner_pid(conn, NAME) == self.pid:
                    break
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("asyncd did not take its bus name:\n" + self.read_log())
                time.sleep(0.01)
        finally:
            conn.close_sync(None)

    def alive(self):
        return self.proc.poll() is None

    def read_log(self):
        self.log.flush()
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode
