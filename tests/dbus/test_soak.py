#!/usr/bin/python3
"""Endurance: one daemon runs about 2,000 jobs of every kind, a dozen at a time, and must end where
it started. Each round submits, side by side: flags (ok and 404), server faults (HTTP 500 and
503, connection reset, truncated body, refused connection, a body over max_bytes, redirects),
time-outs, a Job.Cancel and a Manager.CancelJob mid-job (the latter while files are being written),
a job whose client leaves the bus as soon as it is submitted, an open job (flag 0x1) fed by AddTasks,
an open job whose feeder leaves the bus, overwrite jobs (replacing and refusing), and one over HTTPS
(HTTP/2 through nginx with a test CA; needs root). Finished jobs expire after --keep-finished=2 and
idle connections close after --keep-connections=1, so both happen many times during the run.

Every job is checked as it ends: each task reported exactly once (seq 0..n-1, each index once),
Finished once and after the last Completed, the statuses each task may have, and every file
byte-identical to its source. The daemon's descriptors (by kind), threads, VmRSS/VmHWM, bus match
rules and job objects (ListJobs and GetManagedObjects) are sampled after each round. After a
warm-up and again at the end, with no job left and the idle connections closed, the daemon must
be back at the same numbers of descriptors of each kind (exactly: see IDLE_SLACK), threads and
match rules; no job object and no temporary or partial file may remain; the idle RSS may grow only a
little (see IDLE_RSS_GROWTH_MAX_KIB); and asyncd must exit 0 on
SIGTERM (valgrind and the sanitizers report through that status).

Scale: ASYNCD_SOAK_ROUNDS rounds (default 150, about 13 jobs each), but the load phase stops
starting rounds after ASYNCD_SOAK_BUDGET seconds (default 75) so that a slow machine still ends
in time; at least ASYNCD_SOAK_MIN_ROUNDS rounds (default a third of the rounds) must have run."""

import collections
import functools
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time

from gi.repository import Gio, GLib

from asyncd_test import (JOB, MANAGER, MANAGER_PATH, NAME, Bus, Client, Daemon, check, env, files_being_written,
                         finish, flag_codes)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "servers"))
from nginx import start_nginx  # noqa: E402
from testca import TestCA, available, trusting  # noqa: E402

KEEP_FINISHED = 2
KEEP_CONNECTIONS = 1
WARMUP_ROUNDS = 5
ROUNDS = int(os.environ.get("ASYNCD_SOAK_ROUNDS", "150"))
MIN_ROUNDS = int(os.environ.get("ASYNCD_SOAK_MIN_ROUNDS", str(max(ROUNDS // 3, 1))))
BUDGET = float(os.environ.get("ASYNCD_SOAK_BUDGET", "75"))
ROUND_TIMEOUT = 120
# Idle means: no job (running or kept) and no transfer for longer than --keep-connections. Then the
# daemon holds its bus connection, the disk pool's eventfd, sd-event's epoll/signalfd/timerfds,
# curl's epoll set and the current multi handle's wake-up socketpair, the log and the standard
# descriptors: the same set each time, so no slack. A per-job descriptor (a directory, a file,
# a socket) left behind shows as one more.
IDLE_SLACK = 0
# Under load RSS is the working set of the jobs that happen to overlap, and glibc keeps what a
# busy moment grew the heap by: one run's medians of the first and last thirds of 150 rounds moved
# by -0.02 MiB, another's by +4.7 MiB (a step at round 60, flat after), so the load says little.
# Idle it says more: once every job has expired the daemon calls malloc_trim(), and the idle RSS
# after the run minus that after the warm-up measured -0.5 and +1.9 MiB. A leak of one small object
# per task (a Transfer, ~400 bytes; ~170 tasks a round) keeps ~10 MiB after 150 rounds. Not checked
# with fewer than RSS_MIN_ROUNDS load rounds, nor under valgrind or ASan (their own allocators).
IDLE_RSS_GROWTH_MAX_KIB = 6144
RSS_MIN_ROUNDS = 30

PATTERN = bytes((i * 31 + 7) % 256 for i in range(256))


# A body of the cancel-by-manager job: larger than file-writer's 256 KiB flush threshold, so that its
# file is open (the cancel comes while it is), sent at about 800 KB/s: 25 s, never complete here.
SLOW_SIZE = 20_000_000
# Tasks that are to be cancelled never end by themselves: a byte a second after the headers (the
# server's thread ends with the connection). Cancels are then not a race with the daemon's speed.
HANGS = "trickle/1000/piece/1/bytes/100000"


@functools.lru_cache(maxsize=8)
def generated(n):
    return (PATTERN * (n // 256 + 1))[:n]


def source_bytes(source):
    """A task's source: n for /bytes/n (and /chunked/n), or a fixture's path."""
    if isinstance(source, int):
        return generated(source)
    with open(source, "rb") as f:
        return f.read()


def u(v):
    return GLib.Variant("u", v)


class Observer(Client):
    """One connection that sees every job's Completed and Finished and every job object come and
    go, indexed by path (the tests' Client keeps one list, too slow for thousands of signals)."""

    def __init__(self, address):
        super().__init__(address)
        self.completed = collections.defaultdict(list)    # path -> [results] in arrival order
        self.finished = collections.defaultdict(list)     # path -> [Finished args]
        self.finished_after = {}                          # path -> results seen before Finished
        self.added = collections.Counter()
        self.removed = collections.Counter()

        def on_job(conn, sender, path, iface, member, params):
            if member == "Completed":
                self.completed[path] += params.unpack()[0]
            elif member == "Finished":
                self.finished[path].append(params.unpack())
                self.finished_after.setdefault(path, len(self.completed[path]))

        def on_objects(conn, sender, path, iface, member, params):
            job_path = params.unpack()[0]
            (self.added if member == "InterfacesAdded" else self.removed)[job_path] += 1

        for member in ("Completed", "Finished"):
            self.subscriptions.append(self.conn.signal_subscribe(None, JOB, member, None, None,
                                                                 Gio.DBusSignalFlags.NONE, on_job))
        for member in ("InterfacesAdded", "InterfacesRemoved"):
            self.subscriptions.append(self.conn.signal_subscribe(None, "org.freedesktop.DBus.ObjectManager", member,
                                                                 MANAGER_PATH, None, Gio.DBusSignalFlags.NONE,
                                                                 on_objects))

    def list_jobs(self):
        return self.call(MANAGER_PATH, MANAGER, "ListJobs", reply="(a(tossuuuuu))")[0]

    def managed_jobs(self):
        objects = self.conn.call_sync(NAME, MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                                      None, GLib.VariantType("(a{oa{sa{sv}}})"), Gio.DBusCallFlags.NONE, -1,
                                      None).unpack()[0]
        return [p for p in objects if p.startswith("/io/asyncd1/job/")]

    def match_rules(self):
        """The daemon's match rules on the bus (sd_bus_track of AddTasks feeders adds some)."""
        owner = self.conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                    "GetNameOwner", GLib.Variant("(s)", (NAME,)), GLib.VariantType("(s)"),
                                    Gio.DBusCallFlags.NONE, -1, None).unpack()[0]
        stats = self.conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                    "org.freedesktop.DBus.Debug.Stats", "GetConnectionStats",
                                    GLib.Variant("(s)", (owner,)), None, Gio.DBusCallFlags.NONE, -1,
                                    None).unpack()[0]
        return stats["MatchRules"]


class Job:
    """One submitted job: what each task may end as, and the file it must leave if ok.
    expect[i] is a set of statuses; source[i] the bytes an ok task's file must hold."""

    def __init__(self, kind, tasks, out, expect, source, options=None, flags=0, states=("done",), preexisting=None):
        self.kind, self.tasks, self.out = kind, tasks, out
        self.expect, self.source = expect, source
        self.options, self.flags, self.states = options or {}, flags, states
        self.preexisting = preexisting or {}    # name -> bytes that must still be there
        self.step = None                        # called while the round runs, until it returns True
        self.client = None
        self.path = None

    def submit(self, client, tasks=None):
        self.client = client
        self.id, self.path = client.submit(tasks if tasks is not None else self.tasks, self.out, self.options,
                                           self.flags)


class Soak:
    def __init__(self, bus, daemon, servers, https):
        self.bus, self.daemon = bus, daemon
        self.nginx = servers["nginx"]
        self.plain = servers["plain"]
        self.https = https
        self.fixtures = env("ASYNCD_FIXTURES")
        self.codes = flag_codes()
        self.work = tempfile.mkdtemp(prefix="asyncd-soak-")
        self.obs = Observer(bus.address)
        self.long_lived = Client(bus.address)
        self.pid = self.obs.daemon_pid()
        self.jobs = []
        self.failures = collections.Counter()
        self.expired_before_check = 0
        self.samples = []
        self.round = 0
        # A port nobody listens on: connection refused.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.refused = f"http://127.0.0.1:{s.getsockname()[1]}"

    # ---- what the daemon holds ----

    def descriptors(self):
        kinds = collections.Counter()
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                target = os.readlink(f"/proc/{self.pid}/fd/{fd}")
            except FileNotFoundError:
                continue
            if target.startswith("socket:"):
                kinds["socket"] += 1
            elif target.startswith("anon_inode:"):
                kinds[target[len("anon_inode:"):].strip("[]")] += 1
            elif target.startswith("pipe:"):
                kinds["pipe"] += 1
            elif os.path.isdir(target):
                kinds["directory"] += 1
            else:
                kinds["file"] += 1
        return kinds

    def status(self):
        fields = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        return fields

    def sample(self, phase):
        st = self.status()
        listed = self.obs.list_jobs()
        s = {"phase": phase, "round": self.round, "t": time.monotonic(), "fds": self.descriptors(),
             "threads": len(os.listdir(f"/proc/{self.pid}/task")),
             "rss": int(st["VmRSS"].split()[0]), "hwm": int(st["VmHWM"].split()[0]),
             "jobs": len(listed), "running": sum(1 for j in listed if j[3] == "running"),
             "objects": len(self.obs.managed_jobs()), "matches": self.obs.match_rules()}
        self.samples.append(s)
        return s

    def tool(self):
        """valgrind or ASan under the daemon: their RSS says nothing about ours."""
        with open(f"/proc/{self.pid}/maps") as f:
            maps = f.read()
        if "vgpreload" in maps or "valgrind" in os.readlink(f"/proc/{self.pid}/exe"):
            return "valgrind"
        if "libasan" in maps:
            return "ASan"
        return None

    def wait_idle(self, what):
        """Until every job has expired and no connection is left open for reuse."""
        self.long_lived.close()
        self.long_lived = Client(self.bus.address)
        ok = self.obs.pump(lambda: not self.obs.list_jobs(), 60)
        check(ok, f"{what}: every job expires (--keep-finished={KEEP_FINISHED})")
        # The idle connections close KEEP_CONNECTIONS s after the last transfer; descriptors are
        # stable once two samples a second apart agree.
        last = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self.obs.pump(lambda: False, KEEP_CONNECTIONS + 0.5)
            now = self.descriptors()
            if now == last:
                break
            last = now
        return self.sample(what)

    # ---- the kinds of job ----

    def outdir(self, kind):
        d = os.path.join(self.work, f"r{self.round:03d}-{kind}-{len(os.listdir(self.work))}")
        os.mkdir(d)
        return d

    def flag(self, base, c):
        return f"{base}/flags/{c}/{c}.gif"

    def flag_source(self, c):
        return os.path.join(self.fixtures, "flags", c, f"{c}.gif")

    def pick_codes(self, n, salt):
        start = (self.round * 17 + salt * 31) % len(self.codes)
        return [self.codes[(start + i) % len(self.codes)] for i in range(n)]

    def job_flags(self):
        codes = self.pick_codes(20, 1)
        tasks = [(self.flag(self.nginx, c), "") for c in codes] + [(self.flag(self.nginx, "zz"), ""),
                                                                   (f"{self.nginx}/nothing/here.gif", "")]
        expect = [{"ok"}] * 20 + [{"not_found"}] * 2
        source = [self.flag_source(c) for c in codes] + [None, None]
        return Job("flags", tasks, self.outdir("flags"), expect, source, {"concurrency": u(8)})

    def job_faults(self):
        p = self.plain
        cases = [(f"{p}/status/500/a", "error"), (f"{p}/status/503/b", "error"), (f"{p}/reset/bytes/100", "error"),
                 (f"{p}/truncate/50/bytes/1000", "error"), (f"{p}/truncate/0/chunked/5000", "error"),
                 (f"{self.refused}/x", "error"), (f"{p}/bytes/5000", "error-max"),
                 (f"{p}/flags/zz/zz.gif", "not_found"), (f"{p}/status/404/c", "not_found"),
                 (f"{p}/bytes/{1000 + self.round}", 1000 + self.round),
                 (f"{p}/chunked/{3000 + self.round}", 3000 + self.round),
                 (f"{p}/redirect/2/bytes/77", 77), (f"{p}/bytes/0", 0)]
        tasks, expect, source = [], [], []
        for i, (url, outcome) in enumerate(cases):
            tasks.append((url, f"f{i}"))
            if isinstance(outcome, int):
                expect.append({"ok"})
                source.append(outcome)
            else:
                expect.append({outcome.split("-")[0]})
                source.append(None)
        return Job("faults", tasks, self.outdir("faults"), expect, source,
                   {"concurrency": u(6), "max_bytes": GLib.Variant("t", 4096)})

    def job_timeouts(self):
        p = self.plain
        tasks = [(f"{p}/delay/3000/bytes/10", "late"), (f"{p}/trickle/100/bytes/2000", "slow"),
                 (f"{p}/bytes/10", "quick")]
        return Job("timeouts", tasks, self.outdir("timeouts"), [{"error"}, {"error"}, {"ok"}],
                   [None, None, 10], {"concurrency": u(3), "timeout_usec": GLib.Variant("t", 400_000)})

    def job_cancel(self, via_manager):
        """Cancelled once a few results are in; the rest are on the wire (their files being written,
        for the CancelJob one) or waiting. The tasks that cannot have ended must be cancelled."""
        p = self.plain
        if via_manager:
            tasks = [(f"{p}/bytes/{100 + i}", f"q{i}") for i in range(4)] + \
                    [(f"{p}/trickle/20/piece/16384/bytes/{SLOW_SIZE + i}", f"s{i}") for i in range(3)] + \
                    [(f"{p}/bytes/{300 + i}", f"w{i}") for i in range(10)]
            sizes = [100 + i for i in range(4)] + [SLOW_SIZE + i for i in range(3)] + [300 + i for i in range(10)]
            expect = [{"ok", "cancelled"}] * 4 + [{"cancelled"}] * 3 + [{"ok", "cancelled"}] * 10
            options = {"concurrency": u(7)}
        else:
            # In order, 3 at a time: the first 3 end, the next 3 hang, the rest wait.
            tasks = [(f"{p}/bytes/{100 + i}", f"d{i}") for i in range(3)] + \
                    [(f"{p}/{HANGS}?{i}", f"h{i}") for i in range(17)]
            sizes = [100 + i for i in range(3)] + [None] * 17
            expect = [{"ok"}] * 3 + [{"cancelled"}] * 17
            options = {"concurrency": u(3)}
        kind = "cancel-manager" if via_manager else "cancel-job"
        job = Job(kind, tasks, self.outdir(kind), expect, sizes, options, states=("cancelled",))

        def step():
            results = self.obs.completed[job.path]
            if via_manager:
                if len(results) < 4 or len(files_being_written(self.pid, job.out)) < 1:
                    return False
                other = Client(self.bus.address)
                other.call(MANAGER_PATH, MANAGER, "CancelJob", "t", (job.id,))
                other.close()
            else:
                if len(results) < 3:
                    return False
                job.client.call(job.path, JOB, "Cancel")
            return True
        job.step = step
        return job

    def job_disconnect(self):
        """Its client leaves the bus right after SubmitJob: the job runs on."""
        p = self.plain
        tasks = [(f"{p}/delay/100/bytes/{500 + i}", "") for i in range(8)]
        job = Job("disconnect", tasks, self.outdir("disconnect"), [{"ok"}] * 8,
                  [500 + i for i in range(8)], {"concurrency": u(4)})
        job.own_client = True
        return job

    def job_add_tasks(self):
        codes = self.pick_codes(30, 2)
        tasks = [(self.flag(self.nginx, c), "") for c in codes]
        job = Job("add-tasks", tasks, self.outdir("add-tasks"), [{"ok"}] * 30, [self.flag_source(c) for c in codes],
                  {"concurrency": u(4)}, flags=1)
        job.first_chunk = 10
        chunks = [(tasks[10:20], 1), (tasks[20:30], 0)]

        def step():
            if len(self.obs.completed[job.path]) < 3:
                return False
            chunk, more = chunks.pop(0)
            job.client.call(job.path, JOB, "AddTasks", "a(ss)t", (chunk, more))
            return not chunks
        job.step = step
        return job

    def job_feeder_leaves(self):
        """An open job whose client leaves before the last chunk: cancelled, with what it had."""
        p = self.plain
        tasks = [(f"{p}/bytes/{700 + i}", f"o{i}") for i in range(4)] + \
                [(f"{p}/{HANGS}?{i}", f"l{i}") for i in range(2)]
        job = Job("feeder-leaves", tasks, self.outdir("feeder-leaves"),
                  [{"ok", "cancelled"}] * 4 + [{"cancelled"}] * 2,
                  [700 + i for i in range(4)] + [800 + i for i in range(2)],
                  {"concurrency": u(6)}, flags=1, states=("cancelled",))
        job.own_client = True
        job.first_chunk = 4

        def step():
            job.client.call(job.path, JOB, "AddTasks", "a(ss)t", (tasks[4:], 1))
            job.client.close()
            return True
        job.step = step
        return job

    def job_cancel_open(self):
        """An open job cancelled before its last chunk. Its client stays on the bus for the whole run, so
        the daemon watches it (a match rule) until the job expires."""
        p = self.plain
        tasks = [(f"{p}/{HANGS}?{i}", f"c{i}") for i in range(3)]
        job = Job("cancel-open", tasks, self.outdir("cancel-open"), [{"cancelled"}] * 3, [None] * 3,
                  flags=1, states=("cancelled",))
        job.step = lambda: job.client.call(job.path, JOB, "Cancel") or True
        job.long_lived_client = True
        return job

    def job_big(self):
        """Every flag, 50 at a time."""
        tasks = [(self.flag(self.nginx, c), "") for c in self.codes]
        return Job("big", tasks, self.outdir("big"), [{"ok"}] * len(tasks), [self.flag_source(c) for c in self.codes],
                   {"concurrency": u(50)})

    def job_overwrite(self, overwrite):
        codes = self.pick_codes(6, 3 if overwrite else 4)
        kind = "overwrite" if overwrite else "no-overwrite"
        out = self.outdir(kind)
        pre = {}
        for c in codes[:3]:     # half the names exist already
            pre[f"{c}.gif"] = f"old {c} {self.round}\n".encode() * 3
            with open(os.path.join(out, f"{c}.gif"), "wb") as f:
                f.write(pre[f"{c}.gif"])
        tasks = [(self.flag(self.nginx, c), "") for c in codes]
        if overwrite:
            return Job(kind, tasks, out, [{"ok"}] * 6, [self.flag_source(c) for c in codes],
                       {"overwrite": GLib.Variant("b", True), "concurrency": u(3)})
        return Job(kind, tasks, out, [{"error"}] * 3 + [{"ok"}] * 3,
                   [None] * 3 + [self.flag_source(c) for c in codes[3:]], {"concurrency": u(3)}, preexisting=pre)

    def job_https(self):
        codes = self.pick_codes(15, 5)
        tasks = [(self.flag(self.https, c), "") for c in codes] + [(self.flag(self.https, "zz"), "")]
        return Job("https", tasks, self.outdir("https"), [{"ok"}] * 15 + [{"not_found"}],
                   [self.flag_source(c) for c in codes] + [None], {"concurrency": u(5)})

    def round_jobs(self):
        jobs = [self.job_flags(), self.job_faults(), self.job_timeouts(), self.job_cancel(False),
                self.job_cancel(True), self.job_disconnect(), self.job_add_tasks(), self.job_feeder_leaves(),
                self.job_overwrite(True), self.job_overwrite(False), self.job_cancel_open()]
        if self.https:
            jobs.append(self.job_https())
        if self.round % 2:
            jobs.append(self.job_flags())
        if self.round % 4 == 1:
            jobs.append(self.job_big())
        return jobs

    # ---- running and checking ----

    def run_round(self):
        self.round += 1
        jobs = self.round_jobs()
        shared = Client(self.bus.address)
        for job in jobs:
            client = Client(self.bus.address) if getattr(job, "own_client", False) else \
                self.long_lived if getattr(job, "long_lived_client", False) else shared
            job.submit(client, job.tasks[:job.first_chunk] if hasattr(job, "first_chunk") else None)
            if job.kind == "disconnect":
                client.close()
        pending = [j for j in jobs if j.step]

        def progress():
            for j in list(pending):
                # A job that ended before its step could act is not waited for: its checks say so.
                if self.obs.finished[j.path] or j.step():
                    pending.remove(j)
            return not pending and all(self.obs.finished[j.path] for j in jobs)
        done = self.obs.pump(progress, ROUND_TIMEOUT)
        if not done:
            late = [f"{j.kind} ({j.path})" for j in jobs if not self.obs.finished[j.path]]
            check(False, f"round {self.round}: every job finishes within {ROUND_TIMEOUT} s; still running: {late}")
        shared.close()
        for job in jobs:
            self.check_job(job)
        self.jobs += jobs
        return done

    def fail(self, job, what):
        """Failures are counted per kind and reported once, with the first example."""
        key = f"{job.kind}: {what.split(':')[0]}"
        if not self.failures[key]:
            check(False, f"round {self.round} {job.kind} job {job.path}: {what}")
        self.failures[key] += 1

    def check_job(self, job):
        results = self.obs.completed[job.path]
        finished = self.obs.finished[job.path]
        n = len(job.tasks)
        if sorted(r[0] for r in results) != list(range(n)) or [r[0] for r in results] != list(range(len(results))):
            self.fail(job, f"seqs are not 0..{n - 1} in order: {[r[0] for r in results]}")
        if sorted(r[1] for r in results) != list(range(n)):
            self.fail(job, f"not every task reported exactly once: {sorted(r[1] for r in results)}")
        if len(finished) != 1 or self.obs.finished_after.get(job.path) != len(results):
            self.fail(job, f"Finished {len(finished)} times, after {self.obs.finished_after.get(job.path)} "
                      f"of {len(results)} results")
        if finished:
            state, *counts = finished[0]
            tally = [sum(1 for r in results if r[2] == s) for s in ("ok", "not_found", "error", "cancelled")]
            if state not in job.states or counts != tally:
                self.fail(job, f"Finished{finished[0]} for results counting {tally}")
        for r in results:
            if r[1] >= n:
                continue
            if r[2] not in job.expect[r[1]]:
                self.fail(job, f"task {r[1]} ({job.tasks[r[1]][0]}) is {r[2]}, expected {job.expect[r[1]]}: {r}")
        if job.kind.startswith("cancel") and not any(r[2] == "cancelled" for r in results):
            self.fail(job, "cancelled mid-job, yet no task cancelled")
        # A client that missed the signals gets the same results, in pages, while the job is kept.
        try:
            fetched = self.obs.all_results(job.path, chunk=7)
        except GLib.Error as e:
            if "UnknownObject" not in str(e):
                raise
            self.expired_before_check += 1
        else:
            if fetched != results:
                self.fail(job, f"GetResults differs from the Completed signals: {fetched} != {results}")

    def check_files(self):
        """Every output directory holds exactly the ok tasks' files (byte-identical to their source)
        and the files that were there before; no temporary (.#asyncd.*) or partial file."""
        bad, n_files = [], 0
        for job in self.jobs:
            results = self.obs.completed[job.path]
            ok = {r[5]: r for r in results if r[2] == "ok"}
            names = set(os.listdir(job.out))
            want = set(ok) | set(job.preexisting)
            if names != want:
                bad.append(f"{job.out}: {sorted(names ^ want)}")
                continue
            for name, r in ok.items():
                n_files += 1
                with open(os.path.join(job.out, name), "rb") as f:
                    data = f.read()
                source = source_bytes(job.source[r[1]])
                if data != source or r[4] != len(data):
                    bad.append(f"{job.out}/{name}: {len(data)} bytes (result says {r[4]}), not the source's "
                               f"{len(source)}")
            for name, data in job.preexisting.items():
                with open(os.path.join(job.out, name), "rb") as f:
                    if f.read() != data:
                        bad.append(f"{job.out}/{name}: an existing file was changed without overwrite")
        check(not bad, f"{len(self.jobs)} output directories: {n_files} files byte-identical to their sources, "
              f"no other file{': ' + '; '.join(bad[:5]) if bad else ''}")
        temps = [os.path.join(j.out, n) for j in self.jobs for n in os.listdir(j.out) if n.startswith(".#")]
        check(not temps, f"no temporary file left: {temps[:5]}")


def fmt_fds(kinds):
    return ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))


def main():
    fixtures = env("ASYNCD_FIXTURES")
    servers = {"nginx": env("ASYNCD_TEST_NGINX_URL"), "plain": env("ASYNCD_TEST_FAULT_PLAIN_URL")}
    work = tempfile.mkdtemp(prefix="asyncd-soak-tls-")
    https_server, wrapper = None, ()
    why = available()
    if why:
        print(f"no HTTPS jobs: {why}")
    else:
        ca = TestCA(work)
        https_server = start_nginx(fixtures, tls=ca.issue("good", "IP:127.0.0.1"))
        wrapper = trusting(ca.store())
    bus = Bus("session")
    daemon = Daemon(bus, f"--keep-finished={KEEP_FINISHED}", f"--keep-connections={KEEP_CONNECTIONS}",
                    wrapper=wrapper)
    soak = None
    try:
        soak = Soak(bus, daemon, servers, https_server.url if https_server else None)
        run(soak)
    finally:
        rc = daemon.stop()
        check(rc == 0, f"asyncd exits 0 on SIGTERM after the soak (status {rc})")
        if soak:
            temps = [os.path.join(j.out, n) for j in soak.jobs for n in os.listdir(j.out) if n.startswith(".#")]
            check(not temps, f"no temporary file after the exit: {temps[:5]}")
            shutil.rmtree(soak.work, ignore_errors=True)
        bus.stop()
        if https_server:
            https_server.stop()
        shutil.rmtree(work, ignore_errors=True)
    finish()


def run(soak):
    start = time.monotonic()
    tool = soak.tool()
    print(f"asyncd pid {soak.pid}{' under ' + tool if tool else ''}; {ROUNDS} rounds, budget {BUDGET:.0f} s")
    first = soak.sample("start")
    print(f"at start: fds {fmt_fds(first['fds'])}; threads {first['threads']}; RSS {first['rss']} KiB")

    for _ in range(WARMUP_ROUNDS):
        soak.run_round()
    base = soak.wait_idle("after warm-up")
    print(f"after warm-up ({len(soak.jobs)} jobs, {time.monotonic() - start:.1f} s), idle: fds {fmt_fds(base['fds'])}; "
          f"threads {base['threads']}; RSS {base['rss']} KiB; match rules {base['matches']}")

    load_start = time.monotonic()
    load = []
    while soak.round < WARMUP_ROUNDS + ROUNDS and time.monotonic() - load_start < BUDGET:
        if not soak.run_round():
            break
        s = soak.sample("load")
        load.append(s)
        print(f"round {soak.round:3d} t={s['t'] - start:6.1f}s jobs {len(soak.jobs):4d}: "
              f"fds {sum(s['fds'].values()):3d} ({fmt_fds(s['fds'])}), threads {s['threads']}, "
              f"RSS {s['rss']} KiB, HWM {s['hwm']} KiB, "
              f"job objects {s['jobs']}/{s['objects']} (listed/managed), match rules {s['matches']}")
    n_load = len(soak.jobs)
    check(len(load) >= MIN_ROUNDS, f"{len(load)} load rounds ran ({n_load} jobs in all, "
          f"{time.monotonic() - load_start:.1f} s; at least {MIN_ROUNDS})")

    end = soak.wait_idle("at the end")
    print(f"at the end, idle: fds {fmt_fds(end['fds'])}; threads {end['threads']}; RSS {end['rss']} KiB, "
          f"HWM {end['hwm']} KiB; match rules {end['matches']}; {time.monotonic() - start:.1f} s")

    soak.check_files()
    for kind, n in soak.failures.items():
        print(f"  {n} jobs failed the check '{kind}'")
    check(not soak.failures, f"all {len(soak.jobs)} jobs' results as expected (GetResults compared for "
          f"{len(soak.jobs) - soak.expired_before_check}, the others had expired)")

    kinds = set(base["fds"]) | set(end["fds"])
    diff = {k: end["fds"][k] - base["fds"][k] for k in kinds if end["fds"][k] != base["fds"][k]}
    check(all(abs(d) <= IDLE_SLACK for d in diff.values()),
          f"descriptors back to the idle baseline after warm-up: {sum(base['fds'].values())} then "
          f"{sum(end['fds'].values())} (differences {diff or 'none'})")
    check(end["threads"] == base["threads"], f"threads: {base['threads']} then {end['threads']}")
    check(end["matches"] == base["matches"], f"bus match rules: {base['matches']} then {end['matches']}")
    check(end["jobs"] == 0 and end["objects"] == 0, f"no job object left (ListJobs {end['jobs']}, "
          f"GetManagedObjects {end['objects']})")
    paths = [j.path for j in soak.jobs]
    once = sum(1 for p in paths if soak.obs.added[p] == 1 and soak.obs.removed[p] == 1)
    check(once == len(paths), f"InterfacesAdded and InterfacesRemoved once for each of the {len(paths)} jobs ({once})")
    if load:
        print(f"during the load: at most {max(s['jobs'] for s in load)} job objects, "
              f"{max(sum(s['fds'].values()) for s in load)} descriptors, {max(s['threads'] for s in load)} threads")
    if len(load) >= 3:
        third = len(load) // 3
        first_rss = statistics.median(s["rss"] for s in load[:third])
        last_rss = statistics.median(s["rss"] for s in load[-third:])
        growth = last_rss - first_rss
        mean_growth = statistics.mean(s["rss"] for s in load[-third:]) - statistics.mean(s["rss"] for s in load[:third])
        print(f"RSS (median of the samples): first third of the load {first_rss:.0f} KiB, last third "
              f"{last_rss:.0f} KiB (growth {growth:+.0f} KiB; of the means {mean_growth:+.0f} KiB); "
              f"idle after warm-up {base['rss']} KiB, at the end {end['rss']} KiB, HWM {end['hwm']} KiB")
        if tool:
            print(f"RSS bound not checked under {tool}")
        elif len(load) < RSS_MIN_ROUNDS:
            print(f"RSS bound not checked: {len(load)} load rounds, fewer than {RSS_MIN_ROUNDS}")
        else:
            idle_growth = end["rss"] - base["rss"]
            check(idle_growth < IDLE_RSS_GROWTH_MAX_KIB, f"idle RSS after the run minus after the warm-up: "
                  f"{idle_growth:+d} KiB (bound {IDLE_RSS_GROWTH_MAX_KIB} KiB)")


if __name__ == "__main__":
    main()
