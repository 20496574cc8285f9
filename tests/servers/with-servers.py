#!/usr/bin/env python3
"""Run a command while the asyncd test HTTP servers are up (the meson test wrapper).

Usage:
  with-servers.py [--nginx ROOT] [--fault SPEC]... [--work-dir DIR] -- CMD [ARG...]

  --nginx ROOT   serve ROOT with nginx (see nginx.py)
  --fault SPEC   start one fault-server.py (repeatable). SPEC is split like a
                 shell line: the first word is NAME:ROOT, the rest are
                 fault-server.py options, e.g.
                   --fault 'DELAY:/src/tests/fixtures --delay 0.5'
                   --fault 'ERROR:/src/tests/fixtures --error-rate 0.25 --seed 1'
                 NAME is [A-Za-z][A-Za-z0-9_]*, upper-cased in the variables.
                 --root, --port-file and --log are supplied by the wrapper.
  --work-dir DIR put logs here and keep them (default: a temp dir, removed
                 afterwards unless CMD fails; its path is printed then)

CMD runs with, in its environment:
  ASYNCD_TEST_NGINX_URL=http://127.0.0.1:PORT          (with --nginx)
  ASYNCD_TEST_FAULT_<NAME>_URL=http://127.0.0.1:PORT   (per --fault)
  ASYNCD_TEST_FAULT_<NAME>_LOG=<work dir>/fault-<name>.log (JSON lines)
URLs have no trailing slash: append e.g. /flags/br/br.gif. Relative ROOTs are
taken from the current directory (meson: pass absolute paths).

Exit status: CMD's (128+N if CMD died of signal N, or if the wrapper got
signal N); 99, meson's "hard error", if a server failed to start; 2 for a
usage error.

Cleanup: every server runs in its own process group, which is killed when
CMD ends, fails, or the wrapper gets SIGTERM/SIGINT/SIGHUP (forwarded to CMD;
CMD is SIGKILLed if still there 5 s later). Servers also get PR_SET_PDEATHSIG,
so even a SIGKILLed wrapper leaves none behind. CMD stays in the wrapper's
process group, so a group-wide kill (meson's timeout) reaches it directly.
"""

import argparse
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import nginx  # noqa: E402  (tests/servers/nginx.py)

FAULT_SERVER = os.path.join(HERE, "fault-server.py")
START_TIMEOUT = 10.0
SETUP_FAILED = 99
state = types.SimpleNamespace(cmd=None, signum=0)   # for the signal handler


class SetupError(Exception):
    pass


class Interrupted(Exception):
    pass


def parse_args(argv):
    i = argv.index("--") if "--" in argv else len(argv)
    p = argparse.ArgumentParser(
        usage="%(prog)s [--nginx ROOT] [--fault 'NAME:ROOT [ARGS]']... "
              "[--work-dir DIR] -- CMD [ARG...]",
        description="Run CMD with the asyncd test servers up (see docstring).")
    p.add_argument("--nginx", metavar="ROOT", help="serve ROOT with nginx")
    p.add_argument("--fault", metavar="SPEC", action="append", default=[],
                   help="'NAME:ROOT [fault-server.py options]' (repeatable)")
    p.add_argument("--work-dir", metavar="DIR",
                   help="where the logs go (kept); default: a temp dir")
    args = p.parse_args(argv[:i])
    args.cmd = argv[i + 1:]
    if not args.cmd:
        p.error("no command after --")
    faults = {}
    for spec in args.fault:
        words = shlex.split(spec)
        name, sep, root = words[0].partition(":") if words else ("", "", "")
        if not sep or not root or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            p.error(f"--fault {spec!r}: expected 'NAME:ROOT [fault-server args]'")
        if name.upper() in faults:
            p.error(f"--fault {name}: name used twice")
        faults[name.upper()] = (os.path.abspath(root), words[1:])
    args.faults = faults
    return args


class FaultServer:
    """fault-server.py NAME as a child; .url, .log, .proc, .stop()."""

    def __init__(self, name, root, extra, work):
        self.log = os.path.join(work, f"fault-{name.lower()}.log")
        port_file = os.path.join(work, f"fault-{name.lower()}.port")
        self.proc = subprocess.Popen(
            [sys.executable, FAULT_SERVER, "--root", root,
             "--port-file", port_file, "--log", self.log, *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=nginx.die_with_parent())
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                if os.path.exists(port_file):   # written once listening
                    with open(port_file) as f:
                        port = int(f.read())
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    self.url = f"http://127.0.0.1:{port}"
                    return
                time.sleep(0.02)
        except (OSError, ValueError) as e:
            self.stop()
            raise SetupError(f"fault server {name} failed to start: {e}")
        except BaseException:
            self.stop()
            raise
        self.stop()
        raise SetupError(f"fault server {name} failed to start "
                         f"(exit status {self.proc.returncode})")

    def stop(self):
        nginx.stop_group(self.proc)


def run(args, work, servers):
    env = dict(os.environ)
    if args.nginx:
        try:
            srv = nginx.start_nginx(args.nginx, timeout=START_TIMEOUT)
        except RuntimeError as e:
            raise SetupError(str(e)) from None
        servers.append(srv)
        env["ASYNCD_TEST_NGINX_URL"] = srv.url
    for name, (root, extra) in args.faults.items():
        srv = FaultServer(name, root, extra, work)
        servers.append(srv)
        env[f"ASYNCD_TEST_FAULT_{name}_URL"] = srv.url
        env[f"ASYNCD_TEST_FAULT_{name}_LOG"] = srv.log

    try:
        cmd = subprocess.Popen(args.cmd, env=env)
    except OSError as e:
        print(f"with-servers: cannot run {args.cmd[0]}: {e}", file=sys.stderr)
        return 127
    state.cmd = cmd
    kill_at = None
    while True:
        try:
            rc = cmd.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            if state.signum and kill_at is None:
                kill_at = time.monotonic() + 5   # grace after a forwarded signal
            if kill_at and time.monotonic() > kill_at:
                cmd.kill()
    for srv in servers:
        if srv.proc.poll() is not None:
            print(f"with-servers: warning: server pid {srv.proc.pid} died "
                  f"during the test (status {srv.proc.returncode})",
                  file=sys.stderr)
    if state.signum:
        return 128 + state.signum
    return 128 - rc if rc < 0 else rc


def on_signal(signum, frame):
    state.signum = signum
    if state.cmd is None:
        raise Interrupted()           # still starting up: unwind and clean up
    if state.cmd.poll() is None:
        state.cmd.send_signal(signum)


def main():
    args = parse_args(sys.argv[1:])
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    keep = args.work_dir is not None
    work = args.work_dir or tempfile.mkdtemp(prefix="asyncd-servers-")
    os.makedirs(work, exist_ok=True)
    servers = []
    rc = SETUP_FAILED
    try:
        rc = run(args, work, servers)
    except SetupError as e:
        print(f"with-servers: {e}", file=sys.stderr)
    except Interrupted:
        rc = 128 + state.signum
    finally:
        # Ignore further signals so cleanup itself cannot be interrupted.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for srv in servers:           # SIGTERM all first, then wait for each
            if srv.proc.poll() is None:
                srv.proc.terminate()
        for srv in servers:
            srv.stop()
        if rc != 0 and not keep:
            print(f"with-servers: logs kept in {work}", file=sys.stderr)
        elif not keep:
            shutil.rmtree(work, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
