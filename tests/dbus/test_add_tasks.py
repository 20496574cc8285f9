#!/usr/bin/python3
"""Jobs larger than one message (API extension): SubmitJob with flag 0x1 keeps the job open,
Job.AddTasks appends chunks (checked against every earlier task), the job finishes only after the
last chunk, and a closed job refuses more tasks."""

import os
import tempfile

from gi.repository import GLib

from asyncd_test import JOB, MANAGER_PATH, Bus, Client, Daemon, check, dbus_error, env, finish, flag_codes

INVALID = "org.freedesktop.DBus.Error.InvalidArgs"


def main():
    # dbus-daemon's default message limit (a system bus's), stated: long_urls_paged() needs it.
    bus = Bus("session", limits={"max_message_size": 32 * 1024 * 1024})
    daemon = Daemon(bus, "--max-tasks-per-job=250")
    try:
        run(bus)
    finally:
        check(daemon.stop() == 0, "asyncd exits 0")
    daemon = Daemon(bus)
    try:
        long_urls_paged(bus)
    finally:
        check(daemon.stop() == 0, "asyncd exits 0 after the long-URL pages")
        bus.stop()
    finish()


def run(bus):
    nginx = env("ASYNCD_TEST_NGINX_URL")
    codes = flag_codes()
    urls = [(f"{nginx}/flags/{c}/{c}.gif", "") for c in codes]
    out = tempfile.mkdtemp(prefix="asyncd-add-")
    c = Client(bus.address)
    c.subscribe()

    job_id, path = c.submit(urls[:50], out, {"concurrency": GLib.Variant("u", 20)}, flags=1)
    check(c.pump(lambda: len(c.completed_results(path)) == 50, 20), "the first 50 tasks run at once")
    c.pump(lambda: False, 0.3)
    check(c.get_property(path, JOB, "State") == "running" and not c.job_signals(path, "Finished"),
          "an open job does not finish when its tasks so far are done")

    add = lambda tasks, flags: c.call(path, JOB, "AddTasks", "a(ss)t", (tasks, flags))  # noqa: E731
    add(urls[50:120], 1)
    check(c.get_property(path, JOB, "Total") == 120, "Total grows with AddTasks")
    err, msg = dbus_error(lambda: add([urls[120], (f"{nginx}/flags/ad/ad.gif", "")], 1))
    check(err == INVALID and "task 121: file name \"ad.gif\" is already used by task 0" in msg,
          f"duplicate across chunks named with job indexes: {msg}")
    err, msg = dbus_error(lambda: add([urls[120], (f"{nginx}/x/dup.gif", ""), (f"{nginx}/y/dup.gif", "")], 1))
    check(err == INVALID and "task 122: file name \"dup.gif\" is already used by task 121" in msg,
          f"duplicate within a chunk named with job indexes: {msg}")
    err, msg = dbus_error(lambda: add([("file:///etc/passwd", "x")], 1))
    check(err == INVALID and "task 120: unsupported URL scheme" in msg, f"bad URL in a chunk: {msg}")
    err, msg = dbus_error(lambda: add(urls[120:121], 6))
    check(err == INVALID and "flags: unknown bits 0x6" in msg, f"unknown AddTasks flags: {msg}")
    err, msg = dbus_error(lambda: add([(f"{nginx}/x/{i}.gif", "") for i in range(200)], 1))
    check(err == "io.asyncd1.Error.LimitExceeded" and "limit of 250 tasks" in msg, f"over the task limit: {msg}")
    check(c.get_property(path, JOB, "Total") == 120, "refused chunks add nothing")

    add(urls[120:], 0)
    check(c.pump(lambda: c.job_signals(path, "Finished"), 30), "the job finishes after its last chunk")
    results = c.completed_results(path)
    check(sorted(r[1] for r in results) == list(range(194)) and [r[0] for r in results] == list(range(194)),
          "194 results, each task exactly once, seq 0..193")
    check(c.job_signals(path, "Finished") == [("done", 194, 0, 0, 0)], "Finished(done, 194 ok)")
    check(sorted(os.listdir(out)) == sorted(f"{cc}.gif" for cc in codes), "all 194 files, nothing else")
    err, msg = dbus_error(lambda: add(urls[:1], 0))
    check(err == INVALID and "takes no more tasks" in msg, f"a closed job refuses tasks: {msg}")

    # A plain job (no flag) is closed from the start.
    job2, path2 = c.submit(urls[:1], tempfile.mkdtemp(prefix="asyncd-add-"))
    err, msg = dbus_error(lambda: c.call(path2, JOB, "AddTasks", "a(ss)t", (urls[1:2], 0)))
    check(err == INVALID and "takes no more tasks" in msg, "AddTasks on a job submitted complete")

    # Cancel closes an open job; it finishes with what it had.
    delay = env('ASYNCD_TEST_FAULT_DELAY_URL')
    job3, path3 = c.submit([(f"{delay}/delay/5000/flags/br/br.gif", "")], tempfile.mkdtemp(prefix="asyncd-add-"),
                           flags=1)
    # The new Total is signalled at once, not only with the next result (none for 5 s here).
    c.call(path3, JOB, "AddTasks", "a(ss)t", ([(f"{delay}/delay/5000/flags/de/de.gif", "")], 1))
    check(c.pump(lambda: any(args[1].get("Total") == 2 for args in c.job_signals(path3, "PropertiesChanged")), 2),
          "PropertiesChanged with the new Total after AddTasks")
    c.call(path3, JOB, "Cancel")
    check(c.pump(lambda: c.job_signals(path3, "Finished"), 10), "cancel finishes an open job")
    check(c.job_signals(path3, "Finished")[0][0] == "cancelled", "state cancelled")
    check(c.pump(lambda: (job3, path3, "cancelled") in c.job_signals(MANAGER_PATH, "JobFinished"), 10),
          "JobFinished on the manager carries the final state cancelled")

    # An open job whose client leaves the bus before the last chunk could never finish: cancelled.
    feeder = Client(bus.address)
    out4 = tempfile.mkdtemp(prefix="asyncd-add-")
    job4, path4 = feeder.submit(urls[:3], out4, flags=1)
    feeder.call(path4, JOB, "AddTasks", "a(ss)t", (urls[3:6], 1))
    check(c.pump(lambda: c.get_property(path4, JOB, "Ok") == 6, 20), "the open job ran its 6 tasks")
    feeder.close()
    check(c.pump(lambda: c.job_signals(path4, "Finished"), 10), "its client left: the open job finishes")
    check(c.job_signals(path4, "Finished") == [("cancelled", 6, 0, 0, 0)], "as cancelled, with its 6 files")
    check(len(os.listdir(out4)) == 6, "the files it had stay")
    # Its 6 results were signalled before the cancel: the end must not add an empty Completed.
    for p in (path, path3, path4):
        check(all(len(args[0]) > 0 for args in c.job_signals(p, "Completed")),
              f"{p}: every Completed carries at least one result")

    # The last AddTasks may be empty: it only closes the job, which finishes then if its tasks are done.
    job5, path5 = c.submit(urls[:2], tempfile.mkdtemp(prefix="asyncd-add-"), flags=1)
    check(c.pump(lambda: len(c.completed_results(path5)) == 2, 20), "the open job ran its 2 tasks")
    c.call(path5, JOB, "AddTasks", "a(ss)t", ([], 0))
    check(c.pump(lambda: c.job_signals(path5, "Finished"), 10), "an empty last AddTasks finishes the job")
    check(c.job_signals(path5, "Finished") == [("done", 2, 0, 0, 0)], "as done, with its 2 results")
    c.close()



def long_urls_paged(bus):
    """A job whose tasks add up to more than a message may carry (32 MiB, dbus-daemon's default,
    stated in main()): GetTasks pages end early by size, and paging through them
    gives every task; a reply over the limit would make the bus disconnect the daemon."""
    nginx = env("ASYNCD_TEST_NGINX_URL")
    long = "a" * 60000
    tasks = [(f"{nginx}/{long}/t{i}", "") for i in range(600)]     # 36 MB of URLs
    c = Client(bus.address)
    job_id, path = c.submit(tasks[:100], tempfile.mkdtemp(prefix="asyncd-long-"), flags=1)
    for k in range(100, 600, 100):
        c.call(path, JOB, "AddTasks", "a(ss)t", (tasks[k:k + 100], 1 if k + 100 < 600 else 0))
    first, next_cursor = c.call(path, JOB, "GetTasks", "uu", (0, 65536), "(a(ss)u)")
    check(0 < len(first) < 600 and next_cursor == len(first),
          f"GetTasks of 36 MB of URLs: a first page of {len(first)} tasks, continuing at {next_cursor}")
    got, cursor = list(first), next_cursor
    while cursor < 600:
        page, cursor = c.call(path, JOB, "GetTasks", "uu", (cursor, 65536), "(a(ss)u)")
        if not page:
            break
        got += page
    check(got == [(u, f"t{i}") for i, (u, _) in enumerate(tasks)], f"the pages give all 600 tasks in order ({len(got)})")
    check(c.pump(lambda: c.get_property(path, JOB, "State") != "running", 60), "the long-URL job ends")
    c.close()


if __name__ == "__main__":
    main()
