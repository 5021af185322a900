"""A small per-user cache for data derived from files: parsed rules TOML, tflite schema names.

`cached(name, sources, build)` returns `build()`, from disk when a previous process already built
it from the same sources. Parsing the four rules files costs ~7 ms per process (tomllib import +
parse) and reading one of the tflite binding's generated sources ~2 ms (`ast` import + parse);
a hit costs 0.05-0.15 ms (a few stat calls, one small file read, `marshal.loads`), and neither
parser is imported.

What a hit requires (the key, checked before anything is unmarshalled): the same coralcheck
version, Python implementation and version (the marshal format), `salt`, and for every source
its resolved path, size and mtime_ns. A source modified less than 2 s before the entry would be
written is not cached, because a second change within the file system's timestamp granularity
could keep mtime and size (git's "racily clean" problem). Every entry carries a CRC-32 of its
payload, so a truncated, torn or otherwise corrupt file is a miss.

The cache is never trusted more than the sources: any problem with it (disabled, HOME unset,
unreadable, corrupt, wrong shape per `validate`, a concurrent writer, read-only or full disk,
a directory or symlink where the entry should be, another owner) means building from the
sources, silently. Only the exceptions of `build()` itself propagate.

Where (`location()`): `$CORALCHECK_CACHE_DIR` if set (must be absolute after `~` expansion);
else `$XDG_CACHE_HOME/coralcheck` (when absolute) or `~/.cache/coralcheck` on Linux and macOS,
`%LOCALAPPDATA%\\coralcheck\\Cache` on Windows. `CORALCHECK_NO_CACHE` set to anything but ""
or "0" disables reading and writing. Entries live in a subdirectory per Python (`cpython-311`),
one file per name and source location, replaced in place when stale; a directory coralcheck
creates gets a CACHEDIR.TAG (https://bford.info/cachedir/, so backup tools skip it) and a README
saying that deleting it is safe.

Trust: `marshal.loads` is not safe on hostile bytes (it can crash some Python versions), so on
POSIX the cache is used only when its directory belongs to the current user and is not
world-writable, and the per-Python subdirectory (created 0o700) is not writable by group or
others; entries are 0o600, opened without following symlinks. Writes go to a unique temporary
file in that subdirectory, then `os.replace`: readers see the old entry or the new one, never
half of one, and nothing is ever written outside the cache directory.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import stat
import sys
import time
import zlib  # for crc32; the interpreter's start-up has usually imported it already (site)
from typing import TYPE_CHECKING, Any, TypeVar

from coralcheck._version import __version__

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["cached", "disabled", "location"]

T = TypeVar("T")

_MAGIC = b"coralcheck-datacache 1\n"
_HEADER_INT = 4  # bytes of each length / CRC field, little-endian
_MAX_ENTRY_BYTES = 64 << 20  # a bigger file is not ours
_RACY_NS = 2_000_000_000  # sources changed more recently than this are not cached
_MAX_DEPTH = 64  # plain data nested deeper than this is not cached
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
_PLAIN_SCALARS = (str, int, float, bool, type(None), bytes)
_POSIX = os.name == "posix"
# O_NOFOLLOW: a symlink planted at the entry is an error, never followed. O_NONBLOCK: a FIFO
# planted there cannot hang the open. O_BINARY: Windows would translate newlines otherwise.
_O_COMMON = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
_O_READ = os.O_RDONLY | _O_COMMON | getattr(os, "O_NONBLOCK", 0)
_O_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_COMMON

_TAG = (
    b"Signature: 8a477f597d28d172789f06886806bc55\n"
    b"# This file is a cache directory tag created by coralcheck.\n"
    b"# For information about cache directory tags, see https://bford.info/cachedir/\n"
)
_README = (
    b"This directory is coralcheck's cache of data derived from its rules files and the tflite\n"
    b"schema, to start faster. Deleting it is safe: coralcheck rebuilds what it needs.\n"
    b"Set CORALCHECK_NO_CACHE=1 to disable it, CORALCHECK_CACHE_DIR to move it.\n"
)


def disabled() -> bool:
    """True when `CORALCHECK_NO_CACHE` is set to anything but "" or "0"."""
    return os.environ.get("CORALCHECK_NO_CACHE", "") not in ("", "0")


def location() -> str | None:
    """The cache directory the environment selects (not created), or None: disabled, or no
    usable absolute location (e.g. HOME unset and no password entry)."""
    if disabled():
        return None
    explicit = os.environ.get("CORALCHECK_CACHE_DIR")
    if explicit:
        path = os.path.expanduser(explicit)
        # Relative would mean "the working directory", which is the user's project.
        return path if os.path.isabs(path) else None
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA", "")
        return os.path.join(base, "coralcheck", "Cache") if os.path.isabs(base) else None
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec says relative values are to be ignored
        return os.path.join(xdg, "coralcheck")
    home = os.path.expanduser("~")
    return os.path.join(home, ".cache", "coralcheck") if os.path.isabs(home) else None


def cached(
    name: str,
    sources: Sequence[str | os.PathLike[str]],
    build: Callable[[], T],
    *,
    salt: str = "",
    validate: Callable[[Any], bool] | None = None,
) -> T:
    """`build()`, or the value a previous `build()` for the same `name` and unchanged `sources`
    stored.

    `build()` must return plain data: dict, list, tuple, str, int, float, bool, None, bytes,
    nested; anything else is returned without being cached. `name` (letters, digits, ".", "_",
    "-") names the entry; `salt` invalidates it when the deriving code changes shape (pass the
    deriving module's own file among `sources` to invalidate on any edit of it). `validate`, if
    given, must accept a loaded value (else: rebuild). A source that cannot be stat'ed (missing,
    or not a file system path such as a zip member) means no caching for this call.
    """
    if not name or len(name) > 100 or name[0] == "." or not _NAME_CHARS.issuperset(name):
        raise ValueError(f"invalid cache entry name {name!r}")
    try:
        entry = _Entry.for_sources(name, sources, salt)
    except Exception:  # no usable location or sources: just build
        entry = None
    if entry is not None:
        try:
            found, value = entry.load()
            if found and (validate is None or validate(value)):
                return value  # type: ignore[no-any-return]
        except Exception:  # corrupt or unreadable: the sources decide
            pass
    value = build()
    if entry is not None:
        with contextlib.suppress(Exception):  # read-only, full, raced: the value is right anyway
            entry.store(value, sources, salt)
    return value


class _Entry:
    """One cache file: where it is and the key it must carry."""

    __slots__ = ("directory", "key", "path", "root", "sources_mtime_ns")

    def __init__(
        self, root: str, directory: str, path: str, key: bytes, sources_mtime_ns: int
    ) -> None:
        self.root = root
        self.directory = directory
        self.path = path
        self.key = key
        self.sources_mtime_ns = sources_mtime_ns

    @classmethod
    def for_sources(
        cls, name: str, sources: Sequence[str | os.PathLike[str]], salt: str
    ) -> _Entry | None:
        root = location()
        if root is None:
            return None
        key, identity, newest = _key(sources, salt)
        directory = os.path.join(root, _python_tag())
        # One file per name and source location (two installs of coralcheck or of tflite keep
        # their own entries); content changes replace that file instead of adding one.
        path = os.path.join(directory, f"{name}-{zlib.crc32(identity):08x}.marshal")
        return cls(root, directory, path, key, newest)

    def load(self) -> tuple[bool, Any]:
        if not (_trusted_dir(self.root, strict=False) and _trusted_dir(self.directory)):
            return False, None
        fd = os.open(self.path, _O_READ)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_ENTRY_BYTES:
                return False, None
            if _POSIX and info.st_uid != os.geteuid():
                return False, None
            data = _read_all(fd, info.st_size)
        finally:
            os.close(fd)
        payload = _payload(data, self.key)
        if payload is None:
            return False, None
        return True, marshal.loads(payload)

    def store(self, value: Any, sources: Sequence[str | os.PathLike[str]], salt: str) -> None:
        if time.time_ns() - self.sources_mtime_ns < _RACY_NS or not _plain(value, 0):
            return
        # The sources may have changed while build() read them: store only under the key they
        # still have, so the entry never claims content it was not built from.
        if _key(sources, salt)[0] != self.key:
            return
        payload = marshal.dumps(value)
        if not _ensure_dirs(self.root, self.directory):
            return
        _write_atomically(
            self.directory,
            self.path,
            b"".join(
                (
                    _MAGIC,
                    len(self.key).to_bytes(_HEADER_INT, "little"),
                    self.key,
                    zlib.crc32(payload).to_bytes(_HEADER_INT, "little"),
                    len(payload).to_bytes(_HEADER_INT, "little"),
                    payload,
                )
            ),
        )


def _python_tag() -> str:
    """`cpython-311`: entries of different Pythons (different marshal formats) live apart."""
    major, minor = sys.version_info[:2]
    return sys.implementation.cache_tag or f"{sys.implementation.name}-{major}{minor}"


def _key(sources: Sequence[str | os.PathLike[str]], salt: str) -> tuple[bytes, bytes, int]:
    """(full key, source identity, newest source mtime_ns). Raises OSError/TypeError when a
    source cannot be resolved or stat'ed."""
    paths = [os.path.realpath(os.fspath(source)) for source in sources]
    parts = [
        f"coralcheck {__version__}",
        f"{sys.implementation.name} {sys.version} marshal {marshal.version}",
        f"salt {salt!r}",
    ]
    newest = 0
    for path in paths:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path} is not a file")
        parts.append(f"{path}\0{info.st_size}\0{info.st_mtime_ns}")
        newest = max(newest, info.st_mtime_ns)
    identity = "\0".join(paths)
    encode = os.fsencode  # paths may hold undecodable bytes; keep them exact
    return encode("\n".join(parts)), encode(identity), newest


def _payload(data: bytes, key: bytes) -> bytes | None:
    """The marshal payload of an entry file if it carries `key` and its CRC matches."""
    if not data.startswith(_MAGIC):
        return None
    at = len(_MAGIC)
    key_len = int.from_bytes(data[at : at + _HEADER_INT], "little")
    at += _HEADER_INT
    if key_len != len(key) or data[at : at + key_len] != key:
        return None
    at += key_len
    crc = int.from_bytes(data[at : at + _HEADER_INT], "little")
    size = int.from_bytes(data[at + _HEADER_INT : at + 2 * _HEADER_INT], "little")
    payload = data[at + 2 * _HEADER_INT :]
    if len(payload) != size or zlib.crc32(payload) != crc:
        return None
    return payload


def _plain(value: Any, depth: int) -> bool:
    """True when `value` is plain data. Exact types: marshal refuses or flattens subclasses
    (a NamedTuple, a str subclass), and it would store sets and code objects, not data here."""
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return True
    if depth >= _MAX_DEPTH:
        return False
    if kind is list or kind is tuple:
        return all(_plain(item, depth + 1) for item in value)
    if kind is dict:
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    return False


def _trusted_dir(path: str, *, strict: bool = True) -> bool:
    """`path` is a directory this user owns that no other user can write into (strict: not
    writable by group or others; else: not world-writable). Windows: per-user by its ACLs."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode):
        return False
    if not _POSIX:
        return True
    unsafe = (stat.S_IWGRP | stat.S_IWOTH) if strict else stat.S_IWOTH
    return info.st_uid == os.geteuid() and not info.st_mode & unsafe


def _ensure_dirs(root: str, directory: str) -> bool:
    """Create the cache root and its per-Python subdirectory (0o700) where missing, tag the
    topmost one created, and tell whether both can be trusted (nothing is created in an
    untrusted root)."""
    created_root = _make_dir(root)
    if not _trusted_dir(root, strict=False):
        return False
    created = _make_dir(directory)
    if created_root or created:
        for file_name, content in (("CACHEDIR.TAG", _TAG), ("README", _README)):
            with contextlib.suppress(OSError):
                _write_new(os.path.join(root if created_root else directory, file_name), content)
    return _trusted_dir(directory)


def _make_dir(path: str) -> bool:
    """Create `path` (and missing parents); False if it exists already."""
    if os.path.lexists(path):
        return False
    try:
        os.makedirs(path, mode=0o700)
    except FileExistsError:  # a concurrent process made it
        return False
    return True


def _write_new(path: str, content: bytes) -> None:
    """Write a file that must not exist yet (no symlink followed, mode 0o600)."""
    fd = os.open(path, _O_CREATE, 0o600)
    try:
        _write_all(fd, content)
    finally:
        os.close(fd)


def _write_atomically(directory: str, path: str, content: bytes) -> None:
    """Replace `path` with `content`: a unique temporary file in the same directory, renamed over
    it. `os.replace` replaces a symlink at `path` instead of following it; a directory at
    `path` makes it fail, and the temporary file is removed."""
    temporary = os.path.join(
        directory, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    )
    try:
        _write_new(temporary, content)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _read_all(fd: int, size: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, max(size, 1 << 16))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _write_all(fd: int, content: bytes) -> None:
    view = memoryview(content)
    while view:
        view = view[os.write(fd, view) :]
