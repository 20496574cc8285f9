# SPDX-License-Identifier: MIT
"""The benchmark data set: generated deterministically, cached under ROOT/www.

Layout (document root of the benchmark nginx):
  small/<id>/<id>.gif       10,000 files (ids f00000..f09999), 1..16 KiB each:
                            size = 1024 + R.randrange(15*1024 + 1), content =
                            b"GIF89a" + R.randbytes(size - 6), with
                            R = random.Random(SEED * 1_000_003 + i)
  nf/small/<id>/<id>.gif    hard links to small/, except every id with i % 10 == 9
                            (one id in ten answers 404 under /nf/)
  big/big<k>-<MiB>M.bin     large files: 1 MiB pseudo-random block (seeded by
                            k and the size) repeated, each MiB stamped with its index
  MANIFEST.json             sizes, the set's parameters and the big files' sha256

  tiny/<ddd>                hard links to the 1,000 smallest small files (ddd = 000..999),
                            for the million-task job: nginx serves /m/<digits> as
                            tiny/<last three digits> (servers.py), so a task's URL is short
                            and names its own file

The 20 ms delay variant and the "slow" variant of the cancel scenario are URL
prefixes (/delay/, /slow/) served by nginx itself (see servers.py); no files.

Everything is a pure function of SEED, so two machines generate the same bytes;
MANIFEST.json records what was generated and is checked before reuse.
"""

import hashlib
import json
import os
import random
import shutil

SEED = 20261122
N_SMALL = 10_000
FORMAT = 2          # bump when the layout or the generator changes
MiB = 1024 * 1024


def small_id(i):
    return f"f{i:05d}"


def small_rel(i):
    """Path of small file i below the document root."""
    sid = small_id(i)
    return f"small/{sid}/{sid}.gif"


def small_name(i):
    return f"{small_id(i)}.gif"


def is_404(i):
    """Ids that are missing under /nf/."""
    return i % 10 == 9


def small_content(i):
    r = random.Random(SEED * 1_000_003 + i)
    size = 1024 + r.randrange(15 * 1024 + 1)
    return b"GIF89a" + r.randbytes(size - 6)


def small_size(i):
    r = random.Random(SEED * 1_000_003 + i)
    return 1024 + r.randrange(15 * 1024 + 1)


def big_name(k, mib):
    return f"big{k}-{mib}M.bin"


def big_chunks(k, mib):
    """Yields the content of a big file, 1 MiB at a time."""
    base = bytearray(random.Random(SEED * 7919 + k * 131 + mib).randbytes(MiB))
    for c in range(mib):
        stamp = (c.to_bytes(8, "little") + k.to_bytes(8, "little")) * 4
        base[0:len(stamp)] = stamp
        base[MiB // 2:MiB // 2 + len(stamp)] = stamp
        yield bytes(base)


class DataSet:
    def __init__(self, root):
        self.root = root
        self.www = os.path.join(root, "www")
        self.manifest_path = os.path.join(self.www, "MANIFEST.json")
        self.manifest = None

    # -- generation ---------------------------------------------------------------------------
    def _load_manifest(self):
        try:
            with open(self.manifest_path) as f:
                m = json.load(f)
            if m.get("format") == FORMAT and m.get("seed") == SEED:
                return m
        except (OSError, ValueError):
            pass
        return None

    def _save_manifest(self):
        tmp = self.manifest_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.manifest, f)
        os.replace(tmp, self.manifest_path)

    def ensure(self, big_sizes_mib=(), log=print):
        """Generates what is missing; returns self. Cheap when cached."""
        m = self._load_manifest()
        if m is None or m.get("n_small") != N_SMALL or not self._small_ok():
            log(f"generating {N_SMALL} small files under {self.www} ...")
            shutil.rmtree(self.www, ignore_errors=True)
            os.makedirs(self.www)
            total = 0
            for i in range(N_SMALL):
                data = small_content(i)
                rel = small_rel(i)
                d = os.path.join(self.www, os.path.dirname(rel))
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(self.www, rel), "wb") as f:
                    f.write(data)
                total += len(data)
                if not is_404(i):
                    nd = os.path.join(self.www, "nf", os.path.dirname(rel))
                    os.makedirs(nd, exist_ok=True)
                    os.link(os.path.join(self.www, rel), os.path.join(self.www, "nf", rel))
            os.makedirs(os.path.join(self.www, "big"), exist_ok=True)
            m = {"format": FORMAT, "seed": SEED, "n_small": N_SMALL, "small_bytes": total, "big": {}}
            self.manifest = m
            self._save_manifest()
        self.manifest = m
        self.ensure_tiny()
        for k, mib in big_sizes_mib:
            self.ensure_big(k, mib, log)
        return self

    def _small_ok(self):
        # A cheap sanity check of a cached set: first, last, and a few in between.
        for i in (0, 1, N_SMALL // 2, N_SMALL - 1):
            p = os.path.join(self.www, small_rel(i))
            try:
                if os.stat(p).st_size != small_size(i):
                    return False
            except OSError:
                return False
        return os.path.exists(os.path.join(self.www, "nf", small_rel(0)))

    def tiny_ids(self):
        """The 1,000 smallest small files (ties by id), in tiny/000..999 order."""
        return sorted(range(N_SMALL), key=lambda i: (small_size(i), i))[:1000]

    def ensure_tiny(self):
        d = os.path.join(self.www, "tiny")
        ids = self.tiny_ids()
        if self.manifest.get("tiny") == ids and os.path.exists(os.path.join(d, "999")):
            return
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for j, i in enumerate(ids):
            os.link(os.path.join(self.www, small_rel(i)), os.path.join(d, f"{j:03d}"))
        self.manifest["tiny"] = ids
        self._save_manifest()

    def ensure_big(self, k, mib, log=print):
        name = big_name(k, mib)
        path = os.path.join(self.www, "big", name)
        info = self.manifest["big"].get(name)
        if info and os.path.exists(path) and os.stat(path).st_size == info["size"]:
            return info
        log(f"generating big/{name} ({mib} MiB) ...")
        h = hashlib.sha256()
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            for chunk in big_chunks(k, mib):
                f.write(chunk)
                h.update(chunk)
        os.replace(tmp, path)
        info = {"size": mib * MiB, "sha256": h.hexdigest()}
        self.manifest["big"][name] = info
        self._save_manifest()
        return info

    def warm(self):
        """Reads the small set once so that every tool meets a warm page cache."""
        for i in range(N_SMALL):
            with open(os.path.join(self.www, small_rel(i)), "rb") as f:
                f.read()

    # -- expectations -------------------------------------------------------------------------
    def small_ids(self, n):
        return list(range(n))

    def expected_small(self, n, with_404):
        """{filename: size} of the files a correct client saves, and the set of 404 names."""
        ok, nf = {}, set()
        for i in range(n):
            if with_404 and is_404(i):
                nf.add(small_name(i))
            else:
                ok[small_name(i)] = small_size(i)
        return ok, nf

    def small_source(self, name):
        sid = name[:-4]
        return os.path.join(self.www, "small", sid, name)

    def big_path(self, k, mib):
        return os.path.join(self.www, "big", big_name(k, mib))

    def big_info(self, k, mib):
        return self.manifest["big"][big_name(k, mib)]

