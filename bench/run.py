#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""asyncd benchmark harness: asyncd against curl, aria2c, wget2, a Python asyncio
client and wrk, side by side in one run. See bench/README.md.

  bench/run.py [--quick] [--runs N] [--out bench/results.md] [--million]
               [--scenarios a,b] [--tools a,b] [--fs tmpfs,disk] [--profile] [--callgrind]
"""

import argparse
import contextlib
import datetime
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import traceback
import urllib.parse
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # no __pycache__ in the source tree

import dataset  # noqa: E402
import procstat  # noqa: E402
import servers  # noqa: E402
import testca  # noqa: E402  (tests/servers, on the path through servers)

PY = "/usr/bin/python3"          # Debian's python3: python3-aiohttp and python3-gi live there
WORK = "/tmp/asyncd-bench"
OUT_BASES = {"tmpfs": "/dev/shm/asyncd-bench-out", "disk": "/var/tmp/asyncd-bench-out"}
DISK_TRASH = "/var/tmp/asyncd-bench-trash"
DISK_DELETE_STAMP = os.path.join(WORK, "disk-deleted-at")
EXT4_RECENT_S = 65               # ext4's RECENTCY_MIN (60 s) for clean inode tables, and a margin
MB = 1_000_000                    # targets are in MB = 10^6 bytes (stricter than MiB)

PEERS_SMALL = ["asyncd", "asyncd-gdbus", "curl", "aria2c", "wget2", "python-aiohttp"]
PEERS_BIG = ["asyncd", "asyncd-gdbus", "curl", "aria2c", "wget2"]
# Not a peer: the least a libcurl client spends (bench/libcurl-floor.c), plain HTTP only.
FLOOR = "libcurl-floor"
PEERS_SMALL_HTTP = PEERS_SMALL + [FLOOR]
ALL_TOOLS = PEERS_SMALL_HTTP + ["wrk"]

# Exit statuses that mean "finished, some 404s" per tool, accepted in the 404 scenario only.
RC_404 = {"curl": {22}, "aria2c": {3}, "wget2": {0, 8}, "asyncd": {3}, "asyncd-gdbus": {0},
          "python-aiohttp": {0}, FLOOR: {0}}

TOOL_BINARIES = {"curl": "curl", "aria2c": "aria2c", "wget2": "wget2", "wrk": "wrk",
                 "python-aiohttp": PY}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------


def tool_order(name, tools, rep, candidates=200):
    """The order of the tools in run `rep` of a scenario: shuffled, and chosen so that over the runs
    no tool keeps the same predecessor or the same position. A run can leave the machine in a
    state that slows the next one down (one fixed shuffle per run put asyncd right after aria2c in
    runs 3-5 of the 256 MiB file on disk in every session; 8 of 9 such runs in three sessions took
    0.56-0.85 s, asyncd's other runs 0.15-0.26 s; balanced, the slow runs fell on other tools):
    such an effect must fall on every tool alike, not on one. Deterministic, so sessions stay
    comparable."""
    orders, pairs, places = [], set(), set()
    for r in range(rep + 1):
        rng = random.Random(f"{name}/{r}")
        best = None
        for _ in range(candidates):
            order = list(tools)
            rng.shuffle(order)
            cost = (sum((a, b) in pairs for a, b in zip(order, order[1:])),
                    sum((i, t) in places for i, t in enumerate(order)))
            if best is None or cost < best[0]:
                best = (cost, order)
        orders.append(best[1])
        pairs.update(zip(best[1], best[1][1:]))
        places.update(enumerate(best[1]))
    return orders[rep]


class Scenario:
    def __init__(self, name, kind, n=0, c=0, variant="plain", tools=(), fs=("tmpfs", "disk"), **kw):
        self.name, self.kind, self.n, self.c, self.variant = name, kind, n, c, variant
        self.tools, self.fs = list(tools), list(fs)
        self.__dict__.update(kw)


def make_scenarios(a):
    n = 2000 if a.quick else 10_000
    label = f"{n // 1000}k"
    big_mib = 64 if a.quick else 256
    sc = [
        Scenario(f"small-{label}-c100", "small", n, 100, "plain", PEERS_SMALL_HTTP, target="small"),
        Scenario(f"small-{label}-c10", "small", n, 10, "plain", PEERS_SMALL_HTTP, target="small"),
        Scenario(f"small-{label}-404", "small", n, 100, "404", PEERS_SMALL_HTTP),
        Scenario(f"small-{label}-delay20ms", "small", n, 100, "delay", PEERS_SMALL_HTTP),
        Scenario(f"small-{label}-https", "small", n, 100, "https", PEERS_SMALL, fs=["tmpfs"]),
        Scenario(f"big-{big_mib}MiB", "big", 1, 1, "plain", PEERS_BIG, mib=big_mib),
        Scenario("wrk-ceiling", "wrk", n, 0, "plain", ["wrk"], fs=["-"],
                 conns=[100, 10], duration=2 if a.quick else 5),
        Scenario("cancel-1000-in-flight", "cancel", 2000, 1000, "slow", ["asyncd"], fs=["tmpfs"],
                 inflight=1000),
        Scenario("create-cost", "create", n, 0, tools=["create-cost"], size=8192,
                 modes=["plain", "tmpfile", "rename"], threads=[1, 2]),
    ]
    if a.million:
        sc.append(Scenario("million-tasks", "million", a.million_tasks, 100, "plain", ["asyncd"],
                           fs=["tmpfs"], runs=1))
    if a.scenarios:
        want = a.scenarios.split(",")
        sc = [s for s in sc if any(w == s.name or w == s.kind or s.name.startswith(w) for w in want)]
    return sc


# ---------------------------------------------------------------------------------------------
# URL lists
# ---------------------------------------------------------------------------------------------

class Lists:
    """URL lists for the current server, written once per session under WORK/lists."""

    def __init__(self, srv, ds):
        self.srv, self.ds = srv, ds
        self.dir = os.path.join(WORK, "lists")
        os.makedirs(self.dir, exist_ok=True)
        self.cache = {}

    def base(self, variant):
        return {"plain": self.srv.url, "404": self.srv.url + "/nf", "delay": self.srv.delay_url,
                "slow": self.srv.slow_url, "https": self.srv.tls_url}[variant]

    def small(self, variant, n):
        """(plain list path, curl config path)."""
        key = ("small", variant, n)
        if key not in self.cache:
            base = self.base(variant)
            plain = os.path.join(self.dir, f"small-{variant}-{n}.txt")
            cfg = os.path.join(self.dir, f"small-{variant}-{n}.curl")
            paths = os.path.join(self.dir, f"small-{variant}-{n}.paths")
            with open(plain, "w") as p, open(cfg, "w") as c, open(paths, "w") as q:
                for i in range(n):
                    rel = dataset.small_rel(i)
                    p.write(f"{base}/{rel}\n")
                    c.write(f'url = "{base}/{rel}"\n')
                    q.write(f"{urllib.parse.urlsplit(base).path}/{rel}\n")
            self.cache[key] = (plain, cfg, paths)
        return self.cache[key]

    def big(self, mib):
        key = ("big", mib)
        if key not in self.cache:
            url = f"{self.srv.url}/big/{dataset.big_name(0, mib)}"
            plain = os.path.join(self.dir, f"big-{mib}.txt")
            with open(plain, "w") as f:
                f.write(url + "\n")
            self.cache[key] = (plain, url)
        return self.cache[key]

    def million(self, n, tiny):
        key = ("million", n)
        if key not in self.cache:
            path = os.path.join(self.dir, f"million-{n}.txt")
            total = 0
            with open(path, "w") as f:
                # /m/<k> serves tiny/<k mod 1000> (servers.py) and the file is named <k>: each task is
                # ~50 bytes in SubmitJob. (With "URL-of-the-small-file NAME" lines a task takes 72
                # bytes and the a(ss) array 72 MB, over D-Bus's 64 MiB array limit: the bus drops
                # the connection.)
                for k in range(n):
                    f.write(f"{self.srv.url}/m/{k:07d}\n")
                    total += dataset.small_size(tiny[k % len(tiny)])
            self.cache[key] = (path, total)
        return self.cache[key]


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------

def verify_small(outdir, expected, not_found, ds, rng, source_of=None, spot=25):
    """Every expected file present with its size, nothing else (no temp or 404 file),
    and `spot` files byte-identical to the source. Returns (ok, message, files, bytes)."""
    problems = []
    files = nbytes = 0
    seen = set()
    try:
        entries = list(os.scandir(outdir))
    except OSError as e:
        return False, f"cannot list {outdir}: {e}", 0, 0
    for e in entries:
        if not e.is_file(follow_symlinks=False):
            problems.append(f"not a regular file: {e.name}")
            continue
        st = e.stat(follow_symlinks=False)
        files += 1
        nbytes += st.st_size
        if e.name in not_found:
            problems.append(f"404 id saved: {e.name}")
        elif e.name not in expected:
            problems.append(f"unexpected file: {e.name}")
        elif st.st_size != expected[e.name]:
            problems.append(f"{e.name}: {st.st_size} bytes, expected {expected[e.name]}")
        seen.add(e.name)
    missing = len(expected) - len(seen & expected.keys())
    if missing:
        problems.append(f"{missing} files missing")
    names = sorted(seen & expected.keys())
    for name in rng.sample(names, min(spot, len(names))) + names[:1] + names[-1:]:
        src = source_of(name) if source_of else ds.small_source(name)
        with open(os.path.join(outdir, name), "rb") as a, open(src, "rb") as b:
            if a.read() != b.read():
                problems.append(f"{name}: content differs from the source")
    want_bytes = sum(expected.values())
    if not problems and nbytes != want_bytes:
        problems.append(f"{nbytes} bytes, expected {want_bytes}")
    msg = "; ".join(problems[:4]) + (f" (+{len(problems) - 4} more)" if len(problems) > 4 else "")
    return not problems, msg, files, nbytes


def verify_big(path, info):
    import hashlib
    try:
        st = os.stat(path)
    except OSError as e:
        return False, f"missing: {e}", 0, 0
    if st.st_size != info["size"]:
        return False, f"{st.st_size} bytes, expected {info['size']}", 1, st.st_size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * 1024 * 1024)
            if not b:
                break
            h.update(b)
    if h.hexdigest() != info["sha256"]:
        return False, "sha256 differs", 1, st.st_size
    extra = [n for n in os.listdir(os.path.dirname(path)) if n != os.path.basename(path)]
    if extra:
        return False, f"unexpected files: {extra[:3]}", 1 + len(extra), st.st_size
    return True, "", 1, st.st_size


# ---------------------------------------------------------------------------------------------
# The harness
# ---------------------------------------------------------------------------------------------

def set_topdir(path):
    """chattr +T: ext4's Orlov allocator then spreads the run directories created below over
    the block groups like top-level directories, instead of packing them next to each other
    (and next to the inodes the previous runs freed; see Harness.cleanup)."""
    import fcntl
    import struct
    FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_TOPDIR_FL = 0x80086601, 0x40086602, 0x00020000
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            flags = struct.unpack("l", fcntl.ioctl(fd, FS_IOC_GETFLAGS, struct.pack("l", 0)))[0]
            fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("l", flags | FS_TOPDIR_FL))
        finally:
            os.close(fd)
    except OSError:
        pass    # not ext2/3/4: nothing to do


class Harness:
    def __init__(self, a):
        self.a = a
        self.records = []
        self.notes = []
        self.missing = {}
        self.build = os.path.abspath(a.build_dir)
        self.asyncd_bin = os.path.join(self.build, "daemon", "asyncd")
        self.asyncctl_bin = os.path.join(self.build, "cli", "asyncctl")
        self.floor_bin = os.path.join(self.build, "bench", FLOOR)
        self.bus = None
        self.server_restarts = 0
        self.logdir = os.path.join(WORK, "logs")
        shutil.rmtree(self.logdir, ignore_errors=True)
        os.makedirs(self.logdir)

    # -- tools ----------------------------------------------------------------------------------
    def check_tools(self, tools):
        ok = []
        for t in tools:
            why = None
            if t in ("asyncd", "asyncd-gdbus"):
                for b in (self.asyncd_bin, self.asyncctl_bin if t == "asyncd" else None):
                    if b and not os.access(b, os.X_OK):
                        why = f"{b} not built (run: ninja -C {self.build})"
                if t == "asyncd-gdbus" and not why:
                    why = self._py_has("gi", "python3-gi")
                if not why and not shutil.which("dbus-daemon"):
                    why = "dbus-daemon not found (apt-get install dbus-daemon)"
            elif t == "python-aiohttp":
                why = self._py_has("aiohttp", "python3-aiohttp")
            elif t == FLOOR:
                if not os.access(self.floor_bin, os.X_OK):
                    why = f"{self.floor_bin} not built (run: ninja -C {self.build})"
            else:
                if not shutil.which(TOOL_BINARIES[t]):
                    why = f"{TOOL_BINARIES[t]} not found (scripts/install-deps.sh --bench)"
            if why:
                self.missing[t] = why
                log(f"!! {t}: {why}; it is left out")
            else:
                ok.append(t)
        return ok

    def https_possible(self):
        """Whether the HTTPS scenario can run here; if not, it is left out and the report says why."""
        if not any(s.variant == "https" for s in self.scenarios):
            return False
        why = testca.available()
        if why:
            self.scenarios = [s for s in self.scenarios if s.variant != "https"]
            self.notes.append(f"HTTPS scenario left out: {why}")
            log(f"!! HTTPS scenario left out: {why}")
        return why is None

    def snapshot_binaries(self):
        """Copies asyncd and asyncctl once, so that a rebuild in the tree during the session
        cannot change the binary between runs."""
        self.binary_info = []
        snap = os.path.join(WORK, "bin")
        os.makedirs(snap, exist_ok=True)
        for attr in ("asyncd_bin", "asyncctl_bin", "floor_bin"):
            src = getattr(self, attr)
            if not os.path.exists(src):
                continue
            dst = os.path.join(snap, os.path.basename(src))
            shutil.copy2(src, dst + ".tmp")
            os.replace(dst + ".tmp", dst)
            setattr(self, attr, dst)
            mtime = datetime.datetime.fromtimestamp(os.stat(src).st_mtime).strftime("%Y-%m-%d %H:%M")
            self.binary_info.append(f"{os.path.relpath(src, REPO)} (built {mtime})")
        try:
            head = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True,
                                  text=True).stdout.strip()
        except OSError:
            head = "?"
        self.binary_info.append(f"tree {head}")

    def _py_has(self, module, pkg):
        if not os.access(PY, os.X_OK):
            return f"{PY} not found"
        r = subprocess.run([PY, "-c", f"import {module}"], capture_output=True)
        return None if r.returncode == 0 else f"{PY} lacks {module} (apt-get install {pkg})"

    # -- asyncd ---------------------------------------------------------------------------------
    def start_daemon(self, tag, wrapper=()):
        import asyncd_env
        if self.bus is None or self.bus.proc.poll() is not None:
            self.bus = asyncd_env.Bus(WORK)
        return asyncd_env.Daemon(self.asyncd_bin, self.bus, os.path.join(self.logdir, f"asyncd-{tag}.log"),
                                 wrapper=wrapper)

    # -- one measured run -----------------------------------------------------------------------
    def measure(self, tool, cmd, tag, timeout, daemon=None, sample_interval=0.01):
        """Runs a client command; adds the daemon's and the bus's CPU and RSS when given."""
        out, err = os.path.join(self.logdir, f"{tag}.out"), os.path.join(self.logdir, f"{tag}.err")
        srv_pids = self.srv.worker_pids()
        srv0 = sum(procstat.cpu_seconds(p) or 0 for p in srv_pids)
        busy0 = procstat.machine_busy_seconds()
        d0 = b0 = None
        rec = {}
        if daemon:
            d0 = procstat.cpu_seconds(daemon.pid)
            l0 = procstat.thread_run_seconds(daemon.pid)
            b0 = procstat.cpu_seconds(self.bus.pid)
            rec["daemon_rss_start_kib"] = procstat.status_kib(daemon.pid, "VmRSS")
            sampler = procstat.RssSampler([daemon.pid], sample_interval)
            with sampler:
                r = procstat.run_measured(cmd, timeout, out, err)
                d1 = procstat.cpu_seconds(daemon.pid)
                l1 = procstat.thread_run_seconds(daemon.pid)
                b1 = procstat.cpu_seconds(self.bus.pid)
            rec["daemon_cpu"] = (d1 or 0) - (d0 or 0)
            if l0 is not None and l1 is not None:
                rec["loop_cpu"] = l1 - l0
            rec["bus_cpu"] = (b1 or 0) - (b0 or 0)
            rec["daemon_rss_sampled_kib"] = sampler.peak.get(daemon.pid, 0)
            rec["daemon_hwm_kib"] = procstat.status_kib(daemon.pid, "VmHWM")
            rec["daemon_samples"] = sampler.samples
            if not daemon.alive():
                rec["daemon_died"] = daemon.read_log()
        else:
            r = procstat.run_measured(cmd, timeout, out, err)
        srv1 = sum(procstat.cpu_seconds(p) or 0 for p in srv_pids)
        busy1 = procstat.machine_busy_seconds()
        rec.update(tool=tool, wall=r.wall, rc=r.rc, client_cpu=r.cpu, client_rss_kib=r.maxrss_kib,
                   server_cpu=srv1 - srv0, timed_out=r.timed_out, stdout=r.stdout[-600:],
                   stderr=r.stderr[-600:])
        rec["cpu"] = rec["client_cpu"] + rec.get("daemon_cpu", 0) + rec.get("bus_cpu", 0)
        if busy0 is not None and busy1 is not None:
            # Everything else the machine did meanwhile: kernel threads (write-back, softirq) and
            # other people's processes. A large value marks a run disturbed by outside load.
            rec["other_cpu"] = max(0.0, busy1 - busy0 - rec["cpu"] - rec["server_cpu"])
        return rec

    # -- commands -------------------------------------------------------------------------------
    def small_cmd(self, tool, lists, outdir, c, ca=None):
        """The tool's command for a list; ca: the CA certificate to trust (HTTPS), None for HTTP."""
        cmd = self._small_cmd(tool, lists, outdir, c)
        if ca:
            cmd += {"curl": ["--cacert", ca], "aria2c": [f"--ca-certificate={ca}"],
                    "wget2": [f"--ca-certificate={ca}"], "python-aiohttp": ["--cafile", ca]}.get(tool, [])
        return cmd

    def _small_cmd(self, tool, lists, outdir, c):
        plain, cfg, _ = lists
        if tool == "asyncd":
            return [self.asyncctl_bin, f"--bus-address={self.bus.address}", "submit", "-m", str(c),
                    "-o", outdir, "-i", plain]
        if tool == "asyncd-gdbus":
            return [PY, os.path.join(HERE, "asyncd_gdbus.py"), "submit", "--address", self.bus.address,
                    "-m", str(c), "-o", outdir, "-i", plain]
        if tool == "curl":
            return ["curl", "--parallel", "--parallel-max", str(c), "--fail", "--silent", "--show-error",
                    "--no-progress-meter", "--remote-name-all", "--output-dir", outdir, "--config", cfg]
        if tool == "aria2c":
            return ["aria2c", "-j", str(c), "-i", plain, "-d", outdir, "--quiet=true",
                    "--console-log-level=error", "--summary-interval=0", "--download-result=hide",
                    "--auto-file-renaming=false"]
        if tool == "wget2":
            return ["wget2", f"--max-threads={c}", "-i", plain, "-P", outdir, "--quiet", "--progress=none"]
        if tool == "python-aiohttp":
            return [PY, os.path.join(HERE, "peer_aiohttp.py"), "-m", str(c), "-o", outdir, "-i", plain]
        if tool == FLOOR:
            return [self.floor_bin, plain, str(c), "save", outdir]
        raise ValueError(tool)

    def big_cmd(self, tool, plain, url, outdir, name):
        if tool in ("asyncd", "asyncd-gdbus"):
            return self.small_cmd(tool, (plain, None, None), outdir, 1)
        path = os.path.join(outdir, name)
        if tool == "curl":
            return ["curl", "--fail", "--silent", "--show-error", "-o", path, url]
        if tool == "aria2c":
            return ["aria2c", "-d", outdir, "-o", name, "--quiet=true", "--console-log-level=error",
                    "--summary-interval=0", "--download-result=hide", url]
        if tool == "wget2":
            return ["wget2", "--quiet", "--progress=none", "-O", path, url]
        raise ValueError(tool)

    # -- scenarios ------------------------------------------------------------------------------
    def outdir(self, fs, tag):
        if not os.path.isdir(OUT_BASES[fs]):
            os.makedirs(OUT_BASES[fs])
            if fs == "disk":
                set_topdir(OUT_BASES[fs])
        d = os.path.join(OUT_BASES[fs], tag)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        return d

    def cleanup(self, d, fs="tmpfs"):
        """tmpfs: delete. disk: move aside until the end of the session. ext4 avoids reusing an
        inode freed in the last minute (ialloc.c: recently_deleted()), and scanning past 10,000
        of them made the next run's file creation cost up to 6 s of system time: deleting between
        runs would measure the harness's own deletions. Then sync, so that no write-back of this
        run overlaps the next one."""
        if fs == "disk":
            os.makedirs(DISK_TRASH, exist_ok=True)
            os.rename(d, os.path.join(DISK_TRASH, f"{os.path.basename(d)}-{time.monotonic_ns()}"))
        else:
            shutil.rmtree(d, ignore_errors=True)
        os.sync()

    def run_small(self, s, rep, fs, tool):
        tag = f"{s.name}-{fs}-{tool}-r{rep}"
        lists = self.lists.small(s.variant, s.n)
        outdir = self.outdir(fs, f"{s.name}-{tool}")
        https = s.variant == "https"
        os.sync()
        # Over HTTPS each client trusts the session's CA: its own option, or for the daemon its
        # own /etc/ssl/certs in a mount namespace (testca.trusting()).
        daemon = self.start_daemon(tag, testca.trusting(self.srv.ca_store) if https else ()) \
            if tool.startswith("asyncd") else None
        try:
            timeout = self.a.timeout or max(120, s.n / 10 * (5 if s.c <= 10 else 1))
            cmd = self.small_cmd(tool, lists, outdir, s.c, self.srv.ca.cert if https else None)
            rec = self.measure(tool, cmd, tag, timeout, daemon)
        finally:
            if daemon:
                daemon.stop()
        expected, nf = self.ds.expected_small(s.n, s.variant == "404")
        rng = random.Random(zlib.crc32(f"{s.name}/{fs}/{tool}/{rep}".encode()))
        ok, msg, files, nbytes = verify_small(outdir, expected, nf, self.ds, rng)
        rec.update(files=files, bytes=nbytes)
        good_rc = RC_404.get(tool, {0}) | {0} if s.variant == "404" else {0}
        if rec["timed_out"]:
            ok, msg = False, f"timed out after {timeout:.0f} s; " + msg
        elif rec["rc"] not in good_rc:
            ok, msg = False, f"exit status {rec['rc']}; " + (msg or rec["stderr"][-200:].strip())
        if ok:
            msg = self.check_summary(tool, rec, len(expected), len(nf))
            ok = not msg
        self.cleanup(outdir, fs)
        return self.add(s, rep, fs, rec, ok, msg)

    def check_summary(self, tool, rec, n_ok, n_nf):
        """The tool's own report must match what is on disk (asyncd and the Python peer report counts)."""
        out = rec["stdout"]
        if tool == "asyncd":
            m = re.search(r"(\d+) downloaded", out)
            got_ok = int(m.group(1)) if m else None
            m = re.search(r"(\d+) not found", out)
            got_nf = int(m.group(1)) if m else 0
            if got_ok != n_ok or got_nf != n_nf:
                return f"asyncctl reported {got_ok} downloaded / {got_nf} not found"
        elif tool == FLOOR:
            m = re.search(r"files (\d+) bytes \d+ not_found (\d+) errors (\d+)", out)
            if not m or (int(m.group(1)), int(m.group(2)), int(m.group(3))) != (n_ok, n_nf, 0):
                return f"reported {out.strip()[-200:]!r}"
        elif tool in ("asyncd-gdbus", "python-aiohttp"):
            try:
                j = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                return f"no JSON summary: {out[-200:]!r}"
            if j.get("ok") != n_ok or j.get("not_found") != n_nf or j.get("error"):
                return f"reported {j}"
        return ""

    def run_big(self, s, rep, fs, tool):
        tag = f"{s.name}-{fs}-{tool}-r{rep}"
        plain, url = self.lists.big(s.mib)
        name = dataset.big_name(0, s.mib)
        outdir = self.outdir(fs, f"{s.name}-{tool}")
        os.sync()
        daemon = self.start_daemon(tag) if tool.startswith("asyncd") else None
        try:
            rec = self.measure(tool, self.big_cmd(tool, plain, url, outdir, name), tag,
                               self.a.timeout or 300, daemon)
        finally:
            if daemon:
                daemon.stop()
        ok, msg, files, nbytes = verify_big(os.path.join(outdir, name), self.ds.big_info(0, s.mib))
        if rec["timed_out"] or rec["rc"] != 0:
            ok, msg = False, f"exit status {rec['rc']}{' (timeout)' if rec['timed_out'] else ''}; {msg}"
        rec.update(files=files, bytes=nbytes, throughput_mbs=nbytes / rec["wall"] / MB if rec["wall"] else 0)
        # Deleted at once, also on disk (one inode: ext4's recently-deleted scan does not matter).
        # Kept, each run's 256 MiB stayed in the page cache and the next run wrote into memory
        # this VM had never touched: copying into the page cache (copy_folio_from_iter_atomic,
        # 75 % of the samples) then took 0.7-0.9 s for curl and asyncd alike, against 0.2-0.35 s
        # with the memory a deleted file gave back. Whoever ran later in a session lost.
        shutil.rmtree(outdir, ignore_errors=True)
        os.sync()
        return self.add(s, rep, fs, rec, ok, msg)

    def run_wrk(self, s, rep):
        _, _, paths = self.lists.small("plain", s.n)
        script = os.path.join(self.lists.dir, "paths.lua")
        with open(script, "w") as f:
            f.write(f'local paths = {{}}\nfor line in io.lines("{paths}") do paths[#paths + 1] = line end\n'
                    'local i = 0\nrequest = function()\n  i = i % #paths + 1\n'
                    '  return wrk.format("GET", paths[i])\nend\n')
        for c in s.conns:
            tag = f"{s.name}-c{c}-r{rep}"
            rec = self.measure("wrk", ["wrk", "-t2", f"-c{c}", f"-d{s.duration}s", "-s", script, self.srv.url],
                               tag, s.duration + 30)
            m = re.search(r"([\d.]+) requests in ([\d.]+)(m?s)", rec["stdout"])
            rps = re.search(r"Requests/sec:\s*([\d.]+)", rec["stdout"])
            errs = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", rec["stdout"])
            ok = bool(m and rps) and rec["rc"] == 0 and not errs
            if ok:
                total = int(m.group(1))
                rps = float(rps.group(1))
                rec.update(requests=total, rps=rps, wall_equiv=s.n / rps,
                           cpu_equiv=rec["client_cpu"] * s.n / total, server_cpu_equiv=rec["server_cpu"] * s.n / total)
            rec["conns"] = c
            self.add(s, rep, "-", rec, ok, "" if ok else f"wrk failed: {rec['stdout'][-300:]}{rec['stderr'][-200:]}",
                     sub=f"c{c}")

    def run_create(self, s, rep, fs_wanted):
        """bench/create-cost.c: the file system's own cost of making a file appear, the way curl
        does it (plain create) and the way asyncd does it (O_TMPFILE + link), 1 and 2 threads."""
        binary = os.path.join(self.build, "bench", "create-cost")
        if not os.access(binary, os.X_OK):
            if rep == 0:
                self.notes.append(f"create-cost: {binary} not built (ninja -C {self.build})")
            return
        combos = [(fs, m, t) for fs in s.fs if fs in fs_wanted for m in s.modes for t in s.threads]
        random.Random(f"{s.name}/{rep}").shuffle(combos)
        for fs, mode, threads in combos:
            sub = f"{mode}-t{threads}"
            outdir = self.outdir(fs, f"{s.name}-{sub}")
            t0 = time.monotonic()
            r = subprocess.run([binary, outdir, mode, str(s.n), str(s.size), str(threads)],
                               capture_output=True, text=True, timeout=300)
            rec = dict(tool="create-cost", wall=time.monotonic() - t0, cpu=0.0, mode=mode, threads=threads)
            m = re.search(r"wall=([\d.]+) cpu=([\d.]+) us_per_file=([\d.]+)", r.stdout)
            files = len(os.listdir(outdir))
            ok = r.returncode == 0 and m is not None and files == s.n
            if m:
                rec.update(wall=float(m.group(1)), cpu=float(m.group(2)), us_per_file=float(m.group(3)))
            self.cleanup(outdir, fs)
            self.add(s, rep, fs, rec, ok, "" if ok else f"status {r.returncode}, {files} files: {r.stderr[-300:]}",
                     sub=sub)

    def run_cancel(self, s, rep):
        tag = f"{s.name}-r{rep}"
        plain, _, _ = self.lists.small("slow", s.n)
        outdir = self.outdir("tmpfs", s.name)
        daemon = self.start_daemon(tag)
        try:
            cmd = [PY, os.path.join(HERE, "asyncd_gdbus.py"), "cancel-probe", "--address", self.bus.address,
                   "--pid", str(daemon.pid), "-n", str(s.n), "-m", str(s.c), "--inflight", str(s.inflight),
                   "-o", outdir, "-i", plain]
            rec = self.measure("asyncd", cmd, tag, 120, daemon)
        finally:
            daemon.stop()
        files = len(os.listdir(outdir))
        try:
            j = json.loads(rec["stdout"].strip().splitlines()[-1])
        except (ValueError, IndexError):
            j = {"error": f"no output: {rec['stdout'][-200:]} {rec['stderr'][-300:]}"}
        rec["probe"] = j
        problems = []
        if "error" in j:
            problems.append(j["error"])
        else:
            if j["results"] != s.n or j["duplicates"]:
                problems.append(f"{j['results']} results for {s.n} tasks, {j['duplicates']} duplicates")
            if j.get("finished") is None:
                problems.append("no Finished signal")
            if j["active_at_cancel"] < s.inflight:
                problems.append(f"only {j['active_at_cancel']} in flight at cancel")
            if files:
                problems.append(f"{files} files left behind")
        self.cleanup(outdir)
        return self.add(s, rep, "tmpfs", rec, not problems, "; ".join(problems))

    def run_million(self, s, rep):
        tag = f"{s.name}-r{rep}"
        tiny = self.ds.tiny_ids()
        log(f"   writing the {s.n}-task list ...")
        path, total = self.lists.million(s.n, tiny)
        outdir = self.outdir("tmpfs", s.name)
        daemon = self.start_daemon(tag)
        try:
            cmd = [self.asyncctl_bin, f"--bus-address={self.bus.address}", "submit", "-m", str(s.c),
                   "-o", outdir, "-i", path]
            rec = self.measure("asyncd", cmd, tag, self.a.timeout or 3600, daemon, sample_interval=0.05)
        finally:
            daemon.stop()
        log("   verifying ...")
        n = 0
        nbytes = 0
        bad = []
        for e in os.scandir(outdir):
            n += 1
            nbytes += e.stat(follow_symlinks=False).st_size
        rng = random.Random(rep)
        for k in rng.sample(range(s.n), 50):
            i = tiny[k % len(tiny)]
            try:
                with open(os.path.join(outdir, f"{k:07d}"), "rb") as f:
                    if f.read() != dataset.small_content(i):
                        bad.append(k)
            except OSError:
                bad.append(k)
        problems = []
        if n != s.n or nbytes != total:
            problems.append(f"{n} files / {nbytes} bytes, expected {s.n} / {total}")
        if bad:
            problems.append(f"{len(bad)} of 50 spot checks differ")
        if rec["rc"] != 0 or rec["timed_out"]:
            problems.append(f"exit status {rec['rc']}{' (timeout)' if rec['timed_out'] else ''}: "
                            f"{rec['stderr'][-200:]}")
        rec.update(files=n, bytes=nbytes)
        start = rec.get("daemon_rss_start_kib") or 0
        rec["bytes_per_task"] = ((rec.get("daemon_hwm_kib") or 0) - start) * 1024 / s.n
        log("   removing the output ...")
        self.cleanup(outdir)
        return self.add(s, rep, "tmpfs", rec, not problems, "; ".join(problems))

    def add(self, s, rep, fs, rec, ok, msg, sub=""):
        msg = " ".join((msg or "").split())     # one line
        rec.update(scenario=s.name, rep=rep, fs=fs, valid=bool(ok), problem=msg, sub=sub)
        self.records.append(rec)
        extra = ""
        if rec.get("daemon_hwm_kib"):
            extra = f" daemon {rec['daemon_cpu']:.2f}s/{rec['daemon_hwm_kib'] / 1000:.1f}MB"
        if s.kind == "cancel" and "probe" in rec and "finished_ms" in rec["probe"]:
            extra += f" cancel: finished {rec['probe']['finished_ms']} ms, sockets {rec['probe']['sockets_ms']} ms"
        if s.kind == "wrk" and ok:
            extra += f" {rec['rps']:.0f} req/s"
        log(f"   {s.name:<24} {fs:<5} {rec['tool'] + (' ' + sub if sub else ''):<15} "
            f"wall {rec['wall']:7.3f}s cpu {rec['cpu']:6.2f}s{extra}  {'ok' if ok else 'INVALID: ' + msg}")
        return rec

    # -- the whole run --------------------------------------------------------------------------
    def run(self):
        a = self.a
        t_start = time.monotonic()
        os.makedirs(WORK, exist_ok=True)
        self.scenarios = make_scenarios(a)
        tools_wanted = a.tools.split(",") if a.tools else ALL_TOOLS
        unknown = set(tools_wanted) - set(ALL_TOOLS)
        if unknown:
            sys.exit(f"unknown tools: {', '.join(sorted(unknown))} (known: {', '.join(ALL_TOOLS)})")
        self.tools = self.check_tools([t for t in ALL_TOOLS if t in tools_wanted])
        self.snapshot_binaries()
        fs_wanted = a.fs.split(",")
        big_sizes = sorted({(0, s.mib) for s in self.scenarios if s.kind == "big"})
        self.prepare_disk(fs_wanted)
        self.ds = dataset.DataSet(WORK).ensure(big_sizes, log=log)
        log("warming the page cache ...")
        self.ds.warm()
        self.tls = self.https_possible()
        self.srv = servers.Server(self.ds.www, tls=self.tls)
        self.lists = Lists(self.srv, self.ds)
        log(f"nginx {self.srv.url} (pid {self.srv.proc.pid}, worker {self.srv.worker_pids()}); "
            f"delays by {self.srv.delay_kind}")
        try:
            for rep in range(a.runs):
                log(f"== run {rep + 1}/{a.runs} ==")
                for s in self.scenarios:
                    if rep >= getattr(s, "runs", a.runs):
                        continue
                    self.run_scenario(s, rep, fs_wanted)
        finally:
            if self.bus:
                self.bus.stop()
            self.srv.stop()
            for b in OUT_BASES.values():
                shutil.rmtree(b, ignore_errors=True)
            if os.path.exists(DISK_TRASH):
                log(f"removing the disk outputs kept in {DISK_TRASH} ...")
                shutil.rmtree(DISK_TRASH, ignore_errors=True)
                os.sync()
                with open(DISK_DELETE_STAMP, "w") as f:    # see prepare_disk()
                    f.write(f"{time.time()}\n")
        self.elapsed = time.monotonic() - t_start
        if a.profile:
            self.profile()
        if a.callgrind:
            self.callgrind()

    def server_ok(self):
        return self.srv.proc is not None and self.srv.proc.poll() is None and \
            servers._answers(self.srv.port, None)

    def ensure_server(self):
        """Something outside the harness may kill our nginx (a package upgrade, an admin's
        `pkill nginx`): if it is gone, start another one (a new port, so new URL lists) and say so."""
        if self.server_ok():
            return
        self.server_restarts += 1
        msg = f"nginx (pid {self.srv.proc.pid if self.srv.proc else '?'}) was gone; restarted it"
        log(f"!! {msg}")
        self.notes.append(msg + " (killed from outside? The runs it broke were repeated.)")
        self.srv.stop()
        self.srv = servers.Server(self.ds.www, tls=self.tls)
        self.lists = Lists(self.srv, self.ds)

    def run_one(self, fn, *args):
        """Runs one measurement; if nginx died under it, the run is dropped and done again once."""
        self.ensure_server()
        n = len(self.records)
        rec = fn(*args)
        if not self.server_ok():
            for r in self.records[n:]:
                r["valid"] = False
                r["problem"] = "nginx died during the run: " + (r.get("problem") or "")
                r["dropped"] = True
            self.ensure_server()
            rec = fn(*args)
        return rec

    def prepare_disk(self, fs_wanted):
        """Output left by an interrupted run: tmpfs is cleared; disk output is moved into this
        session's trash (deleted at its end), not deleted now. ext4 skips inodes freed in the last
        60 s (300 s while their inode table block is dirty) when it allocates, and its Orlov
        allocator sends new directories to the groups with the most free inodes, i.e. exactly
        where a bulk delete just happened: deleting ~10^5-10^6 files right before the disk runs
        made file creation cost 2-6x more system time (seen: curl 0.7 s -> 4.4 s, asyncd
        0.8 s -> 2.5 s). For the same reason a session starts its disk runs no sooner than
        EXT4_RECENT_S after the last bulk delete of a previous session."""
        shutil.rmtree(OUT_BASES["tmpfs"], ignore_errors=True)
        if os.path.exists(OUT_BASES["disk"]):
            os.makedirs(DISK_TRASH, exist_ok=True)
            os.rename(OUT_BASES["disk"], os.path.join(DISK_TRASH, f"earlier-{time.monotonic_ns()}"))
            log(f"disk output of an earlier run moved to {DISK_TRASH} (deleted at the end)")
        if "disk" not in fs_wanted or not any(s.kind in ("small", "big") and "disk" in s.fs
                                              for s in self.scenarios):
            return
        try:
            age = time.time() - float(open(DISK_DELETE_STAMP).read())
        except (OSError, ValueError):
            return
        if 0 <= age < EXT4_RECENT_S:
            log(f"waiting {EXT4_RECENT_S - age:.0f} s: the last session deleted its disk output "
                f"{age:.0f} s ago (ext4 would scan past those inodes; see prepare_disk())")
            time.sleep(EXT4_RECENT_S - age)

    def run_scenario(self, s, rep, fs_wanted):
        try:
            if s.kind == "wrk":
                if "wrk" in self.tools:
                    self.run_one(self.run_wrk, s, rep)
                return
            if s.kind == "create":
                self.run_create(s, rep, fs_wanted)
                return
            if s.kind in ("cancel", "million"):
                if "asyncd" in self.tools:
                    self.run_one(self.run_cancel if s.kind == "cancel" else self.run_million, s, rep)
                return
            tools = tool_order(s.name, [t for t in s.tools if t in self.tools], rep)
            for fs in s.fs:
                if fs not in fs_wanted:
                    continue
                for t in tools:
                    try:
                        self.run_one(self.run_small if s.kind == "small" else self.run_big, s, rep, fs, t)
                    except Exception as e:   # one tool's failure must not end the run
                        log(f"!! {s.name} {fs} {t}: {e}")
                        traceback.print_exc()
                        self.records.append(dict(scenario=s.name, rep=rep, fs=fs, tool=t, valid=False,
                                                 problem=f"harness error: {e}", wall=None, cpu=None, sub=""))
        except Exception as e:
            log(f"!! {s.name}: {e}")
            traceback.print_exc()
            self.notes.append(f"{s.name}: harness error: {e}")

    def profile(self):
        """perf record (DWARF call graphs) of the daemon during one extra small c=100 tmpfs run, plus
        the exact CPU split between its threads from /proc/PID/task/*/stat."""
        if not shutil.which("perf"):
            self.notes.append("profile: perf not found (apt-get install linux-perf)")
            return
        import report
        s = next((x for x in self.scenarios if x.kind == "small" and x.c == 100 and x.variant == "plain"), None)
        if s is None:
            return
        self.ds.warm()
        with self.fresh_server():
            lists = self.lists.small("plain", s.n)
            outdir = self.outdir("tmpfs", "profile")
            daemon = self.start_daemon("profile")
            data = os.path.join(WORK, "perf.data")
            perf = subprocess.Popen(["perf", "record", "--call-graph", "dwarf,16384", "-F", "1000", "-o", data,
                                     "-p", str(daemon.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            threads0 = thread_cpu(daemon.pid)
            rec = self.measure("asyncd", self.small_cmd("asyncd", lists, outdir, s.c), "profile", 300, daemon)
            threads1 = thread_cpu(daemon.pid)
            perf.send_signal(2)
            perf.wait(120)
            daemon.stop()
            self.cleanup(outdir)
            split = []
            for tid, (u1, s1) in sorted(threads1.items()):
                u0, s0 = threads0.get(tid, (0, 0))
                split.append((("main (event loop)" if tid == daemon.pid else f"thread {tid}"), u1 - u0, s1 - s0))
            rep = lambda *args: subprocess.run(["perf", "report", "-i", data, "--stdio"] + list(args),  # noqa: E731
                                               capture_output=True, text=True).stdout
            flat = rep("--no-children", "--sort", "dso,symbol", "-g", "none", "--percent-limit", "0.8")
            incl = rep("--children", "--sort", "symbol", "-g", "none", "--percent-limit", "1.5")
            self.profile = dict(wall=rec["wall"], daemon_cpu=rec.get("daemon_cpu"), split=split,
                                flat=report.trim_perf(flat, 25),
                                inclusive=report.trim_perf(report.user_symbols(incl), 40))
            with open(os.path.join(WORK, "perf-report.txt"), "w") as f:
                f.write(flat + "\n\n" + incl)

    def callgrind(self):
        """Instructions and allocator calls per task under callgrind (bench/callgrind_profile.py):
        a small c=100 job to tmpfs after a warm-up job of the same size."""
        import callgrind_profile
        if not callgrind_profile.available():
            self.notes.append("callgrind: valgrind not found (apt-get install valgrind)")
            return
        n, c = self.a.callgrind_tasks, 100
        try:
            with self.fresh_server():
                lists = self.lists.small("plain", n)
                self.callgrind_result = callgrind_profile.run(
                    self.start_daemon, lambda outdir: self.small_cmd("asyncd", lists, outdir, c),
                    lambda tag: self.outdir("tmpfs", tag), WORK, n)
                self.callgrind_result["concurrency"] = c
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            log(f"!! callgrind: {e}")
            self.notes.append(f"callgrind: {e}")
        finally:
            shutil.rmtree(OUT_BASES["tmpfs"], ignore_errors=True)

    @contextlib.contextmanager
    def fresh_server(self):
        """nginx (new port, new URL lists) and, when a daemon is started, its bus, for the extra
        runs after the scenarios; both stopped afterwards."""
        self.srv = servers.Server(self.ds.www)
        self.lists = Lists(self.srv, self.ds)
        try:
            yield
        finally:
            if self.bus:
                self.bus.stop()
                self.bus = None
            self.srv.stop()


def thread_cpu(pid):
    """{tid: (utime s, stime s)} of every thread of pid."""
    out = {}
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                v = f.read().rsplit(")", 1)[1].split()
            out[int(t)] = (int(v[11]) / procstat.CLK_TCK, int(v[12]) / procstat.CLK_TCK)
    except OSError:
        pass
    return out


def take_lock():
    """One harness at a time: two runs would share /tmp/asyncd-bench, the output directories and
    the machine's two cores, and measure each other."""
    import fcntl
    os.makedirs(WORK, exist_ok=True)
    f = open(os.path.join(WORK, "lock"), "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        sys.exit(f"another bench/run.py is running ({f.read().strip() or 'pid unknown'}); "
                 "wait for it: two runs would measure each other")
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()}, started {datetime.datetime.now():%H:%M:%S}, "
            f"bench/run.py {' '.join(sys.argv[1:])}".rstrip() + "\n")
    f.flush()
    return f


def main():
    p = argparse.ArgumentParser(description="asyncd benchmark (see bench/README.md)")
    p.add_argument("--quick", action="store_true", help="1 run and smaller sets (about a minute)")
    p.add_argument("--runs", type=int, help="repetitions (default 5, --quick: 1)")
    p.add_argument("--out", default=os.path.join(HERE, "results.md"), help="Markdown report (and .json beside it)")
    p.add_argument("--million", action="store_true", help="also the 1,000,000-task job (several minutes)")
    p.add_argument("--million-tasks", type=int, default=1_000_000, help=argparse.SUPPRESS)
    p.add_argument("--scenarios", help="only these scenarios (names, name prefixes or kinds: "
                   "small, big, wrk, cancel, create, million)")
    p.add_argument("--tools", help=f"only these tools ({', '.join(ALL_TOOLS)})")
    p.add_argument("--fs", default="tmpfs,disk", help="output file systems (tmpfs, disk)")
    p.add_argument("--build-dir", default=os.path.join(REPO, "build"), help="meson build dir with asyncd")
    p.add_argument("--timeout", type=float, help="per-run timeout in s (default: per scenario)")
    p.add_argument("--profile", action="store_true", help="perf record the daemon in one extra run")
    p.add_argument("--callgrind", action="store_true",
                   help="count the daemon's instructions and allocations per task under callgrind")
    p.add_argument("--callgrind-tasks", type=int, default=2000, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.runs is None:
        a.runs = 1 if a.quick else 5
    if os.path.realpath(sys.executable) != os.path.realpath(PY):
        # aiohttp and gi come from Debian's python3
        os.execv(PY, [PY] + sys.argv)
    lock = take_lock()
    h = Harness(a)
    h.run()
    lock.close()
    import report
    md, js = report.render(h)
    with open(a.out, "w") as f:
        f.write(md)
    with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
        json.dump(js, f, indent=1, default=str)
    print(md)
    log(f"wrote {a.out} ({h.elapsed:.0f} s)")


if __name__ == "__main__":
    main()
