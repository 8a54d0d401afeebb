"""Checked, atomic downloads of reference checkpoints.

`download_file` fetches an `http(s)://` or `file://` URL into a local file:
the bytes stream into a temporary file beside the destination (with a tqdm
progress bar on a terminal), the sha256 is checked, and only then is the file
moved into place. A failed or interrupted download never leaves a partial
file behind (nor a folder it created). A download slower than `min_speed`
over a `timeout`-second window is aborted, so a server that drips bytes
cannot hold it open forever. Where no full sha256 is known, the digest the
server publishes is used: the Hugging Face Hub (and its mirrors) sends the
sha256 of an LFS file in the `X-Linked-Etag` header of its answer. Where
none is known at all, a `verify` callback (e.g. "the checkpoint parses")
decides whether the file is kept.

`cached_download` records the full sha256 of each file it downloads beside
it (`<file>.sha256`), so later reads of the cached copy are checked against
the full digest even where only a prefix (or nothing) was published.

Environment:
    KERAS_POSE_HOME: root of the keras-pose cache (default
        `~/.cache/keras_pose`). Downloaded checkpoints live in
        `<root>/checkpoints/`, converted presets in `<root>/presets/`.
    KERAS_POSE_OFFLINE: "1" / "true" / "yes" forbids network access: any
        `http(s)://` download raises `DownloadError` at once (`file://` URLs
        and files already in the cache still work).
"""

import contextlib
import hashlib
import os
import re
import shutil
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from keras_pose.errors import DownloadError
from keras_pose.utils.file_utils import atomic_write
from keras_pose.utils.file_utils import clean_stale_temporaries

_CHUNK = 1 << 20  # bytes per read
MIN_SPEED = 1024  # bytes/s a download must average over each `timeout` window
DIGEST_SUFFIX = ".sha256"  # the full digest recorded beside a cached download
_HEX = re.compile(r"[0-9a-f]{8,64}")

# Hosts that serve an HTML landing page instead of the file: a client
# without a browser cannot fetch from them.
_MANUAL_HOSTS = ("1drv.ms", "onedrive.live.com", "drive.google.com", "docs.google.com")


def cache_dir():
    """Root folder of the keras-pose cache.

    `$KERAS_POSE_HOME` if set, else `~/.cache/keras_pose`. Not created here.
    """
    root = os.environ.get("KERAS_POSE_HOME")
    if root:
        return os.path.abspath(os.path.expanduser(root))
    return os.path.join(os.path.expanduser("~"), ".cache", "keras_pose")


def is_offline():
    """True when `$KERAS_POSE_OFFLINE` asks for no network access."""
    return os.environ.get("KERAS_POSE_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def is_url(value):
    """True for `http://`, `https://` and `file://` strings."""
    return isinstance(value, str) and value.split("://", 1)[0].lower() in ("http", "https", "file") and "://" in value


def needs_manual_download(url):
    """True for share links (OneDrive, Google Drive) that need a browser."""
    host = (urllib.parse.urlparse(url).hostname or "").lower()
    return any(host == h or host.endswith("." + h) for h in _MANUAL_HOSTS)


def sha256_file(path):
    """Full sha256 hex digest (lowercase) of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_fingerprint(path):
    """A cheap identity of a file's content: {size, mtime_ns, sample_sha256}.

    `sample_sha256` hashes the first, middle and last MiB, so two files of the
    same size and modification time (a `cp -p` of another fine-tune of the
    same architecture) still differ. Used to tell whether a checkpoint
    changed since it was converted without reading all of it.
    """
    st = os.stat(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for offset in sorted({0, max(0, st.st_size // 2 - _CHUNK // 2), max(0, st.st_size - _CHUNK)}):
            f.seek(offset)
            digest.update(f.read(_CHUNK))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sample_sha256": digest.hexdigest()}


def _normalize_expected(sha256):
    if sha256 is None:
        return None
    expected = str(sha256).strip().lower()
    if not _HEX.fullmatch(expected):
        raise ValueError(
            f"sha256 must be a full 64-character hex digest or a published prefix "
            f"of 8 to 63 hex characters, got {sha256!r}."
        )
    return expected


def sha256_matches(actual, expected):
    """True if the full digest `actual` matches `expected` (full or prefix)."""
    expected = _normalize_expected(expected)
    if expected is None:
        return True
    actual = actual.lower()
    return actual == expected if len(expected) == 64 else actual.startswith(expected)


def _fix_hint(preset_name=None):
    name = preset_name or "NAME"
    return (
        "Check your network connection, or download the file by hand and convert it with "
        f"`keras-pose convert --preset {name} --checkpoint FILE --output DIR`, then load DIR. "
        "Set KERAS_POSE_OFFLINE=1 to never touch the network."
    )


def _progress_bar(total, desc, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, leave=False)


def _user_agent():
    try:
        from importlib.metadata import version

        return f"keras-pose/{version('keras-pose')}"
    except Exception:  # pragma: no cover - not installed
        return "keras-pose"


def _missing_dirs(directory):
    """The folders `os.makedirs(directory)` would create, deepest first."""
    created = []
    while directory and not os.path.exists(directory):
        created.append(directory)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return created


def _remove_empty_dirs(dirs):
    for directory in dirs:  # deepest first
        try:
            os.rmdir(directory)
        except OSError:
            break


def _size_text(n):
    return f"{n} bytes" if n < 10_000 else f"{n} bytes ({n / 1024:.0f} KiB)"


def download_file(
    url, destination, sha256=None, progress=True, timeout=60, preset_name=None, min_speed=MIN_SPEED, verify=None
):
    """Download `url` to the file `destination`, checked and atomically.

    Args:
        url: `http://`, `https://` or `file://` URL.
        destination: path of the file to create. Its folder is created (and
            removed again if the download fails); an existing file is
            replaced only once the new one is complete and verified.
        sha256: expected digest: the full 64-hex sha256 (must match exactly)
            or a published prefix of 8 to 63 hex characters (must match the
            start of the digest, e.g. mmpose's file-name hash). None skips
            the check.
        progress: show a tqdm progress bar (only when stderr is a terminal).
        timeout: socket timeout in seconds for connecting and each read; also
            the window over which `min_speed` is measured.
        preset_name: used in error messages to name the fix.
        min_speed: bytes per second the download must average over every
            `timeout`-second window; a slower one is aborted with a
            `DownloadError`. 0 disables the check.
        verify: optional `verify(path)` called on the complete temporary
            file before it is moved into place; it raises (any exception) to
            reject the file, e.g. a checkpoint that does not parse because
            the connection dropped where no length or digest could tell.

    Returns:
        The absolute destination path.

    Raises:
        DownloadError: offline mode, a share link that needs a browser, an
            HTTP error, no network, a timeout, a download slower than
            `min_speed`, an HTML page instead of a file, a sha256 mismatch
            (the message gives the expected and actual digests) or a file
            `verify` rejects. Nothing is left at `destination` or beside it.
    """
    if not is_url(url):
        raise DownloadError(f"Not a downloadable URL: {url!r}; expected http://, https:// or file://.")
    return _download_checked(url, destination, sha256, progress, timeout, preset_name, min_speed, verify)[0]


def _download_checked(url, destination, sha256, progress, timeout, preset_name, min_speed, verify):
    """`download_file` returning (destination, full sha256 of the file)."""
    expected = _normalize_expected(sha256)
    destination = os.path.abspath(os.fspath(destination))
    scheme = url.split("://", 1)[0].lower()

    if scheme != "file":
        if is_offline():
            raise DownloadError(
                f"KERAS_POSE_OFFLINE is set, so {url} was not downloaded. Unset KERAS_POSE_OFFLINE, "
                f"or put the file at {destination} by hand"
                + (f" (sha256 {expected})" if expected else "")
                + f", or convert it with `keras-pose convert --preset {preset_name or 'NAME'} "
                "--checkpoint FILE --output DIR`."
            )
        if needs_manual_download(url):
            raise DownloadError(
                f"{url} is a share link that only works in a web browser, so keras-pose cannot "
                f"download it. Download the file by hand, then either put it at {destination} "
                f"or convert it with `keras-pose convert --preset {preset_name or 'NAME'} "
                "--checkpoint FILE --output DIR` and load DIR."
            )

    created = _missing_dirs(os.path.dirname(destination))
    try:
        return _download(url, destination, scheme, expected, progress, timeout, preset_name, min_speed, verify)
    except BaseException:
        _remove_empty_dirs(created)
        raise


class _PublishedDigest(urllib.request.HTTPRedirectHandler):
    """Follows redirects like urllib, keeping the sha256 a hop published (`X-Linked-Etag`).

    The Hugging Face Hub answers `/resolve/` with a redirect to its CDN whose
    `X-Linked-Etag` is the file's LFS sha256 (quoted); later hops do not
    repeat it.
    """

    def __init__(self):
        super().__init__()
        self.sha256 = None

    def note(self, headers):
        value = (headers.get("X-Linked-Etag") or "").strip()
        value = value[2:] if value.startswith("W/") else value
        value = value.strip('"').lower()
        if self.sha256 is None and re.fullmatch(r"[0-9a-f]{64}", value):
            self.sha256 = value

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self.note(headers)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _published_expected(expected, published):
    """The digest to check: the caller's full one, else the server's (when it agrees with a caller's prefix)."""
    if published is None or (expected is not None and len(expected) == 64):
        return expected, False
    if expected is not None and not published.startswith(expected):
        return expected, False  # the prefix check reports the mismatch
    return published, True


def _download(url, destination, scheme, expected, progress, timeout, preset_name, min_speed, verify):
    request = urllib.request.Request(url, headers={"User-Agent": _user_agent()})
    published = _PublishedDigest()
    try:
        response = urllib.request.build_opener(published).open(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise DownloadError(
            f"Could not download {url}: HTTP {e.code} {e.reason}. {_fix_hint(preset_name)}"
        ) from None
    except urllib.error.URLError as e:
        reason = e.reason
        if scheme == "file":
            raise DownloadError(f"Could not read {url}: {reason}. Check that the file exists.") from None
        raise DownloadError(
            f"Could not download {url}: {reason} (no network?). {_fix_hint(preset_name)}"
        ) from None
    except (socket.timeout, TimeoutError, OSError) as e:
        raise DownloadError(f"Could not download {url}: {e}. {_fix_hint(preset_name)}") from None

    with response:
        if scheme != "file":
            published.note(response.headers)
        expected, from_server = _published_expected(expected, published.sha256)
        content_type = (response.headers.get("Content-Type") or "").lower() if scheme != "file" else ""
        if content_type.startswith("text/html") and not destination.lower().endswith((".html", ".htm")):
            raise DownloadError(
                f"{url} returned a web page (Content-Type {content_type}), not the checkpoint file. "
                "The link probably needs a browser or a login. " + _fix_hint(preset_name)
            )
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        show = bool(progress) and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
        bar = _progress_bar(total, os.path.basename(destination), show)
        digest = hashlib.sha256()
        # read1 returns what has arrived (at most _CHUNK bytes) instead of
        # waiting for a full chunk, so `received` counts every byte that came
        # before a failing read.
        read = getattr(response, "read1", None) or response.read
        received = 0
        window_start, window_bytes = time.monotonic(), 0
        try:
            with atomic_write(destination, "wb") as f:
                while True:
                    try:
                        chunk = read(_CHUNK)
                    except (socket.timeout, TimeoutError, OSError) as e:
                        raise DownloadError(
                            f"Download of {url} failed after {_size_text(received)}: {str(e) or type(e).__name__}. "
                            + _fix_hint(preset_name)
                        ) from None
                    if not chunk:
                        break
                    f.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    window_bytes += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                    elapsed = time.monotonic() - window_start
                    if min_speed and elapsed >= timeout:
                        if window_bytes < min_speed * elapsed:
                            raise DownloadError(
                                f"Download of {url} is too slow: {window_bytes} bytes in the last {elapsed:.0f} s "
                                f"(less than {min_speed} bytes/s) after {_size_text(received)} in all; it was "
                                "aborted and nothing was kept. The server may be overloaded: retry later. "
                                + _fix_hint(preset_name)
                            )
                        window_start, window_bytes = time.monotonic(), 0
                if total is not None and received != total:
                    raise DownloadError(
                        f"Download of {url} is incomplete: got {received} of {total} bytes. "
                        + _fix_hint(preset_name)
                    )
                actual = digest.hexdigest()
                if expected is not None and not sha256_matches(actual, expected):
                    raise DownloadError(
                        f"sha256 mismatch for {url}: expected {expected}"
                        + (" (prefix)" if len(expected) < 64 else "")
                        + (" (published by the server in its X-Linked-Etag header)" if from_server else "")
                        + f", got {actual}. The file was discarded. The download may be corrupt or the "
                        "file changed upstream; retry, or download it by hand and check it."
                    )
                if verify is not None:
                    f.flush()
                    try:
                        verify(f.name)
                    except Exception as e:  # noqa: BLE001 - any rejection discards the file
                        checked = [what for what, known in (("length", total is not None),
                                                            ("digest", expected is not None)) if known]
                        if checked:  # the bytes are the ones the server meant: the file itself is not a checkpoint
                            cause = f"{received} bytes, their {' and '.join(checked)} as the server sent"
                            hint = "check the URL: it does not serve a checkpoint keras-pose can read."
                        else:
                            cause = f"{received} bytes, no length or digest to check them against"
                            hint = "If the connection dropped, retry; otherwise check the URL."
                        raise DownloadError(
                            f"{url} did not arrive as a complete checkpoint ({cause}): {e} Nothing was kept. {hint}"
                        ) from None
        finally:
            if bar is not None:
                bar.close()
    return destination, actual


def digest_path(path):
    """Where `cached_download` records the full sha256 of the cached file `path`."""
    return os.fspath(path) + DIGEST_SUFFIX


def recorded_sha256(path):
    """The full sha256 recorded beside a cached download, or None."""
    try:
        with open(digest_path(path)) as f:
            value = f.read().split()[0].strip().lower()
    except (OSError, IndexError):
        return None
    return value if re.fullmatch(r"[0-9a-f]{64}", value) else None


def record_sha256(path, digest):
    """Record `digest` (full sha256) beside the cached file `path`."""
    with atomic_write(digest_path(path), "w") as f:
        f.write(f"{digest}  {os.path.basename(path)}\n")


def discard_cached(path):
    """Remove a cached download, its recorded digest and its folder if emptied."""
    for name in (path, digest_path(path)):
        with contextlib.suppress(FileNotFoundError):
            os.remove(name)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(os.path.abspath(path)))


def cached_download(
    url, file_name=None, sha256=None, subdir="checkpoints", progress=True, preset_name=None, verify=None
):
    """Download `url` into the cache once and return the local path.

    The file goes to `cache_dir()/<subdir>/<key>/<file_name>`, where `key` is
    derived from the URL, so files with the same name from different sources
    never collide and the extra files of one source (e.g. an HF
    `config.json`) can sit beside its checkpoint via `cached_path_for`.

    The full sha256 of a downloaded file is recorded beside it
    (`<file_name>.sha256`). A file already there is reused if it matches the
    recorded full digest (and `sha256`, full or prefix); a file without a
    recorded digest is reused if it matches `sha256` or no digest is given.
    Otherwise it is downloaded again.

    Args:
        verify: passed to `download_file` (used where `sha256` is not a
            full digest): rejects an incomplete file before it is cached.
    """
    path = cached_path_for(url, file_name=file_name, subdir=subdir)
    # The cache is keras-pose's own: also clean temporaries of older versions.
    clean_stale_temporaries(os.path.dirname(path), legacy=True)
    if os.path.isfile(path):
        recorded = recorded_sha256(path)
        if recorded is not None:
            if (sha256 is None or sha256_matches(recorded, sha256)) and sha256_file(path) == recorded:
                return path
        elif sha256 is None:
            return path  # cached before digests were recorded; conversion checks it parses
        else:
            actual = sha256_file(path)
            if sha256_matches(actual, sha256):
                record_sha256(path, actual)
                return path
    full = sha256 is not None and len(str(sha256).strip()) == 64
    _, digest = _download_checked(
        url, path, sha256, progress, 60, preset_name, MIN_SPEED, None if full else verify
    )
    record_sha256(path, digest)
    return path


def url_key(url):
    """A short stable folder name for a URL (16 hex chars of its sha1)."""
    return hashlib.sha1(url.encode("utf-8")).hexdigest()[:16]


def url_file_name(url):
    """The unquoted last path component of a URL ("checkpoint" if empty)."""
    path = urllib.parse.urlparse(url).path
    name = urllib.parse.unquote(path.rstrip("/").rsplit("/", 1)[-1])
    name = name.replace(os.sep, "_")
    return name or "checkpoint"


def cached_path_for(url, file_name=None, subdir="checkpoints", folder_url=None):
    """Cache path of the file from `url`.

    Args:
        url: the file's URL.
        file_name: local name (default: the URL's last path component).
        subdir: cache sub-folder.
        folder_url: URL whose key names the folder (default `url`); pass a
            checkpoint's URL to place its extra files beside it.
    """
    return os.path.join(cache_dir(), subdir, url_key(folder_url or url), file_name or url_file_name(url))


def copy_file_atomic(source, destination):
    """Copy a local file to `destination` atomically."""
    with open(source, "rb") as src, atomic_write(destination, "wb") as dst:
        shutil.copyfileobj(src, dst, _CHUNK)
    return os.path.abspath(destination)
