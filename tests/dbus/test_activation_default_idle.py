#!/usr/bin/python3
"""The idle exit a bus-activated daemon gets without --exit-idle-time: dbus-daemon starts it with
DBUS_STARTER_BUS_TYPE set, and it exits after 30 s without a job or a call; a daemon started any
other way runs until it is stopped (test_activation.py sets the idle time to 1 s)."""

import time

from asyncd_test import MANAGER, MANAGER_PATH, NAME, Bus, Client, alive, check, env, finish


def main():
    bus = Bus("session", service_exec=f"{env('ASYNCD_BIN')} --user")
    try:
        c = Client(bus.address)
        c.call(MANAGER_PATH, MANAGER, "ListJobs", reply="(a(tossuuuuu))")
        called = time.monotonic()
        pid = c.daemon_pid()
        c.pump(lambda: not alive(pid), 25)
        check(alive(pid), "25 s after the call that activated it, the daemon still runs")
        c.pump(lambda: not alive(pid), 20)
        gone = time.monotonic() - called
        state = "still runs" if alive(pid) else "exited"
        check(state == "exited" and 29 < gone < 40, f"it {state} {gone:.1f} s after that call (default 30 s)")
        check(not c.name_has_owner(NAME), "and io.asyncd1 has no owner")
        c.close()
    finally:
        bus.stop()
    finish()


if __name__ == "__main__":
    main()
