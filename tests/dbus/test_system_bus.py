#!/usr/bin/python3
"""On a private system-type bus that loads our policy file: root may own the name and submit;
an unprivileged caller (nobody, via setpriv) may list jobs and read properties but gets
AccessDenied for SubmitJob, GetResults and Cancel of root's job, does not receive its Completed
signals, and cannot own the name."""

import json
import os
import subprocess
import tempfile

from gi.repository import GLib

from asyncd_test import JOB, MANAGER, MANAGER_PATH, Bus, Client, Daemon, check, env, finish

NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]

# Runs as nobody: tries each call and prints the outcome as JSON.
PROBE = r'''
import json, os, sys
import gi
from gi.repository import Gio, GLib
addr, path, job_id, outdir = sys.argv[1:5]
conn = Gio.DBusConnection.new_for_address_sync(addr, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
                                               Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
def call(obj, iface, method, sig=None, args=None, fds=None):
    try:
        fdl = Gio.UnixFDList.new_from_array(fds) if fds else None
        r, _ = conn.call_with_unix_fd_list_sync("io.asyncd1", obj, iface, method,
                                                GLib.Variant(sig, args) if sig else None, None, 0, -1, fdl, None)
        return ["ok", str(r.unpack())]
    except GLib.Error as e:
        return [Gio.DBusError.get_remote_error(e), e.message]
out = {}
out["ListJobs"] = call("/io/asyncd1", "io.asyncd1.Manager", "ListJobs")
out["GetState"] = call(path, "org.freedesktop.DBus.Properties", "Get", "(ss)", ("io.asyncd1.Job", "State"))
out["GetResults"] = call(path, "io.asyncd1.Job", "GetResults", "(uu)", (0, 10))
out["GetTasks"] = call(path, "io.asyncd1.Job", "GetTasks", "(uu)", (0, 10))
out["Cancel"] = call(path, "io.asyncd1.Job", "Cancel")
out["AddTasks"] = call(path, "io.asyncd1.Job", "AddTasks", "(a(ss)t)", ([("http://127.0.0.1:1/y.gif", "")], 0))
out["CancelJob"] = call("/io/asyncd1", "io.asyncd1.Manager", "CancelJob", "(t)", (int(job_id),))
out["Introspect"] = call("/io/asyncd1", "org.freedesktop.DBus.Introspectable", "Introspect")
d = os.open(outdir, os.O_RDONLY | os.O_DIRECTORY)
out["SubmitJob"] = call("/io/asyncd1", "io.asyncd1.Manager", "SubmitJob", "(a(ss)ha{sv}t)",
                        ([("http://127.0.0.1:1/x.gif", "")], 0, {}, 0), [d])
out["PropertiesSet"] = call(path, "org.freedesktop.DBus.Properties", "Set", "(ssv)",
                            ("io.asyncd1.Job", "Name", GLib.Variant("s", "x")))
try:
    r = conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName",
                       GLib.Variant("(su)", ("io.asyncd1", 4)), None, 0, -1, None)
    out["RequestName"] = ["ok", str(r.unpack())]
except GLib.Error as e:
    out["RequestName"] = [Gio.DBusError.get_remote_error(e), e.message]
print(json.dumps(out))
'''

# Runs as nobody: collects the members of the signals it receives from asyncd until JobFinished.
LISTENER = r'''
import json, sys, time
from gi.repository import Gio, GLib
conn = Gio.DBusConnection.new_for_address_sync(sys.argv[1], Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
                                               Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
seen = []
conn.signal_subscribe("io.asyncd1", None, None, None, None, 0, lambda *a: seen.append(a[4]))
conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId",
               None, None, 0, -1, None)          # the match rule is in place once this returns
print("ready", flush=True)
ctx, deadline = GLib.MainContext.default(), time.monotonic() + 20
while "JobFinished" not in seen and time.monotonic() < deadline:
    ctx.iteration(False) or time.sleep(0.01)
print(json.dumps(seen))
'''


def main():
    bus = Bus("system")
    daemon = Daemon(bus)
    try:
        run(bus)
    finally:
        check(daemon.stop() == 0, "asyncd exits 0 on SIGTERM")
        bus.stop()
    finish()


def run(bus):
    delay = env("ASYNCD_TEST_FAULT_DELAY_URL")
    out = tempfile.mkdtemp(prefix="asyncd-system-")
    os.chmod(out, 0o755)
    root = Client(bus.address)
    root.subscribe()
    job_id, path = root.submit([(f"{delay}/delay/2000/flags/{c}/{c}.gif", "") for c in ("br", "de")], out,
                               {"name": GLib.Variant("s", "root's job")})
    check(root.get_property(path, JOB, "Owner") == 0, "root's job is owned by uid 0")

    nobody_dir = tempfile.mkdtemp(prefix="asyncd-nobody-")
    os.chmod(nobody_dir, 0o777)
    probe = subprocess.run(NOBODY + ["/usr/bin/python3", "-c", PROBE, bus.address, path, str(job_id), nobody_dir],
                           capture_output=True, text=True, timeout=30)
    check(probe.returncode == 0, "probe as nobody ran" + (": " + probe.stderr if probe.returncode else ""))
    r = json.loads(probe.stdout)
    for k, v in r.items():
        print(f"     nobody {k}: {v[0]}: {v[1][:120]}")
    denied = "org.freedesktop.DBus.Error.AccessDenied"
    check(r["ListJobs"][0] == "ok" and "root's job" in r["ListJobs"][1], "nobody may list jobs")
    check(r["GetState"][0] == "ok", "nobody may read properties")
    check(r["Introspect"][0] == "ok", "nobody may introspect")
    check(r["GetResults"][0] == denied and "only its owner or root" in r["GetResults"][1],
          "nobody: GetResults of root's job -> AccessDenied from the daemon")
    check(r["GetTasks"][0] == denied and "only its owner or root" in r["GetTasks"][1],
          "nobody: GetTasks of root's job -> AccessDenied from the daemon")
    check(r["Cancel"][0] == denied and "only its owner or root" in r["Cancel"][1], "nobody: Cancel -> AccessDenied")
    check(r["CancelJob"][0] == denied, "nobody: CancelJob -> AccessDenied")
    check(r["AddTasks"][0] == denied and "only its owner or root" in r["AddTasks"][1],
          "nobody: AddTasks on root's job -> AccessDenied, checked before whether the job takes tasks")
    check(r["SubmitJob"][0] == denied and "only root may submit" in r["SubmitJob"][1],
          "nobody: SubmitJob -> AccessDenied (root only on the system bus)")
    check(r["PropertiesSet"][0] == denied, "nobody: Properties.Set denied by the bus policy")
    check(r["RequestName"][0] == denied, "nobody may not own io.asyncd1 (bus policy)")
    check(os.listdir(nobody_dir) == [], "nothing created for nobody")

    check(root.get_property(path, JOB, "State") == "running", "root's job still running after nobody's attempts")
    root.call(MANAGER_PATH, MANAGER, "CancelJob", "t", (job_id,))
    check(root.pump(lambda: root.job_signals(path, "Finished"), 10), "root may cancel its job")
    res, _ = root.get_results(path)
    check(len(res) == 2, "root may read the results")
    signals_reach_only_root(bus, root, out)
    root.close()


def signals_reach_only_root(bus, root, out):
    """Completed carries file names and errors: the bus policy keeps it from other users."""
    listener = subprocess.Popen(NOBODY + ["/usr/bin/python3", "-c", LISTENER, bus.address],
                                stdout=subprocess.PIPE, text=True)
    try:
        check(listener.stdout.readline().strip() == "ready", "listener as nobody subscribed")
        nginx = env("ASYNCD_TEST_NGINX_URL")
        job_id, path = root.submit([(f"{nginx}/flags/fr/fr.gif", "")], out)
        check(root.pump(lambda: root.job_signals(path, "Finished"), 10) and root.job_signals(path, "Completed"),
              "root receives Completed and Finished")
        seen = json.loads(listener.communicate(timeout=30)[0])
    finally:
        listener.kill()
    check("JobFinished" in seen and "Finished" in seen and "Completed" not in seen,
          f"nobody receives the job's other signals but not Completed: {sorted(set(seen))}")


if __name__ == "__main__":
    main()
