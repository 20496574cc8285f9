#!/usr/bin/python3
"""Replies and signals stay within a bus's message limit (dbus-daemon's default, 32 MiB, is a
system bus's), whatever the clients send: a message over it makes the bus disconnect the daemon,
and every job is lost. A job's name, in ListJobs and GetManagedObjects, has a bounded length."""

import tempfile

from gi.repository import GLib

from asyncd_test import JOB, MANAGER, MANAGER_PATH, NAME, Client, check, dbus_error, env, finish, session_daemon

INVALID = "org.freedesktop.DBus.Error.InvalidArgs"
OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"


def main():
    with session_daemon() as (bus, daemon):
        job_names(bus)
    finish()


def list_jobs(c):
    return c.call(MANAGER_PATH, MANAGER, "ListJobs", reply="(a(tossuuuuu))")[0]


def managed_objects(c):
    return c.call(MANAGER_PATH, OBJECT_MANAGER, "GetManagedObjects", reply="(a{oa{sa{sv}}})")[0]


def job_names(bus):
    """Three jobs named with 12 MB each made ListJobs a 36 MB reply: the bus disconnected asyncd."""
    nginx = env("ASYNCD_TEST_NGINX_URL")
    out = tempfile.mkdtemp(prefix="asyncd-names-")
    c = Client(bus.address)
    longest = "é" * 127 + "n"
    job_id, path = c.submit([(f"{nginx}/flags/br/br.gif", "")], out, {"name": GLib.Variant("s", longest)})
    check(c.get_property(path, JOB, "Name") == longest, "a name of 255 bytes is taken")
    err, msg = dbus_error(lambda: c.submit([(f"{nginx}/flags/de/de.gif", "")], out,
                                           {"name": GLib.Variant("s", "n" * 256)}))
    check(err == INVALID and '"name" must be at most 255 bytes, not 256' in (msg or ""),
          f"a name of 256 bytes is refused: {err}: {msg}")
    big = "n" * (12 * 1024 * 1024)
    refused = 0
    for cc in ("fr", "it", "es"):
        err, _ = dbus_error(lambda: c.submit([(f"{nginx}/flags/{cc}/{cc}.gif", "")], out,
                                             {"name": GLib.Variant("s", big)}))
        refused += err == INVALID
    check(refused == 3, f"names of 12 MB are refused ({refused} of 3)")
    err, _ = dbus_error(lambda: list_jobs(c))
    err2, _ = dbus_error(lambda: managed_objects(c))
    check(err is None and err2 is None and c.name_has_owner(NAME),
          f"ListJobs and GetManagedObjects answer, asyncd stays on the bus ({err}, {err2})")
    c.close()


if __name__ == "__main__":
    main()
