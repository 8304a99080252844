"""HTTP fetcher for HiPS files: on-disk cache, parallel requests, timeouts, retries with backoff.

A 404 means "no such tile" (remembered for the run, never retried); 5xx, timeouts and connection
errors are retried; a body shorter than its Content-Length (raw bytes on the wire, before any gzip
decoding) or one that fails `validate` is re-fetched and never written to the cache.

Own code rather than astropy's `download_file`: a cutout needs its tiles validated before they are
cached (a truncated JPEG must never poison the cache), 404s remembered as "no data", and several
tiles of one survey in flight at once; download_file does none of these.

`Retrier` is the one retry policy of every online client of the builder (tiles, MocServer, Sesame
through astropy, hips2fits through astroquery): --timeout and --retries apply to all of them, and
after `max_connection_failures` failed connections in a row to one server it stops asking that
server (`ServerUnreachable`) instead of spending the whole backoff on every remaining file.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, TypeVar

from util.fileio import atomic_write_bytes

log = logging.getLogger(__name__)

Validator = Callable[[bytes], None]
T = TypeVar("T")


class FetchError(RuntimeError):
    """A file could not be fetched after every retry (server error, timeout, corrupt body)."""


class ServerUnreachable(FetchError):
    """Too many failed connections in a row to one server: stop asking it (the run stops, resume later)."""


class AttemptFailed(Exception):
    """One attempt went wrong; `connection`: no answer at all (refused, unreachable, timed out)."""

    def __init__(self, problem: str, connection: bool = False):
        super().__init__(problem)
        self.problem = problem
        self.connection = connection


@dataclass(frozen=True)
class FetchSettings:
    cache_dir: Path | None = None
    timeout_s: float = 20.0
    retries: int = 4
    backoff_s: float = 0.5
    parallel: int = 8
    max_connection_failures: int = 8  # in a row, per server, before ServerUnreachable


def server_of(url: str) -> str:
    """host[:port] of a URL: connection failures are counted per server."""
    return urllib.parse.urlsplit(url).netloc or url


class Retrier:
    """Run attempts with exponential backoff; count connection failures in a row per server (thread-safe)."""

    def __init__(self, settings: FetchSettings):
        self.settings = settings
        self._failures: dict[str, int] = {}
        self._last: dict[str, str] = {}
        self._lock = threading.Lock()

    def check(self, server: str) -> None:
        with self._lock:
            count = self._failures.get(server, 0)
            last = self._last.get(server, "")
        if count >= self.settings.max_connection_failures:
            raise ServerUnreachable(f"server {server} unreachable: {count} failed connections in a row ({last})")

    def _record(self, server: str, failure: AttemptFailed | None) -> None:
        with self._lock:
            if failure is not None and failure.connection:
                self._failures[server] = self._failures.get(server, 0) + 1
                self._last[server] = failure.problem
            else:  # the server answered: it is alive
                self._failures[server] = 0

    def call(self, url: str, attempt: Callable[[], T]) -> T:
        """attempt() returns the result or raises AttemptFailed; FetchError when the retries run out."""
        settings = self.settings
        server = server_of(url)
        problem = "no attempt"
        for index in range(settings.retries + 1):
            self.check(server)
            if index:
                time.sleep(settings.backoff_s * 2 ** (index - 1))
                self.check(server)
            try:
                result = attempt()
            except AttemptFailed as failure:
                self._record(server, failure)
                problem = failure.problem
                continue
            self._record(server, None)
            return result
        self.check(server)
        raise FetchError(f"{url}: gave up after {settings.retries + 1} attempts ({problem})")


def request_failure(err: Exception) -> AttemptFailed:
    """A requests exception as an AttemptFailed: no connection or no answer in time counts as dead-ish."""
    import requests

    connection = isinstance(err, (requests.ConnectionError, requests.Timeout))
    return AttemptFailed(f"{type(err).__name__}: {err}", connection=connection)


class Fetcher:
    """Fetch URLs with cache and retries; one instance per process (it holds per-thread sessions)."""

    def __init__(self, settings: FetchSettings = FetchSettings()):
        self.settings = settings
        self.retrier = Retrier(settings)
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
        data = self.retrier.call(url, lambda: self._attempt(url, validate))
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

    def _attempt(self, url: str, validate: Validator | None) -> bytes | None:
        import requests

        try:
            response = self._session().get(url, timeout=self.settings.timeout_s)
            body = response.content  # decoded (gzip, deflate) as the server's Content-Encoding says
        except requests.RequestException as err:
            raise request_failure(err) from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise AttemptFailed(f"HTTP {response.status_code}")
        expected = response.headers.get("Content-Length")
        # Content-Length counts the bytes on the wire, before decoding: compare it with those
        received = response.raw.tell() if response.raw is not None else len(body)
        if expected is not None and expected.isdigit() and int(expected) != received:
            raise AttemptFailed(f"truncated body ({received} of {expected} bytes)")
        if validate is not None:
            try:
                validate(body)
            except Exception as err:
                raise AttemptFailed(f"corrupt body: {err}") from None
        return body
