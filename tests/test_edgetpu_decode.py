"""Decoding `edgetpu-custom-op` segments: FlexBuffer → DWN1 package → executables.

Expected values are the per-file facts of shared/edgetpu/compiled-model-format.md §4 (decoded
there independently from the same real compiled models), not outputs of this code.
"""

from __future__ import annotations

import contextlib
import random
import struct
import time
from pathlib import Path

import pytest
from conftest import CORPUS, run_cli
from helpers.edgetpu_builder import (
    EXECUTION_ONLY,
    PARAMETER_CACHING,
    CustomOptionsSpec,
    ExecSpec,
    LayerSpec,
    custom_options,
    executable_bytes,
    package_bytes,
    simple_package,
)
from helpers.tflite_builder import OpSpec, TensorSpec, build_model

from coralcheck.analyze.compiled import binding_problems
from coralcheck.errors import ModelError
from coralcheck.model import load
from coralcheck.model.edgetpu import decode_custom_options, decode_segments

GROUPER = "models/coral_test_data_grouper"
EEL = "models/coral_edgetpu_eel"

# compiled-model-format.md §4a/§4b: (file, flexbuffer keys, min runtime, compiler_version,
# on-chip bytes, off-chip bytes, estimated cycles, narrow bytes/tile, scratch bytes, token,
# chip enums of key "6").
TABLE_4 = [
    (f"{GROUPER}/mobilenet_v1_0.25_128_quant_cocompiled_with_3quant_edgetpu.tflite",
     "1,4,5,6,7", 12, "cl/", 315840, 251072, 0, 8996, 0, 0x99B484BE30458CDE, (18,)),
    (f"{GROUPER}/mobilenet_v1_0.25_128_quant_cocompiled_with_mobilenet_v1_0.5_160_quant_edgetpu.tflite",
     "1,4,5,6,7", 12, "cl/", 566912, 0, 0, 8996, 0, 0xE2C366FD5D62FA6B, (18,)),
    (f"{GROUPER}/deeplab_mobilenet_edgetpu_slim_cityscapes_quant_edgetpu.tflite",
     "1,4,5,6,7", 12, "cl/", 2654784, 0, 0, 189544, 1393920, 0x3BA7C14E02C13BF3, (18,)),
    (f"{GROUPER}/deeplabv3_mnv2_dm05_pascal_quant_edgetpu.tflite",
     "1,4,5,6,7", 12, "cl/", 766720, 0, 0, 192744, 0, 0x36959A24102F7ACD, (18,)),
    (f"{GROUPER}/deeplabv3_mnv2_pascal_quant_edgetpu.tflite",
     "1,4,5,6,7", 12, "cl/", 2337216, 0, 0, 194916, 0, 0x335F65EF71B478FA, (18,)),
    (f"{GROUPER}/keras_lstm_mnist_ptq_edgetpu.tflite",
     "1,4,5,6,7", 12, "cl/", 43968, 576, 0, 4876, 672, 0x6CAD28922F0B3DB3, (18,)),
    (f"{GROUPER}/mobilenet_v1_0.25_128_quant_edgetpu.tflite",
     "1,4,5,6,7", 12, "cl/", 566912, 0, 0, 8996, 0, 0x6D146C3F97D6648C, (18,)),
    (f"{GROUPER}/mobilenet_v1_0.5_160_quant_edgetpu.tflite",
     "1,4,5,6,7", 12, "cl/", 1473280, 0, 0, 20512, 0, 0x8EBC2700DE21D6AA, (18,)),
    (f"{GROUPER}/mobilenet_v1_0.75_192_quant_edgetpu.tflite",
     "1,4,5,6,7", 12, "cl/", 2777600, 0, 0, 43824, 0, 0xFB17D575617E8D62, (18,)),
    (f"{GROUPER}/mobilenet_v1_1.0_224_quant_embedding_extractor_edgetpu.tflite",
     "1,4,5,6,7", 12, "cl/", 3363072, 0, 0, 78912, 0, 0x7344024D6CFF6B4A, (18,)),
    (f"{GROUPER}/movenet_single_pose_lightning_ptq_edgetpu.tflite",
     "1,4,5,6,7", 12, "cl/", 2862656, 2368, 0, 73824, 0, 0x83F398195DD768F2, (18,)),
    (f"{GROUPER}/bodypix_mobilenet_v1_075_512_512_16_quant_decoder_edgetpu.tflite",
     "1,4,5,6,7", 12, "cl/", 1477888, 0, 0, 182976, 0, 0xEE87402BFBCE19F9, (17,)),
    (f"{GROUPER}/posenet_mobilenet_v1_075_353_481_16_quant_decoder_edgetpu.tflite",
     "1,4,5,6,7", 12, "cl/", 1444608, 0, 0, 147648, 0, 0x26254650B218322F, (18,)),
    (f"{GROUPER}/posenet_mobilenet_v1_075_481_641_16_quant_decoder_edgetpu.tflite",
     "1,4,5,6,7", 12, "cl/", 1444608, 0, 0, 144000, 0, 0xE03DBFD49F4E7951, (18,)),
    (f"{GROUPER}/posenet_mobilenet_v1_075_721_1281_16_quant_decoder_edgetpu.tflite",
     "1,4,5,6,7", 12, "cl/", 1444608, 0, 0, 196596, 0, 0x466D791084ACD408, (18,)),
    (f"{GROUPER}/split_concat_edgetpu.tflite",
     "1,4,5", 13, "cl/343520747", 192, 0, 0, 832, 0, 0x0F5DAF073FCC3811, None),
    (f"{EEL}/deeplabv3_mnv2_dm05_pascal_quant_edgetpu.tflite",
     "1,4,5", 12, "cl/", 766720, 0, 1279736, 192744, 0, 0xBC5F9A0A5AA48DAD, None),
    (f"{EEL}/mobilenet_edgetpu_0.75_224_post_training_quant_edgetpu.tflite",
     "1,4,5", 12, "cl/", 3740736, 0, 689436, 65284, 0, 0x24AA1B0BCE6BC0A5, None),
    (f"{EEL}/mobilenet_v1_0.25_128_quant_edgetpu.tflite",
     "1,4,5", 12, "cl/", 518656, 0, 21568, 8996, 0, 0x405F7E8FD15E254B, None),
    (f"{EEL}/mobilenet_v1_0.5_160_quant_edgetpu.tflite",
     "1,4,5", 12, "cl/", 1425024, 0, 117088, 20512, 0, 0xD083B5156691CA39, None),
    (f"{EEL}/mobilenet_v2_1.0_224_inat_bird_quant_edgetpu.tflite",
     "1,4,5", 12, "cl/", 3900864, 0, 458040, 99552, 0, 0x2A7AB8158E92E4E8, None),
    (f"{EEL}/posenet_mobilenet_v1_075_481_641_quant_decoder_edgetpu.tflite",
     "1,4,5", 12, "cl/", 1386432, 0, 2617344, 144000, 0, 0x3F462D7D2B343D1D, None),
]  # fmt: skip


def corpus_file(relative: str) -> Path:
    path = CORPUS / relative
    if not path.is_file():
        pytest.skip(f"{relative} is not in the shared corpus")
    return path


def all_compiled() -> list[Path]:
    return sorted((CORPUS / "models").glob("*/*_edgetpu.tflite"))


@pytest.mark.parametrize("row", TABLE_4, ids=lambda r: r[0].split("/", 1)[1])
def test_decoded_facts_match_the_format_reference(row: tuple) -> None:
    path, keys, runtime, cl, on_chip, off_chip, cycles, narrow, scratch, token, chips = row
    (seg,) = decode_segments(load(corpus_file(path)))
    pkg = seg.package
    main, cache = pkg.main_executable(), pkg.caching_executable()
    assert main is not None and cache is not None
    assert ",".join(seg.keys) == keys
    assert (pkg.layout, pkg.min_runtime_version, pkg.compiler_version) == ("DWN1", runtime, cl)
    assert sorted(e.type for e in pkg.executables) == [PARAMETER_CACHING, EXECUTION_ONLY]
    assert (cache.parameter_bytes, main.parameter_bytes) == (on_chip, off_chip)
    assert main.estimated_cycles == cycles and cache.estimated_cycles == 0
    assert (main.used_narrow_memory_bytes_per_tile, main.scratch_size_bytes) == (narrow, scratch)
    assert main.parameter_caching_token == cache.parameter_caching_token == token
    assert main.chip == "beagle" and main.batch_size == 1
    assert seg.chip_enums == chips


def test_split_concat_changelist_and_instruction_sizes() -> None:
    """§4a: split_concat is the one file with a compiler changelist; bitstream sizes of two."""
    (seg,) = decode_segments(load(corpus_file(f"{GROUPER}/split_concat_edgetpu.tflite")))
    assert seg.package.compiler_changelist == 343520747
    (slim,) = decode_segments(
        load(
            corpus_file(f"{GROUPER}/deeplab_mobilenet_edgetpu_slim_cityscapes_quant_edgetpu.tflite")
        )
    )
    main, cache = slim.package.main_executable(), slim.package.caching_executable()
    assert main is not None and cache is not None
    assert (main.instruction_bytes, cache.instruction_bytes) == (365664, 8912)


def test_layers_of_movenet_and_the_lstm_state() -> None:
    """§4a I/O layers: signed input of movenet; the LSTM's variable write-back outputs."""
    (seg,) = decode_segments(
        load(corpus_file(f"{GROUPER}/movenet_single_pose_lightning_ptq_edgetpu.tflite"))
    )
    main = seg.package.main_executable()
    assert main is not None
    (inp,) = main.input_layers
    assert (inp.name, (inp.y_dim, inp.x_dim, inp.z_dim)) == ("tfl.quantize", (192, 192, 3))
    assert (inp.data_type_name, inp.zero_point, inp.scale) == ("SIGNED_FIXED_POINT8", 0, 1.0)
    assert [x.name for x in main.output_layers][:3] == ["Reshape_2", "Sigmoid", "Sigmoid1"]

    (lstm,) = decode_segments(load(corpus_file(f"{GROUPER}/keras_lstm_mnist_ptq_edgetpu.tflite")))
    main = lstm.package.main_executable()
    assert main is not None
    states = [x for x in main.output_layers if x.is_variable_output]
    assert [(x.name, x.data_type_name, x.zero_point) for x in states] == [
        ("tfl.pseudo_qconst_variable_output", "SIGNED_FIXED_POINT8", 127),
        ("tfl.pseudo_qconst1_variable_output", "SIGNED_FIXED_POINT16", 32768),
    ]


def test_every_compiled_corpus_model_decodes_and_binds() -> None:
    """§3 step 5: "All 59 files pass" the layer/tensor binding check; every corpus file too."""
    files = all_compiled()
    if not files:
        pytest.skip("the shared corpus is not here")
    for path in files:
        model = load(path)
        segments = decode_segments(model)
        assert len(segments) == sum(op.is_edgetpu for op in model.main.operators) == 1, path
        for seg in segments:
            assert seg.package.main_executable() is not None, path
            assert binding_problems(model, seg) == [], path


# --- synthetic layouts ---------------------------------------------------------------------------


def test_legacy_2019_layout_is_read_as_bare_executables() -> None:
    """§1 legacy: keys 1,2,3,4; "4" the main executable, "3" the caching one; no package."""
    main = executable_bytes(ExecSpec(0, 0, 0, name="model_name", chip=None))
    cache = executable_bytes(ExecSpec(0, 3363072, 0, name="model_name", chip=None))
    options = custom_options(
        CustomOptionsSpec(
            main, chip_name="beagle", legacy_caching=cache, execution_preference=None, chips=None
        )
    )
    seg = decode_custom_options(options, "legacy.tflite")
    assert seg.legacy and seg.keys == ("1", "2", "3", "4", "7")
    assert seg.chip_name == "beagle"
    assert seg.package.min_runtime_version is None and seg.package.compiler_version is None
    assert seg.package.main_executable().parameter_bytes == 0  # type: ignore[union-attr]
    assert seg.package.caching_executable().parameter_bytes == 3363072  # type: ignore[union-attr]


def test_package_without_identifier_is_still_read() -> None:
    pkg = simple_package([LayerSpec("x")], [LayerSpec("y")], cached=64, identifier=None)
    seg = decode_custom_options(custom_options(CustomOptionsSpec(pkg)), "m.tflite")
    assert seg.package.layout == "no-identifier"
    assert seg.package.caching_executable().parameter_bytes == 64  # type: ignore[union-attr]


def test_extra_packages_of_key_7() -> None:
    first = simple_package([LayerSpec("x")], [LayerSpec("y")], cached=32)
    second = simple_package([LayerSpec("x")], [LayerSpec("y")], cached=96)
    spec = CustomOptionsSpec(first, chips=(18, 17), extra_packages=[second])
    seg = decode_custom_options(custom_options(spec), "m.tflite")
    assert seg.extra_package_count == 1 and seg.chip_enums == (18, 17)
    assert [p.caching_executable().parameter_bytes for p in seg.packages] == [32, 96]  # type: ignore[union-attr]


def test_main_executable_follows_the_runtime_rules() -> None:
    def pkg(*types: int):  # type: ignore[no-untyped-def]
        blobs = [executable_bytes(ExecSpec(t, 8 * (n + 1), 1)) for n, t in enumerate(types)]
        options = custom_options(CustomOptionsSpec(package_bytes(blobs)))
        return decode_custom_options(options, "m.tflite").package

    assert pkg(1).main_executable().type == 1  # type: ignore[union-attr]  # one: whatever it is
    assert pkg(2, 1).main_executable().type == EXECUTION_ONLY  # type: ignore[union-attr]
    assert pkg(1, 2, 0).main_executable().type == 0  # type: ignore[union-attr]
    assert pkg(1, 2, 0).caching_executable() is None  # all three: PC is not used
    assert pkg(2, 2).main_executable() is None  # two of a type: rejected


# --- corrupt and hostile input -------------------------------------------------------------------


def real_custom_options() -> bytes:
    model = load(corpus_file(f"{GROUPER}/split_concat_edgetpu.tflite"))
    (op,) = [op for op in model.main.operators if op.is_edgetpu]
    return model.custom_options(op)


def test_truncated_flexbuffer_raises_model_error() -> None:
    data = real_custom_options()
    for size in (0, 1, 2, 3, 7, 100, len(data) // 2, len(data) - 1):
        with pytest.raises(ModelError) as e:
            decode_custom_options(data[:size], "x_edgetpu.tflite", "Edge TPU segment")
        assert e.value.path == "x_edgetpu.tflite"
        assert "Edge TPU segment" in e.value.problem


def package_offset(data: bytes) -> int:
    at = data.find(b"DWN1")
    assert at >= 4
    return at - 4


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (0, 0xFFFFFF00),  # the package's root table offset
        (0, 3),  # root inside the header: a vtable outside the package
    ],
)
def test_bad_package_offsets_raise_model_error(where: int, value: int) -> None:
    data = bytearray(real_custom_options())
    struct.pack_into("<I", data, package_offset(bytes(data)) + where, value)
    with pytest.raises(ModelError, match="corrupt"):
        decode_custom_options(bytes(data), "x_edgetpu.tflite")


def root_map_size_at(data: bytes) -> tuple[int, int]:
    """(offset, width) of the root map's element count, from the FlexBuffer trailer."""
    root_width, packed = data[-1], data[-2]
    slot = len(data) - 2 - root_width
    values = slot - int.from_bytes(data[slot : slot + root_width], "little")
    width = 1 << (packed & 3)
    return values - width, width


def test_forged_lengths_fail_fast() -> None:
    """A map claiming billions of entries is refused at once; so is any forged tail word."""
    data = real_custom_options()
    at, width = root_map_size_at(data)
    assert int.from_bytes(data[at : at + width], "little") == 3  # keys "1", "4", "5"
    forged = bytearray(data)
    forged[at : at + width] = (2 ** (8 * width) - 1).to_bytes(width, "little")
    start = time.monotonic()
    with pytest.raises(ModelError, match="claims"):
        decode_custom_options(bytes(forged), "x_edgetpu.tflite")
    for i in range(len(data) - 64, len(data) - 4):
        forged = bytearray(data)
        struct.pack_into("<I", forged, i, 0xFFFFFFFF)
        with contextlib.suppress(ModelError):
            decode_custom_options(bytes(forged), "x_edgetpu.tflite")
    assert time.monotonic() - start < 10


def test_random_damage_never_escapes_as_another_exception() -> None:
    data = real_custom_options()
    rng = random.Random(5)
    start = time.monotonic()
    decoded = 0
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(damaged))
            damaged[at] = rng.randrange(256)
        try:
            decode_custom_options(bytes(damaged), "x_edgetpu.tflite")
            decoded += 1
        except ModelError:
            pass
    assert time.monotonic() - start < 30
    assert decoded < 300  # the damage was noticed at least sometimes


def test_a_package_misread_as_a_legacy_executable_is_refused() -> None:
    """Found by the fuzzer: a 2019-compiler file (key "2" present) whose "DWN1" is damaged is
    read as the legacy layout; the package's bytes then give a 600 KB executable name."""
    path = corpus_file("models/coral_edgetpu_diploria2/mobilenet_v1_0.25_128_quant_edgetpu.tflite")
    model = load(path)
    (op,) = [op for op in model.main.operators if op.is_edgetpu]
    data = bytearray(model.custom_options(op))
    at = data.find(b"DWN1")
    data[at : at + 4] = b"TFL3"
    start = time.monotonic()
    with pytest.raises(ModelError, match="bytes long"):
        decode_custom_options(bytes(data), str(path))
    assert time.monotonic() - start < 1


def compiled_copy(tmp_path: Path, patch) -> Path:  # type: ignore[no-untyped-def]
    src = corpus_file(f"{GROUPER}/split_concat_edgetpu.tflite")
    data = bytearray(src.read_bytes())
    model = load(bytes(data))
    (op,) = [op for op in model.main.operators if op.is_edgetpu]
    patch(data, op.custom_options_offset, op.custom_options_size)
    out = tmp_path / "damaged_edgetpu.tflite"
    out.write_bytes(bytes(data))
    return out


def test_cli_reports_a_bad_package_offset_in_one_line(tmp_path: Path) -> None:
    def patch(data: bytearray, start: int, size: int) -> None:
        pkg = package_offset(bytes(data[start : start + size]))
        struct.pack_into("<I", data, start + pkg, 0x00FFFFF0)

    path = compiled_copy(tmp_path, patch)
    before = path.read_bytes()
    result = run_cli(str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"coralcheck: error: {path}: Edge TPU segment (operator 0")
    assert path.read_bytes() == before


def test_cli_reports_a_truncated_flexbuffer_in_one_line(tmp_path: Path) -> None:
    def patch(data: bytearray, start: int, size: int) -> None:
        # Shorten the custom_options vector: its last bytes (the FlexBuffer root) are cut off.
        struct.pack_into("<I", data, start - 4, size - 1000)

    path = compiled_copy(tmp_path, patch)
    result = run_cli(str(path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "Edge TPU segment" in result.stderr


def test_segment_model_built_from_parts_round_trips() -> None:
    """The builder's compiled model decodes to what was put in (guards the test helper)."""
    q = {"scale": [0.5], "zero_point": [0]}
    pkg = simple_package([LayerSpec("in", zero_point=0)], [LayerSpec("out", zero_point=0)], 77, 5)
    data = build_model(
        tensors=[TensorSpec("in", [1, 4], "UINT8", **q), TensorSpec("out", [1, 4], "UINT8", **q)],
        ops=[OpSpec("CUSTOM:edgetpu-custom-op", [0], [1], custom_options=custom_options(
            CustomOptionsSpec(pkg)))],
        inputs=[0],
        outputs=[1],
    )  # fmt: skip
    model = load(data)
    (seg,) = decode_segments(model)
    assert seg.package.caching_executable().parameter_bytes == 77  # type: ignore[union-attr]
    assert seg.package.main_executable().parameter_bytes == 5  # type: ignore[union-attr]
    assert binding_problems(model, seg) == []
