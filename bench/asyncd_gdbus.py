#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Minimal direct D-Bus clients of asyncd (GDBus through PyGObject), for the benchmark.

  asyncd_gdbus.py submit --address ADDR -m N -o DIR -i URLFILE
      SubmitJob with every line of URLFILE ("URL [FILENAME]"), count the results
      carried by Completed signals until Finished; print a JSON summary. This is
      asyncd without asyncctl: the difference to `asyncctl submit` is the CLI's cost.

  asyncd_gdbus.py cancel-probe --address ADDR --pid DAEMON_PID --url-prefix URL
                  -n 2000 -m 1000 --inflight 1000 -o DIR
      Submit n tasks against a slow server with concurrency m, wait until
      `inflight` transfers are on the wire (ActiveTransfers and the daemon's
      socket count), then call CancelJob and measure, from just before the call:
        finished_ms      until the Finished signal arrives here (read off the socket by
                         GDBus's reader thread; finished_dispatched_ms: when the main
                         loop has dispatched it, after unpacking every Completed),
        sockets_ms       until the daemon's socket count (/proc/PID/fd) is back to
                         its count before the job,
        reply_ms         until the CancelJob reply arrives,
      and check that every task got exactly one result. Prints JSON.
"""

import argparse
import json
import os
import sys
import threading
import time

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
from procstat import socket_count  # noqa: E402

NAME = "io.asyncd1"
MANAGER_PATH = "/io/asyncd1"
MANAGER = "io.asyncd1.Manager"
JOB = "io.asyncd1.Job"


def read_tasks(path, prefix=None):
    tasks = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts:
                tasks.append((parts[0], parts[1] if len(parts) > 1 else ""))
    return tasks


class Client:
    def __init__(self, address):
        flags = (Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION)
        self.conn = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)
        self.job_path = None
        self.pending = []           # signals that came before we knew our job's path
        self.results = {}           # index -> status
        self.duplicates = 0
        self.finished = None
        self.t_finished = None
        self.t_finished_wire = None     # when the Finished message was read off the socket
        self.conn.signal_subscribe(None, JOB, None, None, None, Gio.DBusSignalFlags.NONE, self._on_signal)

    def watch_finished_on_the_wire(self):
        """A GDBus filter runs in GDBus's reader thread as each message arrives, before the main loop
        dispatches (and Python unpacks) it: its time is the client-side arrival of Finished."""
        def on_message(conn, msg, incoming):
            if incoming and self.t_finished_wire is None and msg.get_member() == "Finished" \
                    and msg.get_interface() == JOB and msg.get_path() == self.job_path:
                self.t_finished_wire = time.monotonic()
            return msg
        self.filter_id = self.conn.add_filter(on_message)

    def _on_signal(self, conn, sender, path, iface, member, params):
        if self.job_path is None:
            self.pending.append((path, member, params))
            return
        if path != self.job_path:
            return
        if member == "Completed":
            for (seq, index, status, code, nbytes, fname, err) in params.unpack()[0]:
                if index in self.results:
                    self.duplicates += 1
                self.results[index] = status
        elif member == "Finished":
            self.t_finished = time.monotonic()
            self.finished = params.unpack()

    def submit(self, tasks, directory, options):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fdlist = Gio.UnixFDList.new_from_array([fd])   # takes ownership
            params = GLib.Variant("(a(ss)ha{sv}t)", (tasks, 0, options, 0))
            r, _ = self.conn.call_with_unix_fd_list_sync(NAME, MANAGER_PATH, MANAGER, "SubmitJob", params,
                                                         GLib.VariantType("(to)"), Gio.DBusCallFlags.NONE,
                                                         600_000, fdlist, None)
        except BaseException:
            raise
        job_id, path = r.unpack()
        self.job_id, self.job_path = job_id, path
        pending, self.pending = self.pending, []
        for (p, m, params) in pending:
            self._on_signal(None, None, p, JOB, m, params)
        return job_id, path

    def pump_until(self, cond, timeout):
        ctx = GLib.MainContext.default()
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                return False
            if not ctx.iteration(False):
                time.sleep(0.0002)
        return True

    def active_transfers(self):
        r = self.conn.call_sync(NAME, MANAGER_PATH, "org.freedesktop.DBus.Properties", "Get",
                                GLib.Variant("(ss)", (MANAGER, "ActiveTransfers")), GLib.VariantType("(v)"),
                                Gio.DBusCallFlags.NONE, 5000, None)
        return r.unpack()[0]

    def summary(self):
        counts = {}
        for s in self.results.values():
            counts[s] = counts.get(s, 0) + 1
        return counts


def cmd_submit(a):
    tasks = read_tasks(a.i)
    c = Client(a.address)
    c.submit(tasks, a.o, {"concurrency": GLib.Variant("u", a.m)})
    if not c.pump_until(lambda: c.finished is not None, a.timeout):
        print(json.dumps({"error": "timeout", "results": len(c.results)}))
        return 1
    out = {"state": c.finished[0], "ok": c.finished[1], "not_found": c.finished[2], "error": c.finished[3],
           "cancelled": c.finished[4], "results": len(c.results), "duplicates": c.duplicates,
           "by_status": c.summary()}
    print(json.dumps(out))
    return 0 if out["results"] == len(tasks) and out["duplicates"] == 0 else 1


def cmd_cancel_probe(a):
    ids = []
    with open(a.i) as f:
        ids = [line.split() for line in f if line.strip()]
    tasks = [(parts[0], parts[1] if len(parts) > 1 else "") for parts in ids[:a.n]]
    c = Client(a.address)
    c.watch_finished_on_the_wire()
    base_sockets = socket_count(a.pid)
    c.submit(tasks, a.o, {"concurrency": GLib.Variant("u", a.m)})
    # wait until `inflight` transfers are on the wire
    deadline = time.monotonic() + 60
    active = socks = 0
    while time.monotonic() < deadline:
        active = c.active_transfers()
        socks = socket_count(a.pid) - base_sockets
        if active >= a.inflight and socks >= a.inflight:
            break
        c.pump_until(lambda: False, 0.02)
    else:
        print(json.dumps({"error": f"only {active} transfers / {socks} sockets in flight after 60 s"}))
        return 1
    time.sleep(a.settle)        # let the requests reach the server
    c.pump_until(lambda: False, 0.01)
    active = c.active_transfers()
    socks_before = socket_count(a.pid) - base_sockets
    results_before = len(c.results)

    t_sock = [None]
    stop = threading.Event()

    def watch_sockets(t0):
        while not stop.is_set():
            n = socket_count(a.pid)
            if n is not None and n <= base_sockets:
                t_sock[0] = time.monotonic()
                return
            time.sleep(0.0005)

    sys.setswitchinterval(0.0005)
    t0 = time.monotonic()
    th = threading.Thread(target=watch_sockets, args=(t0,), daemon=True)
    th.start()
    c.conn.call_sync(NAME, MANAGER_PATH, MANAGER, "CancelJob", GLib.Variant("(t)", (c.job_id,)),
                     None, Gio.DBusCallFlags.NONE, 10_000, None)
    t_reply = time.monotonic()
    c.pump_until(lambda: c.finished is not None, 10)
    th.join(5)
    stop.set()
    ms = (lambda t: None if t is None else round((t - t0) * 1000, 2))
    out = {"n": len(tasks), "concurrency": a.m, "inflight_target": a.inflight,
           "active_at_cancel": active, "sockets_at_cancel": socks_before, "base_sockets": base_sockets,
           "results_before_cancel": results_before,
           "reply_ms": ms(t_reply), "finished_ms": ms(c.t_finished_wire),
           "finished_dispatched_ms": ms(c.t_finished), "sockets_ms": ms(t_sock[0]),
           "results": len(c.results), "duplicates": c.duplicates, "by_status": c.summary(),
           "finished": list(c.finished) if c.finished else None,
           "sockets_after": socket_count(a.pid)}
    print(json.dumps(out))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("submit")
    s.add_argument("--address", required=True)
    s.add_argument("-m", type=int, default=5)
    s.add_argument("-o", required=True)
    s.add_argument("-i", required=True)
    s.add_argument("--timeout", type=float, default=3600)
    c = sub.add_parser("cancel-probe")
    c.add_argument("--address", required=True)
    c.add_argument("--pid", type=int, required=True)
    c.add_argument("-n", type=int, default=2000)
    c.add_argument("-m", type=int, default=1000)
    c.add_argument("--inflight", type=int, default=1000)
    c.add_argument("--settle", type=float, default=0.3)
    c.add_argument("-o", required=True)
    c.add_argument("-i", required=True)
    a = p.parse_args()
    return cmd_submit(a) if a.cmd == "submit" else cmd_cancel_probe(a)


if __name__ == "__main__":
    sys.exit(main())
