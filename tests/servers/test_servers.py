#!/usr/bin/env python3
"""Self-test of the asyncd test servers: proves with curl that fault-server.py,
nginx.py and with-servers.py do what their docstrings promise.

Run: python3 tests/servers/test_servers.py   (exit status 0 = all passed)

The process makes itself a child subreaper, so any server that outlives its
owner is re-parented here and caught by the final "no leaked processes" check.
"""

import ctypes
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "fixtures"))
FLAGS = os.path.join(ROOT, "flags")
FAULT = os.path.join(HERE, "fault-server.py")
WITH = os.path.join(HERE, "with-servers.py")
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import nginx  # noqa: E402

with open(os.path.join(FLAGS, "country_codes.txt")) as f:
    CCS = f.read().lower().split()
TMP = tempfile.mkdtemp(prefix="asyncd-test-servers-")
WRAPPER_ENV = dict(os.environ, TMPDIR=TMP)   # the wrappers' temp dirs go here too
failures = []


def check(cond, what, detail=""):
    print(f"{'ok  ' if cond else 'FAIL'} {what}" + (f"  [{detail}]" if not cond and detail else ""))
    if not cond:
        failures.append(what)
    return cond


def curl(*args, timeout=30):
    """Run curl; return (exit status, list of per-transfer %{json} dicts)."""
    p = subprocess.run(["curl", "-sS", "-w", "%{json}\n", *args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    lines = [ln for ln in p.stdout.decode().splitlines() if ln.startswith("{")]
    return p.returncode, [json.loads(ln) for ln in lines]


def get(url, *args):
    """One transfer to a temp file: (curl exit status, info, body, headers)."""
    body, head = os.path.join(TMP, "body"), os.path.join(TMP, "head")
    rc, infos = curl("-o", body, "-D", head, *args, url)
    data, headers = b"", ""       # curl creates no file for an empty reply
    if os.path.exists(body):
        with open(body, "rb") as f:
            data = f.read()
        os.unlink(body)
    if os.path.exists(head):
        with open(head, "rb") as f:
            headers = f.read().decode("latin-1")
        os.unlink(head)
    return rc, infos[-1] if infos else {}, data, headers


def pattern(n):
    return bytes((i * 31 + 7) % 256 for i in range(n))


def fixture(cc):
    with open(os.path.join(FLAGS, cc, f"{cc}.gif"), "rb") as f:
        return f.read()


def port_closed(port, wait=3.0):
    deadline = time.monotonic() + wait
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
        except OSError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def poll(fn, wait=3.0):
    """fn() until it returns something true, or the last value after wait s."""
    deadline = time.monotonic() + wait
    while not (v := fn()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return v


def read_log(path):
    with open(path) as f:
        return [json.loads(ln) for ln in f]


def log_entry(path, target):
    return poll(lambda: next((r for r in read_log(path) if r["path"] == target), None))


class Fault:
    """A fault-server.py child for the tests (stderr kept to look for noise)."""

    def __init__(self, *args):
        self.log = os.path.join(TMP, f"fault-{len(os.listdir(TMP))}.log")
        self.err = self.log + ".stderr"
        with open(self.err, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, FAULT, "--root", ROOT, "--log", self.log, *args],
                stdout=subprocess.PIPE, stderr=err)
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"

    def stderr(self):
        with open(self.err) as f:
            return f.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(5)


def fetch_all_flags(base, *extra):
    """All 194 flags, sequentially in one curl (so keep-alive applies)."""
    args = []
    for cc in CCS:
        args += ["-o", os.path.join(TMP, "all", f"{cc}.gif"), f"{base}/flags/{cc}/{cc}.gif"]
    rc, infos = curl("--create-dirs", *extra, *args, timeout=60)
    same = all(open(os.path.join(TMP, "all", f"{cc}.gif"), "rb").read() == fixture(cc)
               for cc in CCS)
    return rc, infos, same


# --------------------------------------------------------------------------

def test_fault():
    fs = Fault()
    try:
        fault_behaviours(fs)
        fault_concurrency(fs)
    finally:
        if fs.proc.poll() is None:
            fs.stop()


def fault_behaviours(fs):
    u = fs.url
    rc, infos, same = fetch_all_flags(u)
    check(rc == 0 and len(infos) == 194 and same,
          "fault: all 194 flags served byte-identical", f"rc={rc}")
    check(sum(i["num_connects"] for i in infos) == 1,
          "fault: keep-alive, 194 requests on 1 connection",
          str(sum(i["num_connects"] for i in infos)))

    rc, info, body, hdr = get(u + "/flags/br/br.gif", "-I")
    check(info["http_code"] == 200 and f"Content-Length: {len(fixture('br'))}" in hdr
          and "Content-Type: image/gif" in hdr, "fault: HEAD gives length and type")
    rc, info, body, _ = get(u + "/flags/zz/zz.gif")
    check(info["http_code"] == 404, "fault: missing file -> 404", info["http_code"])
    codes = [get(u + p, "--path-as-is")[1]["http_code"]
             for p in ("/flags/../../../etc/passwd", "/delay/0//etc/passwd")]
    check(codes == [404, 404], "fault: '..' or '//' cannot leave the root", str(codes))

    for code, phrase in [(503, "Service Unavailable"), (418, "I'm a Teapot"),
                         (500, "Internal Server Error"), (429, "Too Many Requests")]:
        rc, info, body, hdr = get(f"{u}/status/{code}/flags/br/br.gif")
        check(hdr.startswith(f"HTTP/1.1 {code} {phrase}\r\n") and body,
              f"fault: /status/{code} -> '{code} {phrase}'", hdr.split("\r\n")[0])

    rc, info, body, hdr = get(f"{u}/reason/42616420ff205468696e67/status/503/x")
    check(hdr.startswith("HTTP/1.1 503 Bad \xff Thing\r\n"),
          "fault: /reason/<hex> -> those bytes as the reason phrase", hdr.split("\r\n")[0])
    rc, info, body, hdr = get(f"{u}/status-line/{b'HTTP/1.1  503 Busy'.hex()}/header/{b'X-A: 1'.hex()}"
                              f"/header/{b'X-B: 2'.hex()}/status/503/x")
    check(hdr.startswith("HTTP/1.1  503 Busy\r\n") and "\r\nX-A: 1\r\nX-B: 2\r\n\r\n" in hdr
          and info["http_code"] == 503,
          "fault: /status-line/<hex>, /header/<hex> -> that status line, those header lines last", hdr)

    rc, info, body, _ = get(u + "/reset/flags/br/br.gif")
    check(rc == 56 and info["http_code"] == 0 and not body,
          "fault: /reset -> RST before any header, curl exit 56", f"rc={rc}")
    rc, info, body, hdr = get(u + "/truncate/100/flags/br/br.gif")
    check(rc == 18 and body == fixture("br")[:100]
          and f"Content-Length: {len(fixture('br'))}" in hdr,
          "fault: /truncate/100 -> real Content-Length, 100 bytes, curl exit 18",
          f"rc={rc} got={len(body)}")
    rc, info, body, _ = get(u + "/truncate/100/chunked/1000")
    check(rc == 18 and len(body) == 100, "fault: /truncate on chunked -> curl exit 18",
          f"rc={rc}")

    rc, info, body, _ = get(u + "/trickle/20/bytes/640")
    check(rc == 0 and body == pattern(640) and info["time_total"] >= 9 * 0.020,
          "fault: /trickle/20 on 640 bytes = 10 pieces, >= 180 ms",
          f"{info['time_total']:.3f}s")
    rc, info, body, _ = get(u + "/delay/300/flags/br/br.gif")
    check(rc == 0 and body == fixture("br") and info["time_total"] >= 0.3,
          "fault: /delay/300 waits >= 0.3 s then serves", f"{info['time_total']:.3f}s")

    rc, info, body, _ = get(u + "/redirect/3/flags/br/br.gif", "-L")
    check(rc == 0 and info["num_redirects"] == 3 and body == fixture("br"),
          "fault: /redirect/3 -> 3 hops, then the file", f"rc={rc}")
    rc, info, body, hdr = get(u + "/redirect-file/flags/br/br.gif")
    check(info["http_code"] == 302 and "Location: file:///etc/passwd" in hdr,
          "fault: /redirect-file -> 302 Location: file:///etc/passwd")
    rc, info, body, _ = get(u + "/redirect-file/flags/br/br.gif", "-L")
    check(rc == 1, "fault: following it -> curl exit 1 (protocol refused)", f"rc={rc}")
    rc, info, body, _ = get(u + "/redirect-loop/flags/br/br.gif", "-L", "--max-redirs", "5")
    check(rc == 47, "fault: /redirect-loop -> curl exit 47 (too many redirects)", f"rc={rc}")

    n = 1_000_003
    rc, info, body, hdr = get(f"{u}/bytes/{n}")
    check(rc == 0 and body == pattern(n) and f"Content-Length: {n}" in hdr,
          "fault: /bytes/N -> N pattern bytes with Content-Length")
    rc, info, body, hdr = get(f"{u}/chunked/{n}")
    check(rc == 0 and body == pattern(n) and "Transfer-Encoding: chunked" in hdr
          and "Content-Length" not in hdr,
          "fault: /chunked/N -> same bytes, chunked, no Content-Length")
    rc, info, body, _ = get(f"{u}/bytes/{n}", "--max-filesize", "1000")
    check(rc == 63, "fault: curl --max-filesize refuses /bytes early (exit 63)", f"rc={rc}")

    # Clients going away mid-response: timeout during a trickle, and a reader
    # that stops reading a big body.
    rc, info, body, _ = get(u + "/trickle/50/bytes/100000", "--max-time", "0.3")
    check(rc == 28, "fault: client timeout during /trickle (curl exit 28)", f"rc={rc}")
    e = poll(lambda: (r := log_entry(fs.log, "/trickle/50/bytes/100000")) and r["aborted"] and r)
    check(bool(e), "fault: log marks the dropped transfer aborted", str(e))
    subprocess.run(f"curl -s {u}/bytes/50000000 | head -c 1000 >/dev/null", shell=True)

    # Log contents.
    want = {"/flags/br/br.gif": ("serve", 200), "/flags/zz/zz.gif": ("notfound", 404),
            "/reset/flags/br/br.gif": ("reset", None),
            "/truncate/100/flags/br/br.gif": ("truncate", 200),
            "/status/503/flags/br/br.gif": ("status", 503),
            "/redirect/3/flags/br/br.gif": ("redirect", 302),
            "/redirect/0/flags/br/br.gif": ("redirect", 200),
            "/trickle/20/bytes/640": ("trickle+bytes", 200),
            "/delay/300/flags/br/br.gif": ("delay", 200)}
    for target, (action, status) in want.items():
        r = log_entry(fs.log, target)
        check(r and r["action"] == action and r["status"] == status,
              f"fault: log {target} -> {action} {status}", str(r))
    r = log_entry(fs.log, "/delay/300/flags/br/br.gif")
    check(r and r["delay"] == 0.3, "fault: log records the delay", str(r))
    check(fs.proc.poll() is None, "fault: still serving after all that")


def fault_concurrency(fs):
    u = fs.url
    for n in (20, 200):
        curl(u + "/_stats/reset", "-o", os.devnull)
        urls = [f"{u}/delay/1000/flags/{CCS[i % 194]}/{CCS[i % 194]}.gif?{i}"
                for i in range(n)]
        rc, infos = curl("-Z", "--parallel-immediate", "--parallel-max", str(n),
                         *sum((["-o", os.devnull, x] for x in urls), []))
        ok = rc == 0 and len(infos) == n and all(i["http_code"] == 200 for i in infos)
        check(ok, f"fault: {n} parallel delayed requests all answered", f"rc={rc}")

        def stats():
            s = json.loads(subprocess.run(["curl", "-s", u + "/_stats"],
                                          stdout=subprocess.PIPE).stdout)
            return s if s["current"] == 0 else None
        s = poll(stats)
        check(s == {"requests": n, "max_concurrent": n, "current": 0},
              f"fault: /_stats shows max_concurrent == {n}", str(s))
    err = fs.stderr()
    check(err == "", "fault: nothing on stderr (no tracebacks)", err[:300])
    port = fs.port
    t = time.monotonic()
    rc = fs.stop()
    check(rc == 0 and time.monotonic() - t < 2 and port_closed(port),
          "fault: SIGTERM -> exit 0 promptly, port closed", f"rc={rc}")


def plan_by_formula(seed, target, p, q, error_delay, delay=0.0):
    d = hashlib.sha256(f"{seed}:{target}".encode()).digest()
    u = int.from_bytes(d[:8], "big") / 2**64
    if u < p:
        return 500 + d[16] % 4, delay
    return 200, delay + (error_delay if u < p + q else 0)


def test_fault_error_mode():
    args = ["--error-rate", "0.25", "--seed", "7", "--error-delay", "0.1"]
    fs = Fault(*args)
    targets = [f"/flags/{cc}/{cc}.gif" for cc in CCS]
    rc, infos = curl("-Z", "--parallel-max", "50",
                     *sum((["-o", os.devnull, fs.url + t] for t in targets), []))
    got = {i["url"][len(fs.url):]: i["http_code"] for i in infos}
    expect = {t: plan_by_formula(7, t, 0.25, 0.5, 0.1) for t in targets}
    check(got == {t: e[0] for t, e in expect.items()},
          "fault ERROR: statuses are exactly the documented hash's prediction")
    errors = sum(1 for c in got.values() if c != 200)
    codes = sorted({c for c in got.values() if c != 200})
    check(25 <= errors <= 75 and codes == [500, 501, 502, 503],
          f"fault ERROR: {errors}/194 errors (P=0.25), codes {codes}")
    log = {r["path"]: r for r in poll(lambda: len(read_log(fs.log)) == 194
                                      and read_log(fs.log))}
    delayed = [t for t in targets if log[t]["action"] == "delay"]
    check(all(log[t]["delay"] == expect[t][1] for t in targets) and 60 <= len(delayed) <= 130,
          f"fault ERROR: {len(delayed)}/194 more delayed 0.1 s (Q=0.5), as predicted")
    out = subprocess.run([sys.executable, FAULT, *args, "--explain", *targets],
                         stdout=subprocess.PIPE, check=True).stdout.decode()
    explained = [json.loads(ln) for ln in out.splitlines()]
    check(all((e["status"] or 200) == got[e["path"]] for e in explained),
          "fault ERROR: --explain agrees with what was served")
    fs.stop()

    fs = Fault("--delay", "0.2", "--delay-max", "0.4")
    rc, info, body, _ = get(fs.url + "/flags/br/br.gif")
    r = log_entry(fs.log, "/flags/br/br.gif")
    check(rc == 0 and body == fixture("br") and 0.2 <= r["delay"] < 0.4
          and info["time_total"] >= r["delay"],
          "fault DELAY: --delay 0.2 --delay-max 0.4 waits within [0.2, 0.4)",
          f"{info['time_total']:.3f}s")
    fs.stop()


def test_nginx():
    srv = nginx.start_nginx(ROOT)
    rc, infos, same = fetch_all_flags(srv.url)
    check(rc == 0 and same, "nginx: all 194 flags byte-identical to the fixtures", f"rc={rc}")
    check(sum(i["num_connects"] for i in infos) == 1,
          "nginx: keep-alive, 194 requests on 1 connection")
    rc, info, body, hdr = get(srv.url + "/flags/br/br.gif")
    check(info["content_type"] == "image/gif" and "X-Asyncd-Nginx" in hdr,
          "nginx: image/gif, and our instance token")
    rc, info, body, _ = get(srv.url + "/flags/zz/zz.gif")
    check(info["http_code"] == 404, "nginx: missing file -> 404")
    master, tmp, port = srv.pid, srv.tmp, srv.port
    workers = [p for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == master]
    srv.stop()
    check(port_closed(port) and not os.path.exists(tmp) and not _alive(master)
          and not any(_alive(int(w)) for w in workers),
          "nginx: stop() ends master and worker, removes its temp dir")

    # Port taken between pick and bind: held by a listener, must be skipped.
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    picks = iter([busy.getsockname()[1]])
    real = nginx.free_port
    nginx.free_port = lambda: next(picks, None) or real()
    t = time.monotonic()
    try:
        srv = nginx.start_nginx(ROOT)
    finally:
        nginx.free_port = real
    took = time.monotonic() - t
    check(srv.port != busy.getsockname()[1] and get(srv.url + "/flags/br/br.gif")[1]["http_code"] == 200,
          f"nginx: a taken port is detected and another tried ({took:.2f}s)")
    srv.stop()
    busy.close()

    # CLI: prints the URL, serves, stops on SIGTERM.
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "nginx.py"), "--root", ROOT],
                         stdout=subprocess.PIPE)
    url = p.stdout.readline().decode().strip()
    ok = get(url + "/flags/br/br.gif")[2] == fixture("br")
    p.send_signal(signal.SIGTERM)
    check(ok and p.wait(5) == 0 and port_closed(int(url.rsplit(":", 1)[1])),
          f"nginx: CLI prints {url.split(':')[0]}://127.0.0.1:PORT, serves, exits 0 on SIGTERM")


CHILD_CHECK = r"""
import json, os, subprocess, time
e = os.environ
def code(url):
    return subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url],
                          stdout=subprocess.PIPE).stdout.decode()
t = time.monotonic()
d = code(e["ASYNCD_TEST_FAULT_DELAY_URL"] + "/flags/br/br.gif")
slow = time.monotonic() - t
print(json.dumps({
    "env": {k: v for k, v in e.items() if k.startswith("ASYNCD_TEST_")},
    "nginx": code(e["ASYNCD_TEST_NGINX_URL"] + "/flags/br/br.gif"),
    "delay": d, "slow": slow,
    "status": code(e["ASYNCD_TEST_FAULT_ERROR_URL"] + "/status/503/x"),
    "logs": all(os.path.exists(e[f"ASYNCD_TEST_FAULT_{n}_LOG"]) for n in ("DELAY", "ERROR")),
}))
raise SystemExit(3)
"""


def test_with_servers():
    p = subprocess.run(
        [sys.executable, WITH, "--nginx", ROOT,
         "--fault", f"DELAY:{ROOT} --delay 0.2",
         "--fault", f"ERROR:{ROOT} --error-rate 0.25 --seed 1",
         "--work-dir", os.path.join(TMP, "ws"), "--", sys.executable, "-c", CHILD_CHECK],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
        env=WRAPPER_ENV)
    r = json.loads(p.stdout)
    names = sorted(r["env"])
    check(names == ["ASYNCD_TEST_FAULT_DELAY_LOG", "ASYNCD_TEST_FAULT_DELAY_URL",
                    "ASYNCD_TEST_FAULT_ERROR_LOG", "ASYNCD_TEST_FAULT_ERROR_URL",
                    "ASYNCD_TEST_NGINX_URL"], "with-servers: exports the five variables",
          str(names))
    check(r["nginx"] == "200" and r["delay"] == "200" and r["slow"] >= 0.2
          and r["status"] == "503" and r["logs"],
          "with-servers: nginx, DELAY and ERROR servers all answer as configured", str(r))
    check(p.returncode == 3, "with-servers: exits with CMD's status (3)", str(p.returncode))
    ports = [int(v.rsplit(":", 1)[1]) for k, v in r["env"].items() if k.endswith("_URL")]
    check(all(port_closed(x) for x in ports), "with-servers: every server stopped afterwards")

    p = subprocess.run([sys.executable, WITH, "--fault", "BAD:/nonexistent", "--",
                        "touch", os.path.join(TMP, "ran")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
        env=WRAPPER_ENV)
    err = p.stderr.decode()
    check(p.returncode == 99 and "BAD failed to start" in err
          and not os.path.exists(os.path.join(TMP, "ran")),
          "with-servers: a server that cannot start -> exit 99, clear message, CMD not run",
          f"{p.returncode} {err!r}")
    p = subprocess.run([sys.executable, WITH, "--", "sh", "-c", "kill -TERM $$"],
                       timeout=30, env=WRAPPER_ENV, stderr=subprocess.DEVNULL)
    check(p.returncode == 143, "with-servers: CMD killed by SIGTERM -> 143", str(p.returncode))

    # Wrapper SIGTERMed (then SIGKILLed) while CMD runs: nothing may survive.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        mark = os.path.join(TMP, f"up-{sig}")
        p = subprocess.Popen(
            [sys.executable, WITH, "--nginx", ROOT, "--fault", f"A:{ROOT}", "--", "sh", "-c",
             f'echo "$ASYNCD_TEST_NGINX_URL $ASYNCD_TEST_FAULT_A_URL" > {mark}; exec sleep 30'],
            start_new_session=True, stderr=subprocess.DEVNULL, env=WRAPPER_ENV)
        urls = poll(lambda: os.path.exists(mark) and open(mark).read().split(), wait=10)
        t = time.monotonic()
        p.send_signal(sig)
        rc = p.wait(10)
        if sig == signal.SIGKILL:
            os.killpg(p.pid, signal.SIGKILL)   # the orphaned CMD, as meson would
        ports = [int(x.rsplit(":", 1)[1]) for x in urls or []]
        check(bool(ports) and rc == (143 if sig == signal.SIGTERM else -9)
              and all(port_closed(x) for x in ports) and time.monotonic() - t < 5,
              f"with-servers: wrapper got {signal.Signals(sig).name} -> servers gone "
              f"({time.monotonic() - t:.2f}s)", f"rc={rc}")


# --------------------------------------------------------------------------

def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def leftovers():
    """Our live descendants (orphans come back to us: we are a subreaper)."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:   # reap orphans that died here
            pass
    except ChildProcessError:
        pass
    kids, found = {os.getpid()}, True
    while found:
        found = False
        for p in os.listdir("/proc"):
            if p.isdigit() and int(p) not in kids and _ppid(p) in kids and _alive(int(p)):
                kids.add(int(p))
                found = True
    return kids - {os.getpid()}


def main():
    ctypes.CDLL(None).prctl(36, 1)   # PR_SET_CHILD_SUBREAPER
    start = time.monotonic()
    for test in (test_fault, test_fault_error_mode, test_nginx, test_with_servers):
        try:
            test()
        except Exception as e:   # a crashed test is a failed test, not a crash
            traceback.print_exc()
            check(False, f"{test.__name__} raised {type(e).__name__}: {e}")
    left = poll(lambda: not leftovers(), wait=3) or leftovers()
    check(left is True, "no leaked processes", str(left))
    subprocess.run(["rm", "-rf", TMP])
    print(f"\n{'FAILED: ' + str(len(failures)) if failures else 'all passed'} "
          f"({time.monotonic() - start:.1f}s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
