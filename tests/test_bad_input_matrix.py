"""Bad input through the real CLI (`python -m coralcheck` in a subprocess).

Each case: exit 2, exactly one stderr line `coralcheck: error: <file>: <problem>` that says
what is wrong, nothing on stdout, and nothing written or changed on disk (the input directory
and the working directory are snapshotted before and after: names, sizes, modes, mtimes, and
hashes of small files). The 2.1 GB sparse file must be linted without reading it whole.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import fuzzing, tflite_builder

DEMO = fuzzing.FIXTURES / "demo_int8.tflite"

# --- real minimal files of other formats ------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _pb(field: int, value: int | bytes) -> bytes:
    """One protobuf field: a varint, or a length-delimited bytes/message."""
    if isinstance(value, int):
        return _varint(field << 3) + _varint(value)
    return _varint(field << 3 | 2) + _varint(len(value)) + value


def onnx_model() -> bytes:
    """A complete ONNX ModelProto: y = Relu(x), opset 13 (field numbers from onnx.proto)."""
    node = _pb(1, b"x") + _pb(2, b"y") + _pb(4, b"Relu")
    graph = _pb(1, node) + _pb(2, b"g") + _pb(11, _pb(1, b"x")) + _pb(12, _pb(1, b"y"))
    opset = _pb(2, 13)
    return _pb(1, 8) + _pb(2, b"coralcheck-tests") + _pb(7, graph) + _pb(8, opset)


def zip_archive(path: Path) -> None:
    """A zip laid out like a Keras 3 `.keras` file."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", '{"keras_version": "3.0.0"}')
        z.writestr("config.json", '{"class_name": "Sequential"}')


def hdf5_header() -> bytes:
    """The HDF5 signature and a version-0 superblock (format spec III.A), as h5py writes."""
    sig = b"\x89HDF\r\n\x1a\n"
    versions = bytes([0, 0, 0, 0, 0, 8, 8, 0])  # superblock, free space, root group, ..., sizes
    k = struct.pack("<HHI", 4, 16, 0)  # group leaf K, group internal K, consistency flags
    addresses = struct.pack("<QQQQ", 0, 2**64 - 1, 800, 2**64 - 1)  # base, free, EOF, driver
    return sig + versions + k + addresses + bytes(40)  # + root group symbol table entry


def png_image() -> bytes:
    """A valid 1x1 grey PNG (signature, IHDR, IDAT, IEND with their CRCs)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0\x80"))
        + chunk(b"IEND", b"")
    )


# --- the cases: (name, make(user_dir) -> path, what the problem line must say) -----------------


def _write(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(user: Path) -> Path:
        path = user / name
        path.write_bytes(data)
        return path

    return make


def _missing(user: Path) -> Path:
    return user / "no_such_model.tflite"


def _empty_dir(user: Path) -> Path:
    d = user / "models"
    d.mkdir()
    (d / "README.txt").write_text("no models here\n")
    return d


def _zip(user: Path) -> Path:
    path = user / "model.tflite"
    zip_archive(path)
    return path


def _truncated(user: Path) -> Path:
    data = DEMO.read_bytes()
    return _write("truncated.tflite", data[: len(data) // 2])(user)


def _external_past_end(user: Path) -> Path:
    data = tflite_builder.add_model(external_buffers=True)
    # The constant's bytes were stored after the flatbuffer: cut them off.
    return _write("external.tflite", data[:-8])(user)


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing path": (_missing, r"no such file|not found|does not exist"),
    "directory without models": (_empty_dir, r"director|no (\S+ )?models?|\.tflite"),
    "empty file": (_write("empty.tflite", b""), r"empty|0 bytes"),
    "3-byte file": (_write("tiny.tflite", b"TFL"), r"3 bytes|too (small|short)|not a TFLite"),
    "ONNX model": (_write("model.tflite", onnx_model()), r"ONNX"),
    "zip archive": (_zip, r"zip"),
    "HDF5 file": (_write("model.tflite", hdf5_header()), r"HDF5"),
    "PNG image": (_write("model.tflite", png_image()), r"PNG"),
    "truncated model": (_truncated, r"truncat|corrupt|outside|past the end"),
    "external buffer past the end": (_external_past_end, r"external|past the end|outside"),
}


# --- snapshots ---------------------------------------------------------------------------------


def snapshot(*roots: Path) -> dict[str, tuple]:
    """Every entry under `roots`: type, size, mode, mtime, and the hash of files under 1 MB."""
    out: dict[str, tuple] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                st = p.lstat()
                digest = ""
                if p.is_file() and st.st_size < 2**20 and st.st_mode & 0o444:
                    with open(p, "rb") as f:
                        digest = hashlib.sha256(f.read()).hexdigest()
                out[str(p)] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return out


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    user, cwd = tmp_path / "user", tmp_path / "cwd"
    user.mkdir()
    cwd.mkdir()
    return user, cwd


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_touches_nothing(
    case: str, dirs: tuple[Path, Path]
) -> None:
    user, cwd = dirs
    make, problem = CASES[case]
    path = make(user)
    before = snapshot(user, cwd)
    run = fuzzing.run_cli_measured([str(path)], cwd=cwd)
    said = fuzzing.check_error_contract(run, str(path))
    assert re.search(problem, said, re.IGNORECASE), f"{case}: the problem is unclear: {said!r}"
    assert snapshot(user, cwd) == before, f"{case}: files changed on disk"


# --- unreadable: chmod 000, and as root also without the capabilities that bypass it -------------

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _drop_file_capabilities() -> None:
    """In the child, before exec: drop the capabilities that let root read any file."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _readable(path: Path, preexec: Callable[[], None] | None) -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", f"open({str(path)!r}, 'rb').read(1)"],
        preexec_fn=preexec,
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def test_unreadable_file(dirs: tuple[Path, Path]) -> None:
    user, cwd = dirs
    path = user / "secret.tflite"
    path.write_bytes(DEMO.read_bytes())
    path.chmod(0)
    preexec = None
    if _readable(path, None):
        # Root (as in CI) reads through chmod 000 by CAP_DAC_OVERRIDE: run the CLI without it.
        preexec = _drop_file_capabilities
        try:
            if _readable(path, preexec):
                pytest.skip("chmod 000 does not stop reads here, even without CAP_DAC_OVERRIDE")
        except (OSError, subprocess.SubprocessError) as e:
            pytest.skip(f"cannot drop CAP_DAC_OVERRIDE for the child ({e})")
    before = snapshot(user, cwd)
    run = fuzzing.run_cli_measured([str(path)], cwd=cwd, preexec_fn=preexec)
    said = fuzzing.check_error_contract(run, str(path))
    assert re.search(r"permission|denied|cannot read|unreadable", said, re.IGNORECASE), said
    assert snapshot(user, cwd) == before


# --- a 2.1 GB sparse file with a valid small model at the start ----------------------------------


def test_sparse_file_over_2_gb_is_not_read_whole(dirs: tuple[Path, Path]) -> None:
    user, cwd = dirs
    path = user / "huge.tflite"
    path.write_bytes(DEMO.read_bytes())
    size = 2_100_000_000
    with open(path, "r+b") as f:
        f.truncate(size)
    if path.stat().st_blocks * 512 > 64 * 2**20:
        pytest.skip("this file system does not make sparse files")
    before = snapshot(user, cwd)
    run = fuzzing.run_cli_measured([str(path)], cwd=cwd)
    # The model at the start is valid: a report, or (if the product rejects trailing gigabytes)
    # the one-line error; never a crash.
    if run.exit_code == 2:
        fuzzing.check_error_contract(run, str(path))
    else:
        assert run.exit_code in (0, 1), run.stderr
        assert str(path) in run.stdout and not run.stderr.strip()
    assert run.seconds < 2.0, f"took {run.seconds:.2f} s: the file was read, not mapped"
    assert run.rss_mb < 100, f"peak RSS {run.rss_mb:.0f} MB: the file was read, not mapped"
    assert snapshot(user, cwd) == before
