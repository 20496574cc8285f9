#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration tests of asyncctl against the real asyncd, on a private session bus, with nginx
serving the flags fixture and a fault server for slow and failing responses.

meson runs it (cli/meson.build) as
  dbus-run-session -- with-servers.py --nginx FIXTURES --fault 'SLOW:FIXTURES' -- test-asyncctl.py
Environment: ASYNCCTL and ASYNCD (the binaries), ASYNCD_FIXTURES, ASYNCD_TEST_NGINX_URL,
ASYNCD_TEST_FAULT_SLOW_URL (from with-servers.py), DBUS_SESSION_BUS_ADDRESS (dbus-run-session).
The daemon runs with --user on that bus; asyncctl is called with --user. Output is TAP.

Each case names what it checks; a failing case prints the command lines, outputs and the
daemon's log. Run a subset with: test-asyncctl.py NAME...
"""

import contextlib
import json
import os
import pty
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request



WORK = tempfile.mkdtemp(prefix="asyncctl-test-")   # removed at the end


def wrapped(binary):
    """ASYNCCTL_TEST_WRAPPER (e.g. "valgrind --error-exitcode=99 ..."): every run of the binary goes
    through it, by a script in its place."""
    wrapper = os.environ.get("ASYNCCTL_TEST_WRAPPER")
    if not wrapper:
        return binary
    path = os.path.join(tempfile.mkdtemp(prefix="wrapper-", dir=WORK), "asyncctl")
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nexec {wrapper} {shlex.quote(binary)} "$@"\n')
    os.chmod(path, 0o755)
    return path


ASYNCCTL = wrapped(os.environ["ASYNCCTL"])
ASYNCD = os.environ["ASYNCD"]
FIXTURES = os.environ["ASYNCD_FIXTURES"]
NGINX = os.environ["ASYNCD_TEST_NGINX_URL"]
SLOW = os.environ["ASYNCD_TEST_FAULT_SLOW_URL"]
BUS = os.environ["DBUS_SESSION_BUS_ADDRESS"]
COMPLETION = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "cli",
                          "asyncctl.bash-completion")
MAN_PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "man", "asyncctl.1")

CODES = open(os.path.join(FIXTURES, "flags", "country_codes.txt")).read().lower().split()
MISSING = ["aa", "qq", "xx", "zz"]          # no such flag: 404 from nginx
TRANSCRIPT = []                             # what the current case ran, shown when it fails


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def flag_url(code, base=NGINX, prefix=""):
    return f"{base}{prefix}/flags/{code}/{code}.gif"


def fixture(code):
    with open(os.path.join(FIXTURES, "flags", code, f"{code}.gif"), "rb") as f:
        return f.read()


def run(*args, input=None, timeout=120, env=None):
    """asyncctl --user ARGS; returns the CompletedProcess (text)."""
    argv = [ASYNCCTL, "--user", *args]
    p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                       env=env)
    TRANSCRIPT.append((argv, p.returncode, p.stdout, p.stderr))
    return p


def expect(p, code, what):
    check(p.returncode == code, f"{what}: exit status {p.returncode}, expected {code}")


def one_error_line(p, *parts):
    lines = p.stderr.splitlines()
    check(len(lines) == 1 and lines[0].startswith("asyncctl: "),
          f"stderr is one 'asyncctl: ' line: {p.stderr!r}")
    for part in parts:
        check(part in lines[0], f"stderr names {part!r}: {lines[0]!r}")


def summary(stdout):
    """The seed's summary as a dict: downloaded, not found, errors, cancelled, elapsed."""
    s = {"downloaded": None, "not found": 0, "errors": 0, "cancelled": 0, "elapsed": None}
    lines = stdout.splitlines()
    check("-" * 20 in lines, f"summary has the dashes line: {stdout!r}")
    for line in lines[lines.index("-" * 20) + 1:]:
        m = re.fullmatch(r"(\d+) (downloaded|not found|errors?|cancelled)\.", line)
        if m:
            key = "errors" if m.group(2).startswith("error") else m.group(2)
            s[key] = int(m.group(1))
            continue
        m = re.fullmatch(r"Elapsed time: (\d+\.\d\d)s", line)
        check(m, f"unexpected summary line {line!r}")
        s["elapsed"] = float(m.group(1))
    check(s["downloaded"] is not None and s["elapsed"] is not None, f"complete summary: {stdout!r}")
    return s


def job_json(job_id):
    p = run("status", str(job_id), "--json=short")
    expect(p, 0, "status --json")
    (job,) = json.loads(p.stdout)
    return job


def results_json(job_id):
    p = run("results", str(job_id), "--json=short")
    expect(p, 0, "results --json")
    return json.loads(p.stdout)


def tmpdir():
    return tempfile.mkdtemp(dir=WORK)


def files_in(d):
    return sorted(os.listdir(d))


def check_files(d, codes):
    """d holds exactly <cc>.gif for codes, each identical to the fixture (nothing partial)."""
    check(files_in(d) == sorted(f"{c}.gif" for c in codes),
          f"{d} holds exactly {len(codes)} flags, has {len(files_in(d))}: {files_in(d)[:8]}…")
    for c in codes:
        with open(os.path.join(d, f"{c}.gif"), "rb") as f:
            check(f.read() == fixture(c), f"{c}.gif is complete and identical to the fixture")


def wait_for(cond, timeout=20, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise Failure(f"timed out waiting for {what}")


def job_id_of(p):
    check(re.fullmatch(r"\d+\n", p.stdout), f"--no-wait prints the job id: {p.stdout!r}")
    return int(p.stdout)


def fault_stats(reset=False):
    with urllib.request.urlopen(f"{SLOW}/_stats{'/reset' if reset else ''}") as r:
        return json.loads(r.read())


# --- cases ----------------------------------------------------------------------------------------

def test_submit_concurrencies():
    """All 194 flags plus 4 missing codes at -m 1, 5, 50, 194: counts, files, exit 3."""
    codes = CODES + MISSING
    for m in (1, 5, 50, 194):
        d = tmpdir()
        p = run("submit", "-o", d, "-m", str(m), *[flag_url(c) for c in codes])
        expect(p, 3, f"-m {m}: some not found")
        s = summary(p.stdout)
        check((s["downloaded"], s["not found"], s["errors"]) == (len(CODES), len(MISSING), 0),
              f"-m {m}: summary {s}")
        check(p.stderr == "", f"-m {m}: nothing on stderr through a pipe: {p.stderr!r}")
        check_files(d, CODES)
    # And with -v: exactly one line per task, even for the whole set at once.
    d = tmpdir()
    p = run("submit", "-v", "-o", d, "-m", "100", *[flag_url(c) for c in codes])
    expect(p, 3, "-v, 198 tasks")
    lines = p.stdout.splitlines()
    check(sorted(lines[:lines.index("-" * 20)]) ==
          sorted([f"{c}.gif ok" for c in CODES] + [f"{c}.gif not found" for c in MISSING]),
          "one -v line per task, none twice")


def test_concurrency_reaches_daemon():
    """-m 3 against 12 slow URLs: the daemon's job has Concurrency 3 and the server saw 3 at once."""
    d = tmpdir()
    fault_stats(reset=True)
    codes = CODES[:12]
    p = run("submit", "-o", d, "-m", "3", "--json=short",
            *[flag_url(c, SLOW, "/delay/200") for c in codes])
    expect(p, 0, "slow job")
    job = json.loads(p.stdout)
    check(job_json(job["id"])["concurrency"] == 3, "Concurrency property is 3")
    stats = fault_stats()
    check(stats["max_concurrent"] == 3, f"at most and at least 3 requests at once: {stats}")
    check_files(d, codes)


def test_all_ok_exit_0():
    d = tmpdir()
    p = run("submit", "-o", d, *[flag_url(c) for c in CODES[:20]])
    expect(p, 0, "every task ok")
    check(summary(p.stdout)["downloaded"] == 20, "20 downloaded.")
    check("not found" not in p.stdout and "error" not in p.stdout, "zero lines are omitted")
    check_files(d, CODES[:20])


def test_verbose_one_line_per_task():
    """-v: one line per task, as it completes: 'NAME ok', 'NAME not found', '*** Error for URL: cause'."""
    d = tmpdir()
    ok = CODES[:30]
    err_url = f"{SLOW}/status/503/flags/zw/zw.gif"
    urls = [flag_url(c) for c in ok] + [flag_url(c) for c in MISSING] + [err_url]
    p = run("submit", "-v", "-o", d, "-m", "7", *urls)
    expect(p, 3, "-v with not found and an error")
    lines = p.stdout.splitlines()
    task_lines = lines[:lines.index("-" * 20)]
    check(len(task_lines) == len(urls), f"{len(task_lines)} task lines for {len(urls)} tasks")
    expected = {f"{c}.gif ok" for c in ok} | {f"{c}.gif not found" for c in MISSING}
    err_lines = [line for line in task_lines if line.startswith("*** Error for ")]
    check(set(task_lines) - set(err_lines) == expected, "one ok/not found line per task")
    check(len(err_lines) == 1 and err_lines[0].startswith(f"*** Error for {err_url}: ")
          and "503" in err_lines[0], f"error line names URL and cause: {err_lines}")
    s = summary(p.stdout)
    check((s["downloaded"], s["not found"], s["errors"]) == (30, 4, 1), f"summary {s}")
    # The lines come in completion order: the same order as the daemon's seqs.
    res = results_json(job_id_from_status_newest())
    names = [r["filename"] if r["status"] == "ok" else None for r in res]
    printed = [line[:-3] if line.endswith(" ok") else None for line in task_lines]
    check(names == printed, "-v lines are in completion (seq) order")


def job_id_from_status_newest():
    p = run("status", "--json=short")
    expect(p, 0, "status --json")
    return max(j["id"] for j in json.loads(p.stdout))


def test_json_matches_job():
    """submit --json parses and matches status/results --json of the same job."""
    d = tmpdir()
    urls = [flag_url(c) for c in CODES[:10]] + [flag_url("xx")]
    p = run("submit", "--json=short", "--name", "json-job", "-o", d, *urls)
    expect(p, 3, "json job with one not found")
    check(p.stdout.count("\n") == 1, "--json=short is one line")
    job = json.loads(p.stdout)
    check(job["state"] == "done" and job["total"] == 11 and job["ok"] == 10 and job["not_found"] == 1,
          f"json counts: {job}")
    check(job["name"] == "json-job", "name in json")
    check([r["seq"] for r in job["results"]] == list(range(11)), "results in seq order, each once")
    check(sorted(r["index"] for r in job["results"]) == list(range(11)), "every task has a result")
    for r in job["results"]:
        check(r["url"] == urls[r["index"]], "url of each result is the submitted one")
    status = job_json(job["id"])
    for k in ("id", "name", "state", "total", "ok", "not_found", "error", "cancelled"):
        check(status[k] == job[k], f"status --json {k}: {status[k]} == {job[k]}")
    check(status["done"] == 11 and status["path"] == job["path"], "status path and done")
    replay = results_json(job["id"])
    check(replay == job["results"],
          "results --json equals the submitted job's results")
    pretty = run("status", str(job["id"]), "--json=pretty")
    check(json.loads(pretty.stdout) == [status] and pretty.stdout.count("\n") > 5, "--json=pretty")
    listing = run("status", "--json=short")
    check(any(j["id"] == job["id"] and j["state"] == "done" for j in json.loads(listing.stdout)),
          "status --json lists the job")


def test_exit_codes():
    d = tmpdir()
    ok = run("submit", "-q", "-o", d, flag_url("br"))
    expect(ok, 0, "all ok")
    check(ok.stdout == "" and ok.stderr == "", "-q prints nothing")

    usage = run("submit", "-o", d, "--bogus", flag_url("br"))
    expect(usage, 1, "unknown option")
    one_error_line(usage, "--bogus")

    nodir = run("submit", "-o", "/nope", flag_url("br"))
    expect(nodir, 1, "missing directory")
    one_error_line(nodir, "cannot open directory /nope: No such file or directory")

    nourl = run("submit", "-o", d)
    expect(nourl, 1, "no URL")
    one_error_line(nourl, "submit")

    badm = run("submit", "-m", "0", flag_url("br"))
    expect(badm, 1, "-m 0")
    one_error_line(badm, "concurrency")

    nobus = subprocess.run([ASYNCCTL, "--bus-address=unix:path=/nonexistent/bus", "status"],
                           capture_output=True, text=True)
    TRANSCRIPT.append(("--bus-address=unix:path=/nonexistent/bus status", nobus.returncode,
                       nobus.stdout, nobus.stderr))
    expect(nobus, 1, "no bus")
    one_error_line(nobus, "cannot connect to the bus at unix:path=/nonexistent/bus")

    refused = run("submit", "-o", d, flag_url("br"), "file:///etc/passwd")
    expect(refused, 2, "file:// URL")
    # The daemon's "task 1" is named as the user gave it.
    one_error_line(refused, "refused", 'URL argument 2: unsupported URL scheme "file"')

    dup = run("submit", "-o", d, flag_url("br"), flag_url("br"))
    expect(dup, 2, "two tasks with one file name")
    one_error_line(dup, "refused")

    too_many = run("submit", "-o", d, "-m", "5000", flag_url("br"))
    expect(too_many, 1, "concurrency over the documented limit is a usage error")
    one_error_line(too_many, "from 1 to 1000")

    nf = run("submit", "-o", d, "--overwrite", flag_url("br"), flag_url("xx"))
    expect(nf, 3, "not found")

    exists = run("submit", "-v", "-o", d, flag_url("br"))
    expect(exists, 3, "existing file without --overwrite is an error")
    check(summary(exists.stdout)["errors"] == 1 and "exists" in exists.stdout,
          f"1 error, because the file exists: {exists.stdout!r}")

    nojob = run("status", "999999")
    expect(nojob, 1, "no such job")
    one_error_line(nojob, "999999")

    # 4: cancelled by someone else while we wait.
    d2 = tmpdir()
    proc = subprocess.Popen([ASYNCCTL, "--user", "submit", "-o", d2, "-m", "2", "--name", "to-cancel",
                             *[flag_url(c, SLOW, "/delay/2000") for c in CODES[:6]]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: any(j["name"] == "to-cancel" for j in json.loads(run("status", "--json=short").stdout)),
             what="the job to appear")
    (job,) = [j for j in json.loads(run("status", "--json=short").stdout) if j["name"] == "to-cancel"]
    c = run("cancel", str(job["id"]))
    expect(c, 0, "cancel")
    check(c.stdout == "", "cancel prints nothing")
    out, err = proc.communicate(timeout=30)
    TRANSCRIPT.append(("submit (cancelled by another client)", proc.returncode, out, err))
    check(proc.returncode == 4, f"job cancelled by another client: exit {proc.returncode}, expected 4")
    check(summary(out)["cancelled"] == 6, "6 cancelled.")
    check(files_in(d2) == [], "nothing left behind")


def test_watch_replays_after_the_fact():
    """watch on a finished job replays every result (-v lines, summary, json) and exits like submit."""
    d = tmpdir()
    urls = [flag_url(c) for c in CODES[:25]] + [flag_url(c) for c in MISSING[:2]]
    p = run("submit", "--no-wait", "-o", d, *urls)
    expect(p, 0, "--no-wait")
    job_id = job_id_of(p)
    wait_for(lambda: job_json(job_id)["state"] == "done", what="job done")

    w = run("watch", "-v", str(job_id))
    expect(w, 3, "watch of a job with not found tasks")
    lines = w.stdout.splitlines()
    task_lines = lines[:lines.index("-" * 20)]
    res = results_json(job_id)
    check(len(task_lines) == len(res) == 27, f"watch -v replays all 27 results: {len(task_lines)}")
    check(sum(line.endswith(" ok") for line in task_lines) == 25, "25 ok lines")
    # The daemon's task list (Job.GetTasks) names the tasks, as submit -v does.
    expected = sorted(f"{url.rsplit('/', 1)[1]} not found" for url in urls[25:])
    check(sorted(line for line in task_lines if "not found" in line) == expected,
          f"not found lines name the task: {expected}")
    s = summary(w.stdout)
    check((s["downloaded"], s["not found"]) == (25, 2), f"summary {s}")

    wj = run("watch", "--json=short", str(job_id))
    expect(wj, 3, "watch --json")
    doc = json.loads(wj.stdout)
    check(doc["results"] == res and doc["state"] == "done" and doc["id"] == job_id, "watch --json equals results")

    table = run("results", str(job_id))
    expect(table, 0, "results")
    rows = table.stdout.splitlines()
    check(rows[0].split()[:3] == ["SEQ", "INDEX", "STATUS"] and rows[-1] == "27 results.", "results table")
    bare = run("results", "--no-legend", str(job_id))
    check(len(bare.stdout.splitlines()) == 27, "--no-legend: only the rows")


def test_watch_live():
    """watch attached to a running job streams every result exactly once, then exits 0."""
    d = tmpdir()
    codes = CODES[:16]
    p = run("submit", "--no-wait", "-o", d, "-m", "4", *[flag_url(c, SLOW, "/delay/300") for c in codes])
    job_id = job_id_of(p)
    w = run("watch", "-v", str(job_id))
    expect(w, 0, "watch until done")
    lines = w.stdout.splitlines()
    task_lines = lines[:lines.index("-" * 20)]
    check(sorted(task_lines) == sorted(f"{c}.gif ok" for c in codes), f"each result once: {task_lines}")
    check_files(d, codes)


def unique_name_of(pid):
    """The bus connection of process pid (busctl list: NAME PID ...)."""
    for line in subprocess.run(["busctl", "--user", "list", "--no-legend"], capture_output=True,
                               text=True).stdout.splitlines():
        f = line.split()
        if len(f) > 1 and f[0].startswith(":") and f[1] == str(pid):
            return f[0]
    return None


def test_stopped_watch_holds_only_its_job():
    """A watch that stops reading (Ctrl-Z) is sent only its own job's signals: the bus keeps what a
    client does not read and charges it to the daemon, so a watch matching every job would pile
    up the signals of all of them. Checked with dbus-daemon's own count of the bytes waiting for
    the stopped watch while another job of 20,000 results runs (beyond what the socket buffers hold)."""
    slow = job_id_of(run("submit", "--no-wait", "-m", "1", "-o", tmpdir(), flag_url("br", SLOW, "/delay/60000")))
    monitor = subprocess.Popen(["dbus-monitor", "--session",
                                "type='method_call',interface='org.freedesktop.DBus',member='RemoveMatch'"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    seen = []

    def monitor_saw(text, count=1, timeout=20, poke=None):
        end = time.monotonic() + timeout
        while b"".join(seen).decode(errors="replace").count(text) < count and time.monotonic() < end:
            if poke:
                poke()
            if select.select([monitor.stdout], [], [], 0.2)[0]:
                seen.append(os.read(monitor.stdout.fileno(), 65536))
        return b"".join(seen).decode(errors="replace").count(text) >= count

    # The monitor is in place once it sees a RemoveMatch of our own (refused: there is no such match).
    check(monitor_saw("/sentinel", poke=lambda: subprocess.run(
        ["busctl", "--user", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
         "RemoveMatch", "s", "type='signal',path='/sentinel'"], capture_output=True)), "dbus-monitor is in place")
    watch = subprocess.Popen([ASYNCCTL, "--user", "watch", str(slow)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        # The watch is attached once it drops its two matches on every job (which an asyncctl that
        # keeps them never does: the check of the bytes below then tells).
        monitor_saw("path_namespace='/io/asyncd1/job'", count=2, timeout=10)
        name = unique_name_of(watch.pid)
        check(name, f"the watch (pid {watch.pid}) is on the bus")
        os.kill(watch.pid, signal.SIGSTOP)
        listing = write_list(f"{NGINX}/nope/x{i} x{i}" for i in range(20000))
        expect(run("submit", "-q", "-m", "100", "-o", tmpdir(), "-i", listing), 3, "20,000 not found")
        stats = subprocess.run(["busctl", "--user", "--json=short", "call", "org.freedesktop.DBus",
                                "/org/freedesktop/DBus", "org.freedesktop.DBus.Debug.Stats", "GetConnectionStats",
                                "s", name or ":none"], capture_output=True, text=True)
        TRANSCRIPT.append(("GetConnectionStats", stats.returncode, stats.stdout, stats.stderr))
        waiting = json.loads(stats.stdout)["data"][0]["OutgoingBytes"]["data"]
        check(waiting < 100000, f"bytes waiting for the stopped watch of job {slow}: {waiting} "
              f"(the 20,000 results of another job take ~2,000,000)")
    finally:
        monitor.kill()
        monitor.wait()
        os.kill(watch.pid, signal.SIGCONT)
        run("cancel", str(slow))
        watch.wait(timeout=30)


def test_ctrl_c_cancels():
    """SIGINT while waiting: the job is cancelled, final results shown, exit 130, no partial files."""
    d = tmpdir()
    fast = CODES[:3]
    slow = CODES[3:9]
    urls = [flag_url(c) for c in fast] + [flag_url(c, SLOW, "/trickle/20") for c in slow]
    proc = subprocess.Popen([ASYNCCTL, "--user", "submit", "-v", "-o", d, "-m", "9", *urls],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(files_in(d)) >= len(fast) or proc.poll() is not None, what="the fast flags")
    time.sleep(0.5)                 # the slow ones are trickling now
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    TRANSCRIPT.append(("submit + SIGINT", proc.returncode, out, err))
    check(proc.returncode == 130, f"exit {proc.returncode}, expected 130")
    s = summary(out)
    check((s["downloaded"], s["cancelled"]) == (3, 6), f"3 downloaded, 6 cancelled: {s}")
    check(sum(line.endswith(" cancelled") for line in out.splitlines()) == 6, "a line per cancelled task")
    check("Cancelling job" in err, f"says it cancels: {err!r}")
    check_files(d, fast)            # only the complete ones: no partial or temporary file
    job_id = job_id_from_status_newest()
    check(job_json(job_id)["state"] == "cancelled", "the job is cancelled")


def test_ctrl_c_during_watch_detaches():
    """SIGINT during watch detaches (exit 130) and leaves the job running."""
    d = tmpdir()
    p = run("submit", "--no-wait", "-o", d, "-m", "1", *[flag_url(c, SLOW, "/delay/500") for c in CODES[:6]])
    job_id = job_id_of(p)
    proc = subprocess.Popen([ASYNCCTL, "--user", "watch", str(job_id)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.7)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    TRANSCRIPT.append(("watch + SIGINT", proc.returncode, out, err))
    check(proc.returncode == 130, f"exit {proc.returncode}, expected 130")
    check("Detached" in err, f"says it detached: {err!r}")
    check(job_json(job_id)["state"] == "running", "the job still runs")
    w = run("watch", str(job_id))
    expect(w, 0, "the job completes anyway")
    check_files(d, CODES[:6])


def test_input_file_and_stdin():
    d = tmpdir()
    listing = os.path.join(d, "..", os.path.basename(d) + ".txt")
    with open(listing, "w") as f:
        f.write("# flags with names\n\n")
        f.write(f"{flag_url('br')} brasil.gif\n")
        f.write(f"  {flag_url('fr')}\n")
        f.write(f"{flag_url('ci')}  Côte d'Ivoire.gif  \n")
    p = run("submit", "-o", d, "-i", listing, flag_url("de"))
    expect(p, 0, "-i FILE plus an argument")
    check(files_in(d) == sorted(["brasil.gif", "fr.gif", "Côte d'Ivoire.gif", "de.gif"]), f"names: {files_in(d)}")

    d2 = tmpdir()
    p = run("submit", "-v", "-o", d2, "-i", "-", input="\n".join(flag_url(c) for c in CODES[:5]) + "\n")
    expect(p, 0, "-i - (stdin)")
    check_files(d2, CODES[:5])

    bad = run("submit", "-i", "/nonexistent/list")
    expect(bad, 1, "missing list")
    one_error_line(bad, "/nonexistent/list")


def test_options_reach_daemon():
    """--name, --timeout, --stall-timeout, --max-bytes, --overwrite, --fsync are sent and honoured; --connect-timeout is
    sent (that libcurl applies it is not observable on loopback)."""
    d = tmpdir()
    p = run("submit", "-v", "-o", d, "--timeout", "300ms", "--connect-timeout", "5",
            flag_url("br", SLOW, "/delay/2000"), flag_url("fr"))
    expect(p, 3, "one task times out")
    check(any(line.startswith(f"*** Error for {flag_url('br', SLOW, '/delay/2000')}: ") and "timed out" in line
              for line in p.stdout.splitlines()), f"the timed-out task is an error, and says so: {p.stdout!r}")

    p = run("submit", "-v", "-o", d, "--stall-timeout", "1", flag_url("br", SLOW, "/delay/4000"))
    expect(p, 3, "a silent server past --stall-timeout")
    check(any(line.startswith(f"*** Error for {flag_url('br', SLOW, '/delay/4000')}: Operation too slow")
              for line in p.stdout.splitlines()), f"the stalled task is an error, and says so: {p.stdout!r}")

    p = run("submit", "-v", "-o", d, "--max-bytes", "1K", flag_url("de"))
    expect(p, 3, "--max-bytes 1K")
    check("de.gif" not in files_in(d), "no file over the size limit")

    # A locale whose decimal point is a comma (asyncctl calls setlocale()) changes nothing.
    locales = tempfile.mkdtemp(prefix="asyncctl-locale-")
    subprocess.run(["localedef", "-i", "de_DE", "-f", "UTF-8", os.path.join(locales, "de_DE.UTF-8")], check=True,
                   capture_output=True)
    german = dict(os.environ, LOCPATH=locales, LC_ALL="de_DE.UTF-8")
    p = run("submit", "-o", tmpdir(), "--timeout", "2.5", "--connect-timeout", "1.5s", "--max-bytes", "1.5M",
            flag_url("at"), env=german)
    expect(p, 0, "fractions with a '.' under de_DE.UTF-8")
    shutil.rmtree(locales)

    with open(os.path.join(d, "fr.gif"), "wb") as f:
        f.write(b"old")
    # --fsync is not --overwrite: the existing file is an error and stays as it was.
    p = run("submit", "-o", d, "--fsync", flag_url("fr"))
    expect(p, 3, "--fsync without --overwrite over an existing file")
    check(summary(p.stdout)["errors"] == 1, "1 error.")
    check(open(os.path.join(d, "fr.gif"), "rb").read() == b"old", "file kept")
    p = run("submit", "-o", d, "--overwrite", "--fsync", "--name", "opts", flag_url("fr"))
    expect(p, 0, "--overwrite --fsync")
    check(open(os.path.join(d, "fr.gif"), "rb").read() == fixture("fr"), "file replaced")
    check(job_json(job_id_from_status_newest())["name"] == "opts", "--name")


def test_status_table():
    d = tmpdir()
    p = run("submit", "--no-wait", "--name", "table-job", "-o", d, flag_url("br"))
    job_id = job_id_of(p)
    wait_for(lambda: job_json(job_id)["state"] == "done", what="job done")
    t = run("status")
    expect(t, 0, "status")
    lines = t.stdout.splitlines()
    check(lines[0].split() == ["ID", "NAME", "STATE", "DONE/TOTAL", "OK", "NOTFOUND", "ERRORS", "CANCELLED", "AGE"],
          f"header: {lines[0]!r}")
    check(re.fullmatch(r"\d+ jobs? listed\.", lines[-1]), f"legend: {lines[-1]!r}")
    row = [line for line in lines if " table-job " in line]
    check(len(row) == 1 and re.match(rf"\s*{job_id}\s+table-job\s+done\s+1/1\s+1\s+0\s+0\s+0\s+\d+s$", row[0]),
          f"row: {row}")
    nl = run("status", "--no-legend")
    check(not nl.stdout.startswith("ID") and "listed" not in nl.stdout, "--no-legend")

    # NOTFOUND and ERRORS each in their own column.
    nf_id = job_id_of(run("submit", "--no-wait", "--name", "table-nf", "-o", d, flag_url("fr"),
                          flag_url(MISSING[0]), flag_url(MISSING[1])))
    wait_for(lambda: job_json(nf_id)["state"] == "done", what="job done")
    row = [line for line in run("status").stdout.splitlines() if " table-nf " in line]
    check(len(row) == 1 and re.match(rf"\s*{nf_id}\s+table-nf\s+done\s+3/3\s+1\s+2\s+0\s+0\s+\d+s$", row[0]),
          f"row with not found tasks: {row}")
    details = run("status", str(job_id))
    expect(details, 0, "status ID")
    check(details.stdout.startswith(f'Job {job_id} "table-job"\n') and "State: done" in details.stdout
          and "1/1 done: 1 ok" in details.stdout, f"details: {details.stdout!r}")


def test_bus_address_option():
    p = subprocess.run([ASYNCCTL, f"--bus-address={BUS}", "status", "--json=short"],
                       capture_output=True, text=True)
    TRANSCRIPT.append(("--bus-address status", p.returncode, p.stdout, p.stderr))
    expect(p, 0, "--bus-address")
    check(isinstance(json.loads(p.stdout), list), "a job list")
    s = subprocess.run([ASYNCCTL, "--system", "status"], capture_output=True, text=True,
                       env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/sys"})
    check(s.returncode == 1 and "cannot connect to the system bus" in s.stderr, f"--system: {s.stderr!r}")


def run_in_terminal(argv, timeout=60):
    """Runs argv with stdout and stderr on a pseudo-terminal; returns (status, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm"
        os.environ["COLUMNS"] = "100"
        os.environ["LC_ALL"] = "C.UTF-8"
        os.execv(argv[0], argv)
    out = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_terminal_shows_progress_bar():
    """On a terminal (script(1)) the tqdm-like bar and spinner show; through a pipe they do not."""
    d = tmpdir()
    urls = [flag_url(c, SLOW, "/delay/400") for c in CODES[:12]]
    script = shutil.which("script")
    check(script, "script(1) from util-linux is installed")
    cmd = " ".join([ASYNCCTL, "--user", "submit", "-o", d, "-m", "4", *urls])
    p = subprocess.run([script, "-qefc", cmd, "/dev/null"], capture_output=True, timeout=60,
                       env={**os.environ, "TERM": "xterm", "COLUMNS": "100", "LC_ALL": "C.UTF-8"})
    # Bytes, decoded by hand: text mode would turn the bar's "\r" into "\n".
    p.stdout, p.stderr = p.stdout.decode(), p.stderr.decode()
    TRANSCRIPT.append((["script", "-qefc", cmd], p.returncode, p.stdout, p.stderr))
    expect(p, 0, "submit on a terminal")
    check(re.search(r"100%\|[█]+\| 12/12 \[\d\d:\d\d<00:00, +\d+\.\d\dit/s", p.stdout),
          "the final bar: 100%|███| 12/12 [00:01<00:00, 7.50it/s…]")
    check(re.search(r"\d+%\|[█▏▎▍▌▋▊▉ ]+\| [1-9]\d*/12 ", p.stdout), "intermediate bars")
    check("Waiting for the first result" in p.stdout, "the spinner while nothing is done")
    check("\r" in p.stdout and "Submitted job" in p.stdout, "redrawn in place, with the hint")
    check("12 downloaded." in p.stdout, "summary after the bar")

    d2 = tmpdir()
    piped = run("submit", "-o", d2, "-m", "4", *urls)
    expect(piped, 0, "submit through a pipe")
    check(piped.stderr == "" and "\r" not in piped.stdout and "it/s" not in piped.stdout,
          "no bar, spinner or control characters through a pipe")
    check(piped.stdout.startswith("-" * 20), "only the summary")

    # A terminal on stdout and stderr, but -v: lines instead of the bar, coloured.
    d3 = tmpdir()
    status, out = run_in_terminal([ASYNCCTL, "--user", "submit", "-v", "-o", d3, flag_url("br"), flag_url("xx")])
    check(status == 3, f"-v on a terminal: exit {status}")
    check("br.gif \x1b[0;32mok\x1b[0m" in out and "it/s" not in out, f"coloured -v lines, no bar: {out!r}")

    # One task: the final bar stays on its line too (drawn, then a newline, not erased).
    status, out = run_in_terminal([ASYNCCTL, "--user", "submit", "-o", tmpdir(), flag_url("br")])
    check(status == 0, f"one task on a terminal: exit {status}")
    check(re.search(r"100%\|█+\| 1/1 [^\r\n]*\x1b\[K\r?\n", out), f"the final bar 1/1 is kept: {out!r}")

    # -q wins over -v: no lines, no bar, no summary.
    p = run("submit", "-q", "-v", "-o", tmpdir(), flag_url("de"), flag_url("xx"))
    expect(p, 3, "submit -q -v")
    check(p.stdout == "" and p.stderr == "", f"-q -v prints nothing: {p.stdout!r} {p.stderr!r}")


def test_large_job_in_chunks():
    """A job larger than one message goes as SubmitJob + AddTasks chunks (chunk size lowered by
    ASYNCCTL_SUBMIT_CHUNK): every result arrives once; a bad task in a later chunk refuses the job
    (exit 2) and cancels what was submitted; --no-wait sends every chunk too."""
    env = dict(os.environ, ASYNCCTL_SUBMIT_CHUNK="40")
    codes = CODES + MISSING
    d = tmpdir()
    p = run("submit", "-v", "-o", d, "-m", "20", *[flag_url(c) for c in codes], env=env)
    expect(p, 3, "198 tasks in 5 chunks")
    lines = p.stdout.splitlines()
    check(sorted(lines[:lines.index("-" * 20)]) ==
          sorted([f"{c}.gif ok" for c in CODES] + [f"{c}.gif not found" for c in MISSING]),
          "one -v line per task across chunks")
    check_files(d, CODES)
    job = json.loads(run("--json=short", "status", env=env).stdout)[-1]
    check(job["total"] == len(codes) and job["state"] == "done", f"the daemon got all {len(codes)} tasks")

    d = tmpdir()
    urls = [flag_url(c) for c in CODES[:100]] + [flag_url("ad", prefix="/again")]
    p = run("submit", "-o", d, *urls, env=env)
    expect(p, 2, "duplicate file name in the third chunk")
    check("URL argument 101: " in p.stderr and "already used by URL argument 1\n" in p.stderr,
          f"names the arguments: {p.stderr!r}")
    job = json.loads(run("--json=short", "status", env=env).stdout)[-1]
    wait_for(lambda: json.loads(run("--json=short", "status", str(job["id"]), env=env).stdout)[0]["state"]
             == "cancelled", what="the half-submitted job is cancelled")

    d = tmpdir()
    p = run("submit", "--no-wait", "-o", d, *[flag_url(c) for c in CODES[:90]], env=env)
    expect(p, 0, "--no-wait with 3 chunks")
    job_id = job_id_of(p)
    wait_for(lambda: job_json(job_id)["state"] == "done", what="chunked --no-wait job done")
    check(job_json(job_id)["ok"] == 90, "all 90 tasks of the chunked --no-wait job ran")


def test_completion():
    """Bash completion offers verbs, options and the daemon's job ids."""
    d = tmpdir()
    job_id = job_id_of(run("submit", "--no-wait", "-o", d, flag_url("br")))
    script = f"""
source /usr/share/bash-completion/bash_completion
source {COMPLETION}
asyncctl() {{ {ASYNCCTL} "$@"; }}
t() {{ COMP_WORDS=("$@"); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMP_LINE="$*"; COMP_POINT=${{#COMP_LINE}};
      COMPREPLY=(); _asyncctl 2>/dev/null; echo "${{COMPREPLY[*]}}"; }}
t asyncctl ''
t asyncctl submit --conc
t asyncctl --user cancel ''
"""
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    TRANSCRIPT.append(("bash completion", p.returncode, p.stdout, p.stderr))
    lines = p.stdout.splitlines()
    check(len(lines) == 3, f"three completions: {lines}")
    check(lines[0].split() == ["submit", "status", "cancel", "watch", "results", "help"], "verbs")
    check(lines[1] == "--concurrency=", "options")
    check(str(job_id) in lines[2].split(), f"job ids: {lines[2]!r}")


def write_list(lines, name="list.txt"):
    """An input file for -i in a fresh directory; lines are str or bytes (no newline)."""
    path = os.path.join(tmpdir(), name)
    with open(path, "wb") as f:
        for line in lines:
            f.write((line.encode() if isinstance(line, str) else line) + b"\n")
    return path


def test_refusal_names_input_line():
    """The daemon's "task N: ..." is mapped back to FILE:LINE or "URL argument N", for SubmitJob
    and for the AddTasks of a chunked job (job-wide index); comments and blank lines count as
    lines, not as tasks."""
    d = tmpdir()
    listing = write_list(["# flags", "", flag_url("br"), "   ", "# more", "http://[bad/x.gif", flag_url("fr")])
    p = run("submit", "-o", d, "-i", listing, flag_url("de"))
    expect(p, 2, "a bad URL on line 6")
    one_error_line(p, f"the daemon refused the job: {listing}:6: invalid URL \"http://[bad/x.gif\"")
    check("task " not in p.stderr, f"no daemon task index: {p.stderr!r}")

    p = run("submit", "-o", d, "-i", "-", flag_url("de"), "http://[bad/y.gif",
            input=f"{flag_url('br')}\n")
    expect(p, 2, "a bad URL argument")
    one_error_line(p, 'URL argument 2: invalid URL "http://[bad/y.gif"')

    # Chunks of 3: the bad line is task 7 of the job, in the third chunk (AddTasks).
    env = dict(os.environ, ASYNCCTL_SUBMIT_CHUNK="3")
    lines = ["# chunked"] + [flag_url(c) for c in CODES[:5]] + ["", "http://[bad/z.gif", flag_url("zw")]
    listing = write_list(lines, "chunked.txt")
    p = run("submit", "-o", tmpdir(), "-i", listing, flag_url("de"), flag_url("fr"), env=env)
    expect(p, 2, "a bad URL in a later chunk")
    check(f"the daemon refused the job: {listing}:8: invalid URL \"http://[bad/z.gif\"" in p.stderr,
          f"AddTasks refusal names the line: {p.stderr!r}")

    # A duplicate file name names both places (task 2, in the second chunk of 2).
    listing = write_list([flag_url("br"), "# x", flag_url("fr"), f"{flag_url('de')} br.gif"], "dup.txt")
    p = run("submit", "-o", tmpdir(), "-i", listing, env=dict(os.environ, ASYNCCTL_SUBMIT_CHUNK="2"))
    expect(p, 2, "a duplicate file name across chunks")
    check(f'{listing}:4: file name "br.gif" is already used by {listing}:1\n' in p.stderr,
          f"both lines named: {p.stderr!r}")


def test_bad_input_is_named():
    """-i with a directory, a NUL byte, invalid UTF-8 in a URL, a file name or --name: a usage
    error (exit 1) that says what is wrong and where, before anything is submitted."""
    p = run("submit", "-i", "/tmp")
    expect(p, 1, "-i /tmp")
    one_error_line(p, "/tmp: Is a directory")
    check("line 0" not in p.stderr, f"no line 0: {p.stderr!r}")

    listing = write_list([flag_url("br"), "# ok", b"http://h/a\0b.gif"])
    p = run("submit", "-i", listing)
    expect(p, 1, "a NUL byte")
    one_error_line(p, f"{listing}:3: line contains a NUL byte")

    listing = write_list(["# bad", flag_url("br"), flag_url("fr").encode() + b" caf\xe9.gif"])
    p = run("submit", "-o", tmpdir(), "-i", listing)
    expect(p, 1, "a file name in Latin-1")
    one_error_line(p, f"{listing}:3: file name is not valid UTF-8")

    listing = write_list([flag_url("br"), b"http://h/\xff.gif"])
    p = run("submit", "-o", tmpdir(), "-i", listing)
    expect(p, 1, "a URL in Latin-1")
    one_error_line(p, f"{listing}:2: URL is not valid UTF-8")

    listing = write_list([f"{flag_url('br')} a/b.gif"])
    p = run("submit", "-o", tmpdir(), "-i", listing)
    expect(p, 1, "a file name with a slash")
    one_error_line(p, f'{listing}:1: file name contains "/"')

    # str arguments with surrogate escapes reach asyncctl as the raw bytes \xff.
    p = run("submit", "-o", tmpdir(), flag_url("br"), "http://h/\udcff.gif")
    expect(p, 1, "a URL argument in Latin-1")
    one_error_line(p, "URL argument 2: URL is not valid UTF-8")

    p = run("submit", "-o", tmpdir(), "--name", "bad\udcff", flag_url("br"))
    expect(p, 1, "--name in Latin-1")
    one_error_line(p, "--name: not valid UTF-8")


def test_option_errors():
    """A value for an option that takes none, a missing value, a submit option for another
    command: the option named as written, no control characters."""
    for args, msg in [(["--overwrite=yes", "status"], "option '--overwrite' takes no value"),
                      (["--help=x"], "option '--help' takes no value"),
                      (["--user", "-xq", "status"], "unknown option '-x'"),
                      (["status", "--output-dir"], "option '--output-dir' needs a value"),
                      (["status", "-o"], "option '-o' needs a value"),
                      (["status", "-o", "/nonexistent"], "option -o/--output-dir is only for submit, not for status"),
                      (["cancel", "--no-wait", "1"], "option --no-wait is only for submit, not for cancel"),
                      (["results", "-v", "1"], "only for submit and watch, not for results"),
                      (["submit", ""], "URL argument 1 is empty"),
                      (["submit", "-i", "/dev/null"], "no URLs to download (give them as arguments or with -i FILE)"),
                      (["--json=bogus", "status"], 'invalid --json= mode "bogus" (expected short, pretty or off)'),
                      (["--bus-address=", "status"], "--bus-address= needs an address"),
                      (["submit", "--timeout=abc", flag_url("br")], "invalid time span for --timeout: abc"),
                      (["submit", "--max-bytes=1Q", flag_url("br")], "invalid size for --max-bytes: 1Q"),
                      (["--no", "status"], "option '--no' is ambiguous (see --help)"),
                      (["watch", "1", "2"], "too many arguments for watch (usage: asyncctl watch ID)"),
                      (["frobnicate"], 'unknown command "frobnicate" (see --help)')]:
        p = run(*args)
        expect(p, 1, " ".join(args))
        one_error_line(p, msg)
        check(all(c >= " " for c in p.stderr.rstrip("\n")), f"no control characters: {p.stderr!r}")


@contextlib.contextmanager
def private_bus():
    """A bus of its own, on which no asyncd runs or can be activated: (address, dbus-daemon)."""
    conf_dir = tmpdir()
    with open(os.path.join(conf_dir, "bus.conf"), "w") as f:
        f.write(f"""<busconfig><type>session</type><auth>EXTERNAL</auth><listen>unix:dir={conf_dir}</listen>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/>
<allow own="*"/></policy></busconfig>""")
    bus = subprocess.Popen(["dbus-daemon", f"--config-file={conf_dir}/bus.conf", "--nofork", "--nopidfile",
                            "--print-address=1"], stdout=subprocess.PIPE, text=True)
    try:
        yield bus.stdout.readline().strip(), bus
    finally:
        if bus.poll() is None:
            bus.terminate()
        bus.wait()


def test_missing_jobs_and_no_daemon():
    """A job id the daemon does not know, and a bus where no asyncd is (not installed, not
    running): every command says so in one line and exits 1; submit creates nothing."""
    for verb, what in (("status", "show"), ("results", "find"), ("watch", "find"), ("cancel", "cancel")):
        p = run(verb, "999999")
        expect(p, 1, f"{verb} of a job that does not exist")
        one_error_line(p, f"cannot {what} job 999999: no job with id 999999")

    # No session bus to talk to at all, or none where the environment says.
    env = {k: v for k, v in os.environ.items() if k not in ("DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR")}
    p = run("status", env=env)
    expect(p, 1, "--user without a session bus")
    one_error_line(p, "cannot connect to the user bus: neither $DBUS_SESSION_BUS_ADDRESS nor $XDG_RUNTIME_DIR is set")
    p = run("status", env=dict(env, XDG_RUNTIME_DIR=os.path.join(tmpdir(), "nonexistent")))
    expect(p, 1, "--user with no bus socket")
    one_error_line(p, "cannot connect to the user bus: No such file or directory")

    with private_bus() as (address, _):
        d = tmpdir()
        for args, what in ((["submit", "-o", d, flag_url("br")], "cannot submit the job: "),
                           (["submit", "--no-wait", "-o", d, flag_url("br")], "cannot submit the job: "),
                           (["status"], "cannot list the jobs: "),
                           (["results", "1"], "cannot find job 1: "),
                           (["watch", "1"], "cannot find job 1: "),
                           (["cancel", "1"], "cannot cancel job 1: ")):
            argv = [ASYNCCTL, f"--bus-address={address}", *args]
            p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            TRANSCRIPT.append((argv, p.returncode, p.stdout, p.stderr))
            expect(p, 1, f"{args[0]} with no asyncd on the bus")
            one_error_line(p, what, "io.asyncd1")
            check(p.stdout == "", f"{args[0]}: nothing on stdout: {p.stdout!r}")
        check(files_in(d) == [], "nothing created")


def test_bus_lost_while_waiting():
    """The bus goes away (dbus-daemon killed) while submit and watch wait for a job: each says it
    lost the connection, naming the job, and exits 1 instead of waiting for ever."""
    with private_bus() as (address, bus):
        log = open(os.path.join(tmpdir(), "asyncd.log"), "w")
        daemon = subprocess.Popen([ASYNCD, f"--bus-address={address}"], stdout=log, stderr=log)
        try:
            wait_for(lambda: subprocess.run([ASYNCCTL, f"--bus-address={address}", "status"],
                                            capture_output=True).returncode == 0, what="asyncd on the private bus")
            slow = flag_url("br", SLOW, "/delay/20000")
            p = subprocess.run([ASYNCCTL, f"--bus-address={address}", "submit", "--no-wait", "-o", tmpdir(), slow],
                               capture_output=True, text=True, timeout=60)
            job_id = job_id_of(p)
            procs = [subprocess.Popen([ASYNCCTL, f"--bus-address={address}", *args], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
                     for args in (["submit", "-o", tmpdir(), slow], ["watch", str(job_id)])]
            wait_for(lambda: subprocess.run([ASYNCCTL, f"--bus-address={address}", "status", str(job_id + 1)],
                                            capture_output=True).returncode == 0, what="the second job")
            time.sleep(0.5)
            bus.kill()          # no NameOwnerChanged first: the connections just end
            bus.wait()
            for proc, verb, job in zip(procs, ("submit", "watch"), (job_id + 1, job_id)):
                out, err = proc.communicate(timeout=30)
                TRANSCRIPT.append((verb, proc.returncode, out, err))
                check(proc.returncode == 1, f"{verb}: exit {proc.returncode} when the bus went away")
                check(f"asyncctl: lost the connection to the bus while waiting for job {job}" in err,
                      f"{verb} says so: {err!r}")
            check(daemon.wait(timeout=30) == 1, f"asyncd exits 1 when the bus goes away ({daemon.returncode})")
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
            log.close()


def test_no_wait_json():
    """submit --no-wait --json: the job's id and object path, and the job runs; -j is --json=short
    when stdout is not a terminal; status of two jobs shows both, a blank line between."""
    d = tmpdir()
    p = run("--json=short", "submit", "--no-wait", "-o", d, flag_url("br"))
    expect(p, 0, "submit --no-wait --json=short")
    job = json.loads(p.stdout)
    check(set(job) == {"id", "path"} and job["path"] == f"/io/asyncd1/job/{job['id']}", f"json: {p.stdout!r}")
    wait_for(lambda: job_json(job["id"])["state"] == "done", what="job done")
    check_files(d, ["br"])
    p = run("-j", "submit", "--no-wait", "-o", tmpdir(), flag_url("de"))
    expect(p, 0, "-j submit --no-wait")
    second = json.loads(p.stdout)
    check(p.stdout == json.dumps(second, separators=(",", ":")) + "\n", f"-j into a pipe is short JSON: {p.stdout!r}")
    wait_for(lambda: job_json(second["id"])["state"] == "done", what="job done")
    p = run("status", str(job["id"]), str(second["id"]))
    expect(p, 0, "status of two jobs")
    check(p.stdout.startswith(f"Job {job['id']}\n") and f"\n\nJob {second['id']}\n" in p.stdout,
          f"both jobs, a blank line between: {p.stdout!r}")


def test_results_before_any_result():
    """results of a job that has none yet says so (nothing with --no-legend) and succeeds."""
    job_id = job_id_of(run("submit", "--no-wait", "-o", tmpdir(), flag_url("br", SLOW, "/delay/3000")))
    p = run("results", str(job_id))
    expect(p, 0, "results of a job without results")
    check(p.stdout == "No results yet.\n" and p.stderr == "", f"says so: {p.stdout!r} {p.stderr!r}")
    p = run("--no-legend", "results", str(job_id))
    check(p.returncode == 0 and p.stdout == "", f"--no-legend: nothing: {p.stdout!r}")
    expect(run("-q", "cancel", str(job_id)), 0, "cancel")


def test_concurrency_and_id_ranges():
    """-m out of 1..1000 and job ids that overflow are usage errors that say the range."""
    for m in ("1001", "0", "99999999999999999999"):
        p = run("submit", "-m", m, flag_url("br"))
        expect(p, 1, f"-m {m}")
        one_error_line(p, "-m/--concurrency: expected a number from 1 to 1000")
    p = run("submit", "-q", "-m", "1000", "-o", tmpdir(), flag_url("br"))
    expect(p, 0, "-m 1000")
    for verb in ("status", "cancel", "watch", "results"):
        p = run(verb, "99999999999999999999")
        expect(p, 1, f"{verb} with an overflowing id")
        one_error_line(p, "expected a number from 1 to 18446744073709551615")


def test_closed_stdout_cancels():
    """submit -v whose reader goes away (as with "| head -1"): like SIGTERM, the job is
    cancelled and asyncctl exits 130, with nothing on stderr; it is not killed by SIGPIPE."""
    d = tmpdir()
    urls = [flag_url(c) for c in CODES[:2]] + [flag_url(c, SLOW, "/delay/1000") for c in CODES[2:8]]
    proc = subprocess.Popen([ASYNCCTL, "--user", "submit", "-v", "-m", "1", "--name", "epipe", "-o", d, *urls],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=30)
    TRANSCRIPT.append(("submit -v | head -1", proc.returncode, first.decode(), err.decode()))
    check(first in (f"{CODES[0]}.gif ok\n".encode(), f"{CODES[1]}.gif ok\n".encode()),
          f"the first line is a fast flag: {first!r}")
    check(proc.returncode == 130, f"exit {proc.returncode}, expected 130 (-13 is death by SIGPIPE)")
    check(err == b"", f"quiet: {err!r}")
    (job,) = [j for j in json.loads(run("status", "--json=short").stdout) if j["name"] == "epipe"]
    wait_for(lambda: job_json(job["id"])["state"] == "cancelled", what="the job to be cancelled")

    # Without -v nothing is written until the summary: a reader gone by then is the same exit.
    job_id = job_id_of(run("submit", "--no-wait", "-o", tmpdir(), flag_url("de", SLOW, "/delay/500")))
    for args in (["submit", "-o", tmpdir(), flag_url("fr", SLOW, "/delay/500")],
                 ["--json=short", "submit", "-o", tmpdir(), flag_url("it", SLOW, "/delay/500")],
                 ["watch", str(job_id)]):
        proc = subprocess.Popen([ASYNCCTL, "--user", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.close()
        err = proc.stderr.read()
        proc.wait(timeout=30)
        check(proc.returncode == 130 and err == b"", f"{args} with stdout closed: exit {proc.returncode}, {err!r}")


def run_to_full(*args):
    with open("/dev/full", "w") as full:
        p = subprocess.run([ASYNCCTL, "--user", *args], stdout=full, stderr=subprocess.PIPE, text=True)
    TRANSCRIPT.append(([ASYNCCTL, "--user", *args, ">/dev/full"], p.returncode, "", p.stderr))
    return p


def test_write_errors_fail():
    """stdout on a full disk: every command says so and exits 1; submit --no-wait names the job
    it created, so that it can be cancelled."""
    d = tmpdir()
    job_id = job_id_of(run("submit", "--no-wait", "-o", d, flag_url("br")))
    wait_for(lambda: job_json(job_id)["state"] == "done", what="job done")
    for args in (["--help"], ["--version"], ["status"], ["status", str(job_id)], ["results", str(job_id)],
                 ["--json=short", "cancel", str(job_id)], ["submit", "-o", tmpdir(), flag_url("fr")],
                 ["watch", str(job_id)]):
        p = run_to_full(*args)
        expect(p, 1, " ".join(args) + " >/dev/full")
        check(p.stderr.endswith("asyncctl: cannot write output: No space left on device\n"),
              f"{args}: says why: {p.stderr!r}")

    p = run_to_full("submit", "--no-wait", "--name", "lost-id", "-o", tmpdir(), flag_url("de"))
    expect(p, 1, "submit --no-wait >/dev/full")
    one_error_line(p, "cannot write output: No space left on device")
    m = re.search(r"job (\d+) was submitted", p.stderr)
    check(m, f"names the job: {p.stderr!r}")
    check(job_json(int(m.group(1)))["name"] == "lost-id", "the job named is the one submitted")


def test_cancel_finished_job():
    """cancel of a finished job says there was nothing to cancel and does not claim it in JSON;
    of a running one it cancels."""
    d = tmpdir()
    job_id = job_id_of(run("submit", "--no-wait", "-o", d, flag_url("br")))
    wait_for(lambda: job_json(job_id)["state"] == "done", what="job done")
    p = run("cancel", str(job_id))
    expect(p, 0, "cancel of a finished job")
    check(p.stdout == "", "nothing on stdout")
    check(p.stderr == f"asyncctl: job {job_id} has already finished (done): nothing to cancel\n",
          f"says so: {p.stderr!r}")
    p = run("--json=short", "cancel", str(job_id))
    expect(p, 0, "cancel --json of a finished job")
    check(json.loads(p.stdout) == [{"id": job_id, "cancelled": False, "state": "done"}], f"json: {p.stdout!r}")
    check(job_json(job_id)["state"] == "done", "still done")
    check(run("-q", "cancel", str(job_id)).stderr == "", "-q: quiet")

    running = job_id_of(run("submit", "--no-wait", "-o", tmpdir(), flag_url("fr", SLOW, "/delay/3000")))
    p = run("--json=short", "cancel", str(running))
    expect(p, 0, "cancel --json of a running job")
    check(json.loads(p.stdout) == [{"id": running, "cancelled": True, "state": "running"}], f"json: {p.stdout!r}")
    wait_for(lambda: job_json(running)["state"] == "cancelled", what="the job to be cancelled")
    p = run("status", str(running))
    expect(p, 0, "status of the cancelled job")
    check("Tasks: 1/1 done: 0 ok, 0 not found, 0 errors, 1 cancelled\n" in p.stdout, f"its counts: {p.stdout!r}")

    # A job that does not exist cannot be cancelled: an error, whatever the other ids did.
    p = run("cancel", str(job_id), "999999")
    expect(p, 1, "cancel of a finished and a missing job")
    check("cannot cancel job 999999" in p.stderr, f"names the missing job: {p.stderr!r}")


def man_text():
    """The man page with the roff escapes that matter here undone."""
    return open(MAN_PAGE).read().replace("\\-", "-").replace("\\(em", "—")


def man_paragraph(man, start):
    """The .TP paragraph (or .SH section) of man that begins with the line start."""
    at = man.index(start)
    end = min(i for i in (man.find(".TP", at), man.find(".SH", at), len(man)) if i > at)
    return man[at:end]


def test_help_and_man_agree():
    """Every option in --help is in the man page; --json=off, the no-limit 0 of --timeout and
    --max-bytes, what --no-legend leaves out, and what the progress bar shows are documented."""
    p = run("--help")
    expect(p, 0, "--help")
    check(run("help").stdout == p.stdout, "the help command prints the same as --help")
    man = man_text()
    opts = set()
    for line in p.stdout.splitlines():
        m = re.match(r"\s+((?:-\w|--[\w-]+)(?:[ /](?:-\w|--[\w-]+))*)", line)
        if m:
            opts.update(re.findall(r"--?[\w-]+", m.group(1)))
    check({"-j", "-v", "--verbose", "-o", "--output-dir", "-i", "--input", "--no-legend"} <= opts,
          f"options parsed from --help: {sorted(opts)}")
    for o in sorted(opts):
        check(re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", man), f"{o} is in the man page")

    check("off" in man_paragraph(man, ".BR --json=short"), "man: --json=off")
    check(re.search(r"--json=MODE .*\boff\b", p.stdout), "--help: --json=off")
    for opt in (".BI --timeout", ".BI --max-bytes"):
        check(re.search(r"\b0\b.*no limit", man_paragraph(man, opt), re.S), f"man: {opt} 0 means no limit")

    legend_help = [line for line in p.stdout.splitlines() if "--no-legend" in line][0]
    legend_man = man_paragraph(man, ".B --no-legend")
    for text in (legend_help, legend_man):
        check("status" in text and "results" in text and "footer" not in text, f"--no-legend: {text!r}")
    check("summary" in legend_man and "still" in legend_man, "man: the submit summary stays")

    bar = man_paragraph(man, ".BR submit")
    check("download rate" not in bar and "tasks per second" in bar and "bytes" in bar,
          "man: the bar shows tasks per second and bytes received")
    check("trailing" in man_paragraph(man, '.BR -i " '), "man: a trailing # is not a comment")


def test_results_name_tasks_past_one_page():
    """results and watch name tasks with Job.GetTasks, which returns at most 4,096 per call: in a
    larger job the results of the last tasks carry their URL too."""
    n = 4200
    urls = [flag_url("br", SLOW, "/delay/5000") + f"?t={i}" for i in range(n)]
    listing = write_list(f"{u} t{i}.gif" for i, u in enumerate(urls))
    job_id = job_id_of(run("submit", "--no-wait", "-m", "1", "-o", tmpdir(), "-i", listing))
    expect(run("cancel", str(job_id)), 0, "cancel")
    wait_for(lambda: job_json(job_id)["state"] == "cancelled", what="the job to be cancelled")
    results = results_json(job_id)
    check(len(results) == n, f"{n} results, got {len(results)}")
    missing = [r["index"] for r in results if r.get("url") != urls[r["index"]]]
    check(not missing, f"every result names its URL; {len(missing)} do not, from index {min(missing or [0])}")


BUS_32MIB_CONF = """<busconfig>
  <type>session</type>
  <listen>unix:path={dir}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
  <limit name="max_message_size">33554432</limit>
</busconfig>
"""


def test_long_urls_split_by_size():
    """A job of 600 URLs of 60 KB (36 MB) goes in chunks that fit a bus's message limit (32 MiB,
    dbus-daemon's default and a system bus's): one SubmitJob with them all made the bus disconnect
    asyncctl. On a bus of its own with that limit stated, and a daemon of its own on it."""
    d = tempfile.mkdtemp(prefix="bus-", dir=WORK)
    conf = os.path.join(d, "bus.conf")
    with open(conf, "w") as f:
        f.write(BUS_32MIB_CONF.format(dir=d))
    bus = subprocess.Popen(["dbus-daemon", "--config-file", conf, "--nofork", "--print-address=1"],
                           stdout=subprocess.PIPE, text=True)
    address = bus.stdout.readline().strip()
    daemon = subprocess.Popen([ASYNCD, f"--bus-address={address}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        base = [ASYNCCTL, f"--bus-address={address}"]
        wait_for(lambda: subprocess.run(base + ["status"], capture_output=True).returncode == 0,
                 what="asyncd on the 32 MiB bus")
        listing = write_list(f"{NGINX}/{'a' * 60000}/t{i}" for i in range(600))
        argv = base + ["submit", "--no-wait", "-o", tmpdir(), "-i", listing]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        TRANSCRIPT.append((argv, p.returncode, p.stdout, p.stderr))
        expect(p, 0, "36 MB of URLs submitted")
        job_id = job_id_of(p)
        st = subprocess.run(base + ["--json=short", "status", str(job_id)], capture_output=True, text=True)
        check(json.loads(st.stdout)[0]["total"] == 600, f"the daemon got all 600 tasks: {st.stdout!r}")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        bus.terminate()
        bus.wait()
    check(daemon.returncode == 0, f"that asyncd exits 0 (status {daemon.returncode})")


CASES = [
    test_submit_concurrencies,
    test_concurrency_reaches_daemon,
    test_all_ok_exit_0,
    test_verbose_one_line_per_task,
    test_json_matches_job,
    test_exit_codes,
    test_watch_replays_after_the_fact,
    test_watch_live,
    test_stopped_watch_holds_only_its_job,
    test_ctrl_c_cancels,
    test_ctrl_c_during_watch_detaches,
    test_input_file_and_stdin,
    test_options_reach_daemon,
    test_status_table,
    test_bus_address_option,
    test_terminal_shows_progress_bar,
    test_large_job_in_chunks,
    test_completion,
    test_refusal_names_input_line,
    test_bad_input_is_named,
    test_option_errors,
    test_concurrency_and_id_ranges,
    test_missing_jobs_and_no_daemon,
    test_bus_lost_while_waiting,
    test_no_wait_json,
    test_results_before_any_result,
    test_closed_stdout_cancels,
    test_write_errors_fail,
    test_cancel_finished_job,
    test_results_name_tasks_past_one_page,
    test_long_urls_split_by_size,
    test_help_and_man_agree,
]


def start_daemon(log):
    d = subprocess.Popen([ASYNCD, "--user", "--log-level=debug"], stdout=log, stderr=log)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if d.poll() is not None:
            raise Failure(f"asyncd exited with {d.returncode}")
        p = subprocess.run([ASYNCCTL, "--user", "status"], capture_output=True)
        if p.returncode == 0:
            return d
        time.sleep(0.1)
    raise Failure("asyncd did not come up on the bus")


def main():
    selected = [c for c in CASES if not sys.argv[1:] or c.__name__ in sys.argv[1:]]
    log = tempfile.NamedTemporaryFile(prefix="asyncd-", suffix=".log", delete=False)
    daemon = start_daemon(log)
    failed = 0
    print(f"1..{len(selected)}", flush=True)
    try:
        for i, case in enumerate(selected, 1):
            TRANSCRIPT.clear()
            t0 = time.monotonic()
            try:
                case()
                print(f"ok {i} - {case.__name__} ({time.monotonic() - t0:.1f}s)", flush=True)
            except Exception as e:  # noqa: BLE001 - report every kind of failure
                failed += 1
                print(f"not ok {i} - {case.__name__}: {e}", flush=True)
                if not isinstance(e, Failure):
                    print("# " + traceback.format_exc().replace("\n", "\n# "))
                for argv, rc, out, err in TRANSCRIPT[-4:]:
                    print(f"#   $ {argv if isinstance(argv, str) else ' '.join(map(str, argv))[:300]}\n"
                          f"#   -> {rc}\n#   stdout: {out[-1500:]!r}\n#   stderr: {err[-800:]!r}")
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        # Valgrind and the sanitizers report through the daemon's exit status.
        if daemon.returncode != 0:
            failed += 1
            print(f"# asyncd exited with status {daemon.returncode} on SIGTERM", flush=True)
        if failed:
            log.seek(0)
            print("# asyncd log (tail):\n# " + log.read().decode(errors="replace")[-4000:].replace("\n", "\n# "))
        os.unlink(log.name)
        shutil.rmtree(WORK, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
