# SPDX-License-Identifier: MIT
"""The benchmark's HTTP server: Debian's nginx on 127.0.0.1 and a free port.

One worker, access log off, keep-alive on (60 s, 100,000 requests per
connection), sendfile. Same conventions as tests/servers/nginx.py (free port
by binding port 0, readiness proved by a per-instance token header, nginx in
its own process group with PR_SET_PDEATHSIG), plus what the benchmark needs:

  /small/<id>/<id>.gif, /nf/..., /big/...   static files of the data set
  /m/<digits>     tiny/<last three digits> (million-task job: short URLs that
                  name their own file)
  /delay/<path>   wait 20 ms, then serve /<path>   (the ~20 ms delay variant)
  /slow/<path>    wait 60 s,  then serve /<path>   (cancel scenario: keeps
                                                    transfers in flight)

With tls=True (needs openssl) a second listener, `server.tls_url`, serves the
same tree over TLS with HTTP/2 offered by ALPN, with a certificate for
127.0.0.1 from a throw-away CA (`server.ca`, tests/servers/testca.py).

The delays come from nginx itself: `echo_sleep` of the echo module
(libnginx-mod-http-echo, which Debian's nginx-light depends on) arms an nginx
timer — no thread, no blocking, no limit_rate — and `echo_exec` then redirects
internally to the static file, so headers, Content-Length, keep-alive and 404s
are nginx's own. 4,500 req/s at c=100 with 20 ms (the ideal is 5,000).

If the module is missing, the delays fall back to tests/servers/fault-server.py
(`/delay/<ms>/` path prefix, a Python ThreadingHTTPServer): `server.delay_kind`
says which one ran, and the report prints it.
"""

import ctypes
import http.client
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

NGINX = "/usr/sbin/nginx"
ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"
HERE = os.path.dirname(os.path.abspath(__file__))
FAULT_SERVER = os.path.join(os.path.dirname(HERE), "tests", "servers", "fault-server.py")
sys.path.insert(0, os.path.dirname(FAULT_SERVER))
import testca  # noqa: E402

CONFIG = """\
{load}{user}worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid "{tmp}/nginx.pid";
error_log {tmp}/error.log crit;
events {{ worker_connections 8192; }}
http {{
    types {{ image/gif gif; application/octet-stream bin; }}
    default_type application/octet-stream;
    access_log off;
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
        listen 127.0.0.1:{port} backlog=4096;
        server_name localhost;
        root "{root}";
        add_header X-Asyncd-Bench {token} always;
        location / {{ }}
        location ~ ^/m/[0-9]*([0-9][0-9][0-9])$ {{ try_files /tiny/$1 =404; }}
{delay}    }}
{tls}}}
"""

TLS_SERVER = """\
    server {{
        listen 127.0.0.1:{port} ssl http2 backlog=4096;
        ssl_certificate "{cert}";
        ssl_certificate_key "{key}";
        server_name localhost;
        root "{root}";
        location / {{ }}
    }}
"""

DELAY_LOCATIONS = """\
        location ~ ^/delay(?<rest>/.*)$ {{ echo_sleep {delay}; echo_exec $rest; }}
        location ~ ^/slow(?<rest>/.*)$ {{ echo_sleep {slow}; echo_exec $rest; }}
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    parent = os.getpid()

    def preexec():
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)
    return preexec


def _stop(proc, timeout=5.0):
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _answers(port, token, path="/", header="X-Asyncd-Bench"):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=0.3)
        conn.request("HEAD", path)
        r = conn.getresponse()
        ok = token is None or r.getheader(header) == token
        conn.close()
        return ok
    except OSError:
        return False


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class Server:
    """nginx (+ the fault server when the echo module is missing)."""

    def __init__(self, root, delay=0.02, slow=60.0, use_echo=None, tls=False):
        self.root = os.path.abspath(root)
        self.tmp = tempfile.mkdtemp(prefix="asyncd-bench-nginx-")
        self.proc = self.fault = None
        self.ca = self.tls_url = None
        if tls:
            self.ca = testca.TestCA(os.path.join(self.tmp, "ca"))
            self.tls_cert = self.ca.issue("server", "IP:127.0.0.1")
            self.ca_store = self.ca.store()
        if use_echo is None:
            use_echo = os.path.exists(ECHO_MODULE)
        self.delay_kind = "nginx echo_sleep" if use_echo else "fault-server.py (Python)"
        try:
            self._start_nginx(use_echo, delay, slow)
            if use_echo:
                self.delay_url = self.url + "/delay"
                self.slow_url = self.url + "/slow"
            else:
                self._start_fault()
                self.delay_url = f"{self.fault_url}/delay/{int(delay * 1000)}"
                self.slow_url = f"{self.fault_url}/delay/{int(slow * 1000)}"
        except BaseException:
            self.stop()
            raise

    def _start_nginx(self, use_echo, delay, slow, attempts=5):
        if not os.access(NGINX, os.X_OK):
            raise RuntimeError(f"{NGINX} not found: install nginx-light (scripts/install-deps.sh)")
        err = ""
        for _ in range(attempts):
            port, token = _free_port(), secrets.token_hex(8)
            tls_port = _free_port() if self.ca else None
            conf = os.path.join(self.tmp, "nginx.conf")
            with open(conf, "w") as f:
                f.write(CONFIG.format(
                    load=f"load_module {ECHO_MODULE};\n" if use_echo else "",
                    user="user root;\n" if os.geteuid() == 0 else "",
                    tmp=self.tmp, port=port, root=self.root, token=token,
                    delay=DELAY_LOCATIONS.format(delay=delay, slow=slow) if use_echo else "",
                    tls=TLS_SERVER.format(port=tls_port, cert=self.tls_cert[0], key=self.tls_cert[1],
                                          root=self.root) if self.ca else ""))
            errlog = os.path.join(self.tmp, "error.log")
            stderr = os.path.join(self.tmp, "stderr")
            if os.path.exists(errlog):
                os.unlink(errlog)
            with open(stderr, "w") as ef:
                self.proc = subprocess.Popen([NGINX, "-p", self.tmp + "/", "-c", conf, "-e", errlog],
                                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=ef, start_new_session=True,
                                             preexec_fn=_die_with_parent())
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _answers(port, token):
                    self.port, self.url = port, f"http://127.0.0.1:{port}"
                    if tls_port:
                        self.tls_url = f"https://127.0.0.1:{tls_port}"
                    return
                err = _read(stderr) + _read(errlog)
                if "bind() to" in err:
                    break
                time.sleep(0.02)
            _stop(self.proc)
            self.proc = None
            err = _read(stderr) + _read(errlog)
            if "Address already in use" not in err:
                break
        raise RuntimeError(f"nginx did not start:\n{err.strip()}")

    def _start_fault(self):
        if not os.path.exists(FAULT_SERVER):
            raise RuntimeError(f"{FAULT_SERVER} missing and no nginx echo module for the delays")
        pf = os.path.join(self.tmp, "fault.port")
        self.fault = subprocess.Popen([sys.executable, FAULT_SERVER, "--root", self.root,
                                       "--port-file", pf], stdout=subprocess.DEVNULL,
                                      start_new_session=True, preexec_fn=_die_with_parent())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if os.path.exists(pf):
                self.fault_url = f"http://127.0.0.1:{int(open(pf).read())}"
                return
            if self.fault.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError("fault-server.py did not start")

    def worker_pids(self):
        """nginx's worker process(es): the children of the master."""
        pids = []
        if self.proc is None:
            return pids
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                pids = [int(p) for p in f.read().split()]
        except OSError:
            pass
        if self.fault is not None:
            pids.append(self.fault.pid)
        return pids

    def stop(self):
        _stop(self.proc)
        _stop(self.fault)
        self.proc = self.fault = None
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
