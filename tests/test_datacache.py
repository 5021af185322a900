"""coralcheck.datacache: a hit returns what the build returned, any change of a source, the
version, the Python or the salt rebuilds, and no problem with the cache directory is ever an
error or changes the value.

Every test points CORALCHECK_CACHE_DIR at its own tmp_path (the `cache` fixture); none touches
the real user cache.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, cli_env

from coralcheck import datacache
from coralcheck.datacache import cached, location

TAG = sys.implementation.cache_tag
HOUR_NS = 3600 * 10**9
VALUE = {"ops": [{"name": "CONV_2D", "since": (1, 0)}], "limits": {"x": 1.5, "y": None}, 7: True}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache location of this test's own (not created yet: coralcheck creates it)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("CORALCHECK_CACHE_DIR", str(root))
    monkeypatch.delenv("CORALCHECK_NO_CACHE", raising=False)
    return root


def old_file(path: Path, content: str, *, age_ns: int = HOUR_NS) -> Path:
    """A source file last modified `age_ns` ago (older than the racy-timestamp window)."""
    path.write_text(content, encoding="utf-8")
    then = time.time_ns() - age_ns
    os.utime(path, ns=(then, then))
    return path


class Builder:
    """A build function that counts its calls."""

    def __init__(self, value: Any = VALUE) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        return self.value


def entries(root: Path) -> list[Path]:
    directory = root / TAG
    return sorted(directory.glob("*.marshal")) if directory.is_dir() else []


def all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


# -- hits and misses ---------------------------------------------------------------------------


def test_second_call_is_a_hit_with_an_equal_value(cache: Path, tmp_path: Path) -> None:
    source = old_file(tmp_path / "rules.toml", "a = 1\n")
    build = Builder()
    first = cached("rules", [source], build)
    second = cached("rules", [source], build)
    assert build.calls == 1
    assert first == second == VALUE
    assert type(second["ops"][0]["since"]) is tuple  # marshal keeps tuples tuples
    [entry] = entries(cache)
    assert entry.name.startswith("rules-")
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE((cache / TAG).stat().st_mode) == 0o700
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700


def test_created_directory_is_tagged_and_explained(cache: Path, tmp_path: Path) -> None:
    cached("rules", [old_file(tmp_path / "r", "x")], Builder())
    tag = (cache / "CACHEDIR.TAG").read_bytes()
    assert tag.startswith(b"Signature: 8a477f597d28d172789f06886806bc55")
    readme = (cache / "README").read_text(encoding="utf-8")
    assert "coralcheck" in readme and "Deleting it is safe" in readme
    # Only the topmost directory coralcheck created carries them.
    assert not (cache / TAG / "CACHEDIR.TAG").exists()


def test_existing_directory_is_not_tagged(cache: Path, tmp_path: Path) -> None:
    cache.mkdir(mode=0o700)
    (cache / "mine.txt").write_text("the user's own file")
    cached("rules", [old_file(tmp_path / "r", "x")], Builder())
    assert not (cache / "CACHEDIR.TAG").exists()  # it would hide mine.txt from backups
    assert (cache / TAG / "CACHEDIR.TAG").exists()
    assert len(entries(cache)) == 1


_PROCESS = """
import json, sys
from coralcheck.datacache import cached
source, log = sys.argv[1], sys.argv[2]
def build():
    with open(log, "a") as f:
        f.write("built\\n")
    return {"numbers": list(range(5)), "pair": (1, "two"), "nested": {"k": [None, 2.5]}}
print(json.dumps(cached("proc", [source], build)))
"""


def _run(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env if env is not None else cli_env(),
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_hit_across_fresh_processes(cache: Path, tmp_path: Path) -> None:
    source = old_file(tmp_path / "source.py", "X = 1\n")
    log = tmp_path / "log"
    expected = {"numbers": [0, 1, 2, 3, 4], "pair": [1, "two"], "nested": {"k": [None, 2.5]}}
    outputs = [json.loads(_run(_PROCESS, str(source), str(log))) for _ in range(3)]
    assert outputs == [expected] * 3
    assert log.read_text().count("built") == 1  # the key is stable across processes
    env = cli_env() | {"CORALCHECK_NO_CACHE": "1"}
    assert json.loads(_run(_PROCESS, str(source), str(log), env=env)) == expected
    assert log.read_text().count("built") == 2


# -- what invalidates --------------------------------------------------------------------------


def test_mtime_change_rebuilds_and_replaces_the_entry(cache: Path, tmp_path: Path) -> None:
    source = old_file(tmp_path / "r.toml", "value = 1\n")
    assert cached("r", [source], lambda: source.read_text()) == "value = 1\n"
    old_file(source, "value = 2\n", age_ns=2 * HOUR_NS)  # same size, other mtime
    build = Builder("rebuilt")
    assert cached("r", [source], build) == "rebuilt"
    assert build.calls == 1
    assert cached("r", [source], build) == "rebuilt"
    assert build.calls == 1
    assert len(entries(cache)) == 1  # replaced, not accumulated


def test_size_change_with_same_mtime_rebuilds(cache: Path, tmp_path: Path) -> None:
    source = old_file(tmp_path / "r.toml", "value = 1\n")
    mtime_ns = source.stat().st_mtime_ns
    assert cached("r", [source], lambda: "first") == "first"
    source.write_text("value = 12\n")
    os.utime(source, ns=(mtime_ns, mtime_ns))
    assert source.stat().st_mtime_ns == mtime_ns
    assert cached("r", [source], lambda: "second") == "second"
    assert len(entries(cache)) == 1


def test_any_source_of_several_invalidates(cache: Path, tmp_path: Path) -> None:
    sources = [old_file(tmp_path / f"s{i}", f"{i}") for i in range(3)]
    build = Builder()
    cached("multi", sources, build)
    cached("multi", sources, build)
    assert build.calls == 1
    old_file(sources[2], "changed")
    cached("multi", sources, build)
    assert build.calls == 2


def test_version_change_rebuilds(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = old_file(tmp_path / "r", "x")
    build = Builder()
    cached("r", [source], build)
    monkeypatch.setattr(datacache, "__version__", "999.0.0")
    cached("r", [source], build)
    cached("r", [source], build)
    assert build.calls == 2
    assert len(entries(cache)) == 1


def test_python_version_change_rebuilds(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = old_file(tmp_path / "r", "x")
    build = Builder()
    cached("r", [source], build)
    monkeypatch.setattr(sys, "version", sys.version + " (another build)")
    cached("r", [source], build)
    assert build.calls == 2


def test_salt_change_rebuilds(cache: Path, tmp_path: Path) -> None:
    source = old_file(tmp_path / "r", "x")
    assert cached("r", [source], lambda: "a", salt="format 1") == "a"
    assert cached("r", [source], lambda: "b", salt="format 2") == "b"
    assert cached("r", [source], lambda: "c", salt="format 2") == "b"
    assert len(entries(cache)) == 1


def test_source_moved_elsewhere_is_another_entry(cache: Path, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = old_file(tmp_path / "a" / "r", "x")
    second = old_file(tmp_path / "b" / "r", "x")
    assert cached("r", [first], lambda: "from a") == "from a"
    assert cached("r", [second], lambda: "from b") == "from b"
    assert cached("r", [first], lambda: "rebuilt") == "from a"  # two installs, two entries
    assert len(entries(cache)) == 2


@pytest.mark.skipif(os.name != "posix", reason="POSIX file system")
def test_symlinked_source_is_keyed_by_its_target(cache: Path, tmp_path: Path) -> None:
    target = old_file(tmp_path / "target", "x")
    link = tmp_path / "link"
    link.symlink_to(target)
    assert cached("r", [link], lambda: "built") == "built"
    assert cached("r", [target], lambda: "rebuilt") == "built"


def test_recently_modified_source_is_not_cached(cache: Path, tmp_path: Path) -> None:
    # Within the file system's timestamp granularity a second edit could keep mtime and size.
    source = tmp_path / "fresh"
    source.write_text("x")
    build = Builder()
    cached("r", [source], build)
    cached("r", [source], build)
    assert build.calls == 2
    assert entries(cache) == []


def test_source_changed_during_build_is_not_stored(cache: Path, tmp_path: Path) -> None:
    source = old_file(tmp_path / "r", "x")

    def build() -> str:
        old_file(source, "changed while building", age_ns=2 * HOUR_NS)
        return "from some version of the file"

    cached("r", [source], build)
    assert entries(cache) == []


# -- a damaged cache is a miss -----------------------------------------------------------------


def _damage(entry: Path, how: str) -> None:
    data = entry.read_bytes()
    if how == "empty":
        entry.write_bytes(b"")
    elif how == "truncated":
        entry.write_bytes(data[: len(data) - 7])
    elif how == "header only":
        entry.write_bytes(data[: len(datacache._MAGIC) + 2])
    elif how == "garbage":
        entry.write_bytes(bytes(range(256)) * 4)
    elif how == "flipped payload byte":
        entry.write_bytes(data[:-3] + bytes([data[-3] ^ 0x55]) + data[-2:])
    elif how == "bad marshal, right checksum":
        # A well-formed header with the right key and CRC around bytes marshal rejects.
        payload = b"\xff\x00\x13garbage"
        at = len(datacache._MAGIC)
        key_end = at + 4 + int.from_bytes(data[at : at + 4], "little")
        header = data[:key_end]
        crc = datacache.zlib.crc32(payload).to_bytes(4, "little")
        entry.write_bytes(header + crc + len(payload).to_bytes(4, "little") + payload)
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    [
        "empty",
        "truncated",
        "header only",
        "garbage",
        "flipped payload byte",
        "bad marshal, right checksum",
    ],
)
def test_damaged_entry_rebuilds_and_is_rewritten(cache: Path, tmp_path: Path, how: str) -> None:
    source = old_file(tmp_path / "r", "x")
    cached("r", [source], Builder())
    [entry] = entries(cache)
    _damage(entry, how)
    build = Builder()
    assert cached("r", [source], build) == VALUE
    assert build.calls == 1
    assert cached("r", [source], build) == VALUE  # rewritten: a hit again
    assert build.calls == 1


def test_bad_marshal_with_right_checksum_really_reaches_marshal(
    cache: Path, tmp_path: Path
) -> None:
    # Guards the test above: the crafted entry must pass the key and CRC checks.
    source = old_file(tmp_path / "r", "x")
    cached("r", [source], Builder())
    [entry] = entries(cache)
    _damage(entry, "bad marshal, right checksum")
    key = datacache._Entry.for_sources("r", [source], "").key  # type: ignore[union-attr]
    assert datacache._payload(entry.read_bytes(), key) == b"\xff\x00\x13garbage"


def test_value_failing_validate_rebuilds(cache: Path, tmp_path: Path) -> None:
    source = old_file(tmp_path / "r", "x")
    cached("r", [source], lambda: {"old": "shape"})
    build = Builder(["new", "shape"])
    assert cached("r", [source], build, validate=lambda v: type(v) is list) == ["new", "shape"]
    assert cached("r", [source], build, validate=lambda v: type(v) is list) == ["new", "shape"]
    assert build.calls == 1


def test_validate_that_raises_is_a_miss(cache: Path, tmp_path: Path) -> None:
    source = old_file(tmp_path / "r", "x")
    cached("r", [source], lambda: {"a": 1})
    assert cached("r", [source], lambda: {"a": 2}, validate=lambda v: v["missing"]) == {"a": 2}


# -- hostile or broken file system -------------------------------------------------------------


def _entry_path(cache: Path, source: Path) -> Path:
    entry = datacache._Entry.for_sources("r", [source], "")
    assert entry is not None
    return Path(entry.path)


def test_directory_at_the_entry_path(cache: Path, tmp_path: Path) -> None:
    source = old_file(tmp_path / "r", "x")
    target = _entry_path(cache, source)
    target.mkdir(parents=True)
    build = Builder()
    assert cached("r", [source], build) == VALUE
    assert cached("r", [source], build) == VALUE
    assert build.calls == 2
    assert target.is_dir() and list(target.iterdir()) == []
    assert not list((cache / TAG).glob(".*.tmp"))  # the failed write cleaned up


@pytest.mark.skipif(os.name != "posix", reason="POSIX file system")
def test_symlink_at_the_entry_is_neither_read_nor_written_through(
    cache: Path, tmp_path: Path
) -> None:
    source = old_file(tmp_path / "r", "x")
    cached("r", [source], Builder("genuine entry"))
    [entry] = entries(cache)
    elsewhere = tmp_path / "elsewhere"
    entry.rename(elsewhere)  # a valid entry, but reached through a link
    entry.symlink_to(elsewhere)
    genuine = elsewhere.read_bytes()
    build = Builder("rebuilt")
    assert cached("r", [source], build) == "rebuilt"
    assert build.calls == 1  # the link was not followed on reading
    assert elsewhere.read_bytes() == genuine  # nor on writing
    assert not entry.is_symlink() and entry.is_file()
    assert cached("r", [source], build) == "rebuilt"
    assert build.calls == 1


@pytest.mark.skipif(os.name != "posix", reason="POSIX file system")
def test_fifo_at_the_entry_does_not_hang(cache: Path, tmp_path: Path) -> None:
    source = old_file(tmp_path / "r", "x")
    target = _entry_path(cache, source)
    target.parent.mkdir(parents=True, mode=0o700)
    os.mkfifo(target)
    script = (
        "import sys; from coralcheck.datacache import cached; "
        "print(cached('r', [sys.argv[1]], lambda: 'value'))"
    )
    # A blocking open of a FIFO would hang until the timeout.
    assert _run(script, str(source), env=cli_env()) == "value\n"


def test_cache_location_is_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    monkeypatch.setenv("CORALCHECK_CACHE_DIR", str(blocker / "cache"))
    build = Builder()
    assert cached("r", [old_file(tmp_path / "r", "x")], build) == VALUE
    assert blocker.read_text() == "not a directory"
    assert capsys.readouterr() == ("", "")


def test_full_disk_returns_the_value_and_leaves_nothing(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = old_file(tmp_path / "r", "x")
    real_write = os.write

    def full(fd: int, data: Any) -> int:
        if bytes(data[: len(datacache._MAGIC)]) == datacache._MAGIC:  # entries, not the tag
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    build = Builder()
    assert cached("r", [source], build) == VALUE
    assert cached("r", [source], build) == VALUE
    assert build.calls == 2
    assert entries(cache) == []
    assert not list((cache / TAG).glob(".*"))  # no temporary file left behind


def test_read_only_file_system_returns_the_value(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = old_file(tmp_path / "r", "x")

    def read_only(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "makedirs", read_only)
    build = Builder()
    assert cached("r", [source], build) == VALUE
    assert build.calls == 1
    assert not cache.exists()


def _unprivileged() -> list[str]:
    """A command prefix under which file permissions apply (root ignores them otherwise)."""
    if os.name != "posix" or os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_read_only_directory_returns_the_value_and_writes_nothing(
    cache: Path, tmp_path: Path
) -> None:
    source = old_file(tmp_path / "r", "x")
    cache.mkdir(mode=0o500)
    script = (
        "import sys; from coralcheck.datacache import cached; "
        "print(cached('r', [sys.argv[1]], lambda: {'v': [1, 2]}))"
    )
    try:
        result = subprocess.run(
            [*_unprivileged(), sys.executable, "-c", script, str(source)],
            capture_output=True,
            text=True,
            timeout=60,
            env=cli_env(),
            cwd=REPO,
            check=False,
        )
        assert (result.returncode, result.stdout, result.stderr) == (0, "{'v': [1, 2]}\n", "")
        assert list(cache.iterdir()) == []
    finally:
        cache.chmod(0o700)


@pytest.mark.skipif(os.name != "posix", reason="POSIX ownership")
def test_world_writable_directory_is_not_used(cache: Path, tmp_path: Path) -> None:
    source = old_file(tmp_path / "r", "x")
    cached("r", [source], Builder("written while trusted"))
    cache.chmod(0o777)
    try:
        build = Builder("rebuilt")
        assert cached("r", [source], build) == "rebuilt"  # the planted entry is not read
        assert cached("r", [source], build) == "rebuilt"
        assert build.calls == 2
    finally:
        cache.chmod(0o700)


@pytest.mark.skipif(os.name != "posix", reason="POSIX ownership")
def test_group_writable_subdirectory_is_not_used(cache: Path, tmp_path: Path) -> None:
    source = old_file(tmp_path / "r", "x")
    cached("r", [source], Builder("written while trusted"))
    (cache / TAG).chmod(0o770)
    build = Builder("rebuilt")
    assert cached("r", [source], build) == "rebuilt"
    assert build.calls == 1


@pytest.mark.skipif(os.name != "posix", reason="POSIX ownership")
def test_group_writable_root_is_still_used(cache: Path, tmp_path: Path) -> None:
    # Debian-style umask 002 makes a user's own directories group-writable; the per-Python
    # subdirectory, created 0o700 by coralcheck, is what keeps entries private.
    source = old_file(tmp_path / "r", "x")
    cache.mkdir(mode=0o700)
    cache.chmod(0o775)
    build = Builder()
    cached("r", [source], build)
    cached("r", [source], build)
    assert build.calls == 1


@pytest.mark.skipif(os.name != "posix", reason="POSIX ownership")
def test_directory_of_another_user_is_not_used(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = old_file(tmp_path / "r", "x")
    cached("r", [source], Builder("written by the owner"))
    before = all_files(cache)
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(cache).st_uid + 1)
    build = Builder("rebuilt")
    assert cached("r", [source], build) == "rebuilt"
    assert cached("r", [source], build) == "rebuilt"
    assert build.calls == 2
    assert all_files(cache) == before  # and nothing was written into it


@pytest.mark.skipif(os.name != "posix", reason="POSIX file system")
def test_world_writable_tmp_as_cache_dir_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    monkeypatch.setenv("CORALCHECK_CACHE_DIR", str(shared))
    cached("r", [old_file(tmp_path / "r", "x")], Builder())
    assert list(shared.iterdir()) == []


# -- concurrency -------------------------------------------------------------------------------

_RACER = """
import os, sys, time
from coralcheck.datacache import cached
source, go, index = sys.argv[1], sys.argv[2], int(sys.argv[3])
while not os.path.exists(go):
    time.sleep(0.001)
expected = {salt: [salt, list(range(20000))] for salt in ("a", "b")}
for round in range(25):
    salt = "ab"[(round + index) % 2]  # half the processes replace what the others just wrote
    value = cached("race", [source], lambda: expected[salt], salt=salt)
    if value != expected[salt]:
        sys.exit(f"wrong value in round {round}")
print("ok")
"""


def test_concurrent_writers_and_readers_all_get_the_right_value(
    cache: Path, tmp_path: Path
) -> None:
    source = old_file(tmp_path / "r", "x")
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(source), str(go), str(index)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
            cwd=REPO,
        )
        for index in range(6)
    ]
    go.touch()
    outcomes = [(*racer.communicate(timeout=120), racer.returncode) for racer in racers]
    assert outcomes == [("ok\n", "", 0)] * len(racers)
    [entry] = entries(cache)
    assert not list((cache / TAG).glob(".*.tmp"))
    # The entry left behind is whole: it carries one of the two keys and its value.
    survivors = []
    for salt in ("a", "b"):
        key = datacache._Entry.for_sources("race", [source], salt).key  # type: ignore[union-attr]
        payload = datacache._payload(entry.read_bytes(), key)
        if payload is not None:
            survivors.append(datacache.marshal.loads(payload) == [salt, list(range(20000))])
    assert survivors == [True]


# -- only plain data ---------------------------------------------------------------------------

Pair = namedtuple("Pair", "a b")


class Text(str):
    pass


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _recursive() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    "value",
    [
        {1, 2},
        frozenset({1}),
        Pair(1, 2),
        {"a": Text("subclass")},
        {"when": time.gmtime(0)},
        {frozenset(): 1},
        [object()],
        (lambda: 0).__code__,
        1j,
        _recursive(),
        _nested(100),
    ],
    ids=lambda v: type(v).__name__,
)
def test_value_that_is_not_plain_data_is_returned_uncached(
    cache: Path, tmp_path: Path, value: Any
) -> None:
    source = old_file(tmp_path / "r", "x")
    build = Builder(value)
    assert cached("r", [source], build) is value
    assert cached("r", [source], build) is value
    assert build.calls == 2
    assert entries(cache) == []


def test_plain_data_round_trips_exactly(cache: Path, tmp_path: Path) -> None:
    value = {
        "s": "é\x00\n",
        "i": -(2**70),
        "f": float("inf"),
        "b": False,
        "n": None,
        "bytes": b"\x00\xff",
        "t": (1, (2.0, "3")),
        "l": [[], {}, ()],
        (1, "k"): 0,
        True: 1.0,
    }
    source = old_file(tmp_path / "r", "x")
    cached("r", [source], Builder(value))
    build = Builder()
    loaded = cached("r", [source], build)
    assert build.calls == 0
    assert loaded == value
    assert list(loaded) == list(value)  # key order kept
    assert [type(v) for v in loaded.values()] == [type(v) for v in value.values()]


# -- errors that are not the cache's -----------------------------------------------------------


def test_build_errors_propagate_and_nothing_is_stored(cache: Path, tmp_path: Path) -> None:
    source = old_file(tmp_path / "r", "x")

    def broken() -> Any:
        raise KeyError("from the build")

    with pytest.raises(KeyError, match="from the build"):
        cached("r", [source], broken)
    assert entries(cache) == []


def test_missing_source_builds_without_caching(cache: Path, tmp_path: Path) -> None:
    build = Builder(None)
    assert cached("r", [tmp_path / "missing.py"], build) is None
    assert cached("r", [tmp_path / "missing.py"], build) is None
    assert build.calls == 2
    assert not cache.exists()


def test_source_that_is_not_a_path_builds_without_caching(cache: Path) -> None:
    class ZipMember:  # importlib.resources Traversable inside a zip: no file system path
        pass

    build = Builder()
    assert cached("r", [ZipMember()], build) == VALUE  # type: ignore[list-item]
    assert build.calls == 1
    assert not cache.exists()


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "x" * 101, "a b", "é"])
def test_invalid_names_are_rejected(cache: Path, name: str) -> None:
    with pytest.raises(ValueError, match="invalid cache entry name"):
        cached(name, [], Builder())
    assert not cache.exists()


# -- switching it off, and where it is ---------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "yes", "true", "0x"])
def test_no_cache_reads_and_writes_nothing(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    source = old_file(tmp_path / "r", "x")
    cached("r", [source], Builder("stored before"))
    before = all_files(cache)
    monkeypatch.setenv("CORALCHECK_NO_CACHE", value)
    build = Builder("fresh")
    assert cached("r", [source], build) == "fresh"  # not read
    assert cached("r", [source], build) == "fresh"
    assert build.calls == 2
    assert all_files(cache) == before  # nor written
    assert location() is None


@pytest.mark.parametrize("value", ["", "0"])
def test_no_cache_empty_or_zero_keeps_the_cache(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CORALCHECK_NO_CACHE", value)
    source = old_file(tmp_path / "r", "x")
    build = Builder()
    cached("r", [source], build)
    cached("r", [source], build)
    assert build.calls == 1


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("CORALCHECK_CACHE_DIR", "CORALCHECK_NO_CACHE", "XDG_CACHE_HOME", "LOCALAPPDATA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


@pytest.mark.skipif(os.name == "nt", reason="POSIX locations")
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "{home}/.cache/coralcheck"),
        ({"XDG_CACHE_HOME": "{tmp}/xdg"}, "{tmp}/xdg/coralcheck"),
        ({"XDG_CACHE_HOME": "relative/xdg"}, "{home}/.cache/coralcheck"),  # the spec: ignore
        ({"XDG_CACHE_HOME": ""}, "{home}/.cache/coralcheck"),
        ({"CORALCHECK_CACHE_DIR": "{tmp}/mine", "XDG_CACHE_HOME": "{tmp}/xdg"}, "{tmp}/mine"),
        ({"CORALCHECK_CACHE_DIR": "~/mine"}, "{home}/mine"),
        ({"CORALCHECK_CACHE_DIR": "relative"}, None),  # never the working directory
        ({"CORALCHECK_CACHE_DIR": ""}, "{home}/.cache/coralcheck"),
        ({"CORALCHECK_CACHE_DIR": "{tmp}/mine", "CORALCHECK_NO_CACHE": "1"}, None),
    ],
)
def test_location_rules(
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    env: dict[str, str],
    expected: str | None,
) -> None:
    home = str(tmp_path / "home")
    for name, value in env.items():
        clean_env.setenv(name, value.format(tmp=tmp_path, home=home))
    assert location() == (None if expected is None else expected.format(tmp=tmp_path, home=home))


def test_location_on_windows(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setattr(os, "name", "nt")
    assert location() is None  # no LOCALAPPDATA
    clean_env.setenv("LOCALAPPDATA", str(tmp_path / "AppData" / "Local"))
    assert location() == os.path.join(str(tmp_path / "AppData" / "Local"), "coralcheck", "Cache")
    clean_env.setenv("CORALCHECK_CACHE_DIR", str(tmp_path / "mine"))
    assert location() == str(tmp_path / "mine")


def test_home_unset_still_returns_the_value(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.delenv("HOME")
    clean_env.setattr(os.path, "expanduser", lambda path: path)  # and no password entry
    assert location() is None
    build = Builder()
    assert cached("r", [old_file(tmp_path / "r", "x")], build) == VALUE
    assert build.calls == 1


# -- cheap to import, useful for the real data -------------------------------------------------


def test_import_adds_no_module_but_itself() -> None:
    # zlib (crc32) is a C extension that start-up or the lint path has imported already.
    script = (
        "import sys, coralcheck; before = set(sys.modules); import coralcheck.datacache; "
        "print(sorted(set(sys.modules) - before - {'zlib'}))"
    )
    assert _run(script) == "['coralcheck.datacache']\n"


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "rules").glob("*.toml")))
def test_rules_files_are_cacheable(cache: Path, tmp_path: Path, name: str) -> None:
    # A TOML date or time would be a datetime: returned fine, but never cached.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    copy = old_file(tmp_path / name, (REPO / "rules" / name).read_text(encoding="utf-8"))
    parsed = cached(f"rules-{name}", [copy], lambda: tomllib.loads(copy.read_text("utf-8")))
    assert len(entries(cache)) == 1
    assert cached(f"rules-{name}", [copy], Builder()) == parsed
