# SPDX-License-Identifier: MIT
"""A throw-away certificate authority for HTTPS tests and benchmarks (openssl CLI, P-256 keys,
valid two days), and a way to make asyncd trust it without touching the host's trust store.

  ca = TestCA(directory)                     ca.crt / ca.key in directory
  cert, key = ca.issue("good", "IP:127.0.0.1,DNS:localhost")
  cert, key = ca.self_signed("stray", "IP:127.0.0.1")   (signed by nobody we trust)
  argv = trusting(ca.store()) + [asyncd, ...]

trusting() runs a command in a private mount namespace where /etc/ssl/certs is a directory that
holds only this CA, laid out as Debian's ca-certificates lays it out (the bundle libcurl reads,
ca-certificates.crt, and the CA under its subject hash). Needs root and unshare(1).
"""

import os
import shutil
import subprocess

CERTS = "/etc/ssl/certs"


def available():
    """None if certificates can be made and trusted here, else why not."""
    if os.geteuid() != 0:
        return "needs root (the trust store is replaced in a private mount namespace)"
    for tool in ("openssl", "unshare"):
        if not shutil.which(tool):
            return f"{tool} not found (scripts/install-deps.sh installs it)"
    if not os.path.isdir(CERTS):
        return f"{CERTS} missing: install ca-certificates (scripts/install-deps.sh)"
    return None


def _openssl(*args, cwd):
    return subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _key(name, cwd):
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.key", cwd=cwd)


class TestCA:
    def __init__(self, directory, name="asyncd test CA"):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        _key("ca", directory)
        _openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", f"/CN={name}", "-days", "2",
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
                 "-out", "ca.crt", cwd=directory)
        self.cert = os.path.join(directory, "ca.crt")

    def _paths(self, name):
        return os.path.join(self.dir, f"{name}.crt"), os.path.join(self.dir, f"{name}.key")

    def issue(self, name, san):
        """A server certificate for the subjectAltName san (e.g. "IP:127.0.0.1"), signed by the CA."""
        _key(name, self.dir)
        _openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}", "-out", f"{name}.csr", cwd=self.dir)
        with open(os.path.join(self.dir, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=self.dir)
        return self._paths(name)

    def self_signed(self, name, san):
        _key(name, self.dir)
        _openssl("req", "-x509", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}", "-days", "2",
                 "-addext", f"subjectAltName={san}", "-out", f"{name}.crt", cwd=self.dir)
        return self._paths(name)

    def store(self):
        """A directory to put over /etc/ssl/certs: this CA and nothing else."""
        store = os.path.join(self.dir, "store")
        shutil.rmtree(store, ignore_errors=True)   # a directory reused: the CA is a new one
        os.mkdir(store)
        shutil.copy(self.cert, os.path.join(store, "ca-certificates.crt"))
        h = _openssl("x509", "-hash", "-noout", "-in", "ca.crt", cwd=self.dir).strip()
        os.symlink("ca-certificates.crt", os.path.join(store, f"{h}.0"))
        return store


def trusting(store):
    """argv prefix: run the rest with store mounted over /etc/ssl/certs, in a private mount
    namespace (the host's trust store is left alone)."""
    script = f'mount --bind "$0" {CERTS} && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, store]
