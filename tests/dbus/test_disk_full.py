#!/usr/bin/python3
"""A file system that fills up mid-job (a 128 KiB tmpfs): the tasks that do not fit fail with the
system's reason and the file name, every file that is there is whole, no space stays held by an
unfinished file, a file that would have been overwritten keeps its old content when its new one
does not fit (with and without fsync), a large body is abandoned at its first failed write, and
once there is space again the same daemon saves everything."""

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

from gi.repository import GLib

from asyncd_test import (Client, check, dir_contents, env, files_being_written, finish, flag_bytes, flag_codes,
                         session_daemon)

PAGE = 4096
ENOSPC = "No space left on device"


@contextlib.contextmanager
def small_tmpfs(size):
    mnt = tempfile.mkdtemp(prefix="asyncd-full-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", mnt], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "--lazy", mnt], check=True)


def used_bytes(mnt):
    st = os.statvfs(mnt)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def pages(data):
    return (len(data) + PAGE - 1) // PAGE * PAGE


def run_job(c, tasks, mnt, options):
    job_id, path = c.submit(tasks, mnt, {k: GLib.Variant("b", v) if isinstance(v, bool) else GLib.Variant("u", v)
                                         for k, v in options.items()})
    check(c.pump(lambda: c.job_signals(path, "Finished"), 60), f"job {job_id} ({options}) finishes")
    return c.completed_results(path), c.job_signals(path, "Finished")[0]


def check_held_space(c, mnt, what):
    """Unfinished files are unnamed: only the daemon's descriptors would show them, and df."""
    on_disk = sum(pages(data) for data in dir_contents(mnt).values())
    check(files_being_written(c.daemon_pid(), mnt) == [] and used_bytes(mnt) == on_disk,
          f"{what}: no file held open, the space used ({used_bytes(mnt)} B) is that of the files named "
          f"({on_disk} B)")


def fill_up(c, mnt, codes):
    nginx = env("ASYNCD_TEST_NGINX_URL")
    results, finished = run_job(c, [(f"{nginx}/flags/{cc}/{cc}.gif", "") for cc in codes], mnt,
                                {"concurrency": 20})
    ok = {r[5] for r in results if r[2] == "ok"}
    errors = [r for r in results if r[2] == "error"]
    check(len(results) == len(codes) and 0 < len(ok) < len(codes) and len(ok) + len(errors) == len(codes),
          f"{len(ok)} saved, {len(errors)} did not fit")
    check(all(r[6] == f"cannot write {codes[r[1]]}.gif: {ENOSPC}" for r in errors),
          f'each failure names its file and the reason (e.g. "{errors[0][6] if errors else ""}")')
    check(finished[0] == "done" and finished[1] == len(ok) and finished[3] == len(errors), f"Finished{finished}")
    files = dir_contents(mnt)
    check(set(files) == ok and all(files[n] == flag_bytes(n[:-4]) for n in ok),
          "exactly the saved files are there, each byte-identical to the source")
    check_held_space(c, mnt, "full")
    return ok


def large_file_when_full(c, mnt):
    """A body far larger than the space left: the task fails at its first write to the disk, the
    daemon stops the transfer there instead of receiving the rest for nothing, and the space the
    partial file took is given back."""
    size = 64 * 1024 * 1024
    target = f"/bytes/{size}?full={os.getpid()}-{time.monotonic_ns()}"
    before = dir_contents(mnt)
    results, finished = run_job(c, [(env("ASYNCD_TEST_FAULT_PLAIN_URL") + target, "big.bin")], mnt, {})
    check(finished[:4] == ("done", 0, 0, 1) and results[0][2:6] == ("error", 200, 0, "") and
          results[0][6] == f"cannot write big.bin: {ENOSPC}", f"a 64 MiB body on a full disk: {results[0][6]!r}")
    deadline, rec = time.monotonic() + 10, []
    while not rec and time.monotonic() < deadline:
        with open(env("ASYNCD_TEST_FAULT_PLAIN_LOG")) as f:
            rec = [r for r in map(json.loads, f) if r["path"] == target]
        time.sleep(0.05)
    check(len(rec) == 1 and rec[0]["aborted"] and rec[0]["bytes"] < size // 4,
          f"the transfer stopped at the write error ({rec[0]['bytes'] if rec else '?'} of {size} bytes sent)")
    check(dir_contents(mnt) == before, "the files there are as they were")
    check_held_space(c, mnt, "after the large body")


def leave_free(mnt, free):
    """Removes the largest files until more than `free` bytes are free, then fills the rest with a
    file of the test's own so that exactly `free` bytes are."""
    for name in sorted(os.listdir(mnt), key=lambda n: -os.path.getsize(os.path.join(mnt, n))):
        if free_bytes(mnt) > free:
            break
        os.unlink(os.path.join(mnt, name))
    with open(os.path.join(mnt, "filler"), "wb") as f:
        f.write(b"\0" * (free_bytes(mnt) - free))
    assert free_bytes(mnt) == free


def free_bytes(mnt):
    st = os.statvfs(mnt)
    return st.f_bavail * st.f_frsize


def overwrite_when_full(c, mnt, codes, fsync):
    """With 16 KiB free: an existing file asked to become the largest flag (36 KiB) keeps its
    content; then (a job of its own: a failed task's slot is free before its file is gone) another
    one asked to become the smallest is replaced whole, and a new name appears whole. Nothing
    else changes."""
    nginx = env("ASYNCD_TEST_NGINX_URL")
    leave_free(mnt, 16 * 1024)
    before = dir_contents(mnt)
    existing = sorted(n for n in before if n.endswith(".gif"))
    by_size = sorted(codes, key=lambda cc: (len(flag_bytes(cc)), cc))
    options = {"overwrite": True, "fsync": fsync}

    tasks = [(f"{nginx}/flags/{by_size[-1]}/{by_size[-1]}.gif", existing[0])]
    results, _ = run_job(c, tasks, mnt, options)
    check([r[2] for r in results] == ["error"] and results[0][6] == f"cannot write {existing[0]}: {ENOSPC}",
          f"fsync={fsync}: too big for the space left: {results[0][2]}, {results[0][6]!r}")
    check(dir_contents(mnt) == before, f"fsync={fsync}: {existing[0]} kept as it was, nothing else changed")

    sources = {existing[1]: by_size[0], "new.gif": by_size[1]}
    tasks = [(f"{nginx}/flags/{src}/{src}.gif", name) for name, src in sources.items()]
    results, _ = run_job(c, tasks, mnt, options)
    check([r[2] for r in results] == ["ok", "ok"], f"fsync={fsync}: two that fit: {[r[2] for r in results]}")
    expected = dict(before)
    expected.update({name: flag_bytes(src) for name, src in sources.items()})
    after = dir_contents(mnt)
    wrong = sorted(n for n in set(after) | set(expected) if after.get(n) != expected.get(n))
    check(not wrong, f"fsync={fsync}: {existing[1]} replaced whole, new.gif whole, the other {len(before) - 1} "
          f"files as they were (not so: {wrong})")
    check_held_space(c, mnt, f"overwrite, fsync={fsync}")


def space_again(c, mnt, codes):
    for name in os.listdir(mnt):
        os.unlink(os.path.join(mnt, name))
    nginx = env("ASYNCD_TEST_NGINX_URL")
    fits, total = [], 0
    for cc in sorted(codes, key=lambda cc: len(flag_bytes(cc))):
        if total + pages(flag_bytes(cc)) > 96 * 1024:
            break
        fits.append(cc)
        total += pages(flag_bytes(cc))
    results, finished = run_job(c, [(f"{nginx}/flags/{cc}/{cc}.gif", "") for cc in fits], mnt,
                                {"concurrency": 20, "fsync": True})
    files = dir_contents(mnt)
    check(finished[:2] == ("done", len(fits)) and all(files.get(f"{cc}.gif") == flag_bytes(cc) for cc in fits),
          f"with space again the same daemon saves all {len(fits)} files that fit")
    check_held_space(c, mnt, "after")


def main():
    if os.geteuid() != 0:
        print("mounting the small file system needs root")
        sys.exit(77)
    codes = flag_codes()
    with session_daemon() as (bus, _), small_tmpfs("128k") as mnt:
        c = Client(bus.address)
        c.subscribe()
        fill_up(c, mnt, codes)
        large_file_when_full(c, mnt)
        overwrite_when_full(c, mnt, codes, fsync=False)
        overwrite_when_full(c, mnt, codes, fsync=True)
        space_again(c, mnt, codes)
        c.close()
    finish()


if __name__ == "__main__":
    main()
