#!/usr/bin/python3
"""The flags job over HTTPS through the real asyncd: nginx with a certificate from a test CA, HTTP/2
offered by ALPN. The daemon runs in a private mount namespace whose /etc/ssl/certs holds only the
test CA, so it trusts exactly what a system with that CA installed would trust. A server with a
self-signed certificate and one whose certificate names another host must fail every task with
the TLS reason, and leave no file behind.

Needs root (mount namespace) and openssl; skipped (77) otherwise."""

import filecmp
import os
import shutil
import sys
import socket
import tempfile
import time

from asyncd_test import Bus, Client, Daemon, check, env, finish, flag_codes, temporary_files
from gi.repository import GLib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "servers"))
from nginx import start_nginx  # noqa: E402
from testca import TestCA, available, trusting  # noqa: E402

UNKNOWN = ["xx", "qq", "zz"]


def u(v):
    return GLib.Variant("u", v)


def run_job(bus, tasks, out, concurrency, **options):
    c = Client(bus.address)
    c.subscribe()
    _, path = c.submit(tasks, out, {"concurrency": u(concurrency),
                                    **{k: GLib.Variant("t", v) for k, v in options.items()}})
    finished = c.pump(lambda: c.job_signals(path, "Finished"))
    results = {r[1]: r for r in c.completed_results(path)}
    c.close()
    return finished, results


def main():
    why = available()
    if why:
        print(why, file=sys.stderr)
        sys.exit(77)
    fixtures = env("ASYNCD_FIXTURES")
    work = tempfile.mkdtemp(prefix="asyncd-https-")
    ca = TestCA(work)
    certificates = {"good": ca.issue("good", "IP:127.0.0.1,DNS:localhost"),
                    "other-host": ca.issue("other-host", "DNS:downloads.example.org"),
                    "self-signed": ca.self_signed("self-signed", "IP:127.0.0.1")}
    servers = {name: start_nginx(fixtures, tls=tls, access_log=True) for name, tls in certificates.items()}
    bus = Bus("session")
    daemon = Daemon(bus, wrapper=trusting(ca.store()))
    try:
        run(bus, servers, fixtures, work)
    finally:
        check(daemon.stop() == 0, "asyncd exits 0 on SIGTERM")
        bus.stop()
        for s in servers.values():
            s.stop()
        shutil.rmtree(work, ignore_errors=True)
    finish()


def run(bus, servers, fixtures, work):
    codes = flag_codes() + UNKNOWN
    good = servers["good"]
    out = os.path.join(work, "flags")
    os.mkdir(out)
    finished, results = run_job(bus, [(f"{good.url}/flags/{c}/{c}.gif", "") for c in codes], out, 20)
    check(finished, f"flags job over {good.url}: Finished arrives")
    check(sorted(results) == list(range(len(codes))), "every task exactly one result")
    ok = [results.get(i) for i in range(194)]
    check(all(r and r[2] == "ok" and r[3] == 200 for r in ok), "194 flags ok with HTTP 200 over TLS")
    check(all(results.get(194 + i, ("",) * 7)[2] == "not_found" for i in range(3)), "3 unknown codes not_found")
    check(all(filecmp.cmp(os.path.join(fixtures, "flags", c, f"{c}.gif"), os.path.join(out, f"{c}.gif"),
                          shallow=False) for c in codes[:194]), "194 files byte-identical to the fixtures")
    check(sorted(os.listdir(out)) == sorted(f"{c}.gif" for c in codes[:194]), "no other file, no temporary file")

    logged = [r for r in good.requests() if r[3].startswith("/flags/")]
    protocols = sorted({r[0] for r in logged})
    check(len(logged) == len(codes) and protocols == ["HTTP/2.0"],
          f"nginx served all {len(codes)} requests over HTTP/2 (logged {len(logged)}, protocols {protocols})")
    # The job's first transfer connects alone; the others find its HTTP/2 connection and share it
    # (without that probe: 20 connections, one per slot).
    connections = len({r[2] for r in logged})
    check(connections <= 2, f"HTTP/2 streams share the connection: {len(logged)} requests on "
          f"{connections} connection(s)")

    # A first host that never answers the TLS handshake holds the others back for a second only.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        stalled = f"https://127.0.0.1:{silent.getsockname()[1]}/flags/ad/ad.gif"
        out = os.path.join(work, "stalled-first")
        os.mkdir(out)
        tasks = [(stalled, "stalled.gif")] + [(f"{good.url}/flags/{c}/{c}.gif", "") for c in codes[:50]]
        finished, results = run_job(bus, tasks, out, 20, timeout_usec=6_000_000)
    check(finished and results.get(0, ("",) * 7)[2] == "error" and
          all(results.get(i, ("",) * 7)[2] == "ok" for i in range(1, 51)),
          "first task on a silent host: it times out, the other 50 are ok")
    seq = results[0][0] if 0 in results else None
    check(seq == 50, f"the 50 finished before the silent host's task gave up (its result was number "
          f"{seq + 1 if seq is not None else '-'} of 51)")

    for name, reason in (("self-signed", "certificate"), ("other-host", "127.0.0.1")):
        srv = servers[name]
        out = os.path.join(work, name)
        os.mkdir(out)
        tasks = [(f"{srv.url}/flags/{c}/{c}.gif", f"{c}-{k}.gif") for k in range(2) for c in codes[:194]]
        start = time.monotonic()
        finished, results = run_job(bus, tasks, out, 20)
        took = time.monotonic() - start
        errors = [results.get(i) for i in range(len(tasks))]
        check(finished and all(r and r[2] == "error" for r in errors),
              f"{name} certificate: all {len(tasks)} tasks are errors")
        # 20 handshakes at a time: 1-2 s here (3-4 under ASan). One at a time, as with
        # CURLOPT_PIPEWAIT in libcurl 7.88 (transfers queued behind the pending connection):
        # 0.1-0.2 s per task, 40-70 s for these.
        check(took < 15, f"{name} certificate: the tasks fail side by side, not one handshake at a time "
              f"({took:.1f} s)")
        messages = sorted({r[6] for r in errors if r})
        check(all(reason in m and ("SSL" in m or "certificate" in m) for m in messages),
              f"{name} certificate: the error says why: {messages}")
        check(os.listdir(out) == [] and temporary_files(out) == [], f"{name} certificate: no file written")
        check(not [r for r in srv.requests() if r[3].startswith("/flags/")],
              f"{name} certificate: no request reached the server")


if __name__ == "__main__":
    main()
