"""Tests for custody.evidence.metadata against the real exiftool and the real media corpus."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import stat
import subprocess
import time
import unicodedata
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.errors import ToolMissingError
from custody.evidence import exiftool as internals  # private helpers, for the exchange units
from custody.evidence.exiftool import ExifTool, FileMetadata, exiftool_available
from custody.evidence.metadata import capture_time

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
EXIFTOOL = shutil.which("exiftool")

needs_exiftool = pytest.mark.skipif(
    EXIFTOOL is None, reason="exiftool is not installed (Debian package libimage-exiftool-perl)"
)
needs_corpus = pytest.mark.skipif(
    not (CORPUS / "MANIFEST.json").is_file(),
    reason=f"media corpus not found at {CORPUS} (expected ../shared/corpus next to the repo)",
)

# A small real phone JPEG (iPhone 7, Make "Apple", with GPS) to copy under awkward names.
SAMPLE = "field-dump-02/DCIM/100APPLE/IMG_0001.JPG"


def corpus_files() -> list[Path]:
    return sorted(
        p
        for p in CORPUS.rglob("*")
        if p.is_file() and p.name not in {"MANIFEST.json", "PROVENANCE.md"}
    )


def manifest() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((CORPUS / "MANIFEST.json").read_text("utf-8"))
    return data


def entry_key(entry: dict[str, Any]) -> str:
    """The manifest path as it is stored on disk (NFC or NFD as the file really is)."""
    raw = entry["path_utf8_hex"]
    return bytes.fromhex(raw).decode("utf-8") if raw else str(entry["path"])


def cli_json(path: Path | bytes, *args: str) -> dict[str, Any]:
    """What the exiftool command line prints for one file (an independent process)."""
    assert EXIFTOOL is not None
    out = subprocess.run(
        [EXIFTOOL, "-j", "-n", *args, os.fsencode(path)],
        capture_output=True,
        check=False,
        timeout=60,
    ).stdout
    result: list[dict[str, Any]] = json.loads(out)
    return result[0]


@pytest.fixture(scope="module")
def corpus_run() -> Iterator[tuple[list[Path], list[FileMetadata], ExifTool, int | None]]:
    """The whole corpus through one ExifTool, recording the PID before and after."""
    if EXIFTOOL is None or not (CORPUS / "MANIFEST.json").is_file():
        pytest.skip("needs exiftool and the corpus")
    files = corpus_files()
    with ExifTool(batch_size=16) as et:  # 52 files: four -execute commands
        pid_before = et.pid
        results = et.extract(files)
        yield files, results, et, pid_before


@pytest.fixture(scope="module")
def by_path(
    corpus_run: tuple[list[Path], list[FileMetadata], ExifTool, int | None],
) -> dict[str, FileMetadata]:
    files, results, _, _ = corpus_run
    return {p.relative_to(CORPUS).as_posix(): r for p, r in zip(files, results, strict=True)}


# -- the corpus ----------------------------------------------------------------------


@needs_exiftool
@needs_corpus
def test_whole_corpus_in_one_process(
    corpus_run: tuple[list[Path], list[FileMetadata], ExifTool, int | None],
) -> None:
    files, results, et, pid_before = corpus_run
    assert len(files) == 52  # PROVENANCE.md: 52 files
    assert len(results) == len(files)
    assert all(isinstance(r, FileMetadata) for r in results)
    # Nothing hung or crashed, so the process we started is the one that did all of it.
    assert et.restarts == 0
    assert pid_before is not None and et.pid == pid_before
    assert re.fullmatch(r"\d+\.\d+", et.version)


@needs_exiftool
@needs_corpus
def test_every_corpus_record_is_canonical_json(
    corpus_run: tuple[list[Path], list[FileMetadata], ExifTool, int | None],
) -> None:
    files, results, _, _ = corpus_run
    for path, meta in zip(files, results, strict=True):
        record = {
            "tags": meta.tags,
            "mime": meta.mime,
            "error": meta.error,
            "warnings": list(meta.warnings),
            "capture_time": meta.capture_time,
        }
        canonical = rfc8785.dumps(record)
        assert json.loads(canonical)["tags"] == meta.tags, path


@needs_exiftool
@needs_corpus
def test_kept_tags_are_exactly_what_the_command_line_prints(
    corpus_run: tuple[list[Path], list[FileMetadata], ExifTool, int | None],
) -> None:
    files, results, _, _ = corpus_run
    assert EXIFTOOL is not None
    out = subprocess.run(
        [EXIFTOOL, "-j", "-a", "-G1", "-n", "-api", "LargeFileSupport=1", *map(str, files)],
        capture_output=True,
        check=False,
        timeout=120,
    ).stdout
    cli = json.loads(out.decode("utf-8"))
    assert [c["SourceFile"] for c in cli] == [str(f) for f in files]
    for path, meta, printed in zip(files, results, cli, strict=True):
        expected = {
            k: v
            for k, v in printed.items()
            if k != "SourceFile" and (not k.startswith("System:") or k == "System:FileSize")
        }
        ours = dict(meta.tags)
        # Same instant; we ask exiftool for UTC, the command line uses the local zone.
        stamp = "%Y:%m:%d %H:%M:%S%z"
        assert datetime.strptime(ours.pop("System:FileModifyDate"), stamp) == datetime.strptime(
            printed["System:FileModifyDate"], stamp
        )
        assert ours == expected, path


@needs_exiftool
@needs_corpus
def test_gps_photos_match_the_exiftool_command(by_path: dict[str, FileMetadata]) -> None:
    photos = [
        e
        for e in manifest()
        if e["mime"].startswith("image/") and re.match(r"yes -?\d+\.\d+,-?\d+\.\d+", e["gps"])
    ]
    assert len(photos) >= 10
    for entry in photos:
        meta = by_path[entry_key(entry)]
        cli = cli_json(
            CORPUS / entry_key(entry),
            "-G1",
            "-Composite:GPSLatitude",
            "-Composite:GPSLongitude",
            "-Make",
            "-Model",
        )
        cli.pop("SourceFile")
        assert {"Composite:GPSLatitude", "Composite:GPSLongitude"} <= cli.keys(), entry["path"]
        assert any(k.endswith(":Make") for k in cli) and any(k.endswith(":Model") for k in cli)
        for key, value in cli.items():
            assert meta.tags[key] == value, (entry["path"], key)
        # ... and with the position PROVENANCE.md records for the file.
        lat, lon = (float(x) for x in entry["gps"].split()[1].split(","))
        assert math.isclose(meta.tags["Composite:GPSLatitude"], lat, abs_tol=1e-5)
        assert math.isclose(meta.tags["Composite:GPSLongitude"], lon, abs_tol=1e-5)
        make = next(v for k, v in meta.tags.items() if k.endswith(":Make"))
        # str(): exiftool writes any value that looks like a number unquoted (Make "456").
        assert str(make) == entry["make"], entry["path"]
        assert meta.mime == entry["mime"]
        assert meta.error is None


@needs_exiftool
@needs_corpus
def test_mime_and_warnings_agree_with_the_manifest(by_path: dict[str, FileMetadata]) -> None:
    for entry in manifest():
        meta = by_path[entry_key(entry)]
        assert meta.mime == (entry["mime"] or None), entry["path"]
        for listed in entry["exiftool_warnings"]:
            kind, text = listed.split(": ", 1)
            if kind == "Error":
                assert meta.error == text, entry["path"]
            else:
                # The manifest was made with -validate, which adds warnings of its own
                # (IMG_20250601_165926.jpg: "Unknown APP6 'MMIMETA' segment"); we only
                # require that exiftool warned about the file at all.
                assert meta.warnings, entry["path"]


@needs_exiftool
@needs_corpus
def test_broken_files_get_an_error_or_warning(by_path: dict[str, FileMetadata]) -> None:
    broken = [k for k in by_path if k.startswith("misc/broken/")]
    assert len(broken) == 4
    for key in broken:
        meta = by_path[key]
        assert meta.error or meta.warnings, key
    empty = by_path["misc/broken/empty.jpg"]
    assert empty.error == "File is empty"
    assert empty.mime is None
    assert empty.tags["ExifTool:Error"] == "File is empty"  # kept in the tags as well
    heif = by_path["misc/broken/IllegalArgumentException.HeifReader.processBoxes.heif"]
    assert "Invalid atom size" in heif.warnings
    assert heif.tags["ExifTool:Warning"] == "Invalid atom size"


@needs_exiftool
@needs_corpus
def test_junk_and_cut_files_never_raise(tmp_path: Path) -> None:
    junk = tmp_path / "random.bin"
    junk.write_bytes(bytes(range(256)) * 20)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes((CORPUS / SAMPLE).read_bytes()[:100])
    with ExifTool() as et:
        junk_meta, cut_meta = et.extract([junk, cut])
    assert junk_meta.error == "Unknown file type"
    assert cut_meta.mime == "image/jpeg"
    assert cut_meta.error or cut_meta.warnings


@needs_exiftool
@needs_corpus
def test_where_and_when_we_read_is_not_recorded(by_path: dict[str, FileMetadata]) -> None:
    for key, meta in by_path.items():
        assert "SourceFile" not in meta.tags
        system = {k for k in meta.tags if k.startswith("System:")}
        assert system <= {"System:FileSize", "System:FileModifyDate"}, key
        assert meta.tags["System:FileSize"] == (CORPUS / key).stat().st_size
        assert meta.tags["System:FileModifyDate"].endswith("+00:00")
        assert meta.tags["ExifTool:ExifToolVersion"]


@needs_exiftool
@needs_corpus
def test_record_does_not_depend_on_the_reader_time_zone(
    by_path: dict[str, FileMetadata], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Asia/Kathmandu")  # +05:45, inherited by the new exiftool
    key = "misc/images/IPTC.jpg"
    with ExifTool() as et:
        [meta] = et.extract([CORPUS / key])
    assert meta.tags == by_path[key].tags


@needs_exiftool
@needs_corpus
def test_capture_times_from_the_corpus(by_path: dict[str, FileMetadata]) -> None:
    expected = {
        # EXIF date + OffsetTimeOriginal -> RFC 3339
        "field-dump-01/DCIM/Camera/PXL_20231006_225351.jpg": "2023-10-06T22:53:51+02:00",
        # QuickTime Keys CreationDate carries its own zone
        "field-dump-02/DCIM/100APPLE/IMG_0412.MOV": "2019-07-24T11:25:40+03:00",
        "field-dump-03/FLIR/FLIR0001.jpg": "2021-05-16T12:27:36.107-07:00",
        # no zone known: exiftool's own string
        "field-dump-02/DCIM/100APPLE/IMG_0829.JPG": "2012:09:29 16:11:25",
        "field-dump-03/DCIM/100GOPRO/GOPR0001.MP4": "2017:04:17 19:27:57",
        "misc/audio/silence-2s-PCM-16000-08-ID3v23.wav": "2004",
        # only ModifyDate, which is not a capture time
        "field-dump-01/DCIM/Camera/20160912_100531.jpg": None,
        "misc/broken/empty.jpg": None,
    }
    for key, value in expected.items():
        assert by_path[key].capture_time == value, key


# -- awkward names -------------------------------------------------------------------

AWKWARD = [
    pytest.param(b"line\nbreak.jpg", id="newline"),
    pytest.param(b"carriage\rreturn.jpg", id="carriage-return"),
    pytest.param(b"trailing-newline.jpg\n", id="trailing-newline"),
    pytest.param(b"-dash.jpg", id="leading-dash"),
    pytest.param(b"-ver", id="option-name"),
    pytest.param(b"#comment.jpg", id="leading-hash"),
    pytest.param(b" leading space.jpg", id="leading-space"),
    pytest.param(unicodedata.normalize("NFD", "أدلة 02.jpg").encode(), id="arabic-nfd"),
    pytest.param(b"bad\xff\xfe name.jpg", id="invalid-utf8"),
    pytest.param(b"bad\xffand\nnewline.jpg", id="invalid-utf8-and-newline"),
    pytest.param(b"tab\tand\x01control.jpg", id="tab-and-control"),
    pytest.param("nonchar\ufffe.jpg".encode(), id="u+fffe"),  # valid UTF-8 exiftool calls bad
]


@needs_exiftool
@needs_corpus
@pytest.mark.parametrize("name", AWKWARD)
def test_awkward_names(name: bytes, tmp_path: Path) -> None:
    original = CORPUS / SAMPLE
    target = os.path.join(os.fsencode(tmp_path), name)
    shutil.copy2(original, target)  # copy2: same mtime, so even FileModifyDate matches
    before = sorted(os.listdir(os.fsencode(tmp_path)))
    with ExifTool() as et:
        reference, meta = et.extract([original, target])
        assert et.restarts == 0
        alias_dir = et._alias_dir  # set only if the name needed a symlink
        if alias_dir is not None:
            assert not Path(alias_dir).is_relative_to(tmp_path)
            assert os.listdir(alias_dir) == []  # the symlink lived for one extract() only
    if alias_dir is not None:
        assert not os.path.exists(alias_dir)
    assert meta.error is None
    assert meta.mime == "image/jpeg" == reference.mime
    assert meta.tags["IFD0:Make"] == "Apple" == reference.tags["IFD0:Make"]
    assert meta.tags == reference.tags  # names are not in the record, so all else agrees
    # Nothing was created next to the evidence, and the private alias is gone.
    assert sorted(os.listdir(os.fsencode(tmp_path))) == before


@needs_exiftool
@needs_corpus
def test_awkward_names_together_in_one_batch_keep_their_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = [
        "field-dump-01/DCIM/Camera/PXL_20231006_225351.jpg",  # Google
        SAMPLE,  # Apple
        "field-dump-03/DCIM/100MSDCF/DSC00001.JPG",  # SONY
    ]
    names = [b"a\nb.jpg", b"-c.jpg", b"d\xff.jpg", b"-e\r.jpg", b"plain.jpg"]
    paths: list[str | bytes | os.PathLike[str]] = []
    makes = []
    for i, name in enumerate(names):
        src = sources[i % len(sources)]
        shutil.copy2(CORPUS / src, os.path.join(os.fsencode(tmp_path), name))
        paths.append(name)  # relative, from inside the directory: "-c.jpg" must not be an option
        makes.append(cli_json(CORPUS / src, "-IFD0:Make")["Make"])
    paths.append(str(tmp_path / "missing.jpg"))
    paths.append(tmp_path)  # a directory
    paths.append("nul\x00byte.jpg")
    monkeypatch.chdir(tmp_path)
    with ExifTool(batch_size=64) as et:
        results = et.extract(paths)
    assert [r.tags.get("IFD0:Make") for r in results[:5]] == makes
    assert all(r.error is None for r in results[:5])
    assert results[5].error is not None and "No such file" in results[5].error
    assert results[6].error == "not a regular file"
    assert results[7].error is not None and "null" in results[7].error


@needs_exiftool
@needs_corpus
def test_arabic_names_in_the_corpus(by_path: dict[str, FileMetadata]) -> None:
    forms = set()
    for entry in manifest():
        if entry["path_utf8_hex"]:
            raw = bytes.fromhex(entry["path_utf8_hex"])
            assert os.path.exists(os.path.join(os.fsencode(CORPUS), raw))
            forms.add(entry["name_form"].split()[0])
            meta = by_path[entry_key(entry)]
            assert meta.mime == entry["mime"]
            assert meta.error is None
            assert meta.tags["System:FileSize"] == entry["size"]
    assert forms == {"NFC", "NFD"}


# -- hangs and crashes (real exiftool, with a config file that misbehaves on cue) -----

TRAP_CONFIG = r"""
# Loaded by the real exiftool. A user-defined Composite tag is computed for every
# file; for a file whose name contains "hang" it sleeps, for "crash" it kills exiftool.
%Image::ExifTool::UserDefined = (
    'Image::ExifTool::Composite' => {
        CustodyTestTrap => {
            Require => 'FileName',
            ValueConv => q{
                sleep 3600 if $val =~ /hang/;
                kill('KILL', $$) if $val =~ /crash/;
                return undef;
            },
        },
    },
);
1;
"""


@pytest.fixture
def trapped_exiftool(tmp_path: Path) -> str:
    """An "exiftool" that is the real one with a misbehaving -config."""
    assert EXIFTOOL is not None
    config = tmp_path / "trap.config"
    config.write_text(TRAP_CONFIG)
    wrapper = tmp_path / "exiftool"
    # -config must be the first argument; pyexiftool adds -stay_open after it.
    wrapper.write_text(f'#!/bin/sh\nexec "{EXIFTOOL}" -config "{config}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper)


def _evidence(tmp_path: Path, *names: str) -> list[Path]:
    out = []
    for name in names:
        target = tmp_path / name
        shutil.copy2(CORPUS / SAMPLE, target)
        out.append(target)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@needs_exiftool
@needs_corpus
def test_hung_exiftool_is_killed_and_only_that_file_fails(
    tmp_path: Path, trapped_exiftool: str
) -> None:
    files = _evidence(tmp_path, "before.jpg", "hang.jpg", "after.jpg")
    with ExifTool(executable=trapped_exiftool, timeout=2) as et:
        first_pid = et.pid
        assert first_pid is not None
        started = time.monotonic()
        before, hung, after = et.extract(files)
        elapsed = time.monotonic() - started
        assert hung.error == "exiftool timed out after 2 s"
        assert hung.tags == {} and hung.mime is None
        for ok in (before, after):
            assert ok.error is None
            assert ok.tags["IFD0:Make"] == "Apple"
        assert not _alive(first_pid)  # killed and reaped, not left sleeping
        assert et.pid != first_pid
        assert et.restarts == 2  # once for the batch, once for the file on its own
        assert elapsed < 20  # two 2 s timeouts and restarts, not 3600 s
        # The replacement process carries on as normal.
        [again] = et.extract([files[0]])
        assert again.tags == before.tags


@needs_exiftool
@needs_corpus
def test_crash_mid_batch_is_isolated_to_the_offending_file(
    tmp_path: Path, trapped_exiftool: str
) -> None:
    names = [f"ok{i}.jpg" for i in range(6)]
    names.insert(3, "crash.jpg")
    files = _evidence(tmp_path, *names)
    with ExifTool(executable=trapped_exiftool, timeout=5) as et:
        first_pid = et.pid
        results = et.extract(files)
        for path, meta in zip(files, results, strict=True):
            if path.name == "crash.jpg":
                assert meta.error is not None
                assert meta.error.startswith("exiftool crashed: killed by signal SIGKILL")
                assert meta.tags == {}
            else:
                assert meta.error is None, path
                assert meta.tags["IFD0:Make"] == "Apple"
        assert et.pid != first_pid
        assert et.restarts == 2


def test_executable_that_dies_at_start_is_reported_not_hung(tmp_path: Path) -> None:
    # pyexiftool's own reader would spin for ever on the closed pipe.
    fake = tmp_path / "exiftool"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    started = time.monotonic()
    with pytest.raises(ToolMissingError) as info:
        ExifTool(executable=str(fake), timeout=2)
    assert time.monotonic() - started < 15
    assert "could not be started" in str(info.value)
    assert "\n" not in str(info.value)


@needs_exiftool
@needs_corpus
def test_interrupted_command_does_not_leak_into_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = internals._exchange

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    with ExifTool() as et:
        monkeypatch.setattr(internals, "_exchange", interrupted)
        with pytest.raises(KeyboardInterrupt):
            et.extract([CORPUS / SAMPLE])
        assert et.pid is None  # the busy process was thrown away
        monkeypatch.setattr(internals, "_exchange", real)
        [meta] = et.extract([CORPUS / SAMPLE])
        assert meta.tags["IFD0:Make"] == "Apple"


# -- missing exiftool ----------------------------------------------------------------


def test_missing_executable_raises_tool_missing(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-exiftool")
    assert not exiftool_available(missing)
    with pytest.raises(ToolMissingError) as info:
        ExifTool(executable=missing)
    assert str(info.value) == (
        "exiftool is not installed; run the set-up command in README.md "
        "(Debian package libimage-exiftool-perl)"
    )
    assert info.value.__cause__ is None and info.value.__suppress_context__


@needs_exiftool
def test_exiftool_available() -> None:
    assert exiftool_available()


# -- options -------------------------------------------------------------------------


@needs_exiftool
@needs_corpus
def test_embedded_telemetry_only_when_asked() -> None:
    gopro = CORPUS / "field-dump-03/DCIM/100GOPRO/GOPR0001.MP4"
    with ExifTool() as plain, ExifTool(embedded=True) as deep:
        [without] = plain.extract([gopro])
        [with_ee] = deep.extract([gopro])
    assert not any(k.endswith(":GPSLatitude") for k in without.tags)
    lat = next(v for k, v in with_ee.tags.items() if k.endswith(":GPSLatitude"))
    assert math.isclose(lat, 33.12538, abs_tol=1e-5)  # PROVENANCE: first fix


@needs_exiftool
@needs_corpus
def test_small_batches_give_the_same_answers(by_path: dict[str, FileMetadata]) -> None:
    files = corpus_files()[:20]
    with ExifTool(batch_size=3) as et:
        results = et.extract(files)
    for path, meta in zip(files, results, strict=True):
        assert meta == by_path[path.relative_to(CORPUS).as_posix()]


@needs_exiftool
def test_empty_list_and_closed_instance() -> None:
    et = ExifTool()
    assert et.extract([]) == []
    et.close()
    et.close()
    with pytest.raises(RuntimeError):
        et.extract([])


# -- sanitising (units over exiftool-shaped output) ----------------------------------


def _one(stdout: bytes, label: str = "/e/x.jpg") -> FileMetadata:
    [meta] = internals._attribute([internals._Job(0, label.encode(), label)], stdout, b"")
    return meta


def test_numbers_outside_i_json_become_strings() -> None:
    meta = _one(
        b'[{"SourceFile": "/e/x.jpg", "A:Big": 9007199254740993, "A:Ok": 9007199254740991,'
        b' "A:Neg": -9007199254740993, "A:Huge": 1e999, "A:Tiny": -1e999, "A:F": 1.5}]'
    )
    assert meta.tags == {
        "A:Big": "9007199254740993",
        "A:Ok": 9007199254740991,
        "A:Neg": "-9007199254740993",
        "A:Huge": "1e999",
        "A:Tiny": "-1e999",
        "A:F": 1.5,
    }
    rfc8785.dumps(meta.tags)


def test_invalid_utf8_and_lone_surrogates_are_replaced() -> None:
    meta = _one(
        b'[{"SourceFile": "/e/x.jpg", "A:Raw": "ok\xff\xfe!", "A:Esc": "x\\ud800y",'
        b' "B:K\xc3": "v", "A:List": ["\\udc80", 1]}]'
    )
    assert meta.tags == {
        "A:Raw": "ok\ufffd\ufffd!",
        "A:Esc": "x\ufffdy",
        "B:K\ufffd": "v",
        "A:List": ["\ufffd", 1],
    }
    rfc8785.dumps(meta.tags)


def test_answers_must_name_the_files_we_sent() -> None:
    jobs = [internals._Job(0, b"/e/a.jpg", "/e/a.jpg"), internals._Job(1, b"/e/b.jpg", "/e/b.jpg")]
    # b.jpg vanished: no object for it, exiftool's reason on stderr.
    stderr = b"Error: File not found - /e/b.jpg\n"
    a, b = internals._attribute(jobs, b'[{"SourceFile": "/e/a.jpg"}]', stderr)
    assert a.error is None and b.error == "File not found"
    with pytest.raises(internals._OutputMismatch):
        internals._attribute(jobs, b'[{"SourceFile": "/e/other.jpg"}]', b"")


def test_warnings_and_errors_from_any_group() -> None:
    meta = _one(
        b'[{"SourceFile": "/e/x.jpg", "ExifTool:Warning": "w1", "Track3:Warning": "w2",'
        b' "ExifTool:Error": "File format error", "File:MIMEType": "image/jpeg"}]'
    )
    assert meta.warnings == ("w1", "w2")
    assert meta.error == "File format error"
    assert meta.mime == "image/jpeg"
    assert meta.tags["ExifTool:Warning"] == "w1"


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (
            {
                "ExifIFD:DateTimeOriginal": "0000:00:00 00:00:00",
                "QuickTime:CreateDate": "2020:01:02 03:04:05",
            },
            "2020:01:02 03:04:05",
        ),
        (
            {
                "ExifIFD:DateTimeOriginal": "    :  :     :  :  ",
                "XMP-xmp:CreateDate": "2020:01:02 03:04:05Z",
            },
            "2020-01-02T03:04:05Z",
        ),
        (
            {
                "ExifIFD:DateTimeOriginal": "2020:01:02 03:04:05",
                "ExifIFD:OffsetTimeOriginal": "-03:30",
            },
            "2020-01-02T03:04:05-03:30",
        ),
        (
            {"ExifIFD:CreateDate": "2020:01:02 03:04:05", "ExifIFD:OffsetTimeDigitized": "+0100"},
            "2020-01-02T03:04:05+01:00",
        ),
        ({"ExifIFD:DateTimeOriginal": "2020:13:45 03:04:05+01:00"}, "2020:13:45 03:04:05+01:00"),
        ({"IFD0:ModifyDate": "2020:01:02 03:04:05"}, None),
        (
            {
                "Keys:CreationDate": "2019:07:24 11:25:40+03:00",
                "QuickTime:CreateDate": "2019:07:24 08:25:57",
            },
            "2019-07-24T11:25:40+03:00",
        ),
        ({"RIFF:DateCreated": 2004}, "2004"),
    ],
)
def test_capture_time_rules(tags: dict[str, Any], expected: str | None) -> None:
    assert capture_time(tags) == expected


_json_leaf = (
    st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.booleans()
    | st.none()
)
_json_value = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tags=st.dictionaries(st.text(min_size=1), _json_value, max_size=6),
    ascii_escapes=st.booleans(),
    junk=st.binary(max_size=4),
)
def test_any_exiftool_shaped_output_canonicalises(
    tags: dict[str, Any], ascii_escapes: bool, junk: bytes
) -> None:
    obj = {"SourceFile": "/e/x.jpg", **tags}
    text = json.dumps([obj], ensure_ascii=ascii_escapes, allow_nan=True)
    # surrogatepass writes lone surrogates as (invalid) UTF-8 bytes; add raw junk too.
    raw = text.encode("utf-8", "surrogatepass").replace(
        b'"/e/x.jpg"',
        b'"/e/x.jpg", "J:J": "' + junk.replace(b"\\", b"").replace(b'"', b"") + b'"',
        1,
    )
    try:
        meta = _one(raw)
    except internals._OutputMismatch:
        # Only attribution may refuse (a generated key can be "SourceFile" itself);
        # sanitising itself never raises.
        assert "SourceFile" in tags
        return
    rfc8785.dumps(meta.tags)
    assert "SourceFile" not in meta.tags
