#!/usr/bin/python3
"""File systems where a download cannot be written the usual way.

FAT (fusefat, a FUSE implementation of FAT, on an image file): like vfat and exFAT it has neither
unnamed files (O_TMPFILE) nor hard links, and like a FUSE file system without rename2 it cannot
refuse to replace a file in a rename (RENAME_NOREPLACE): files are written under a hidden name and
renamed into place, whole, and byte-identical to the source, small and large; an existing file is
not replaced (the task says "NAME already exists" and the file keeps its content) unless the job
asks for overwrite; a cancelled job leaves no hidden file behind. (A hard link into place made
every task fail with "cannot link NAME into place: Operation not permitted".)

A read-only file system: every task fails with the file's name and the system's reason, nothing
appears, a large body is not downloaded to the end for nothing, and the same daemon then saves
files in a writable directory.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from gi.repository import GLib

from asyncd_test import (JOB, Client, check, dir_contents, env, files_being_written, finish, flag_bytes,
                         flag_codes, session_daemon)

EROFS = "Read-only file system"


def pattern(n):
    """The body of the fault server's /bytes/<n>."""
    return bytes((i * 31 + 7) % 256 for i in range(256)) * (n // 256) + bytes((i * 31 + 7) % 256 for i in range(n % 256))


@contextlib.contextmanager
def fat_image(size_mib=64):
    """A FAT file system on an image file, mounted read-write with fusefat."""
    for tool in ("mkfs.vfat", "fusefat"):
        if not shutil.which(tool):
            print(f"{tool} is not installed (scripts/install-deps.sh installs it)")
            sys.exit(77)
    work = tempfile.mkdtemp(prefix="asyncd-fat-")
    image, mnt = os.path.join(work, "fat.img"), os.path.join(work, "mnt")
    os.mkdir(mnt)
    with open(image, "wb") as f:
        f.truncate(size_mib * 1024 * 1024)
    subprocess.run(["mkfs.vfat", "-F", "32", image], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["fusefat", "-o", "rw+", image, mnt], check=True, stdout=subprocess.DEVNULL)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", mnt], check=True)


@contextlib.contextmanager
def read_only_tmpfs():
    mnt = tempfile.mkdtemp(prefix="asyncd-ro-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m,mode=0755", "tmpfs", mnt], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "--lazy", mnt], check=True)


def run_job(c, tasks, directory, options=None, what=""):
    opts = {k: GLib.Variant("b", v) if isinstance(v, bool) else GLib.Variant("u", v)
            for k, v in (options or {}).items()}
    job_id, path = c.submit(tasks, directory, opts)
    check(c.pump(lambda: c.job_signals(path, "Finished"), 60), f"{what}: job {job_id} finishes")
    results = c.completed_results(path)
    return {tasks[r[1]][1] or tasks[r[1]][0].rsplit("/", 1)[1]: r for r in results}, c.job_signals(path, "Finished")[0]


def fat(c):
    nginx = env("ASYNCD_TEST_NGINX_URL")
    plain = env("ASYNCD_TEST_FAULT_PLAIN_URL")
    codes = flag_codes()[:40]
    big = 3 * 1024 * 1024 + 17          # written in pieces to the hidden file before it is renamed
    with fat_image() as mnt:
        probe = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.open(".", os.O_TMPFILE | os.O_WRONLY, dir_fd=probe)
            unnamed = True
        except OSError:
            unnamed = False
        os.close(probe)
        check(not unnamed, "FAT has no unnamed files (O_TMPFILE)")

        tasks = [(f"{nginx}/flags/{cc}/{cc}.gif", "") for cc in codes] + [(f"{plain}/bytes/{big}", "big.bin")]
        by_name, finished = run_job(c, tasks, mnt, {"concurrency": 8}, "FAT")
        files = dir_contents(mnt)
        bad = {n: r[6] for n, r in by_name.items() if r[2] != "ok"}
        check(finished[:2] == ("done", len(tasks)) and not bad,
              f"FAT: all {len(tasks)} files saved (failed: {dict(list(bad.items())[:3])})")
        check(sorted(files) == sorted([f"{cc}.gif" for cc in codes] + ["big.bin"]) and
              all(files.get(f"{cc}.gif") == flag_bytes(cc) for cc in codes) and files.get("big.bin") == pattern(big),
              f"FAT: exactly the files, byte-identical, and no hidden file left ({len(files)} files)")

        # The same names again, from other flags: an existing file stays as it was.
        shifted = [(f"{nginx}/flags/{codes[(i + 1) % len(codes)]}/{codes[(i + 1) % len(codes)]}.gif", f"{cc}.gif")
                   for i, cc in enumerate(codes)]
        by_name, finished = run_job(c, shifted, mnt, {"concurrency": 8}, "FAT, existing files")
        check(finished[:4] == ("done", 0, 0, len(codes)) and
              all(by_name[f"{cc}.gif"][6] == f"{cc}.gif already exists" for cc in codes),
              f"FAT: an existing file is an error that names it ({by_name[f'{codes[0]}.gif'][6]!r})")
        check(dir_contents(mnt) == files, "FAT: the existing files are unchanged, nothing else appeared")

        by_name, finished = run_job(c, shifted, mnt, {"concurrency": 8, "overwrite": True}, "FAT, overwrite")
        after = dir_contents(mnt)
        check(finished[:2] == ("done", len(codes)) and
              all(after[f"{cc}.gif"] == flag_bytes(codes[(i + 1) % len(codes)]) for i, cc in enumerate(codes)) and
              sorted(after) == sorted(files),
              "FAT: with overwrite each file is replaced whole, and no hidden file is left")

        # Cancelled mid-body: the hidden file that was being written goes too.
        job_id, path = c.submit([(f"{plain}/trickle/50/piece/65536/bytes/{8 * 1024 * 1024}", "slow.bin")], mnt)
        pid = c.daemon_pid()
        check(c.pump(lambda: any(".#asyncd." in f for f in files_being_written(pid, mnt)), 20),
              f"FAT: a large download is written to a hidden file ({files_being_written(pid, mnt)})")
        c.call(path, JOB, "Cancel")
        check(c.pump(lambda: c.job_signals(path, "Finished"), 20) and
              c.job_signals(path, "Finished")[0][:5] == ("cancelled", 0, 0, 0, 1), "FAT: cancelled mid-body")
        check(sorted(os.listdir(mnt)) == sorted(files) and files_being_written(pid, mnt) == [],
              "FAT: the cancelled task left no hidden file and holds none open")


def fault_log_records(prefix):
    with open(env("ASYNCD_TEST_FAULT_PLAIN_LOG")) as f:
        return [r for r in map(json.loads, f) if r["path"].startswith(prefix)]


def read_only(c):
    nginx = env("ASYNCD_TEST_NGINX_URL")
    plain = env("ASYNCD_TEST_FAULT_PLAIN_URL")
    codes = flag_codes()[:20]
    big = 64 * 1024 * 1024
    marker = f"/bytes/{big}?ro={os.getpid()}-{time.monotonic_ns()}"
    with read_only_tmpfs() as mnt:
        tasks = [(f"{nginx}/flags/{cc}/{cc}.gif", "") for cc in codes] + [(f"{plain}{marker}", "big.bin")]
        by_name, finished = run_job(c, tasks, mnt, {"concurrency": 4}, "read-only")
        reasons = {n: r[6] for n, r in by_name.items()}
        check(finished[:4] == ("done", 0, 0, len(tasks)) and
              all(reasons[n] == f"cannot create a temporary file for {n}: {EROFS}" for n in reasons),
              f"read-only: every task fails naming its file and the reason ({reasons.get('big.bin')!r})")
        check(all(r[3] == 200 and r[4] == 0 and r[5] == "" for r in by_name.values()),
              "read-only: http_code 200, no bytes, no file in the results")
        check(os.listdir(mnt) == [] and files_being_written(c.daemon_pid(), mnt) == [], "read-only: nothing there")
        # The body did not fit anywhere: the daemon stopped reading it once its first piece could not be
        # written, rather than take all 64 MiB.
        deadline = time.monotonic() + 10
        while not (rec := fault_log_records(marker)) and time.monotonic() < deadline:
            time.sleep(0.05)
        check(len(rec) == 1 and rec[0]["aborted"] and rec[0]["bytes"] < big // 4,
              f"read-only: the large download was stopped early ({rec[0]['bytes'] if rec else '?'} of {big} bytes sent)")

    out = tempfile.mkdtemp(prefix="asyncd-rw-")
    by_name, finished = run_job(c, [(f"{nginx}/flags/{cc}/{cc}.gif", "") for cc in codes], out, {}, "writable")
    check(finished[:2] == ("done", len(codes)) and all(dir_contents(out)[f"{cc}.gif"] == flag_bytes(cc) for cc in codes),
          "then the same daemon saves every file in a writable directory")


def main():
    if os.geteuid() != 0:
        print("mounting file systems needs root")
        sys.exit(77)
    with session_daemon() as (bus, _):
        c = Client(bus.address)
        c.subscribe()
        fat(c)
        read_only(c)
        c.close()
    finish()


if __name__ == "__main__":
    main()
