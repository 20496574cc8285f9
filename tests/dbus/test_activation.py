#!/usr/bin/python3
"""D-Bus activation and idle exit: a call to io.asyncd1 starts asyncd; with no jobs it releases its
name and exits after the idle time; calls made all along are answered, by the old or a newly
activated instance (none lost), including one that reaches the instance after its idle timer
fired (gdb holds it there), since it releases its name before exiting; a SubmitJob that reaches
the instance while it gives up its name is refused with ShuttingDown (a job there would be
unreachable), and the retry runs; a finished job is kept for --keep-finished, then removed with
InterfacesRemoved, and only then does the daemon go idle."""

import os
import select
import shutil
import signal
import subprocess
import tempfile
import time

from gi.repository import Gio, GLib

from asyncd_test import JOB, MANAGER, MANAGER_PATH, NAME, Bus, Client, alive, check, dbus_error, env, finish


def main():
    asyncd = env("ASYNCD_BIN")
    bus = Bus("session", service_exec=f"{asyncd} --user --exit-idle-time=1 --keep-finished=1")
    try:
        run(bus)
    finally:
        bus.stop()
    finish()


def run(bus):
    nginx = env("ASYNCD_TEST_NGINX_URL")
    c = Client(bus.address)
    c.subscribe()
    check(not c.name_has_owner(NAME), "io.asyncd1 not running before the first call")
    t0 = time.monotonic()
    jobs = c.call(MANAGER_PATH, MANAGER, "ListJobs", reply="(a(tossuuuuu))")
    check(jobs == ([],), f"first call activated asyncd ({(time.monotonic() - t0) * 1000:.0f} ms)")
    pid = c.daemon_pid()
    check(alive(pid), f"asyncd running as pid {pid}")

    # A daemon that is being called is not idle: 2 s of calls, 50 ms apart, one instance.
    for _ in range(40):
        c.call(MANAGER_PATH, MANAGER, "ListJobs", reply="(a(tossuuuuu))")
        time.sleep(0.05)
    check(alive(pid) and c.daemon_pid() == pid, "still the same instance after 2 s of calls (idle time 1 s)")

    # Calls around the moment it gives up: every one is answered, by it or by a new instance.
    answered, pids = 0, {pid}
    for pause in (0.9, 0.95, 1.0, 1.02, 1.05, 1.1, 1.2, 1.5):
        time.sleep(pause)
        c.call(MANAGER_PATH, MANAGER, "ListJobs", reply="(a(tossuuuuu))")
        answered += 1
        try:
            pids.add(c.daemon_pid())
        except Exception:
            pass
    check(answered == 8, "all 8 calls around the idle deadline answered")
    check(not alive(pid), "the first instance exited after being idle")
    check(len(pids) >= 2, f"later calls activated new instances: pids {sorted(pids)}")

    call_while_idle_timer_fires(c)
    # The bus decides whether the SubmitJob or the ReleaseName goes first: try until it was the former.
    check(any(submit_while_releasing_name(bus, c) for _ in range(5)),
          "a SubmitJob reached the daemon while it released its name (the refusal was exercised)")

    # Let it go idle again, then submit: SubmitJob itself activates.
    c.pump(lambda: not c.name_has_owner(NAME), 5)
    check(not c.name_has_owner(NAME), "name released when idle")
    out = tempfile.mkdtemp(prefix="asyncd-activation-")
    job_id, path = c.submit([(f"{nginx}/flags/br/br.gif", "")], out)
    check(job_id == 1, "SubmitJob activated a fresh instance (job ids start at 1 again)")
    pid = c.daemon_pid()
    c.pump(lambda: c.job_signals(path, "Finished"), 10)
    check(os.listdir(out) == ["br.gif"], "the job ran")
    check(c.get_property(path, JOB, "State") == "done", "finished job is queryable")
    c.pump(lambda: [a for (p, m, a) in c.signals if m == "InterfacesRemoved" and a[0] == path], 5)
    check([a for (p, m, a) in c.signals if m == "InterfacesRemoved" and a[0] == path],
          "finished job removed after --keep-finished with InterfacesRemoved")
    c.pump(lambda: not alive(pid), 5)
    check(not alive(pid), "then the daemon exits on idle")
    c.close()


class Debugger:
    """gdb attached to a process, to hold it at a breakpoint while the test acts."""

    def __init__(self, pid):
        gdb = shutil.which("gdb")
        check(gdb is not None, "gdb installed (scripts/install-deps.sh)")
        self.proc = subprocess.Popen([gdb, "-q", "-nx", "-p", str(pid), "-ex", "set pagination off",
                                      "-ex", "set confirm off"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.output = ""

    def send(self, *commands):
        self.proc.stdin.write("".join(f"{c}\n" for c in commands))
        self.proc.stdin.flush()

    def wait_for(self, texts, timeout):
        """The first of texts that gdb prints, or None (gdb's prompt ends no line: read chunks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t in texts:
                if t in self.output:
                    return t
            if select.select([self.proc.stdout], [], [], 0.1)[0]:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                self.output += chunk.decode(errors="replace")
        return None

    def close(self):
        """Detaches, even while the inferior runs (gdb reads no command then: interrupt it first),
        so that no breakpoint stays planted in a process gdb no longer traces."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
                self.send("delete", "detach", "quit")
            self.proc.communicate(timeout=30)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.communicate()


HIT, EXITED = " on_idle_timer (", "exited"
GDB_FAILED = ("ptrace: ", "No such process", "Could not attach")


def hold_daemon_in_idle_timer(c, attempts=3):
    """gdb attached to the daemon and stopped at the start of on_idle_timer(); None if the daemon
    went idle before gdb got hold of it (a slow attach on a loaded machine) every time."""
    for attempt in range(attempts):
        c.call(MANAGER_PATH, MANAGER, "ListJobs", reply="(a(tossuuuuu))")     # the idle time restarts
        pid = c.daemon_pid()
        gdb = Debugger(pid)
        gdb.send("break on_idle_timer", "continue")
        seen = gdb.wait_for((HIT, EXITED) + GDB_FAILED, 60)
        if seen == HIT:
            return gdb, pid
        gdb.close()
        check(seen not in GDB_FAILED, f"gdb attached to asyncd: {gdb.output[-2000:]}")
        print(f"# attempt {attempt + 1}: the daemon went idle before gdb held it ({seen})")
        c.pump(lambda: not alive(pid), 10)
    check(False, "gdb held the daemon in its idle timer")
    return None, None


def call_while_idle_timer_fires(c):
    """A call that the bus routes to the daemon after its idle timer fired, but before it let go of
    its name, is served: asyncd releases the name first and exits only when nothing is left.
    gdb holds the daemon at the start of on_idle_timer() while the call is routed to it."""
    reply = {}

    def on_reply(conn, result, _):
        try:
            reply["ok"] = conn.call_finish(result).unpack()
        except GLib.Error as e:
            reply["error"] = Gio.DBusError.get_remote_error(e) or e.message

    gdb, pid = hold_daemon_in_idle_timer(c)
    try:
        c.conn.call(NAME, MANAGER_PATH, MANAGER, "ListJobs", None, GLib.VariantType("(a(tossuuuuu))"),
                    Gio.DBusCallFlags.NONE, 20000, None, on_reply, None)
        c.conn.flush_sync(None)
        time.sleep(0.3)         # the bus routes it to the held daemon, which still owns the name
        check(alive(pid) and c.daemon_pid() == pid, "the held daemon still owns the name")
    finally:
        gdb.close()
    c.pump(lambda: reply, 20)
    check(reply.get("ok") == ([],), f"a call routed to the daemon as its idle timer fired is answered ({reply})")
    c.pump(lambda: not alive(pid), 10)
    check(not alive(pid), "then that instance exits")
    # Had the call reached a new instance instead, that one would own the name for its idle time.
    check(not c.name_has_owner(NAME), "the held instance answered it: no other instance was started")


def submit_while_releasing_name(bus, c):
    """With the bus stopped, a SubmitJob waits in it while the daemon's idle timer fires and its
    ReleaseName waits too; resumed, the bus routes the SubmitJob to the daemon first."""
    nginx = env("ASYNCD_TEST_NGINX_URL")
    c.pump(lambda: not c.name_has_owner(NAME), 10)      # a fresh instance, with no job kept
    c.call(MANAGER_PATH, MANAGER, "ListJobs", reply="(a(tossuuuuu))")
    old = c.daemon_pid()
    out = tempfile.mkdtemp(prefix="asyncd-idle-race-")
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    tasks = [(f"{nginx}/flags/ad/ad.gif", "")]
    reply = {}

    def on_reply(conn, result, _):
        try:
            reply["ok"] = conn.call_with_unix_fd_list_finish(result)[0].unpack()
        except GLib.Error as e:
            reply["error"] = Gio.DBusError.get_remote_error(e)

    time.sleep(0.5)
    os.kill(bus.proc.pid, signal.SIGSTOP)
    try:
        c.conn.call_with_unix_fd_list(NAME, MANAGER_PATH, MANAGER, "SubmitJob",
                                      GLib.Variant("(a(ss)ha{sv}t)", (tasks, 0, {}, 0)), GLib.VariantType("(to)"),
                                      Gio.DBusCallFlags.NONE, 20000, Gio.UnixFDList.new_from_array([os.dup(fd)]), None,
                                      on_reply, None)
        c.conn.flush_sync(None)
        time.sleep(1.2)         # the idle time (1 s) passes: asyncd gives up its name
    finally:
        os.kill(bus.proc.pid, signal.SIGCONT)
    os.close(fd)
    c.pump(lambda: reply, 20)
    exercised = "ok" not in reply
    if not exercised:
        # Routed after the release (the bus activated a new instance): the job must be reachable.
        print("# the bus routed SubmitJob after the release this time: the refusal was not exercised")
        job_id, path = reply["ok"]
        name, _ = dbus_error(lambda: c.call(MANAGER_PATH, MANAGER, "GetJob", "t", (job_id,), "(o)"))
        check(name is None and c.daemon_pid() != old, f"a job accepted during the release is reachable ({name})")
    else:
        check(reply.get("error") == "io.asyncd1.Error.ShuttingDown",
              f"SubmitJob while the name is released: refused with ShuttingDown ({reply})")
        job_id, path = c.submit(tasks, out)
    c.pump(lambda: c.job_signals(path, "Finished"), 10)
    check(os.listdir(out) == ["ad.gif"] and c.daemon_pid() != old, f"the job ran, in a new instance: {os.listdir(out)}")
    c.signals.clear()       # the next instance numbers its jobs from 1 again: the same paths
    return exercised


if __name__ == "__main__":
    main()
