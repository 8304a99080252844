"""HTTP fetcher for HiPS files: on-disk cache, parallel requests, timeouts, retries with backoff.

A 404 means "no such tile" (remembered for the run, never retried); 5xx, timeouts and connection
errors are retried; a body that is shorter than its Content-Length or fails `validate` is re-fetched
and never written to the cache.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from util.fileio import atomic_write_bytes

log = logging.getLogger(__name__)

Validator = Callable[[bytes], None]


class FetchError(RuntimeError):
    """A file could not be fetched after every retry (server error, timeout, corrupt body)."""


@dataclass(frozen=True)
class FetchSettings:
    cache_dir: Path | None = None
    timeout_s: float = 20.0
    retries: int = 4
    backoff_s: float = 0.5
    parallel: int = 8


class Fetcher:
    """Fetch URLs with cache and retries; one instance per process (it holds per-thread sessions)."""

    def __init__(self, settings: FetchSettings = FetchSettings()):
        self.settings = settings
        self._missing: set[str] = set()
        self._lock = threading.Lock()
        self._local = threading.local()

    def cache_path(self, url: str) -> Path | None:
        if self.settings.cache_dir is None:
            return None
        digest = hashlib.sha1(url.encode("utf-8")).hexdigest()
        tail = url.rstrip("/").rsplit("/", 1)[-1][-60:]
        return Path(self.settings.cache_dir) / digest[:2] / f"{digest[2:16]}-{tail}"

    def get(self, url: str, validate: Validator | None = None) -> bytes | None:
        """Body of `url`, or None when the server says 404. Raises FetchError when retries run out."""
        with self._lock:
            if url in self._missing:
                return None
        cached = self.cache_path(url)
        if cached is not None and cached.is_file():
            data = cached.read_bytes()
            try:
                if validate is not None:
                    validate(data)
                return data
            except Exception:
                log.warning("cached copy of %s is corrupt; fetching again", url)
        data = self._download(url, validate)
        if data is None:
            with self._lock:
                self._missing.add(url)
            return None
        if cached is not None:
            atomic_write_bytes(cached, data)
        return data

    def get_many(self, urls: Iterable[str], validate: Validator | None = None) -> dict[str, bytes | None]:
        """Fetch several URLs in parallel threads; the first FetchError is re-raised."""
        urls = list(dict.fromkeys(urls))
        if len(urls) <= 1 or self.settings.parallel <= 1:
            return {url: self.get(url, validate) for url in urls}
        with ThreadPoolExecutor(max_workers=min(self.settings.parallel, len(urls))) as pool:
            results = list(pool.map(lambda u: self.get(u, validate), urls))
        return dict(zip(urls, results))

    def _session(self):
        import requests

        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def _download(self, url: str, validate: Validator | None) -> bytes | None:
        import requests

        settings = self.settings
        last_problem = "no attempt"
        for attempt in range(settings.retries + 1):
            if attempt:
                time.sleep(settings.backoff_s * 2 ** (attempt - 1))
            try:
                response = self._session().get(url, timeout=settings.timeout_s)
            except requests.RequestException as err:
                last_problem = f"{type(err).__name__}: {err}"
                continue
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                last_problem = f"HTTP {response.status_code}"
                continue
            body = response.content
            expected = response.headers.get("Content-Length")
            if expected is not None and expected.isdigit() and int(expected) != len(body):
                last_problem = f"truncated body ({len(body)} of {expected} bytes)"
                continue
            if validate is not None:
                try:
                    validate(body)
                except Exception as err:
                    last_problem = f"corrupt body: {err}"
                    continue
            return body
        raise FetchError(f"{url}: gave up after {settings.retries + 1} attempts ({last_problem})")
