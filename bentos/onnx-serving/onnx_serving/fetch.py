"""The model fetcher: get the bytes behind a model URI and verify them.

Supports ``file://`` (and bare paths), ``http://``/``https://`` and, when
``boto3`` is installed, ``s3://``. The whole file is read into memory and the
sha256 is computed over exactly the bytes that will be loaded, so there is
no window in which a verified file on disk could be swapped for another one.

Network failures are transient and retried with backoff; a missing file, a
4xx answer, a checksum mismatch or an oversized model are permanent and end
the attempt at once.
"""

from __future__ import annotations

import hashlib
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("onnx_serving.fetch")

CHUNK = 1 << 20


class FetchError(Exception):
    """The model could not be fetched or verified; ``transient`` means retrying may help."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Fetched:
    data: bytes
    sha256: str
    verified: bool  # False when no expected sha256 was configured


def _read_limited(read: Callable[[int], bytes], max_bytes: int, uri: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while chunk := read(CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise FetchError(f"{uri} is larger than MAX_MODEL_BYTES={max_bytes}")
        chunks.append(chunk)
    return b"".join(chunks)


def _fetch_file(path: Path, uri: str, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as handle:
            return _read_limited(handle.read, max_bytes, uri)
    except FileNotFoundError:
        raise FetchError(f"{uri}: no such file {path}") from None
    except IsADirectoryError:
        raise FetchError(f"{uri}: {path} is a directory, expected an .onnx file") from None
    except OSError as exc:
        raise FetchError(f"{uri}: cannot read {path}: {exc.strerror or exc}") from None


def _fetch_http(uri: str, timeout: float, max_bytes: int) -> bytes:
    request = urllib.request.Request(uri, headers={"User-Agent": "modeldeploy-onnx-serving"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length is not None and int(length) > max_bytes:
                raise FetchError(f"{uri} is {length} bytes, over MAX_MODEL_BYTES={max_bytes}")
            data = _read_limited(response.read, max_bytes, uri)
    except urllib.error.HTTPError as exc:
        # Server-side trouble and throttling may pass; any other 4xx will not.
        transient = exc.code >= 500 or exc.code in (408, 429)
        raise FetchError(
            f"GET {uri} answered {exc.code} {exc.reason}", transient=transient
        ) from None
    except urllib.error.URLError as exc:
        raise FetchError(f"GET {uri} failed: {exc.reason}", transient=True) from None
    except (TimeoutError, ConnectionError) as exc:
        raise FetchError(f"GET {uri} failed: {exc}", transient=True) from None
    if length is not None and len(data) != int(length):
        raise FetchError(f"GET {uri} ended after {len(data)} of {length} bytes", transient=True)
    return data


def _fetch_s3(uri: str, max_bytes: int) -> bytes:
    try:
        import boto3  # type: ignore[import-not-found]  # noqa: PLC0415 - optional extra
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-not-found]  # noqa: PLC0415
    except ImportError:
        raise FetchError(f"{uri}: s3:// URIs need boto3 in the image (pip install boto3)") from None
    parsed = urllib.parse.urlparse(uri)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    if not bucket or not key:
        raise FetchError(f"{uri}: expected s3://<bucket>/<key>")
    try:
        obj: Any = boto3.client("s3").get_object(Bucket=bucket, Key=key)
        return _read_limited(obj["Body"].read, max_bytes, uri)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        transient = code.startswith("5") or code in {"SlowDown", "RequestTimeout"}
        raise FetchError(f"{uri}: {code or exc}", transient=transient) from None
    except BotoCoreError as exc:
        raise FetchError(f"{uri}: {exc}", transient=True) from None


def fetch_once(uri: str, *, timeout: float, max_bytes: int) -> bytes:
    """One attempt at reading the model bytes; raises ``FetchError``."""
    parsed = urllib.parse.urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        return _fetch_http(uri, timeout, max_bytes)
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise FetchError(f"{uri}: file URIs must be file:///absolute/path")
        return _fetch_file(Path(urllib.parse.unquote(parsed.path)), uri, max_bytes)
    if scheme == "":
        return _fetch_file(Path(uri), uri, max_bytes)
    if scheme == "s3":
        return _fetch_s3(uri, max_bytes)
    raise FetchError(f"{uri}: unsupported scheme {scheme!r} (use file, http, https or s3)")


def verify(data: bytes, expected_sha256: str | None, uri: str) -> Fetched:
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise FetchError(
            f"sha256 mismatch for {uri}: expected {expected_sha256}, got {digest}; "
            "refusing to serve"
        )
    return Fetched(data=data, sha256=digest, verified=expected_sha256 is not None)


def fetch_and_verify(
    uri: str,
    *,
    expected_sha256: str | None,
    timeout: float,
    max_bytes: int,
    attempts: int,
    on_retry: Callable[[str], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
) -> Fetched:
    """Fetches with bounded exponential backoff on transient errors, then verifies."""
    delay = 1.0
    for attempt in range(1, attempts + 1):
        try:
            data = fetch_once(uri, timeout=timeout, max_bytes=max_bytes)
            break
        except FetchError as exc:
            if not exc.transient or attempt == attempts:
                raise FetchError(f"{exc} (attempt {attempt} of {attempts})") from None
            message = f"{exc}; attempt {attempt} of {attempts}, retrying in {delay:.0f}s"
            log.warning("%s", message)
            on_retry(message)
            sleep(delay)
            delay = min(delay * 2, 30.0)
    return verify(data, expected_sha256, uri)
