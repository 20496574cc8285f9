"""Helpers for the D-Bus tests: a private dbus-daemon per test, the real asyncd on it, and a
GDBus client (the library desktop services use) that submits jobs with a directory fd and
collects Completed/Finished signals.

Environment (set by meson): ASYNCD_BIN, ASYNCD_TEST_SESSION_BUS_CONF, ASYNCD_TEST_SYSTEM_BUS_CONF,
ASYNCD_FIXTURES; ASYNCD_TEST_NGINX_URL and ASYNCD_TEST_FAULT_*_URL from with-servers.py.
"""

import atexit
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

NAME = "io.asyncd1"
MANAGER_PATH = "/io/asyncd1"
MANAGER = "io.asyncd1.Manager"
JOB = "io.asyncd1.Job"

passed = 0
failed = 0

# Every temporary directory a test makes (tempfile.mkdtemp without dir=) lands under one root per
# test process, removed when the test exits, whatever it left there: output directories written
# by daemons of other users, buses, logs. 0755 so that the system-bus test's unprivileged daemon
# can reach its own directory inside.
# (Named after the test without "test_": the system bus's socket path inside must stay under 108 bytes.)
TMP_ROOT = tempfile.mkdtemp(prefix=f"asyncd-{os.path.basename(sys.argv[0]).removeprefix('test_').removesuffix('.py')}-")
os.chmod(TMP_ROOT, 0o755)
tempfile.tempdir = TMP_ROOT
atexit.register(shutil.rmtree, TMP_ROOT, ignore_errors=True)


def check(cond, what):
    """Records one check; a failed one is reported and counted, and the test exits non-zero."""
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {what}")
    else:
        failed += 1
        print(f"FAIL {what}")
    sys.stdout.flush()


def finish():
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def env(name):
    v = os.environ.get(name)
    if not v:
        print(f"{name} is not set (run this test through meson)", file=sys.stderr)
        sys.exit(77)
    return v


def flag_codes():
    with open(os.path.join(env("ASYNCD_FIXTURES"), "flags", "country_codes.txt")) as f:
        return [c.lower() for c in f.read().split()]


def flag_bytes(code):
    """The fixture flag a server sends for code."""
    with open(os.path.join(env("ASYNCD_FIXTURES"), "flags", code, f"{code}.gif"), "rb") as f:
        return f.read()


def alive(pid):
    """Whether process pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def dir_contents(directory):
    """{name: bytes} of every file in directory."""
    out = {}
    for name in os.listdir(directory):
        with open(os.path.join(directory, name), "rb") as f:
            out[name] = f.read()
    return out


class Bus:
    """A private dbus-daemon from the project's test configuration ("session" or "system")."""

    def __init__(self, kind="session", service_exec=None, limits=None):
        """limits: {name: value} stated in the configuration, e.g. {"max_message_size": 262144}."""
        self.dir = tempfile.mkdtemp(prefix=f"asyncd-{kind}-bus-")
        os.chmod(self.dir, 0o755)  # other users connect to a system bus
        services = os.path.join(self.dir, "services")
        os.mkdir(services)
        template = env("ASYNCD_TEST_SYSTEM_BUS_CONF" if kind == "system" else "ASYNCD_TEST_SESSION_BUS_CONF")
        with open(template) as f:
            conf = f.read().replace("%BUSDIR%", self.dir).replace("%SERVICEDIR%", services)
        stated = "".join(f'<limit name="{k}">{v}</limit>\n' for k, v in (limits or {}).items())
        conf = conf.replace("</busconfig>", stated + "</busconfig>")
        conf_path = os.path.join(self.dir, "bus.conf")
        with open(conf_path, "w") as f:
            f.write(conf)
        if service_exec:
            with open(os.path.join(services, "io.asyncd1.service"), "w") as f:
                f.write(f"[D-BUS Service]\nName={NAME}\nExec={service_exec}\n"
                        + ("User=root\n" if kind == "system" else ""))
        self.proc = subprocess.Popen(["dbus-daemon", f"--config-file={conf_path}", "--nofork", "--nopidfile",
                                      "--print-address=1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            raise RuntimeError("dbus-daemon did not start: " + self.proc.stderr.read())
        self.kind = kind

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Daemon:
    """The real asyncd, connected to a Bus."""

    def __init__(self, bus, *args, log=None, wrapper=()):
        # ASYNCD_TEST_WRAPPER, e.g. "valgrind --error-exitcode=99 ...", runs the daemon under a tool;
        # wrapper (a test's own, e.g. a private mount namespace) runs outside that.
        cmd = list(wrapper) + shlex.split(os.environ.get("ASYNCD_TEST_WRAPPER", "")) + [env("ASYNCD_BIN")]
        e = dict(os.environ)
        if bus.kind == "system":
            cmd.append("--system")
            e["DBUS_SYSTEM_BUS_ADDRESS"] = bus.address
        else:
            cmd.append(f"--bus-address={bus.address}")
        cmd += list(args)
        self.log_path = log or os.path.join(bus.dir, "asyncd.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=e, stdout=self.log, stderr=subprocess.STDOUT)
        client = Client(bus.address)
        deadline = time.monotonic() + 30
        while not client.name_has_owner(NAME):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("asyncd did not take its bus name:\n" + self.read_log())
            time.sleep(0.02)
        client.close()

    def read_log(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        if rc not in (0, -signal.SIGKILL) and sig == signal.SIGTERM:
            # A crash or a sanitizer report: the log is deleted with the bus directory.
            print(f"asyncd exited with {rc}; its log:\n{self.read_log()}", file=sys.stderr)
        return rc


@contextlib.contextmanager
def session_daemon(*args, **kwargs):
    """A private session bus with the real asyncd on it, both stopped afterwards. The daemon must
    exit 0 (or have been killed by the test): valgrind and the sanitizers report by its status."""
    bus = Bus("session")
    daemon = Daemon(bus, *args, **kwargs)
    try:
        yield bus, daemon
    finally:
        rc = daemon.stop()
        bus.stop()
        check(rc in (0, -signal.SIGKILL), f"asyncd exits 0 on SIGTERM (status {rc})")


class Client:
    """A GDBus connection to a private bus, with helpers for the io.asyncd1 API."""

    def __init__(self, address):
        flags = (Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION)
        self.conn = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)
        self.signals = []       # (path, member, args) in arrival order
        self.subscriptions = []

    def close(self):
        for s in self.subscriptions:
            self.conn.signal_unsubscribe(s)
        self.conn.close_sync(None)

    def name_has_owner(self, name):
        r = self.conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                "NameHasOwner", GLib.Variant("(s)", (name,)), GLib.VariantType("(b)"),
                                Gio.DBusCallFlags.NONE, -1, None)
        return r.unpack()[0]

    def daemon_pid(self):
        """The pid of the process that owns io.asyncd1 now."""
        return self.conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                   "GetConnectionUnixProcessID", GLib.Variant("(s)", (NAME,)),
                                   GLib.VariantType("(u)"), Gio.DBusCallFlags.NONE, -1, None).unpack()[0]

    def call(self, path, iface, method, signature=None, args=None, reply="()", fds=None, timeout_ms=30000):
        params = GLib.Variant(f"({signature})", args) if signature else None
        # The list takes ownership of what it is given: hand it copies.
        fdlist = Gio.UnixFDList.new_from_array([os.dup(fd) for fd in fds]) if fds else None
        r, _ = self.conn.call_with_unix_fd_list_sync(NAME, path, iface, method, params,
                                                     GLib.VariantType(reply) if reply else None,
                                                     Gio.DBusCallFlags.NONE, timeout_ms, fdlist, None)
        return r.unpack() if r is not None else None

    def submit(self, tasks, directory, options=None, flags=0):
        """tasks: [(url, filename)]; directory: a path (opened here) or an open fd."""
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) if isinstance(directory, str) \
            else directory
        try:
            return self.call(MANAGER_PATH, MANAGER, "SubmitJob", "a(ss)ha{sv}t",
                             (tasks, 0, options or {}, flags), "(to)", fds=[fd])
        finally:
            if isinstance(directory, str):
                os.close(fd)

    def subscribe(self):
        """Collects every signal from asyncd (Completed, Finished, PropertiesChanged, JobNew...)."""
        def on_signal(conn, sender, path, iface, member, params):
            self.signals.append((path, member, params.unpack()))
        self.subscriptions.append(self.conn.signal_subscribe(None, None, None, None, None,
                                                             Gio.DBusSignalFlags.NONE, on_signal))

    def pump(self, until, timeout=60):
        """Runs the GLib main context until until() is true or timeout seconds pass."""
        ctx = GLib.MainContext.default()
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                return False
            ctx.iteration(False) or time.sleep(0.002)
        return True

    def job_signals(self, path, member):
        return [args for (p, m, args) in self.signals if p == path and m == member]

    def completed_results(self, path):
        return [r for args in self.job_signals(path, "Completed") for r in args[0]]

    def get_results(self, path, cursor=0, maximum=1000):
        return self.call(path, JOB, "GetResults", "uu", (cursor, maximum), "(a(uusutss)u)")

    def all_results(self, path, chunk=50):
        out, cursor = [], 0
        while True:
            res, cursor2 = self.get_results(path, cursor, chunk)
            out += res
            if cursor2 == cursor:
                return out
            cursor = cursor2

    def get_property(self, path, iface, name):
        return self.conn.call_sync(NAME, path, "org.freedesktop.DBus.Properties", "Get",
                                   GLib.Variant("(ss)", (iface, name)), GLib.VariantType("(v)"),
                                   Gio.DBusCallFlags.NONE, -1, None).unpack()[0]


def dbus_error(fn):
    """Runs fn; returns (error name, message) of the D-Bus error it raised, or (None, None)."""
    try:
        fn()
    except GLib.Error as e:
        name = Gio.DBusError.get_remote_error(e)
        Gio.DBusError.strip_remote_error(e)
        return name, e.message
    return None, None


def temporary_files(directory):
    return [n for n in os.listdir(directory) if n.startswith(".#")]


def files_being_written(pid, directory):
    """The files process pid has open in directory; an unnamed one (O_TMPFILE) shows as
    "DIRECTORY/#INODE (deleted)"."""
    prefix = os.path.realpath(directory) + "/"
    open_files = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(prefix):
            open_files.append(target)
    return open_files
