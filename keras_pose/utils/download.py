"""Checked, atomic downloads of reference checkpoints.

`download_file` fetches an `http(s)://` or `file://` URL into a local file:
the bytes stream into a temporary file beside the destination (with a tqdm
progress bar on a terminal), the sha256 is checked, and only then is the file
moved into place. A failed or interrupted download never leaves a partial
file behind.

Environment:
    KERAS_POSE_HOME: root of the keras-pose cache (default
        `~/.cache/keras_pose`). Downloaded checkpoints live in
        `<root>/checkpoints/`, converted presets in `<root>/presets/`.
    KERAS_POSE_OFFLINE: "1" / "true" / "yes" forbids network access: any
        `http(s)://` download raises `DownloadError` at once (`file://` URLs
        and files already in the cache still work).
"""

import hashlib
import os
import re
import shutil
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request

from keras_pose.errors import DownloadError
from keras_pose.utils.file_utils import atomic_write

_CHUNK = 1 << 20  # bytes per read
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


def download_file(url, destination, sha256=None, progress=True, timeout=60, preset_name=None):
    """Download `url` to the file `destination`, checked and atomically.

    Args:
        url: `http://`, `https://` or `file://` URL.
        destination: path of the file to create. Its folder is created; an
            existing file is replaced only once the new one is complete and
            verified.
        sha256: expected digest: the full 64-hex sha256 (must match exactly)
            or a published prefix of 8 to 63 hex characters (must match the
            start of the digest, e.g. mmpose's file-name hash). None skips
            the check.
        progress: show a tqdm progress bar (only when stderr is a terminal).
        timeout: socket timeout in seconds for connecting and each read.
        preset_name: used in error messages to name the fix.

    Returns:
        The absolute destination path.

    Raises:
        DownloadError: offline mode, a share link that needs a browser, an
            HTTP error, no network, a timeout, an HTML page instead of a
            file, or a sha256 mismatch (the message gives the expected and
            actual digests). Nothing is left at `destination` or beside it.
    """
    if not is_url(url):
        raise DownloadError(f"Not a downloadable URL: {url!r}; expected http://, https:// or file://.")
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

    request = urllib.request.Request(url, headers={"User-Agent": _user_agent()})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
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
        received = 0
        try:
            with atomic_write(destination, "wb") as f:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except (socket.timeout, TimeoutError, OSError) as e:
                        raise DownloadError(
                            f"Download of {url} failed after {received} bytes: {e}. {_fix_hint(preset_name)}"
                        ) from None
                    if not chunk:
                        break
                    f.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
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
                        + f", got {actual}. The file was discarded. The download may be corrupt or the "
                        "file changed upstream; retry, or download it by hand and check it."
                    )
        finally:
            if bar is not None:
                bar.close()
    return destination


def cached_download(url, file_name=None, sha256=None, subdir="checkpoints", progress=True, preset_name=None):
    """Download `url` into the cache once and return the local path.

    The file goes to `cache_dir()/<subdir>/<key>/<file_name>`, where `key` is
    derived from the URL, so files with the same name from different sources
    never collide and the extra files of one source (e.g. an HF
    `config.json`) can sit beside its checkpoint via `cached_path_for`.
    A file already there is reused if it matches `sha256` (or if no digest
    is given); a mismatching one is downloaded again.
    """
    path = cached_path_for(url, file_name=file_name, subdir=subdir)
    if os.path.isfile(path):
        if sha256 is None or sha256_matches(sha256_file(path), sha256):
            return path
    return download_file(url, path, sha256=sha256, progress=progress, preset_name=preset_name)


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
