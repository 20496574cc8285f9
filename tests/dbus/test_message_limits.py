#!/usr/bin/python3
"""Replies and signals stay within a bus's message limit (dbus-daemon's default, 32 MiB, is a
system bus's), whatever the clients send: a message over it makes the bus disconnect the daemon,
and every job is lost. A job's name has a bounded length, and the number of finished jobs kept,
which all appear in ListJobs and GetManagedObjects, is bounded too."""

import itertools
import os
import tempfile

from gi.repository import Gio, GLib

from asyncd_test import (JOB, MANAGER, MANAGER_PATH, NAME, Bus, Client, Daemon, check, dbus_error, env, finish,
                         session_daemon)

INVALID = "org.freedesktop.DBus.Error.InvalidArgs"
OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"


def main():
    with session_daemon() as (bus, daemon):
        job_names(bus)
        results_page_budget(bus)
    finished_jobs_capped()
    finished_tasks_capped()
    first_finished_goes_after_clock_step()
    finish()


def list_jobs(c):
    return c.call(MANAGER_PATH, MANAGER, "ListJobs", reply="(a(tossuuuuu))")[0]


def managed_objects(c):
    return c.call(MANAGER_PATH, OBJECT_MANAGER, "GetManagedObjects", reply="(a{oa{sa{sv}}})")[0]


def job_names(bus):
    """Three jobs named with 12 MB each made ListJobs a 36 MB reply: the bus disconnected asyncd."""
    nginx = env("ASYNCD_TEST_NGINX_URL")
    out = tempfile.mkdtemp(prefix="asyncd-names-")
    c = Client(bus.address)
    longest = "é" * 127 + "n"
    job_id, path = c.submit([(f"{nginx}/flags/br/br.gif", "")], out, {"name": GLib.Variant("s", longest)})
    check(c.get_property(path, JOB, "Name") == longest, "a name of 255 bytes is taken")
    err, msg = dbus_error(lambda: c.submit([(f"{nginx}/flags/de/de.gif", "")], out,
                                           {"name": GLib.Variant("s", "n" * 256)}))
    check(err == INVALID and '"name" must be at most 255 bytes, not 256' in (msg or ""),
          f"a name of 256 bytes is refused: {err}: {msg}")
    big = "n" * (12 * 1024 * 1024)
    refused = 0
    for cc in ("fr", "it", "es"):
        err, _ = dbus_error(lambda: c.submit([(f"{nginx}/flags/{cc}/{cc}.gif", "")], out,
                                             {"name": GLib.Variant("s", big)}))
        refused += err == INVALID
    check(refused == 3, f"names of 12 MB are refused ({refused} of 3)")
    err, _ = dbus_error(lambda: list_jobs(c))
    err2, _ = dbus_error(lambda: managed_objects(c))
    check(err is None and err2 is None and c.name_has_owner(NAME),
          f"ListJobs and GetManagedObjects answer, asyncd stays on the bus ({err}, {err2})")
    c.close()


def results_page_budget(bus):
    """A GetResults page ends at 8 MiB, whatever max asks for: a reply over the bus's limit would
    cost the daemon its connection. 27,000 results whose errors each name a 255-byte file ("NAME
    already exists") take about 8.6 MiB: GetResults(0, 65536) returns part of them in a reply of at
    most 8 MiB and the cursor to go on from; the next page has the rest; each result comes once."""
    nginx = env("ASYNCD_TEST_NGINX_URL")
    n = 27000
    out = tempfile.mkdtemp(prefix="asyncd-results-page-")
    names = [f"{i:06d}" + "x" * 249 for i in range(n)]
    for name in names:
        open(os.path.join(out, name), "w").close()
    c = Client(bus.address)
    c.subscribe()
    job_id, path = c.submit([(f"{nginx}/flags/br/br.gif", name) for name in names], out,
                            {"concurrency": GLib.Variant("u", 100)})
    check(c.pump(lambda: c.job_signals(path, "Finished"), 120) and
          c.job_signals(path, "Finished")[0][:4] == ("done", 0, 0, n), f"job {job_id}: {n} tasks, each an error")

    def page(cursor):
        msg = Gio.DBusMessage.new_method_call(NAME, path, JOB, "GetResults")
        msg.set_body(GLib.Variant("(uu)", (cursor, 65536)))
        reply = c.conn.send_message_with_reply_sync(msg, Gio.DBusSendMessageFlags.NONE, 60000, None)[0]
        reply.to_gerror()
        return len(reply.to_blob(Gio.DBusCapabilityFlags.NONE)), *reply.get_body().unpack()

    size, first, cursor = page(0)
    check(0 < len(first) < n and cursor == len(first) and size <= 8 * 1024 * 1024,
          f"the first page: {len(first)} results in {size} bytes, cursor {cursor}")
    size2, rest, cursor2 = page(cursor)
    check(cursor2 == n and [r[0] for r in first + rest] == list(range(n)) and size2 <= 8 * 1024 * 1024,
          f"the second page: {len(rest)} more, cursor {cursor2}")
    check(all(r[2:6] == ("error", 200, 0, "") and r[6] == f"{names[r[1]]} already exists" for r in first + rest),
          "each result says its file already exists")
    check(sorted(os.listdir(out)) == names and all(os.path.getsize(os.path.join(out, name)) == 0 for name in names[:100]),
          "the existing files are untouched, nothing else there")
    c.close()


def finished_jobs_capped():
    """Small jobs submitted in a loop piled up for --keep-finished (300 s): a client submitting
    ~1,500 a second made GetManagedObjects over 32 MiB (and tens of seconds to build). Here on a
    bus with a limit of 256 KiB, 800 jobs (~400 KiB of objects) with at most 300 finished kept."""
    nginx = env("ASYNCD_TEST_NGINX_URL")
    bus = Bus("session", limits={"max_message_size": 256 * 1024})
    daemon = Daemon(bus, "--max-finished-jobs=300")
    try:
        c = Client(bus.address)
        c.subscribe()
        out = tempfile.mkdtemp(prefix="asyncd-many-jobs-")
        ids = []
        for i in range(800):
            try:
                ids.append(c.submit([(f"{nginx}/none/{i}", "")], out)[0])
            except GLib.Error:              # over --max-jobs-per-owner for a moment: wait for one
                c.pump(lambda: False, 0.05)
        finished = lambda: len([a for (p, m, a) in c.signals if m == "JobFinished"])  # noqa: E731
        check(c.pump(lambda: finished() == len(ids), 60) and len(ids) >= 700,
              f"{len(ids)} one-task jobs submitted and finished")
        check(c.pump(lambda: len(list_jobs(c)) == 300, 10), f"300 of them kept ({len(list_jobs(c))})")
        err, _ = dbus_error(lambda: managed_objects(c))
        check(err is None and len(managed_objects(c)) == 300 and c.name_has_owner(NAME),
              f"GetManagedObjects answers with the 300 jobs ({err})")
        kept = sorted(j[0] for j in list_jobs(c))
        finish_order = [a[0] for (p, m, a) in c.signals if m == "JobFinished"]
        check(kept == sorted(finish_order[-300:]),
              f"the last 300 to finish are the ones kept ({kept[:1]}...{kept[-1:]})")
        err, _ = dbus_error(lambda: c.call(MANAGER_PATH, MANAGER, "GetJob", "t", (ids[0],), "(o)"))
        removed = [a[0] for (p, m, a) in c.signals if m == "InterfacesRemoved"]
        check(err == "io.asyncd1.Error.NoSuchJob" and f"/io/asyncd1/job/{ids[0]}" in removed,
              "the first job is gone, with InterfacesRemoved")
        c.close()
    finally:
        rc = daemon.stop()
        bus.stop()
    check(rc == 0, f"asyncd exits 0 ({rc})")


def finished_tasks_capped():
    """Past --max-finished-tasks the jobs that finished first go (their tasks' memory is freed), but
    never the one that just finished, even if it alone has more tasks."""
    nginx = env("ASYNCD_TEST_NGINX_URL")
    with session_daemon("--max-finished-tasks=5") as (bus, daemon):
        c = Client(bus.address)
        c.subscribe()
        out = tempfile.mkdtemp(prefix="asyncd-finished-tasks-")
        serial = itertools.count()

        def run_job(n):
            k = next(serial)
            job_id, path = c.submit([(f"{nginx}/none/{k}-{i}", "") for i in range(n)], out)
            c.pump(lambda: c.job_signals(path, "Finished"), 20)
            return job_id

        def removed():
            return {int(x[0].rsplit("/", 1)[1]) for (p, m, x) in c.signals if m == "InterfacesRemoved"}

        def kept_after(expected):
            """The jobs kept, once they are the expected ones and the others' removal was signalled."""
            gone = set(range(1, max(expected) + 1)) - set(expected)
            c.pump(lambda: sorted(j[0] for j in list_jobs(c)) == expected and removed() >= gone, 5)
            return sorted(j[0] for j in list_jobs(c))

        a, b = run_job(3), run_job(2)
        check(kept_after([a, b]) == [a, b], "jobs of 3 and 2 tasks: 5 tasks, both kept")
        cc = run_job(1)
        kept = kept_after([b, cc])
        check(kept == [b, cc] and removed() == {a},
              f"one more task: the first job goes, with InterfacesRemoved ({kept}, removed {sorted(removed())})")
        d = run_job(7)
        kept = kept_after([d])
        check(kept == [d] and removed() == {a, b, cc},
              f"a job of 7 tasks, over the bound alone: the others go, it stays ({kept}, removed {sorted(removed())})")
        check(c.get_property(f"/io/asyncd1/job/{d}", JOB, "State") == "done", "its results are queryable")
        c.close()


def first_finished_goes_after_clock_step():
    """Past --max-finished-jobs the job that finished first goes, also after the wall clock was set
    back: ordered by FinishedUSec, the job that had just finished went at once instead."""
    nginx = env("ASYNCD_TEST_NGINX_URL")
    step = os.path.join(tempfile.mkdtemp(prefix="asyncd-clock-"), "back")
    os.environ["CLOCK_BACK_FILE"] = step
    bus = Bus("session")
    daemon = Daemon(bus, "--max-finished-jobs=3",
                    wrapper=("env", f"LD_PRELOAD={env('ASYNCD_TEST_CLOCK_BACK')}",
                             "ASAN_OPTIONS=verify_asan_link_order=0:" + os.environ.get("ASAN_OPTIONS", "")))
    try:
        c = Client(bus.address)
        c.subscribe()
        out = tempfile.mkdtemp(prefix="asyncd-clock-jobs-")

        def run_job(i):
            job_id, path = c.submit([(f"{nginx}/none/{i}", "")], out)
            c.pump(lambda: c.job_signals(path, "Finished"), 20)
            return job_id

        ids = [run_job(i) for i in range(3)]
        open(step, "w").close()
        ids.append(run_job(3))
        c.pump(lambda: any(m == "InterfacesRemoved" for (p, m, a) in c.signals), 10)
        kept = sorted(j[0] for j in list_jobs(c))
        check(kept == ids[1:], f"after the clock went back, the first finished job went: {ids} kept as {kept}")
        c.close()
    finally:
        if os.path.exists(step):
            os.unlink(step)
        rc = daemon.stop()
        bus.stop()
    check(rc == 0, f"asyncd exits 0 ({rc})")


if __name__ == "__main__":
    main()
