#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The Python peer: an asyncio + aiohttp downloader in the seed's style
(Fluent Python's flags2_asyncio_executor.py, py3.7 port; see
shared/research/seed-fluent-python-flags.md §3):

  - one aiohttp.ClientSession (default connector: at most 100 connections),
  - one asyncio.Semaphore(concurrency) held only around the GET,
  - every download_one coroutine created up front and consumed with
    asyncio.as_completed,
  - the body saved with loop.run_in_executor (default thread pool),
  - 200 -> ok (saved), 404 -> not found (nothing saved), anything else -> error.

Usage: peer_aiohttp.py -m N -o DIR -i URLFILE
URLFILE has one URL per line (optionally followed by a file name); a file is
saved under that name or the last path segment of the URL. Prints a JSON
summary {"ok": N, "not_found": N, "error": N} on stdout.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys
from collections import Counter

import aiohttp

OK, NOT_FOUND, ERROR = "ok", "not_found", "error"


class NotFound(Exception):
    pass


class FetchError(Exception):
    def __init__(self, url):
        self.url = url


def save_flag(img, path):
    with open(path, "wb") as fp:
        fp.write(img)


async def get_flag(session, url):
    async with session.get(url) as resp:
        if resp.status == 200:
            return await resp.read()
        elif resp.status == 404:
            raise NotFound()
        else:
            raise aiohttp.ClientResponseError(resp.request_info, resp.history,
                                              status=resp.status, message=resp.reason)


async def download_one(session, url, name, semaphore, dest):
    try:
        async with semaphore:
            image = await get_flag(session, url)
    except NotFound:
        status = NOT_FOUND
    except Exception as exc:
        raise FetchError(url) from exc
    else:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, save_flag, image, os.path.join(dest, name))
        status = OK
    return status


async def downloader_coro(tasks, dest, concur_req, verbose=False, cafile=None):
    counter = Counter()
    semaphore = asyncio.Semaphore(concur_req)
    # HTTPS: trust the benchmark's CA (aiohttp speaks HTTP/1.1 only, one connection per request in flight).
    connector = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=cafile)) if cafile else None
    async with aiohttp.ClientSession(connector=connector) as session:
        to_do = [download_one(session, url, name, semaphore, dest) for url, name in tasks]
        for future in asyncio.as_completed(to_do):
            try:
                status = await future
            except FetchError as exc:
                cause = exc.__cause__
                msg = (cause.args[0] if cause is not None and cause.args else type(cause).__name__)
                if verbose:
                    print(f"*** Error for {exc.url}: {msg}", file=sys.stderr)
                status = ERROR
            counter[status] += 1
    return counter


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-m", type=int, default=5)
    p.add_argument("-o", required=True)
    p.add_argument("-i", required=True)
    p.add_argument("-v", action="store_true")
    p.add_argument("--cafile", help="trust this CA for https:// URLs")
    a = p.parse_args()
    tasks = []
    with open(a.i) as f:
        for line in f:
            parts = line.split()
            if parts:
                url = parts[0]
                name = parts[1] if len(parts) > 1 else url.rstrip("/").rsplit("/", 1)[-1]
                tasks.append((url, name))
    counter = asyncio.run(downloader_coro(tasks, a.o, a.m, a.v, a.cafile))
    print(json.dumps({k: counter[k] for k in (OK, NOT_FOUND, ERROR)}))
    return 0 if counter[ERROR] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
