# SPDX-License-Identifier: MIT
"""Callgrind profile of the daemon: instructions and allocator calls per task.

perf samples time and moves with the machine's noise; callgrind counts every instruction the
daemon executes in user space, so the per-task figures are the same from run to run and show
where a task's work goes (libcurl, libc, sd-bus, asyncd itself) and how many allocations each
party makes per task. The kernel side (syscalls) is not counted: perf covers it.

The daemon runs under `valgrind --tool=callgrind`, fetches one warm-up job (connections opened,
caches filled, as in a daemon that has been running), its counters are zeroed
(`callgrind_control -z`), one measured job of N small files runs, and the counters are dumped
(`callgrind_control -d`)."""

import collections
import os
import re
import shutil
import subprocess

ALLOCATORS = ("malloc", "calloc", "realloc", "free", "strdup", "strndup")


def available():
    return all(shutil.which(t) for t in ("valgrind", "callgrind_control", "callgrind_annotate"))


def _name(table, text):
    """callgrind's name compression: "(12) name" defines id 12, "(12)" refers to it."""
    m = re.match(r"\((\d+)\)(?: (.*))?$", text.strip())
    if not m:
        return text.strip()
    if m.group(2):
        table[m.group(1)] = m.group(2)
    return table.get(m.group(1), "?")


def parse(path):
    """From a callgrind dump: self instructions per object, and calls into the allocator as
    {(allocator function, calling object): calls}. A cost line right after "calls=" is the
    inclusive cost of that call, not the caller's own, and is skipped."""
    fns, obs = {}, {}
    ob = cfn = None
    after_call = False
    self_ir = collections.Counter()
    calls = collections.Counter()
    total = None
    with open(path, errors="replace") as f:
        for line in f:
            c = line[:1]
            if c.isdigit() or c in "+-*":
                if after_call:
                    after_call = False
                else:
                    self_ir[ob or "?"] += int(line.split()[-1])
            elif line.startswith("ob="):
                ob = _name(obs, line[3:])
            elif line.startswith("fn="):
                _name(fns, line[3:])
            elif line.startswith("cob="):
                _name(obs, line[4:])
            elif line.startswith("cfn="):
                cfn = _name(fns, line[4:])
            elif line.startswith("calls="):
                after_call = True
                if cfn in ALLOCATORS:
                    calls[(cfn, ob or "?")] += int(line[6:].split()[0])
            elif line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
    return self_ir, calls, total


def _annotate(path, *args):
    return subprocess.run(["callgrind_annotate", "--auto=no", "--threshold=99"] + list(args) + [path],
                          capture_output=True, text=True, check=True).stdout


_ROW = re.compile(r"^\s*([\d,]+)\s+\([\s\d.]+%\)\s+(.*?)(?:\s+\[(.*)\])?\s*$")


def _rows(text):
    for line in text.splitlines():
        m = _ROW.match(line)
        if m and "PROGRAM TOTALS" not in line:
            yield int(m.group(1).replace(",", "")), m.group(2), m.group(3) or "?"


def _short_object(obj):
    if obj in ("???", "?"):
        return "??? (PLT stubs, caller not known)"
    base = os.path.basename(obj)
    return re.sub(r"\.so[.\d]*$", "", base)


def summarize(path, tasks, top=25):
    self_ir, calls, total = parse(path)
    counted = sum(self_ir.values())
    if total is not None and counted != total:
        raise RuntimeError(f"callgrind dump not understood: {counted} instructions by object, {total} in all")
    by_object = collections.Counter()
    for obj, ir in self_ir.items():
        by_object[_short_object(obj)] += ir
    best = {}
    for ir, fn, obj in _rows(_annotate(path, "--inclusive=yes")):
        fn = fn.split(":", 1)[-1]
        if fn.startswith("0x") or fn in ("(below main)", "main") or "libc_start" in fn:
            continue   # libcurl ships without symbols: its internals are only addresses
        # a function reached through a PLT stub is listed twice, once under "???"
        if fn not in best or (best[fn][1] == "???" and obj != "???"):
            best[fn] = (ir, obj)
    incl = sorted(((ir, fn, _short_object(obj)) for fn, (ir, obj) in best.items()), key=lambda x: -x[0])[:top]
    allocs = collections.Counter()
    for (fn, obj), n in calls.items():
        allocs[(fn, _short_object(obj))] += n
    return dict(tasks=tasks, total_ir=counted,
                by_object=sorted(by_object.items(), key=lambda x: -x[1]),
                inclusive=incl,
                allocs=sorted(allocs.items(), key=lambda x: -x[1]))


def run(start_daemon, submit_cmd, outdir_for, workdir, tasks):
    """start_daemon(tag, wrapper) -> Daemon; submit_cmd(outdir) -> argv of one job;
    outdir_for(tag) -> an empty output directory. Returns summarize()'s dict."""
    out = os.path.join(workdir, "callgrind.out")
    for old in [f for f in os.listdir(workdir) if f.startswith("callgrind.out")]:
        os.unlink(os.path.join(workdir, old))
    daemon = start_daemon("callgrind", ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"])
    try:
        for step in ("warm-up", "measured"):
            if step == "measured":
                subprocess.run(["callgrind_control", "-z", str(daemon.pid)], check=True,
                               capture_output=True, timeout=60)
            r = subprocess.run(submit_cmd(outdir_for(f"callgrind-{step}")), capture_output=True,
                               text=True, timeout=600)
            if r.returncode != 0:
                raise RuntimeError(f"callgrind {step} job failed: {r.stderr[-500:]}")
        subprocess.run(["callgrind_control", "-d", str(daemon.pid)], check=True, capture_output=True, timeout=60)
    finally:
        daemon.stop(timeout=60)
    dumps = sorted((f for f in os.listdir(workdir) if re.match(r"callgrind\.out\.\d+$", f)),
                   key=lambda f: int(f.rsplit(".", 1)[1]))
    if not dumps:
        raise RuntimeError("callgrind wrote no dump")
    return summarize(os.path.join(workdir, dumps[0]), tasks)
