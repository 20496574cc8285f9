#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""asyncctl against fake-asyncd.py (a scripted daemon): every result is shown exactly once and
in seq order whatever the interleaving of reply and signals — signals before the SubmitJob
reply, duplicated results, results only available through GetResults(), a Finished that never
comes, impostor signals, a daemon that leaves the bus, Ctrl-C before the reply, a daemon on its
way out that refuses SubmitJob (retried until it is served, or for 5 s).

meson runs it under dbus-run-session with ASYNCCTL, FAKE_PYTHON (a python3 with gi) and
DBUS_XML_DIR set. Output is TAP; exit 77 (skip) when FAKE_PYTHON cannot import gi.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

ASYNCCTL = os.environ["ASYNCCTL"]
FAKE_PYTHON = os.environ["FAKE_PYTHON"]
XML_DIR = os.environ["DBUS_XML_DIR"]
FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake-asyncd.py")

# 7 ok, 2 not found, 1 error: 10 tasks, seq == index in the fake.
URLS = [f"http://fake/ok/f{i}.gif" for i in range(7)] + ["http://fake/nf/n0.gif", "http://fake/nf/n1.gif",
                                                          "http://fake/err/e0.gif"]
EXPECTED_LINES = [f"f{i}.gif ok" for i in range(7)] + ["n0.gif not found", "n1.gif not found",
                                                      "*** Error for http://fake/err/e0.gif: HTTP 503 Service Unavailable"]
SUMMARY = ["-" * 20, "7 downloaded.", "2 not found.", "1 error."]


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


class Fake:
    def __init__(self):
        self.proc = subprocess.Popen([FAKE_PYTHON, FAKE, XML_DIR], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "READY":
            raise Failure(f"fake-asyncd did not start: {line!r}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)


def asyncctl(*args, timeout=30):
    return subprocess.run([ASYNCCTL, "--user", *args], capture_output=True, text=True, timeout=timeout)


def submit(scenario, *extra, urls=URLS):
    return asyncctl("submit", "-v", "--name", scenario, "-o", "/tmp", *extra, *urls)


# watch does not know the tasks' URLs: not found and error lines name the task by index.
WATCH_LINES = EXPECTED_LINES[:7] + ["task #7 not found", "task #8 not found",
                                    "*** Error for task #9: HTTP 503 Service Unavailable"]


def check_lines(p, what, exit_status=3, expected=EXPECTED_LINES):
    check(p.returncode == exit_status, f"{what}: exit {p.returncode}, expected {exit_status}; stderr {p.stderr!r}")
    lines = p.stdout.splitlines()
    check(lines[:len(expected)] == expected,
          f"{what}: each result once, in seq order:\n{p.stdout}")
    check(lines[len(expected):-1] == SUMMARY and re.fullmatch(r"Elapsed time: \d+\.\d\ds", lines[-1]),
          f"{what}: summary:\n{p.stdout}")


def test_normal():
    check_lines(submit("normal"), "normal")


def test_signals_before_reply():
    check_lines(submit("early"), "early")


def test_duplicates_dropped():
    check_lines(submit("dup"), "dup")


def test_gap_filled_from_getresults():
    check_lines(submit("gap"), "gap")


def test_lost_tail_fetched_at_finished():
    check_lines(submit("lost-tail"), "lost-tail")


def test_missing_finished():
    p = submit("nofinish")
    check_lines(p, "nofinish")
    check("did not signal the end of job" in p.stderr, f"warns about the missing Finished: {p.stderr!r}")


def test_impostor_and_other_jobs_ignored():
    p = submit("foreign")
    check_lines(p, "foreign")
    check("IMPOSTOR" not in p.stdout and "OTHER JOB" not in p.stdout, "foreign results ignored")


def test_json_exactly_once():
    for scenario in ("dup", "gap", "early"):
        p = asyncctl("submit", "--json=short", "--name", scenario, "-o", "/tmp", *URLS)
        check(p.returncode == 3, f"{scenario} --json: exit {p.returncode}")
        doc = json.loads(p.stdout)
        check([r["seq"] for r in doc["results"]] == list(range(10)), f"{scenario} --json: seqs {doc['results']}")
        check((doc["ok"], doc["not_found"], doc["error"]) == (7, 2, 1), f"{scenario} --json: counts")


def test_watch_exactly_once():
    """watch replays and streams a running job with a gap-y signal pattern."""
    p = asyncctl("submit", "--no-wait", "--name", "gap", "-o", "/tmp", *URLS)
    job_id = p.stdout.strip()
    check_lines(asyncctl("watch", "-v", job_id), "watch while running", expected=WATCH_LINES)
    check_lines(asyncctl("watch", "-v", job_id), "watch after the fact", expected=WATCH_LINES)


def test_daemon_vanishes(fake):
    p = submit("vanish")
    check(p.returncode == 1, f"exit {p.returncode}, expected 1")
    check(p.stdout.splitlines() == ["f0.gif ok"], f"the one result, no summary: {p.stdout!r}")
    check(p.stderr.strip().splitlines()[-1] == "asyncctl: asyncd left the bus before job 1 finished." or
          "left the bus" in p.stderr, f"says the daemon left: {p.stderr!r}")


def test_refused():
    p = submit("refuse")
    check(p.returncode == 2 and p.stderr == "asyncctl: the daemon refused the job: URL argument 1: scripted refusal\n",
          f"refused: {p.returncode} {p.stderr!r}")


def interrupt(scenario, delay):
    proc = subprocess.Popen([ASYNCCTL, "--user", "submit", "-v", "--name", scenario, "-o", "/tmp", *URLS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    return proc.returncode, out, err


def test_ctrl_c_while_running():
    rc, out, err = interrupt("hang", 0.5)
    check(rc == 130, f"exit {rc}")
    check(out.splitlines()[:10] == [f"{u.rsplit('/', 1)[1]} cancelled" for u in URLS], f"cancelled lines: {out!r}")
    check("10 cancelled." in out and "Cancelling job" in err, f"summary and notice: {out!r} {err!r}")


def test_ctrl_c_before_reply():
    """SIGINT while SubmitJob is pending: the job is cancelled as soon as it exists."""
    rc, out, err = interrupt("slowreply", 0.5)
    check(rc == 130, f"exit {rc}")
    check("10 cancelled." in out, f"the job was cancelled once accepted: {out!r} {err!r}")
    listing = asyncctl("status", "--json=short")
    states = [j["state"] for j in json.loads(listing.stdout) if j["name"] == "slowreply"]
    check(states and all(s == "cancelled" for s in states), f"no job left running: {states}")


def sigint_bit(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1], 16) >> (signal.SIGINT - 1) & 1
    return 0


def wait_until(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)
    return predicate()


def ctrl_c(proc):
    """One SIGINT that asyncctl reads as one: sent once it handles SIGINT (blocked, for its
    signalfd), and the next only after this one was read (two pending SIGINTs merge into one)."""
    check(wait_until(lambda: sigint_bit(proc.pid, "SigBlk")), "asyncctl handles SIGINT")
    proc.send_signal(signal.SIGINT)
    check(wait_until(lambda: not sigint_bit(proc.pid, "ShdPnd") and not sigint_bit(proc.pid, "SigPnd")),
          "asyncctl read the SIGINT")


def slowreply_states():
    listing = asyncctl("status", "--json=short")
    return [j["state"] for j in json.loads(listing.stdout) if j["name"] == "slowreply"]


def test_double_ctrl_c_before_reply():
    """Two Ctrl-Cs while SubmitJob is pending: leaving then would leave the job running unseen, so
    asyncctl waits for its id, cancels it, and leaves without waiting for its results."""
    proc = subprocess.Popen([ASYNCCTL, "--user", "submit", "--name", "slowreply", "-o", "/tmp", *URLS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ctrl_c(proc)
    ctrl_c(proc)
    out, err = proc.communicate(timeout=20)
    check(proc.returncode == 130, f"exit {proc.returncode}")
    check("Waiting for the daemon to accept the job" in err and "; not waiting for its results" in err,
          f"notices: {err!r}")
    states = slowreply_states()
    check(states and all(s == "cancelled" for s in states), f"no job left running: {states}")


def test_triple_ctrl_c_before_reply():
    """A third Ctrl-C leaves at once, and the job, once the daemon creates it, runs on."""
    proc = subprocess.Popen([ASYNCCTL, "--user", "submit", "--name", "slowreply", "-o", "/tmp", *URLS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    for _ in range(3):
        ctrl_c(proc)
    out, err = proc.communicate(timeout=20)
    check(proc.returncode == 130 and time.monotonic() - t0 < 1.2, f"exit {proc.returncode}, before the reply")
    time.sleep(1.5)
    check(slowreply_states().count("running") == 1, f"that job runs on: {slowreply_states()}")


def test_second_ctrl_c_stops_waiting_for_the_cancel():
    """The first Ctrl-C asks for the cancel; while the daemon has not done it, the second one
    stops waiting at once (exit 130)."""
    proc = subprocess.Popen([ASYNCCTL, "--user", "submit", "--name", "deaf", "-o", "/tmp", *URLS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        check(wait_until(lambda: any(j["name"] == "deaf" for j in json.loads(asyncctl("status", "--json=short").stdout))),
              "the daemon accepted the job")
        ctrl_c(proc)
        time.sleep(0.5)
        check(proc.poll() is None, "still waiting for the cancel after the first Ctrl-C")
        ctrl_c(proc)
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        raise Failure("the second Ctrl-C did not stop waiting") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    check(proc.returncode == 130, f"exit {proc.returncode}")
    check("Cancelling job" in err and "Not waiting for job" in err, f"notices: {err!r}")


def test_shutting_down_retried():
    """A daemon exiting on idle refuses new jobs; the next instance takes them: asyncctl retries."""
    check_lines(submit("exiting-wait"), "refused 3 times, then served")
    p = asyncctl("submit", "--no-wait", "--name", "exiting-nowait", "-o", "/tmp", *URLS)
    check(p.returncode == 0 and re.fullmatch(r"\d+\n", p.stdout), f"--no-wait: {p.returncode} {p.stdout!r} {p.stderr!r}")
    t0 = time.monotonic()
    p = submit("stopping")
    elapsed = time.monotonic() - t0
    check(p.returncode == 2 and "the daemon refused the job: asyncd is shutting down" in p.stderr and 4 < elapsed < 15,
          f"a daemon that keeps refusing: exit {p.returncode} after {elapsed:.1f} s, {p.stderr!r}")


def test_ctrl_c_while_retrying():
    """Ctrl-C while a retried SubmitJob waits for its answer: interrupted (130), not "refused"."""
    proc = subprocess.Popen([ASYNCCTL, "--user", "submit", "--name", "slowexit", "-o", "/tmp", *URLS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.8)         # the first refusal came at 0.5 s, the retry went out at 0.6 s
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    check(proc.returncode == 130 and "refused" not in err, f"exit {proc.returncode}, {err!r}")


CASES = [test_normal, test_signals_before_reply, test_duplicates_dropped, test_gap_filled_from_getresults,
         test_lost_tail_fetched_at_finished, test_missing_finished, test_impostor_and_other_jobs_ignored,
         test_json_exactly_once, test_watch_exactly_once, test_refused, test_ctrl_c_while_running,
         test_ctrl_c_before_reply, test_double_ctrl_c_before_reply,
         test_second_ctrl_c_stops_waiting_for_the_cancel, test_triple_ctrl_c_before_reply, test_shutting_down_retried,
         test_ctrl_c_while_retrying, test_daemon_vanishes]


def main():
    if subprocess.run([FAKE_PYTHON, "-c", "import gi"], capture_output=True).returncode != 0:
        print(f"1..0 # SKIP {FAKE_PYTHON} cannot import gi (python3-gi)")
        return 77
    print(f"1..{len(CASES)}", flush=True)
    failed = 0
    fake = Fake()
    try:
        for i, case in enumerate(CASES, 1):
            try:
                if case is test_daemon_vanishes:
                    # The only case that ends the fake daemon; a fresh one numbers jobs from 1.
                    fake.stop()
                    fake = Fake()
                    case(fake)
                else:
                    case()
                print(f"ok {i} - {case.__name__}", flush=True)
            except Exception as e:  # noqa: BLE001 - report every kind of failure
                failed += 1
                print(f"not ok {i} - {case.__name__}: " + str(e).replace("\n", "\n# "), flush=True)
    finally:
        fake.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
