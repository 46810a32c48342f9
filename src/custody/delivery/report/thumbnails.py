"""Thumbnails for the report: ffmpeg (images scaled to at most 240 px, a still from videos),
with the demuxer chosen from the recorded MIME type and only the ``file``/``pipe``
protocols allowed, so a hostile file cannot make ffmpeg open anything else; for HEIC and
raw files exiftool's embedded preview is the fallback. Whenever none can be made the
report says why.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from custody.delivery.report.model import Thumbnail, media_kind
from custody.i18n import _
from custody.ledger.describe import highlights
from custody.system.children import child_env

THUMBNAIL_PX = 240


TOOL_TIMEOUT = 60.0


MAX_THUMBNAIL_SOURCE = 1 << 34  # a payload larger than 16 GiB is not copied out of a zip


# The demuxer ffmpeg must use for each recorded MIME type; anything else is not probed.
_IMAGE_DEMUXERS = {
    "image/jpeg": "jpeg_pipe",
    "image/png": "png_pipe",
    "image/webp": "webp_pipe",
    "image/gif": "gif",
    "image/bmp": "bmp_pipe",
    "image/x-ms-bmp": "bmp_pipe",
    "image/tiff": "tiff_pipe",
}


_VIDEO_DEMUXERS = {
    "video/mp4": "mov",
    "video/quicktime": "mov",
    "video/3gpp": "mov",
    "video/3gpp2": "mov",
    "video/x-m4v": "mov",
    "video/x-msvideo": "avi",
    "video/avi": "avi",
    "video/webm": "matroska",
    "video/x-matroska": "matroska",
    "video/mpeg": "mpeg",
    "video/mp2t": "mpegts",
}


_HEIF = {"image/heic", "image/heif", "image/heic-sequence", "image/heif-sequence", "image/avif"}


# EXIF orientation -> ffmpeg filters that show the picture upright.
_ORIENTATION = {2: "hflip", 3: "hflip,vflip", 4: "vflip", 5: "transpose=0", 6: "transpose=1",
                7: "transpose=3", 8: "transpose=2"}  # fmt: skip


# --- thumbnails -----------------------------------------------------------------------------


def _run(argv: Sequence[str], data: bytes | None = None) -> bytes | None:
    try:
        proc = subprocess.run(
            list(argv),
            env=child_env(program=argv[0]),  # never the caller's environment (its secrets)
            input=data,
            stdin=None if data is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 and proc.stdout else None


def _ffmpeg_still(ffmpeg: str, demuxer: str, path: Path | None, data: bytes | None,
                  seek: float, rotate: str | None) -> bytes | None:  # fmt: skip
    box = THUMBNAIL_PX  # fit in a box, never enlarged
    scale = f"scale='min({box},iw)':'min({box},ih)':force_original_aspect_ratio=decrease"
    filters = f"{rotate},{scale}" if rotate else scale
    argv = [ffmpeg, "-nostdin", "-v", "error", "-protocol_whitelist",
            "pipe" if path is None else "file", "-f", demuxer]  # fmt: skip
    if seek > 0:
        argv += ["-ss", f"{seek:.2f}"]
    argv += ["-i", "pipe:0" if path is None else f"file:{path}", "-frames:v", "1", "-an",
             "-vf", filters, "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "4",
             "pipe:1"]  # fmt: skip
    out = _run(argv, data)
    return out if out and out.startswith(b"\xff\xd8") else None


def _duration(metadata: dict[str, Any] | None) -> float:
    value = highlights(metadata).get("duration_s")
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def thumbnail(path: Path, mime: str | None, metadata: Any, tmp: Path) -> Thumbnail:
    """A JPEG thumbnail (images) or still (videos) of at most 240 px, as a data: URI."""
    kind = media_kind(mime)
    if kind == "audio":
        return Thumbnail(None, _("no thumbnail: an audio recording has no picture"))
    if kind == "document":
        return Thumbnail(None, _("no thumbnail: documents are not previewed; see the file itself"))
    if kind not in ("image", "video"):
        return Thumbnail(None, _("no thumbnail: not an image or a video"))
    ffmpeg = shutil.which("ffmpeg")
    meta = metadata if isinstance(metadata, dict) else None
    orientation = (meta or {}).get("IFD0:Orientation")
    rotate = _ORIENTATION.get(orientation) if isinstance(orientation, int) else None
    jpeg: bytes | None = None
    note = ""
    if ffmpeg and kind == "image" and mime in _IMAGE_DEMUXERS:
        jpeg = _ffmpeg_still(ffmpeg, _IMAGE_DEMUXERS[mime], path, None, 0, rotate)
        note = _("thumbnail made from the file with ffmpeg ({px} px)").format(px=THUMBNAIL_PX)
    elif ffmpeg and kind == "video" and mime in _VIDEO_DEMUXERS:
        duration = _duration(meta)
        seek = 1.0 if duration > 2 else 0.0
        jpeg = _ffmpeg_still(ffmpeg, _VIDEO_DEMUXERS[mime], path, None, seek, None)
        if jpeg is None and seek:
            seek = 0.0
            jpeg = _ffmpeg_still(ffmpeg, _VIDEO_DEMUXERS[mime], path, None, 0, None)
        note = _("still from the video at {seconds} s, made with ffmpeg").format(
            seconds=f"{seek:.0f}"
        )
    if jpeg is None and ffmpeg and mime in _HEIF:
        decoded = _heif_decode(path, tmp)
        if decoded is not None:
            jpeg = _ffmpeg_still(ffmpeg, "jpeg_pipe", None, decoded, 0, None)
            note = _("thumbnail decoded with libheif's heif-convert, scaled with ffmpeg")
    if jpeg is None:
        preview = _embedded_preview(path)
        if preview is not None and ffmpeg:
            jpeg = _ffmpeg_still(ffmpeg, "jpeg_pipe", None, preview, 0, rotate)
            note = _("the preview picture embedded in the file (read with exiftool), scaled")
    if jpeg is None:
        if not ffmpeg:
            return Thumbnail(None, _("no thumbnail: ffmpeg is not installed"))
        return Thumbnail(
            None,
            _("no picture could be made from this file (damaged or unsupported)")
            if kind == "image"
            else _("no still could be made from this file (damaged or unsupported)"),
        )
    return Thumbnail("data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii"), note)


def _heif_decode(path: Path, tmp: Path) -> bytes | None:
    """HEIC/HEIF/AVIF decoded to JPEG by libheif (ffmpeg cannot read HEIF stills)."""
    tool = shutil.which("heif-convert")
    if not tool:
        return None
    with tempfile.TemporaryDirectory(dir=tmp) as work:
        target = Path(work) / "still.jpg"
        _run([tool, "-q", "85", str(path), str(target)])
        made = sorted(Path(work).glob("still*.jpg"))
        data = made[0].read_bytes() if made else b""
    return data if data.startswith(b"\xff\xd8") else None


def _embedded_preview(path: Path) -> bytes | None:
    exiftool = shutil.which("exiftool")
    if not exiftool:
        return None
    for tag in ("PreviewImage", "ThumbnailImage", "JpgFromRaw", "OtherImage"):
        data = _run([exiftool, "-b", f"-{tag}", str(path.absolute())])
        if data and data.startswith(b"\xff\xd8"):
            return data
    return None
