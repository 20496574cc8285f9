#!/usr/bin/python3
"""Cancel from another client mid-job, bad input on every method argument (named errors, nothing
created, the daemon keeps serving), what odd servers send (text that is not UTF-8, error pages
over max_bytes), SIGTERM and SIGHUP mid-job (no temporary file left, exit 0), SIGKILL mid-job (no
temporary file left either, as files have no name until complete), a low descriptor limit (fewer
transfers, no lost bus), idle connections closed, losing the bus (exit 1), and the life of a job
object: announced with InterfacesAdded, removed with InterfacesRemoved, its id not given again."""

import json
import os
import re
import shlex
import signal
import subprocess
import tempfile
import time
import urllib.request

from gi.repository import GLib

from asyncd_test import (JOB, MANAGER, MANAGER_PATH, Bus, Client, Daemon, check, dbus_error, env, finish,
                         files_being_written, flag_codes, session_daemon)

INVALID = "org.freedesktop.DBus.Error.InvalidArgs"


def main():
    with session_daemon("--max-tasks-per-job=500", "--max-jobs-per-owner=3") as (bus, daemon):
        cancel_from_other_client(bus)
        bad_input(bus)
        odd_servers(bus)
        o_path_directory(bus)
        limits(bus)
        sigterm_mid_job(bus, daemon)
    with session_daemon() as (bus, daemon):
        sigterm_mid_job(bus, daemon, signal.SIGHUP, "Hangup")
    with session_daemon() as (bus, daemon):
        sigkill_mid_job(bus, daemon)
    with session_daemon("--keep-finished=1") as (bus, daemon):
        objects_ids_and_expiry(bus)
    descriptor_limit()
    soft_descriptor_limit_raised()
    second_instance()
    idle_connections_closed()
    bus_lost()
    finish()


def cancel_from_other_client(bus):
    delay = env("ASYNCD_TEST_FAULT_DELAY_URL")
    out = tempfile.mkdtemp(prefix="asyncd-cancel-")
    a, b = Client(bus.address), Client(bus.address)
    a.subscribe()
    codes = flag_codes()
    job_id, path = a.submit([(f"{delay}/flags/{c}/{c}.gif", "") for c in codes], out, {"concurrency": GLib.Variant("u", 10)})
    a.pump(lambda: len(a.completed_results(path)) >= 20)
    before = a.all_results(path)
    b.call(MANAGER_PATH, MANAGER, "CancelJob", "t", (job_id,))
    check(a.pump(lambda: a.job_signals(path, "Finished")), "Finished after CancelJob from another client")
    results = a.completed_results(path)
    seqs = sorted(r[0] for r in results)
    check(seqs == list(range(len(codes))) and sorted(r[1] for r in results) == list(range(len(codes))),
          f"cancelled job: {len(results)} results, each task exactly once")
    ok = [r for r in results if r[2] == "ok"]
    cancelled = [r for r in results if r[2] == "cancelled"]
    check(len(ok) + len(cancelled) == len(codes) and len(cancelled) > 100,
          f"{len(ok)} ok, {len(cancelled)} cancelled")
    check(all(r[6] == "" for r in ok) and all(r[6] == "Cancelled" for r in cancelled),
          "ok results have no reason, cancelled ones say so")
    state, n_ok, _, _, n_cancelled = a.job_signals(path, "Finished")[0]
    check(state == "cancelled" and n_ok == len(ok) and n_cancelled == len(cancelled), f"Finished({state}, ...)")
    check(sorted(os.listdir(out)) == sorted(r[5] for r in ok), "only the ok files exist, no partial or temporary file")
    check(len(before) >= 20 and a.all_results(path)[:len(before)] == before,
          f"the {len(before)} results reported before the cancel stay as they were")
    check(a.get_property(path, JOB, "State") == "cancelled", "State property is cancelled")
    check(dbus_error(lambda: b.call(path, JOB, "Cancel")) == (None, None), "Cancel on a finished job is a no-op")
    check(a.get_property(MANAGER_PATH, MANAGER, "ActiveTransfers") == 0, "no transfers left on the wire")
    a.close()
    b.close()


def expect_error(client, what, fn, name, part):
    err, msg = dbus_error(fn)
    check(err == name and msg and part in msg, f"{what}: {err}: {msg}")


def bad_input(bus):
    nginx = env("ASYNCD_TEST_NGINX_URL")
    out = tempfile.mkdtemp(prefix="asyncd-bad-")
    c = Client(bus.address)
    good = (f"{nginx}/flags/br/br.gif", "")

    def submit(tasks, options=None, flags=0, directory=out):
        return lambda: c.submit(tasks, directory, options, flags)

    c.subscribe()
    jobs_before = c.call(MANAGER_PATH, MANAGER, "ListJobs", reply="(a(tossuuuuu))")[0]
    expect_error(c, "filename .", submit([(good[0], ".")]), INVALID, 'task 0: invalid file name "."')

    expect_error(c, "no tasks", submit([]), INVALID, "at least one task")
    expect_error(c, "file:// URL", submit([good, ("file:///etc/passwd", "")]), INVALID,
                 'task 1: unsupported URL scheme "file"')
    # The contract's example form, also for schemes libcurl does not know at all.
    expect_error(c, "foo:// URL", submit([good, (f"{nginx}/flags/de/de.gif", ""), ("foo://127.0.0.1/x", "x")]), INVALID,
                 'task 2: unsupported URL scheme "foo"')
    expect_error(c, "data: URL", submit([("data:text/plain,hi", "x")]), INVALID,
                 'task 0: unsupported URL scheme "data"')
    expect_error(c, "unparsable URL", submit([("http//nope", "x")]), INVALID, "task 0: invalid URL")
    expect_error(c, "filename with /", submit([(good[0], "../etc/passwd")]), INVALID, 'task 0: invalid file name')
    expect_error(c, "filename ..", submit([(good[0], "..")]), INVALID, "task 0: invalid file name")
    expect_error(c, "filename with newline", submit([(good[0], "a\nb")]), INVALID, "control character")
    expect_error(c, "filename too long", submit([(good[0], "x" * 256)]), INVALID, "longer than 255")
    expect_error(c, "duplicate filenames", submit([good, (f"{nginx}/other/br.gif", "")]), INVALID,
                 'task 1: file name "br.gif" is already used by task 0')
    expect_error(c, "no file name derivable", submit([(f"{nginx}/", "")]), INVALID, "cannot derive")
    expect_error(c, "unknown option", submit([good], {"speed": GLib.Variant("u", 1)}), INVALID,
                 'unknown key "speed"')
    expect_error(c, "option of the wrong type", submit([good], {"concurrency": GLib.Variant("s", "5")}), INVALID,
                 '"concurrency" must be of type "u"')
    # Every key of the contract's table, with a value of another type: refused, naming key and type.
    for key, right, wrong in (("name", "s", GLib.Variant("u", 1)), ("timeout_usec", "t", GLib.Variant("u", 1)),
                              ("connect_timeout_usec", "t", GLib.Variant("x", 1)),
                              ("max_bytes", "t", GLib.Variant("i", -1))):
        expect_error(c, f"{key} of the wrong type", submit([good], {key: wrong}), INVALID,
                     f'options: "{key}" must be of type "{right}", not "{wrong.get_type_string()}"')
    expect_error(c, "concurrency 0", submit([good], {"concurrency": GLib.Variant("u", 0)}), INVALID, "1..1000")
    expect_error(c, "concurrency 1001", submit([good], {"concurrency": GLib.Variant("u", 1001)}), INVALID, "1..1000")
    expect_error(c, "overwrite not a boolean", submit([good], {"overwrite": GLib.Variant("u", 1)}), INVALID,
                 '"overwrite" must be of type "b"')
    expect_error(c, "flags set", submit([good], flags=4), INVALID, "flags: unknown bits 0x4")
    expect_error(c, "flags set", submit([good], flags=2), INVALID, "flags: unknown bits 0x2")
    expect_error(c, "file name from a query, not a path", submit([(f"{nginx}?x/evil", "")]), INVALID,
                 "task 0: cannot derive a file name")
    expect_error(c, "derived file name not UTF-8", submit([(f"{nginx}/a%ffb", "")]), INVALID,
                 "task 0: cannot derive a file name from")
    expect_error(c, "file name with a C1 control", submit([(good[0], "a\u0085b")]), INVALID, "control character")
    long_url = f"{nginx}/" + "a" * 70000
    expect_error(c, "URL over 64 KiB", submit([good, (long_url, "x")]), INVALID,
                 "task 1: URL is longer than 65536 bytes")
    err, msg = dbus_error(submit([good, (f"{nginx}/" + "a" * 5000 + " x", "x")]))
    check(err == INVALID and 'task 1: invalid URL "http' in msg and '..."' in msg and len(msg) < 400,
          f"a long refused URL is quoted in part ({len(msg or '')} characters)")
    fd = os.open("/etc/hostname", os.O_RDONLY)
    expect_error(c, "fd is not a directory", submit([good], directory=fd), INVALID, "not refer to a directory")
    expect_error(c, "handle without a passed fd",
                 lambda: c.call(MANAGER_PATH, MANAGER, "SubmitJob", "a(ss)ha{sv}t", ([good], 5, {}, 0), "(to)",
                                fds=[fd]),
                 INVALID, "directory: the handle does not refer to a file descriptor")
    os.close(fd)
    check(os.listdir(out) == [], "nothing created by refused submissions")
    c.pump(lambda: False, 0.2)
    check(c.call(MANAGER_PATH, MANAGER, "ListJobs", reply="(a(tossuuuuu))")[0] == jobs_before and
          not [m for (p, m, _) in c.signals if m in ("JobNew", "InterfacesAdded")],
          "refused submissions create no job: no JobNew, no InterfacesAdded, ListJobs unchanged")

    expect_error(c, "GetJob unknown id", lambda: c.call(MANAGER_PATH, MANAGER, "GetJob", "t", (999,), "(o)"),
                 "io.asyncd1.Error.NoSuchJob", "no job with id 999")
    expect_error(c, "CancelJob unknown id", lambda: c.call(MANAGER_PATH, MANAGER, "CancelJob", "t", (0,)),
                 "io.asyncd1.Error.NoSuchJob", "no job with id 0")
    expect_error(c, "unknown job object", lambda: c.get_results("/io/asyncd1/job/12345"),
                 "org.freedesktop.DBus.Error.UnknownObject", "/io/asyncd1/job/12345")
    expect_error(c, "GetResults with wrong signature",
                 lambda: c.call("/io/asyncd1/job/1", JOB, "GetResults", "s", ("x",), "(a(uusutss)u)"),
                 INVALID, "'uu'")

    # Every property is read-only (on a session bus too, where no bus policy stands in the way).
    expect_error(c, "Properties.Set", lambda: c.call("/io/asyncd1/job/1", "org.freedesktop.DBus.Properties", "Set",
                                                     "ssv", (JOB, "Name", GLib.Variant("s", "x"))),
                 "org.freedesktop.DBus.Error.PropertyReadOnly", "Name")
    check(c.get_property("/io/asyncd1/job/1", JOB, "Name") == "", "the refused Set changed nothing")

    # Cursor past the end and max 0 are fine, not errors.
    res, cursor = c.get_results("/io/asyncd1/job/1", 10**6, 10)
    check(res == [] and cursor == c.get_property("/io/asyncd1/job/1", JOB, "Total"), "cursor past the end")
    res, cursor = c.get_results("/io/asyncd1/job/1", 3, 0)
    check(res == [] and cursor == 3, "max 0 returns nothing and the same cursor")

    # Still serving after all of that.
    job_id, path = c.submit([good], out)
    c.pump(lambda: c.job_signals(path, "Finished"), 20)
    check(c.get_property(path, JOB, "Ok") == 1 and os.listdir(out) == ["br.gif"], "daemon still serves jobs")
    # Kept for queries, the finished job no longer holds its directory open (umount would fail).
    pid = c.daemon_pid()
    held = [n for n in os.listdir(f"/proc/{pid}/fd") if os.path.realpath(f"/proc/{pid}/fd/{n}") == os.path.realpath(out)]
    check(c.get_property(path, JOB, "State") == "done" and held == [],
          f"a finished job's directory is closed ({len(held)} descriptors left)")
    c.close()


def odd_servers(bus):
    """What servers send ends up in D-Bus strings, which must be UTF-8; max_bytes is for files only."""
    plain = env("ASYNCD_TEST_FAULT_PLAIN_URL")
    out = tempfile.mkdtemp(prefix="asyncd-odd-")
    c = Client(bus.address)
    c.subscribe()
    def run(tasks, options=None):
        job_id, path = c.submit(tasks, out, options)
        check(c.pump(lambda: c.job_signals(path, "Finished"), 20), f"odd servers: job {job_id} finished")
        return path, {tasks[r[1]][1]: r for r in c.completed_results(path)}

    tasks = [(f"{plain}/reason/42616420ff205468696e67/status/503/a", "bad-utf8"),      # "Bad \xff Thing"
             (f"{plain}/reason/{'c3a9' * 40}/status/503/b", "long-phrase"),             # 80 bytes of "é"
             (f"{plain}/bytes/3", "small"),
             (f"{plain}/reason//status/451/c", "no-phrase"),                           # as over HTTP/2
             (f"{plain}/reason//status/599/d", "unknown-code"),
             (f"{plain}/status/206/e", "partial"),                                     # never asked for
             ("http://127.0.0.1:1/f", "refused")]                                      # nothing listens
    path, by_name = run(tasks)
    check(len(by_name) == len(tasks), f"odd servers: every result came in Completed ({len(by_name)})")
    check(by_name.get("bad-utf8", [""] * 7)[6] == "HTTP 503 Bad \ufffd Thing", "invalid UTF-8 replaced")
    check(by_name.get("long-phrase", [""] * 7)[6] == "HTTP 503 " + "é" * 31, "long phrase cut between characters")
    err, _ = dbus_error(lambda: c.get_results(path))
    check(err is None and sorted(r[0] for r in c.get_results(path)[0]) == list(range(len(tasks))),
          "GetResults returns them all")
    check(by_name["no-phrase"][6] == "HTTP 451 Unavailable For Legal Reasons" and
          by_name["unknown-code"][6] == "HTTP 599", f"no reason phrase: {by_name['no-phrase'][6]!r}, "
          f"{by_name['unknown-code'][6]!r}")
    check(by_name["partial"][2:4] == ("error", 206) and "not asked for" in by_name["partial"][6],
          f"206 is not a file: {by_name['partial']}")
    check(by_name["refused"][2:6] == ("error", 0, 0, "") and "Connection refused" in by_name["refused"][6],
          f"no response: http_code 0, and the reason: {by_name['refused']}")

    tasks = [(f"{plain}/flags/zz/zz.gif", "missing"),                                  # 404, 14-byte body
             (f"{plain}/redirect/1/bytes/5", "redirected"),                            # 302, 31-byte body
             (f"{plain}/bytes/200", "too-big"),
             (f"{plain}/chunked/200", "too-big-chunked")]
    path, by_name = run(tasks, {"max_bytes": GLib.Variant("t", 10)})
    check(by_name["redirected"][2:5] == ("ok", 200, 5), f"max_bytes ignores a redirect's body: {by_name['redirected']}")
    check(by_name["missing"][2:4] == ("not_found", 404), f"max_bytes ignores a 404's body: {by_name['missing']}")
    check(all(by_name[n][2] == "error" and "larger than the limit of 10 bytes" in by_name[n][6]
              for n in ("too-big", "too-big-chunked")), "bodies over max_bytes are errors")
    check(sorted(os.listdir(out)) == ["redirected", "small"], f"files: {sorted(os.listdir(out))}")

    # 999 µs is a time-out of 1 ms, not "none".
    job_id, path = c.submit([(f"{plain}/delay/1500/bytes/3", "late")], out, {"timeout_usec": GLib.Variant("t", 999)})
    check(c.pump(lambda: c.job_signals(path, "Finished"), 10), "sub-millisecond time-out: Finished")
    r = c.completed_results(path)[0]
    check(r[2] == "error" and "timed out" in r[6], f"sub-millisecond time-out applies: {r}")

    # A transfer cancelled after its status line names that status.
    job_id, path = c.submit([(f"{plain}/trickle/200/bytes/4096", "slow")], out)
    c.pump(lambda: False, 0.6)        # the headers come at once, the body 64 bytes per 200 ms
    c.call(path, JOB, "Cancel")
    check(c.pump(lambda: c.job_signals(path, "Finished"), 10), "cancel mid-body: Finished")
    r = c.completed_results(path)[0]
    check(r[2] == "cancelled" and r[3] == 200, f"cancelled mid-body keeps http_code 200: {r}")
    c.close()


def o_path_directory(bus):
    """An O_PATH descriptor is a directory descriptor too: with fsync (which it cannot do itself) the
    tasks succeed all the same, instead of failing with their files left in place."""
    plain = env("ASYNCD_TEST_FAULT_PLAIN_URL")
    out = tempfile.mkdtemp(prefix="asyncd-opath-")
    with open(os.path.join(out, "old"), "w") as f:
        f.write("old")
    c = Client(bus.address)
    c.subscribe()
    fd = os.open(out, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        job_id, path = c.submit([(f"{plain}/bytes/10", "new"), (f"{plain}/bytes/10", "old")], fd,
                                {"fsync": GLib.Variant("b", True), "overwrite": GLib.Variant("b", True)})
    finally:
        os.close(fd)
    check(c.pump(lambda: c.job_signals(path, "Finished"), 20), "O_PATH directory: Finished")
    results = sorted(c.completed_results(path), key=lambda r: r[1])
    check([r[2:6] for r in results] == [("ok", 200, 10, "new"), ("ok", 200, 10, "old")],
          f"O_PATH directory with fsync and overwrite: both tasks ok ({results})")
    check({n: os.path.getsize(os.path.join(out, n)) for n in os.listdir(out)} == {"new": 10, "old": 10},
          "O_PATH directory: the two files, nothing else")
    c.close()


def limits(bus):
    delay = env("ASYNCD_TEST_FAULT_DELAY_URL")
    out = tempfile.mkdtemp(prefix="asyncd-limits-")
    c = Client(bus.address)
    many = [(f"{delay}/x/{i}.gif", "") for i in range(501)]
    expect_error(c, "tasks over --max-tasks-per-job", lambda: c.submit(many, out), "io.asyncd1.Error.LimitExceeded",
                 "limit of 500 tasks")
    slow = [(f"{delay}/delay/3000/flags/br/br.gif", "")]
    ids = [c.submit(slow, tempfile.mkdtemp(prefix="asyncd-limits-"))[0] for _ in range(3)]
    expect_error(c, "jobs over --max-jobs-per-owner", lambda: c.submit(slow, out), "io.asyncd1.Error.LimitExceeded",
                 "already has 3 running jobs")
    for i in ids:
        c.call(MANAGER_PATH, MANAGER, "CancelJob", "t", (i,))
    c.close()


def descriptor_limit():
    """With few descriptors the daemon runs fewer transfers, and a full table never costs it the bus."""
    plain = env("ASYNCD_TEST_FAULT_PLAIN_URL")
    bus = Bus("session")
    daemon = Daemon(bus, "--max-jobs-per-owner=4", wrapper=("prlimit", "--nofile=100:100", "--"))
    try:
        c = Client(bus.address)
        c.subscribe()
        out1, out2 = tempfile.mkdtemp(prefix="asyncd-nofile-"), tempfile.mkdtemp(prefix="asyncd-nofile-")
        _, path1 = c.submit([(f"{plain}/delay/300/bytes/{100 + i}", "") for i in range(100)], out1,
                            {"concurrency": GLib.Variant("u", 100)})
        busiest = 0
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            busiest = max(busiest, c.get_property(MANAGER_PATH, MANAGER, "ActiveTransfers"))
        _, path2 = c.submit([(f"{plain}/bytes/7", "")], out2)
        check(c.pump(lambda: c.job_signals(path1, "Finished") and c.job_signals(path2, "Finished"), 30),
              "RLIMIT_NOFILE 100: both jobs finish")
        check(c.job_signals(path1, "Finished") == [("done", 100, 0, 0, 0)] and len(os.listdir(out1)) == 100 and
              c.job_signals(path2, "Finished") == [("done", 1, 0, 0, 0)], "every task ok, every file there")
        check(0 < busiest <= 8, f"at most 8 transfers at once ({busiest})")
        # 8 fit in (100 - 64 - 4) / 4; fewer under valgrind, which keeps some descriptors for itself.
        limited = re.search(r"running at most (\d+) transfers, not 1000", daemon.read_log())
        check(limited and busiest <= int(limited.group(1)), "the log says why")
        c.close()
    finally:
        rc = daemon.stop()
        bus.stop()
    check(rc == 0, f"exit status {rc}")


def soft_descriptor_limit_raised():
    """systemd gives services a soft RLIMIT_NOFILE of 1024 under a high hard one: the daemon raises the
    soft one to the hard one. Left at 256 it would run at most 32 transfers ((256 - 64 - 64) / 4, and
    say so in its log); raised to 8192 it runs all 1000. (valgrind shows its client a hard limit
    equal to the soft one: under it only the job is checked.)"""
    nginx = env("ASYNCD_TEST_NGINX_URL")
    with session_daemon(wrapper=("prlimit", "--nofile=256:8192", "--")) as (bus, daemon):
        c = Client(bus.address)
        c.subscribe()
        out = tempfile.mkdtemp(prefix="asyncd-soft-nofile-")
        _, path = c.submit([(f"{nginx}/flags/{cc}/{cc}.gif", "") for cc in flag_codes()[:20]], out)
        check(c.pump(lambda: c.job_signals(path, "Finished"), 20) and
              c.job_signals(path, "Finished") == [("done", 20, 0, 0, 0)], "soft RLIMIT_NOFILE 256, hard 8192: a job runs")
        limited = [line for line in daemon.read_log().splitlines() if "RLIMIT_NOFILE" in line]
        if "valgrind" in os.environ.get("ASYNCD_TEST_WRAPPER", ""):
            print(f"     under valgrind: {limited}")
        else:
            check(limited == [], f"the soft limit was raised: no transfer limit from it {limited}")
        c.close()


def second_instance():
    """A second asyncd on a bus where one already serves: it says so and exits 1; the first one goes on."""
    nginx = env("ASYNCD_TEST_NGINX_URL")
    with session_daemon() as (bus, daemon):
        c = Client(bus.address)
        c.subscribe()
        first = c.daemon_pid()
        out = tempfile.mkdtemp(prefix="asyncd-second-")
        _, path = c.submit([(f"{env('ASYNCD_TEST_FAULT_DELAY_URL')}/flags/{cc}/{cc}.gif", "") for cc in ("br", "de")], out)
        p = subprocess.run(shlex.split(os.environ.get("ASYNCD_TEST_WRAPPER", "")) +
                           [env("ASYNCD_BIN"), f"--bus-address={bus.address}"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
        check(p.returncode == 1 and "Failed to acquire bus name io.asyncd1: another process owns it" in p.stdout,
              f"the second instance exits {p.returncode}: {p.stdout.strip().splitlines()[-1:] if p.stdout else ''}")
        check(c.pump(lambda: c.job_signals(path, "Finished"), 20) and
              c.job_signals(path, "Finished") == [("done", 2, 0, 0, 0)] and c.daemon_pid() == first,
              "the first instance keeps the name and finishes its job")
        _, path = c.submit([(f"{nginx}/flags/fr/fr.gif", "")], out)
        check(c.pump(lambda: c.job_signals(path, "Finished"), 20) and sorted(os.listdir(out)) == ["br.gif", "de.gif", "fr.gif"],
              "and takes new jobs")
        c.close()


def idle_connections_closed():
    """Connections kept for reuse close --keep-connections after the last transfer; jobs go on."""
    nginx = env("ASYNCD_TEST_NGINX_URL")
    bus = Bus("session")
    daemon = Daemon(bus, "--keep-connections=1")
    try:
        c = Client(bus.address)
        c.subscribe()
        pid = c.daemon_pid()

        def sockets():
            n = 0
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
                except FileNotFoundError:       # closed while we looked
                    pass
            return n

        before = sockets()
        tasks = [(f"{nginx}/flags/{cc}/{cc}.gif", "") for cc in flag_codes()[:40]]
        for round in (1, 2):
            _, path = c.submit(tasks, tempfile.mkdtemp(prefix="asyncd-idle-"), {"concurrency": GLib.Variant("u", 10)})
            check(c.pump(lambda: c.job_signals(path, "Finished"), 20) and
                  c.job_signals(path, "Finished") == [("done", 40, 0, 0, 0)], f"job {round}: 40 files")
            kept = sockets() - before
            c.pump(lambda: sockets() == before, 5)
            check(kept >= 5 and sockets() == before,
                  f"job {round}: {kept} connections kept, closed after 1 s ({sockets() - before} left)")

        # The last transfer cancelled rather than ended: the connections close all the same.
        out = tempfile.mkdtemp(prefix="asyncd-idle-")
        slow = [(f"{env('ASYNCD_TEST_FAULT_PLAIN_URL')}/trickle/1/piece/1024/bytes/10000000", "slow.bin")]
        _, slow_path = c.submit(slow, out)
        _, path = c.submit(tasks, tempfile.mkdtemp(prefix="asyncd-idle-"), {"concurrency": GLib.Variant("u", 10)})
        check(c.pump(lambda: c.job_signals(path, "Finished"), 20) and
              c.pump(lambda: len(files_being_written(pid, out)) == 1, 10) and
              c.job_signals(path, "Finished") == [("done", 40, 0, 0, 0)], "job 3: 40 files, and a slow one on the wire")
        kept = sockets() - before
        c.call(slow_path, JOB, "Cancel")
        c.pump(lambda: sockets() == before, 5)
        check(kept >= 5 and sockets() == before,
              f"job 3: {kept} connections kept, closed 1 s after a cancel ({sockets() - before} left)")
        c.close()
    finally:
        check(daemon.stop() == 0, "asyncd exits 0 on SIGTERM")
        bus.stop()


def objects_ids_and_expiry(bus):
    """Every object answers Peer and Properties; InterfacesAdded announces a job with its properties
    (the option defaults among them: concurrency 5 is also what the server sees); a finished job
    goes after --keep-finished with InterfacesRemoved, and then is gone everywhere; its id is not
    given again."""
    plain = env("ASYNCD_TEST_FAULT_PLAIN_URL")
    c = Client(bus.address)
    c.subscribe()
    urllib.request.urlopen(f"{plain}/_stats/reset").read()
    job_id, path = c.submit([(f"{plain}/delay/300/bytes/{100 + i}", "") for i in range(12)],
                            tempfile.mkdtemp(prefix="asyncd-expiry-"))
    check(job_id == 1 and path == "/io/asyncd1/job/1", f"the first job has id 1 ({job_id})")
    def added():
        return [a for (p, m, a) in c.signals if m == "InterfacesAdded" and p == MANAGER_PATH and a[0] == path]
    c.pump(added, 5)
    props = added()[0][1].get(JOB, {}) if added() else {}
    check(props.get("Id") == 1 and props.get("State") == "running" and props.get("Total") == 12 and
          props.get("Concurrency") == 5 and props.get("Name") == "",
          f"InterfacesAdded from {MANAGER_PATH} announces the job with its properties: {props}")
    for obj in (MANAGER_PATH, path):
        err, _ = dbus_error(lambda: c.call(obj, "org.freedesktop.DBus.Peer", "Ping"))
        check(err is None, f"{obj} implements org.freedesktop.DBus.Peer")
    version = c.get_property(MANAGER_PATH, MANAGER, "Version")
    check(isinstance(version, str) and version != "", f"Version property: {version!r}")
    check(c.pump(lambda: c.job_signals(path, "Finished"), 30) and
          c.job_signals(path, "Finished") == [("done", 12, 0, 0, 0)], "the 12 tasks ok")
    stats = json.loads(urllib.request.urlopen(f"{plain}/_stats").read())
    check(2 <= stats["max_concurrent"] <= 5, f"default concurrency: at most 5 requests at once ({stats})")

    check(c.pump(lambda: [a for (p, m, a) in c.signals if m == "InterfacesRemoved" and a[0] == path], 15),
          "the finished job is removed after --keep-finished, with InterfacesRemoved")
    expect_error(c, "GetJob of a removed job", lambda: c.call(MANAGER_PATH, MANAGER, "GetJob", "t", (job_id,), "(o)"),
                 "io.asyncd1.Error.NoSuchJob", f"no job with id {job_id}")
    check(c.call(MANAGER_PATH, MANAGER, "ListJobs", reply="(a(tossuuuuu))")[0] == [], "ListJobs no longer lists it")
    err, _ = dbus_error(lambda: c.get_results(path))
    check(err == "org.freedesktop.DBus.Error.UnknownObject", f"its object is gone: {err}")
    job2, path2 = c.submit([(f"{plain}/bytes/3", "")], tempfile.mkdtemp(prefix="asyncd-expiry-"))
    check(job2 == 2 and path2 == "/io/asyncd1/job/2", f"the next job has id 2, not the removed job's 1 ({job2})")
    c.pump(lambda: c.job_signals(path2, "Finished"), 10)
    c.close()


def bus_lost():
    """Losing the bus cancels the jobs and is a failure (so Restart=on-failure restarts the service)."""
    bus = Bus("session")
    daemon = Daemon(bus, log=os.path.join(tempfile.mkdtemp(prefix="asyncd-buslost-"), "asyncd.log"))
    bus.stop()      # removes the bus's directory, hence the log elsewhere
    try:
        rc = daemon.proc.wait(10)
    except subprocess.TimeoutExpired:
        rc = daemon.stop(signal.SIGKILL)
    check(rc == 1 and "Bus connection lost" in daemon.read_log(), f"bus gone: asyncd exits {rc}")


def start_slow_downloads(c, out):
    """Submits 4 slow large bodies with overwrite and waits until the daemon is writing their files."""
    plain = env("ASYNCD_TEST_FAULT_PLAIN_URL")
    tasks = [(f"{plain}/trickle/1/piece/1024/bytes/{10000000 + i}", "") for i in range(4)]
    job_id, path = c.submit(tasks, out, {"overwrite": GLib.Variant("b", True)})
    pid = c.daemon_pid()
    deadline = time.monotonic() + 10
    while len(files_being_written(pid, out)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    check(len(files_being_written(pid, out)) == 4, f"4 files open while downloading: {files_being_written(pid, out)}")
    return path


def sigterm_mid_job(bus, daemon, sig=signal.SIGTERM, what="Terminated"):
    out = tempfile.mkdtemp(prefix="asyncd-sigterm-")
    c = Client(bus.address)
    c.subscribe()
    path = start_slow_downloads(c, out)
    rc = daemon.stop(sig)
    check(rc == 0, f"{signal.Signals(sig).name} mid-job: asyncd exits {rc}")
    check(os.listdir(out) == [], f"no temporary or partial file left: {os.listdir(out)}")
    c.pump(lambda: c.job_signals(path, "Finished"), 5)
    check(c.job_signals(path, "Finished") == [("cancelled", 0, 0, 0, 4)], "clients saw Finished(cancelled) first")
    log = daemon.read_log()
    check(f"{what}: cancelling 1 running jobs" in log and "<6>job 1:" in log,
          "log lines carry <N> priorities and job ids")
    c.close()


def sigkill_mid_job(bus, daemon):
    out = tempfile.mkdtemp(prefix="asyncd-sigkill-")
    c = Client(bus.address)
    start_slow_downloads(c, out)
    check(os.listdir(out) == [], f"files being replaced have no name while they download: {os.listdir(out)}")
    check(daemon.stop(signal.SIGKILL) == -signal.SIGKILL, "SIGKILL mid-job")
    check(os.listdir(out) == [], f"SIGKILL mid-job leaves no temporary or partial file: {os.listdir(out)}")
    c.close()


if __name__ == "__main__":
    main()
