#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A scripted stand-in for asyncd, to test how asyncctl copes with every legal (and some
illegal) interleaving of replies and signals, which the real daemon produces only by chance.

It owns io.asyncd1 on the session bus and implements the contract's interfaces from the
introspection XML in dbus/ (so it cannot drift from it). Nothing is downloaded: a task's URL
decides its result, and the job's "name" option picks the scenario.

  URL http://fake/ok/NAME   -> ok, filename NAME, 100 bytes
  URL http://fake/nf/NAME   -> not_found (404)
  URL http://fake/err/NAME  -> error, "HTTP 503 Service Unavailable"

Scenarios (results complete in task order; seq = index):
  normal     reply, then Completed in batches of 2 every 10 ms, final PropertiesChanged, Finished
  early      every Completed, PropertiesChanged and Finished sent BEFORE the SubmitJob reply
  dup        every batch repeats the previous batch's results (duplicates to drop)
  gap        Completed only for even seqs; odd ones exist only in GetResults()
  lost-tail  Completed for the first half only, then Finished
  nofinish   every Completed and the final PropertiesChanged, but never Finished
  foreign    an impostor connection emits a bogus Completed on the job's path, and the daemon
             emits results of another job (path .../job/999), before the real results
  vanish     one result, then the daemon exits (drops off the bus)
  hang       reply, then nothing until Cancel(): the rest become "cancelled", Finished(cancelled)
  deaf       reply, then nothing, ever: Cancel() is answered but changes nothing
  slowreply  the reply comes after 1.5 s, then like hang
  refuse     InvalidArgs "task 0: scripted refusal"
  exiting*   (any name starting so) the first 3 SubmitJob calls get io.asyncd1.Error.ShuttingDown
             (a daemon on its way out), the 4th is served like normal
  slowexit   every SubmitJob call gets io.asyncd1.Error.ShuttingDown, 0.5 s late
  stopping   every SubmitJob call gets io.asyncd1.Error.ShuttingDown

Usage: fake-asyncd.py DBUS_XML_DIR   (prints "READY" on stdout once the name is owned)
"""

import os
import sys

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

NAME = "io.asyncd1"
MANAGER_PATH = "/io/asyncd1"
MANAGER = "io.asyncd1.Manager"
JOB = "io.asyncd1.Job"
RESULTS = "a(uusutss)"

xml_dir = sys.argv[1]
manager_info = Gio.DBusNodeInfo.new_for_xml(open(os.path.join(xml_dir, "io.asyncd1.Manager.xml")).read())
job_info = Gio.DBusNodeInfo.new_for_xml(open(os.path.join(xml_dir, "io.asyncd1.Job.xml")).read())

loop = GLib.MainLoop()
conn = Gio.bus_get_sync(Gio.BusType.SESSION, None)
jobs = {}
refusals = {}                   # scenario name -> SubmitJob calls refused


def result_for(seq, index, url):
    kind, _, name = url.removeprefix("http://fake/").partition("/")
    if kind == "ok":
        return (seq, index, "ok", 200, 100, name, "")
    if kind == "nf":
        return (seq, index, "not_found", 404, 0, "", "HTTP 404 Not Found")
    return (seq, index, "error", 503, 0, "", "HTTP 503 Service Unavailable")


class Job:
    def __init__(self, job_id, tasks, options):
        self.id = job_id
        self.path = f"/io/asyncd1/job/{job_id}"
        self.tasks = tasks
        self.name = options.get("name", "")
        self.concurrency = options.get("concurrency", 5)
        self.state = "running"
        self.done = []                  # results in seq order: what GetResults() returns
        self.created = GLib.get_real_time()
        self.finished = 0
        self.reg = conn.register_object(self.path, job_info.interfaces[0], self.on_call, self.on_get, None)

    def counts(self):
        c = {"ok": 0, "not_found": 0, "error": 0, "cancelled": 0}
        for r in self.done:
            c[r[2]] += 1
        return c

    def props(self):
        c = self.counts()
        return {
            "Id": GLib.Variant("t", self.id), "Name": GLib.Variant("s", self.name),
            "Owner": GLib.Variant("u", os.getuid()), "State": GLib.Variant("s", self.state),
            "Total": GLib.Variant("u", len(self.tasks)), "Ok": GLib.Variant("u", c["ok"]),
            "NotFound": GLib.Variant("u", c["not_found"]), "Error": GLib.Variant("u", c["error"]),
            "Cancelled": GLib.Variant("u", c["cancelled"]),
            "BytesDownloaded": GLib.Variant("t", 100 * c["ok"]),
            "Concurrency": GLib.Variant("u", self.concurrency),
            "CreatedUSec": GLib.Variant("t", self.created), "FinishedUSec": GLib.Variant("t", self.finished),
        }

    def on_get(self, connection, sender, path, interface, prop):
        return self.props()[prop]

    def on_call(self, connection, sender, path, interface, method, params, invocation):
        if method == "GetResults":
            cursor, limit = params.unpack()
            res = [r for r in self.done if r[0] >= cursor][:limit]
            nxt = res[-1][0] + 1 if res else cursor
            invocation.return_value(GLib.Variant(f"({RESULTS}u)", (res, nxt)))
        elif method == "Cancel":
            invocation.return_value(None)
            if self.name != "deaf":
                self.cancel()
        else:
            invocation.return_dbus_error("org.freedesktop.DBus.Error.UnknownMethod", method)

    # --- emission helpers ---

    def complete(self, n, signal=True, path=None):
        """Records the next n results; emits one Completed for them unless signal is False."""
        start = len(self.done)
        new = [result_for(start + i, start + i, self.tasks[start + i][0]) for i in range(n)]
        self.done.extend(new)
        if signal:
            self.emit("Completed", GLib.Variant(f"({RESULTS})", (new,)), path)
        return new

    def emit(self, member, params, path=None, interface=JOB):
        conn.emit_signal(None, path or self.path, interface, member, params)

    def properties_changed(self):
        p = self.props()
        changed = {k: p[k] for k in ("State", "Ok", "NotFound", "Error", "Cancelled", "BytesDownloaded",
                                     "FinishedUSec")}
        self.emit("PropertiesChanged", GLib.Variant("(sa{sv}as)", (JOB, changed, [])),
                  interface="org.freedesktop.DBus.Properties")

    def finish(self, state="done", signal=True):
        self.state = state
        self.finished = GLib.get_real_time()
        self.properties_changed()
        if signal:
            c = self.counts()
            self.emit("Finished", GLib.Variant("(suuuu)", (state, c["ok"], c["not_found"], c["error"],
                                                           c["cancelled"])))

    def remaining(self):
        return len(self.tasks) - len(self.done)

    def cancel(self):
        if self.state != "running":
            return
        start = len(self.done)
        new = [(start + i, start + i, "cancelled", 0, 0, "", "Cancelled") for i in range(self.remaining())]
        self.done.extend(new)
        if new:
            self.emit("Completed", GLib.Variant(f"({RESULTS})", (new,)))
        self.finish("cancelled")

    def batches(self, step, then):
        """Completes the tasks two at a time, one batch per 10 ms, then calls then()."""
        def tick():
            if self.remaining() == 0:
                then()
                return False
            step(min(2, self.remaining()))
            return True
        GLib.timeout_add(10, tick)


def run_scenario(job, invocation):
    reply = GLib.Variant("(to)", (job.id, job.path))
    s = job.name

    if s == "early":
        job.complete(job.remaining())
        job.finish()
        invocation.return_value(reply)
        return
    if s == "slowreply":
        GLib.timeout_add(1500, lambda: invocation.return_value(reply) or False)
        return

    invocation.return_value(reply)

    if s == "normal" or s.startswith("exiting"):
        job.batches(job.complete, job.finish)
    elif s == "dup":
        prev = []

        def step(n):
            nonlocal prev
            new = job.complete(n, signal=False)
            job.emit("Completed", GLib.Variant(f"({RESULTS})", (prev + new,)))
            prev = new
        job.batches(step, job.finish)
    elif s == "gap":
        def step(n):
            for _ in range(n):
                job.complete(1, signal=len(job.done) % 2 == 0)
        job.batches(step, job.finish)
    elif s == "lost-tail":
        half = len(job.tasks) // 2
        job.complete(half)
        job.complete(job.remaining(), signal=False)
        job.finish()
    elif s == "nofinish":
        job.batches(job.complete, lambda: job.finish(signal=False))
    elif s == "foreign":
        impostor = Gio.DBusConnection.new_for_address_sync(
            os.environ["DBUS_SESSION_BUS_ADDRESS"],
            Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
            None, None)
        bogus = [(0, 0, "error", 500, 0, "", "IMPOSTOR")]
        impostor.emit_signal(None, job.path, JOB, "Completed", GLib.Variant(f"({RESULTS})", (bogus,)))
        impostor.emit_signal(None, job.path, JOB, "Finished", GLib.Variant("(suuuu)", ("done", 0, 0, 1, 0)))
        impostor.flush_sync(None)
        job.emit("Completed", GLib.Variant(f"({RESULTS})", ([(0, 0, "error", 500, 0, "", "OTHER JOB")],)),
                 path="/io/asyncd1/job/999")
        job.emit("Finished", GLib.Variant("(suuuu)", ("cancelled", 0, 0, 0, 1)), path="/io/asyncd1/job/999")
        GLib.timeout_add(200, lambda: job.batches(job.complete, job.finish) or False)
    elif s == "vanish":
        job.complete(1)
        conn.flush_sync(None)
        GLib.timeout_add(100, lambda: os._exit(0))
    elif s == "hang":
        pass


def on_manager_call(connection, sender, path, interface, method, params, invocation):
    if method == "SubmitJob":
        tasks, _fd_index, options, flags = params.unpack()
        name = options.get("name", "")
        if name == "refuse":
            invocation.return_dbus_error("org.freedesktop.DBus.Error.InvalidArgs", "task 0: scripted refusal")
            return
        if name == "slowexit":
            GLib.timeout_add(500, lambda: invocation.return_dbus_error("io.asyncd1.Error.ShuttingDown",
                                                                       "asyncd is shutting down") or False)
            return
        if name == "stopping" or (name.startswith("exiting") and refusals.get(name, 0) < 3):
            refusals[name] = refusals.get(name, 0) + 1
            invocation.return_dbus_error("io.asyncd1.Error.ShuttingDown", "asyncd is shutting down")
            return
        job = Job(len(jobs) + 1, tasks, options)
        jobs[job.id] = job
        run_scenario(job, invocation)
    elif method == "GetJob":
        (job_id,) = params.unpack()
        if job_id not in jobs:
            invocation.return_dbus_error("io.asyncd1.Error.NoSuchJob", f"No job {job_id}")
        else:
            invocation.return_value(GLib.Variant("(o)", (jobs[job_id].path,)))
    elif method == "CancelJob":
        (job_id,) = params.unpack()
        jobs[job_id].cancel()
        invocation.return_value(None)
    elif method == "ListJobs":
        rows = []
        for j in jobs.values():
            c = j.counts()
            rows.append((j.id, j.path, j.name, j.state, len(j.tasks), c["ok"], c["not_found"], c["error"],
                         c["cancelled"]))
        invocation.return_value(GLib.Variant("(a(tossuuuuu))", (rows,)))
    else:
        invocation.return_dbus_error("org.freedesktop.DBus.Error.UnknownMethod", method)


def on_manager_get(connection, sender, path, interface, prop):
    return {"Version": GLib.Variant("s", "fake"), "ActiveTransfers": GLib.Variant("u", 0)}[prop]


conn.register_object(MANAGER_PATH, manager_info.interfaces[0], on_manager_call, on_manager_get, None)


def on_acquired(connection, name):
    print("READY", flush=True)


def on_lost(connection, name):
    os._exit(1)


Gio.bus_own_name_on_connection(conn, NAME, Gio.BusNameOwnerFlags.NONE, on_acquired, on_lost)
loop.run()
