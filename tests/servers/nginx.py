#!/usr/bin/env python3
"""Run Debian's nginx (/usr/sbin/nginx) as a throw-away static server for tests.

nginx runs in the foreground (daemon off) as a child of this process, on
127.0.0.1 and a free port, with a generated config whose pid file, logs and
temp paths all live in a private temp dir (removed by stop()). One worker,
keep-alive, sendfile, no access log; "user root;" only when run as root.
With tls=(certificate, key) it speaks TLS instead, with HTTP/2 offered by ALPN;
with access_log=True it logs "PROTOCOL STATUS CONNECTION URI" per request to
srv.access_log (read it with srv.requests()).

API:  srv = start_nginx(root, tls=None, access_log=False)  ->  srv.url
      ("http://127.0.0.1:PORT" or "https://..."), srv.port, srv.pid,
      srv.stop(); also a context manager.
CLI:  nginx.py --root DIR [--port-file F]
      prints the URL, serves until SIGTERM/SIGINT (or until nginx dies).

nginx cannot report an ephemeral port, so a free one is picked by binding
port 0 and releasing it; if nginx then fails to bind it (someone else took
it), nginx is stopped and another port is tried. Readiness is proved by a
response carrying this instance's random X-Asyncd-Nginx token, so a foreign
server on the port is never mistaken for ours. nginx gets PR_SET_PDEATHSIG,
so it dies even if its parent is SIGKILLed (the parent is the *thread* that
started it: start it from the main thread).
"""

import argparse
import ctypes
import http.client
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

NGINX = "/usr/sbin/nginx"

CONFIG = """\
{user}worker_processes 1;
daemon off;
pid "{tmp}/nginx.pid";
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    types {{
        image/gif gif; image/png png; application/json json;
        text/plain txt md; text/html html;
    }}
    default_type application/octet-stream;
    log_format asyncd_test '$server_protocol $status $connection $request_uri';
    {access_log}
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 60s;
    keepalive_requests 100000;
    client_body_temp_path "{tmp}/client_body";
    proxy_temp_path "{tmp}/proxy";
    fastcgi_temp_path "{tmp}/fastcgi";
    uwsgi_temp_path "{tmp}/uwsgi";
    scgi_temp_path "{tmp}/scgi";
    server {{
        listen 127.0.0.1:{port}{listen_tls};
        server_name localhost;
        {tls_files}
        root "{root}";
        add_header X-Asyncd-Nginx {token} always;
        location / {{ }}
    }}
}}
"""


def esc(path):
    """For use inside a double-quoted nginx string."""
    return path.replace("\\", "\\\\").replace('"', '\\"')


def free_port():
    """A port that was free a moment ago (the kernel's choice for port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent():
    """A preexec_fn: the child gets SIGTERM when this process dies."""
    parent = os.getpid()

    def preexec():
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
        if os.getppid() != parent:      # the parent died before prctl()
            os._exit(1)
    return preexec


def stop_group(proc, timeout=5.0):
    """SIGTERM the child, SIGKILL its whole process group if need be."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)   # stray workers, if any
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


class Nginx:
    def __init__(self, proc, port, tmp, tls=False, access_log=None):
        self.proc, self.port, self.tmp = proc, port, tmp
        self.pid = proc.pid
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        self.access_log = access_log

    def requests(self):
        """(protocol, status, connection number, URI) of every request logged so far (nginx
        writes each line when the response is done)."""
        with open(self.access_log) as f:
            return [tuple(line.split(" ", 3)) for line in f.read().splitlines()]

    def stop(self):
        if self.tmp is None:
            return
        stop_group(self.proc)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _answers(port, token, tls=False):
    """Is it our nginx on port? (A short timeout: a foreign listener might
    accept and never answer.)"""
    try:
        if tls:   # the certificate is the test's business, not this probe's
            conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=0.2,
                                               context=ssl._create_unverified_context())
        else:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=0.2)
        conn.request("HEAD", "/")
        ok = conn.getresponse().getheader("X-Asyncd-Nginx") == token
        conn.close()
        return ok
    except OSError:
        return False


def start_nginx(root, attempts=5, timeout=10.0, tls=None, access_log=False):
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise RuntimeError(f"nginx root {root}: not a directory")
    tmp = tempfile.mkdtemp(prefix="asyncd-nginx-")
    err, proc = "", None
    try:
        for _ in range(attempts):
            port, token = free_port(), secrets.token_hex(8)
            conf = os.path.join(tmp, "nginx.conf")
            with open(conf, "w") as f:
                f.write(CONFIG.format(
                    user="user root;\n" if os.geteuid() == 0 else "",
                    tmp=esc(tmp), port=port, root=esc(root), token=token,
                    listen_tls=" ssl http2" if tls else "",
                    tls_files=(f'ssl_certificate "{esc(tls[0])}"; ssl_certificate_key "{esc(tls[1])}";'
                               if tls else ""),
                    access_log=(f'access_log "{esc(tmp)}/access.log" asyncd_test;' if access_log
                                else "access_log off;")))
            errlog, stderr = os.path.join(tmp, "error.log"), os.path.join(tmp, "stderr")
            if os.path.exists(errlog):
                os.unlink(errlog)   # no stale "bind() failed" from the last try
            with open(stderr, "w") as err_f:
                proc = subprocess.Popen(
                    [NGINX, "-p", tmp + "/", "-c", conf, "-e", errlog],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=err_f, start_new_session=True,
                    preexec_fn=die_with_parent())
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and proc.poll() is None:
                if _answers(port, token, bool(tls)):
                    return Nginx(proc, port, tmp, bool(tls),
                                 os.path.join(tmp, "access.log") if access_log else None)
                err = _read(stderr) + _read(errlog)
                if "bind() to" in err:   # port taken: nginx would retry 2.5 s
                    break
                time.sleep(0.02)
            stop_group(proc)
            err = _read(stderr) + _read(errlog)
            if "Address already in use" not in err:
                break
        raise RuntimeError(f"nginx did not start:\n{err.strip()}")
    except BaseException:
        if proc:
            stop_group(proc)
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main():
    p = argparse.ArgumentParser(description="Serve DIR with nginx on 127.0.0.1.")
    p.add_argument("--root", required=True, help="document root")
    p.add_argument("--port-file", help="write the port here once serving")
    args = p.parse_args()
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))
    try:
        srv = start_nginx(args.root)
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 1
    with srv:
        if args.port_file:
            with open(args.port_file + ".tmp", "w") as f:
                f.write(f"{srv.port}\n")
            os.replace(args.port_file + ".tmp", args.port_file)
        print(srv.url, flush=True)
        while not stop and srv.proc.poll() is None:
            time.sleep(0.2)
        died = srv.proc.poll() is not None
    if died:
        print("nginx exited unexpectedly", file=sys.stderr)
    return 1 if died else 0


if __name__ == "__main__":
    sys.exit(main())
