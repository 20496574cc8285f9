#!/usr/bin/python3
"""A GDBus client runs the flags job through the real asyncd on a private session bus: every result
arrives exactly once, in seq order, Finished comes last, the files equal the fixtures; a second
client attaching late catches up with GetResults; PropertiesChanged is coalesced to about ten a
second. A job of 70,000 tasks, cancelled at once: its results come in Completed batches of at most
4,096, and GetResults/GetTasks in pages of 65,536."""

import filecmp
import os
import tempfile
import time

from asyncd_test import (JOB, MANAGER, MANAGER_PATH, Bus, Client, Daemon, check, env, finish, flag_codes,
                         temporary_files)

UNKNOWN = ["xx", "qq", "zz"]


def main():
    nginx = env("ASYNCD_TEST_NGINX_URL")
    delay = env("ASYNCD_TEST_FAULT_DELAY_URL")
    fixtures = env("ASYNCD_FIXTURES")
    bus = Bus("session")
    daemon = Daemon(bus)
    try:
        run(bus, nginx, delay, fixtures)
        large_job(bus, delay)
    finally:
        check(daemon.stop() == 0, "asyncd exits 0 on SIGTERM")
        bus.stop()
    finish()


def run(bus, nginx, delay, fixtures):
    codes = flag_codes() + UNKNOWN
    tasks = [(f"{nginx}/flags/{c}/{c}.gif", "") for c in codes]
    out = tempfile.mkdtemp(prefix="asyncd-flags-")

    a = Client(bus.address)
    a.subscribe()
    changed_at = []     # arrival times of the job's PropertiesChanged
    a.subscriptions.append(a.conn.signal_subscribe(
        None, "org.freedesktop.DBus.Properties", "PropertiesChanged", None, None, 0,
        lambda *args: changed_at.append((args[2], time.monotonic()))))
    job_id, path = a.submit(tasks, out, {"concurrency": GLib_u(20), "name": GLib_s("flags")})
    check(path == f"/io/asyncd1/job/{job_id}", f"SubmitJob returned id {job_id} and path {path}")
    check(a.pump(lambda: a.job_signals(path, "Finished")), "Finished arrives")

    results = a.completed_results(path)
    seqs = [r[0] for r in results]
    indexes = sorted(r[1] for r in results)
    check(seqs == list(range(len(codes))), f"{len(results)} results in Completed signals, seq 0..{len(codes) - 1}")
    check(indexes == list(range(len(codes))), "every task index exactly once")
    n_signals = len(a.job_signals(path, "Completed"))
    check(n_signals < len(results), f"results batched: {len(results)} results in {n_signals} Completed signals")

    by_index = {r[1]: r for r in results}
    ok = [by_index[i] for i in range(194)]
    check(all(r[2] == "ok" and r[3] == 200 and r[6] == "" for r in ok), "194 flags ok with HTTP 200")
    check(all(r[2] == "not_found" and r[3] == 404 and r[5] == "" and r[6] == "HTTP 404 Not Found"
              for r in (by_index[194 + i] for i in range(3))),
          "the 3 unknown codes are not_found with HTTP 404, and say so")
    same = all(filecmp.cmp(os.path.join(fixtures, "flags", c, f"{c}.gif"), os.path.join(out, f"{c}.gif"),
                           shallow=False) for c in codes[:194])
    check(same, "all 194 files byte-identical to the fixtures")
    check(sorted(os.listdir(out)) == sorted(f"{c}.gif" for c in codes[:194]), "no other file, no temporary file")
    check(sum(r[4] for r in ok) == sum(os.path.getsize(os.path.join(out, f"{c}.gif")) for c in codes[:194]),
          "reported bytes equal the file sizes")

    finished = a.job_signals(path, "Finished")
    check(finished == [("done", 194, 3, 0, 0)], f"Finished exactly once: {finished}")
    order = [m for (p, m, _) in a.signals if p == path]
    last_completed = max(i for i, m in enumerate(order) if m == "Completed")
    check(order.index("Finished") > last_completed, "Finished after the last Completed")
    props = [args for (p, m, args) in a.signals if p == path and m == "PropertiesChanged"]
    check(props and props[-1][1].get("State") == "done" and props[-1][1].get("Ok") == 194,
          "PropertiesChanged with the final State and counters")
    check(props[-1][1].get("FinishedUSec", 0) == a.get_property(path, JOB, "FinishedUSec") > 0,
          "the final PropertiesChanged carries FinishedUSec")
    check(order.index("Finished") > max(i for i, m in enumerate(order) if m == "PropertiesChanged"),
          "final PropertiesChanged before Finished")

    # 40 results 25 ms apart: PropertiesChanged coalesced to about ten a second (a late loop only
    # spaces them further), plus the final one.
    staggered = [(f"{delay}/delay/{25 * i}/flags/{c}/{c}.gif", "") for i, c in enumerate(codes[:40])]
    _, path3 = a.submit(staggered, tempfile.mkdtemp(prefix="asyncd-staggered-"), {"concurrency": GLib_u(40)})
    check(a.pump(lambda: a.job_signals(path3, "Finished")), "staggered job finished")
    n_changed = len([t for (p, t) in changed_at if p == path3])
    # The job's own duration by the daemon's clock, not by when this client got the signals: a
    # client slowed down receives them in bunches.
    span = (a.get_property(path3, JOB, "FinishedUSec") - a.get_property(path3, JOB, "CreatedUSec")) / 1e6
    n_completed = len(a.job_signals(path3, "Completed"))
    check(span > 0.5 and n_changed <= 10 * span + 2,
          f"PropertiesChanged coalesced: {n_changed} in a job of {span:.2f} s ({n_completed} Completed signals)")
    a.pump(lambda: any(m == "JobFinished" for (p, m, _) in a.signals), 10)
    mgr = [args for (p, m, args) in a.signals if p == MANAGER_PATH]
    check((job_id, path) in mgr, "JobNew on the manager")
    check((job_id, path, "done") in mgr, "JobFinished on the manager")

    # A second client, attaching after the end, replays everything.
    b = Client(bus.address)
    replay = b.all_results(path, chunk=50)
    check(replay == results, "late client: GetResults in chunks of 50 equals the Completed stream")
    check(b.get_property(path, JOB, "State") == "done" and b.get_property(path, JOB, "Total") == len(codes),
          "late client: State done, Total 197")
    check(b.get_property(path, JOB, "Name") == "flags", "Name property")
    listed, cursor = [], 0
    while True:
        chunk, cursor2 = b.call(path, JOB, "GetTasks", "uu", (cursor, 64), "(a(ss)u)")
        listed += chunk
        if cursor2 == cursor:
            break
        cursor = cursor2
    check(listed == [(u, f"{c}.gif") for (u, _), c in zip(tasks, codes)],
          "GetTasks (extension) lists every task with the file name the daemon derived")
    managed = b.conn.call_sync("io.asyncd1", MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                               "GetManagedObjects", None, None, 0, -1, None).unpack()[0]
    check(path in managed and JOB in managed[path], "ObjectManager lists the job")
    jobs = b.call(MANAGER_PATH, MANAGER, "ListJobs", reply="(a(tossuuuuu))")[0]
    check((job_id, path, "flags", "done", 197, 194, 3, 0, 0) in jobs, "ListJobs row")

    # Attaching in the middle of a running job: signals from now on plus GetResults from 0.
    out2 = tempfile.mkdtemp(prefix="asyncd-late-")
    slow = [(f"{delay}/flags/{c}/{c}.gif", "") for c in codes[:40]]
    job2, path2 = a.submit(slow, out2, {"concurrency": GLib_u(5)})
    a.pump(lambda: a.completed_results(path2) and len(a.completed_results(path2)) >= 10)
    c = Client(bus.address)
    c.subscribe()
    replay, cursor = c.get_results(path2, 0, 1000)
    check(len(replay) >= 10, f"mid-job attach: {len(replay)} results replayed")
    c.pump(lambda: c.job_signals(path2, "Finished"))
    merged = {r[0]: r for r in replay}
    for r in c.completed_results(path2):
        check(merged.get(r[0], r) == r, f"seq {r[0]} identical in replay and signal") if r[0] in merged else None
        merged[r[0]] = r
    check(sorted(merged) == list(range(40)), "mid-job attach: replay + signals give every seq exactly once")
    check(temporary_files(out2) == [] and len(os.listdir(out2)) == 40, "40 files, no temporary files")
    for client in (a, b, c):
        client.close()


def large_job(bus, delay):
    n = 70000
    out = tempfile.mkdtemp(prefix="asyncd-large-")
    c = Client(bus.address)
    c.subscribe()
    tasks = [(f"{delay}/flags/ad/ad.gif", f"t{i}") for i in range(n)]
    job_id, path = c.submit(tasks, out, {"concurrency": GLib_u(1)})
    c.call(path, JOB, "Cancel")
    check(c.pump(lambda: c.job_signals(path, "Finished"), 120), "70,000 tasks cancelled: Finished")
    batches = [args[0] for args in c.job_signals(path, "Completed")]
    check(max(map(len, batches)) <= 4096 and [r[0] for b in batches for r in b] == list(range(n)),
          f"every result once, in Completed batches of at most 4,096 (largest {max(map(len, batches))})")
    for method, signature in (("GetResults", "(a(uusutss)u)"), ("GetTasks", "(a(ss)u)")):
        first, cursor = c.call(path, JOB, method, "uu", (0, 0xffffffff), signature)
        rest, end = c.call(path, JOB, method, "uu", (cursor, 0xffffffff), signature)
        check((len(first), cursor, len(rest), end) == (65536, 65536, n - 65536, n),
              f"{method}: pages of 65,536 ({len(first)}, {cursor}, {len(rest)}, {end})")
    check(os.listdir(out) == [], "no file")
    c.close()


def GLib_u(v):
    from gi.repository import GLib
    return GLib.Variant("u", v)


def GLib_s(v):
    from gi.repository import GLib
    return GLib.Variant("s", v)


if __name__ == "__main__":
    main()
