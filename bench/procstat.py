# SPDX-License-Identifier: MIT
"""Process accounting helpers: CPU from /proc/PID/stat, RSS sampling, socket counts,
and running a child with a timeout and its rusage."""

import os
import signal
import subprocess
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a live process (all its threads, including exited ones), in s."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def thread_run_seconds(pid, tid=None):
    """Time one thread (by default the main one: asyncd's event loop) has spent on a CPU, in s,
    from /proc/PID/task/TID/schedstat (nanoseconds, not clock ticks)."""
    try:
        with open(f"/proc/{pid}/task/{tid or pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def machine_busy_seconds():
    """CPU seconds the whole machine has been busy (all CPUs: user, nice, system, irq, softirq,
    steal), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...
        return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return None


def status_kib(pid, key):
    """A 'kB' line of /proc/PID/status (VmRSS, VmHWM...), in KiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def socket_count(pid):
    n = 0
    try:
        d = f"/proc/{pid}/fd"
        for e in os.listdir(d):
            try:
                if os.readlink(f"{d}/{e}").startswith("socket:"):
                    n += 1
            except OSError:
                pass
    except OSError:
        return None
    return n


class RssSampler:
    """Samples VmRSS of some processes every `interval` s in a thread; .peak[pid] in KiB."""

    def __init__(self, pids, interval=0.01):
        self.pids = [p for p in pids if p]
        self.interval = interval
        self.peak = {p: 0 for p in self.pids}
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for p in self.pids:
                v = status_kib(p, "VmRSS")
                if v is not None and v > self.peak[p]:
                    self.peak[p] = v
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        # one last sample
        for p in self.pids:
            v = status_kib(p, "VmRSS")
            if v is not None and v > self.peak[p]:
                self.peak[p] = v


class RunResult:
    def __init__(self):
        self.wall = None
        self.rc = None
        self.utime = self.stime = 0.0
        self.maxrss_kib = 0
        self.timed_out = False
        self.stdout = ""
        self.stderr = ""

    @property
    def cpu(self):
        return self.utime + self.stime


GNU_TIME = "/usr/bin/time"


def run_measured(cmd, timeout, stdout_path, stderr_path, env=None, cwd=None, on_start=None):
    """Runs cmd in its own process group; wall from fork to reap, CPU from wait4.
    On timeout the whole group is SIGKILLed and .timed_out is set.

    Peak RSS comes from GNU time (%M) when it is there: a child forked by this (Python)
    process carries this process's RSS into its ru_maxrss (the kernel folds the old mm's
    high-water mark into maxrss at exec), so wait4's ru_maxrss would report ~35 MB for any
    tool; GNU time forks from a process of ~2 MB."""
    r = RunResult()
    timefile = None
    if os.access(GNU_TIME, os.X_OK):
        timefile = stdout_path + ".time"
        cmd = [GNU_TIME, "-f", "%M", "-o", timefile] + list(cmd)
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                cwd=cwd, start_new_session=True)
        if on_start:
            on_start(proc)
        killer = threading.Timer(timeout, _kill_group, (proc.pid, r))
        killer.start()
        try:
            _, status, ru = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        r.wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    r.rc = proc.returncode
    r.utime, r.stime, r.maxrss_kib = ru.ru_utime, ru.ru_stime, ru.ru_maxrss
    if timefile:
        try:
            with open(timefile) as f:
                r.maxrss_kib = int(f.read().split()[-1])
        except (OSError, ValueError, IndexError):
            r.maxrss_kib = None
    # kill anything the child left behind in its group
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    r.stdout = _tail(stdout_path)
    r.stderr = _tail(stderr_path)
    return r


def _kill_group(pid, r):
    r.timed_out = True
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path, n=4000):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode(errors="replace")
    except OSError:
        return ""
