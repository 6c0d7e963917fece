"""Checks, validation and encoders for image bytes.

Two levels of checking:

* ``check_image`` is the loaders' cheap check: it reads only the header plus the format's end
  marker, so a 220 kB JPEG costs about a microsecond (its segment chain is walked directly;
  other formats use PIL's lazy open, tens of microseconds). A PNG without its IEND chunk or a
  BMP shorter than its header says is truncated; a JPEG whose EOI marker is not at the end
  (truncated, or trailing junk after a complete image) is fully decoded before it is accepted
  or rejected.
* ``verify_image`` is what the conversion workers run on every image a row stores (the
  builder calls it, so no loader can forget it): the whole file is validated, not its ends.

  - JPEG: every segment is walked (lengths, one frame header, scans after it, quantisation
    tables without zeros, Huffman tables whose codes fit and whose symbols are distinct,
    restart markers in sequence and as many as the frame's MCUs need, the entropy-coded data
    free of stray markers), then the image is decoded (at 1/8 scale: the entropy data is decoded in full,
    the inverse DCT is not). For the usual baseline files (one Huffman-coded scan) the decoder
    is fed the scan without its last byte, which must leave it unfinished, then the last byte
    and filler, which must finish it: so the entropy data ends exactly where the coded blocks
    do (libjpeg's "extraneous bytes" and "premature end of data segment" are faults here,
    where PIL only warns to nobody). JPEG has no checksum, so garbage in the middle of a scan
    that happens to decode to exactly the right number of blocks still passes (libjpeg itself
    does not notice those either: on 960 damaged baseline test files each check caught about
    3 % that the other missed); a progressive or arithmetic coded file gets the structural walk and a full
    decode only (garbage without a 0xFF byte inside one of its scans may pass).
  - PNG: every chunk's CRC is checked (any changed byte is caught), IHDR must come first, then
    the image is decoded in full.
  - Anything else PIL reads (BMP, GIF, TIFF, WebP, ...) is decoded in full.

  Unexpected content is never passed silently. For the ``rgb`` column:

  ====================================== ===============================================
  what                                   outcome
  ====================================== ===============================================
  JPEG / PNG / BMP, 8-bit grey or RGB    kept as stored (bytes untouched)
  CMYK or YCCK JPEG                      normalised: converted to RGB, stored as PNG
  alpha (RGBA, LA), palette (P, PA)      normalised: RGB (grey for LA), alpha dropped, PNG
  16-bit grey or RGB PNG, 1-bit images   normalised: 8-bit grey / RGB (high byte), PNG
  GIF, TIFF, WebP, other formats         normalised: 8-bit grey or RGB PNG
  several frames (animated GIF/PNG)      fault ``bad-image``: a sample is one still image
  32-bit integer or float pixels         fault ``bad-image``: no 8-bit reading to choose
  a side under ``MIN_SIDE`` (4) pixels   fault ``bad-image``: no face fits (e.g. 3x2 px)
  over ``MAX_PIXELS`` (64 M) pixels      fault ``bad-image``: refused before decoding
  ====================================== ===============================================

  A normalisation returns the new bytes and a short description of the change; the builder
  counts them and the build report notes each kind (``5 rgb image(s) normalised, JPEG CMYK → RGB PNG``).
  Normalised PNGs are written by ``encode_png``, so the same input gives the same bytes. The
  ``depth`` column is validated the same way but never normalised (its loaders check its mode).
  A 5000x4000 GIF is therefore accepted as a 5000x4000 RGB PNG, with a note.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .errors import SampleError

_END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND\xaeB`\x82"}


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    mode: str


def check_image(data: bytes, file: str | None = None, full_decode: bool = False) -> ImageInfo:
    """Validate encoded image bytes; raise ``SampleError`` (kind ``bad-image``) if broken."""
    if not data:
        raise SampleError("bad-image", "empty file", file=file)
    if not full_decode and (info := _intact_jpeg(data)) is not None:
        return info
    try:
        with Image.open(io.BytesIO(data)) as im:
            info = ImageInfo(im.format or "", im.width, im.height, im.mode)
            marker = _END_MARKERS.get(info.format)
            intact = marker is None or data.rstrip(b"\0\r\n ").endswith(marker)
            if info.format == "PNG" and not intact and marker not in data:
                raise SampleError("bad-image", "truncated PNG (no IEND chunk)", file=file)
            if info.format == "BMP":
                intact = len(data) >= struct.unpack_from("<I", data, 2)[0]
                if not intact:
                    raise SampleError("bad-image", "truncated BMP (shorter than its header's file size)", file=file)
            if full_decode or not intact:
                im.load()
    except SampleError:
        raise
    except Exception as exc:  # PIL raises many types for broken files
        detail = "unrecognised or truncated header" if "cannot identify" in str(exc) else str(exc)
        raise SampleError("bad-image", f"undecodable image ({type(exc).__name__}: {detail})", file=file) from None
    return info


_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # frame headers (not DHT, JPG, DAC)
_JPEG_MODES = {1: "L", 3: "RGB"}


def _intact_jpeg(data: bytes) -> ImageInfo | None:
    """Info of a JPEG that ends with EOI and whose segment chain leads to a frame header, else None.

    Walking the header segments in Python costs about a microsecond where PIL's open costs about
    thirty; anything unusual (another format, a broken chain, CMYK, bytes after EOI) returns None
    and PIL decides.
    """
    if not (data.startswith(b"\xff\xd8\xff") and data.endswith(b"\xff\xd9")):
        return None
    pos = _frame_header_at(data, len(data) - 10)
    if pos is None:
        return None
    height, width, components = struct.unpack_from(">HHB", data, pos + 5)
    mode = _JPEG_MODES.get(components)
    return ImageInfo("JPEG", width, height, mode) if mode and height and width else None


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header (the same segment walk as the loaders' check);
    None when ``data`` is not a JPEG or its chain breaks before a frame header."""
    if not data.startswith(b"\xff\xd8"):
        return None
    pos = _frame_header_at(data, len(data) - 8)
    if pos is None:
        return None
    height, width = struct.unpack_from(">HH", data, pos + 5)
    return width, height


def _frame_header_at(data: bytes, stop: int) -> int | None:
    """Offset of the frame header (SOFn marker) of JPEG bytes, walking the marker segments after
    SOI while the offset is below ``stop``; None when the chain breaks, or a restart, SOI, EOI or
    scan marker comes first."""
    pos = 2
    while pos < stop:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker in _JPEG_SOF:
            return pos
        elif 0xD0 <= marker <= 0xDA:  # RST, SOI, EOI or SOS before any frame header
            return None
        else:
            pos += 2 + ((data[pos + 2] << 8) | data[pos + 3])
    return None


def encode_png(pixels: np.ndarray, level: int = 1) -> bytes:
    """PNG bytes of a uint8 (H, W) / (H, W, 3) array or a uint16 (H, W) array (16-bit grayscale).

    Written directly (every row with PNG's Sub filter, one zlib stream at ``level``): several
    times faster than PIL's encoder on the small images conversion produces (48×48 FER2013
    faces: ~30 µs instead of ~130 µs), and within a few percent of its size.
    """
    if pixels.dtype not in (np.uint8, np.uint16) or pixels.ndim not in (2, 3):
        raise TypeError(f"encode_png needs a uint8 or uint16 (H, W) or uint8 (H, W, 3) array, got {pixels.dtype} {pixels.shape}")
    if pixels.ndim == 3 and (pixels.shape[2] != 3 or pixels.dtype != np.uint8):
        raise TypeError(f"encode_png: colour images must be uint8 (H, W, 3), got {pixels.dtype} {pixels.shape}")
    height, width = pixels.shape[:2]
    colour = 2 if pixels.ndim == 3 else 0
    rows = np.ascontiguousarray(pixels, dtype=">u2" if pixels.dtype == np.uint16 else np.uint8).view(np.uint8)
    rows = rows.reshape(height, -1)
    step = rows.shape[1] // width  # bytes per pixel
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 1  # Sub: each byte minus the same byte of the pixel to its left
    filtered[:, 1 : step + 1] = rows[:, :step]
    np.subtract(rows[:, step:], rows[:, :-step], out=filtered[:, step + 1 :])
    header = struct.pack(">IIBBBBB", width, height, 8 * pixels.itemsize, colour, 0, 0, 0)
    return b"".join(
        (_PNG_SIGNATURE, _png_chunk(b"IHDR", header), _png_chunk(b"IDAT", zlib.compress(filtered.data, level)), _PNG_END)
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = _png_chunk(b"IEND", b"")


def encode(pixels: np.ndarray, suffix: str, quality: int = 90) -> bytes:
    """Encoded bytes of uint8 pixels in the format a file suffix names (``.png``, else JPEG)."""
    if suffix.lower() == ".png":
        return encode_png(pixels)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    """Decoded pixels (uint8 or uint16 array) of encoded image bytes."""
    with Image.open(io.BytesIO(data)) as im:
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            return np.asarray(im, dtype=np.uint16) if im.mode != "I" else np.asarray(im).astype(np.uint16)
        return np.asarray(im)


# -- full validation ------------------------------------------------------------------------------
#: Images with a side shorter than this hold no face: a fault, never a row.
MIN_SIDE = 4
#: Images with more pixels than this are refused before decoding (a decompression bomb guard).
MAX_PIXELS = 64_000_000
#: Formats and modes stored as they are in the ``rgb`` column; everything else is normalised.
KEPT_FORMATS = frozenset({"JPEG", "PNG", "BMP"})
KEPT_MODES = frozenset({"L", "RGB"})
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I;16", "I;16B", "I;16L", "I;16N"})
_COLOUR_MODES = frozenset({"RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "P", "PA"})
_ALPHA_MODES = frozenset({"LA", "La", "RGBA", "RGBa", "PA"})


@dataclass(frozen=True)
class Verified:
    """A fully validated image: the bytes to store (re-encoded when normalised), what they hold,
    and the normalisation applied (``None``: stored as given)."""

    data: bytes
    info: ImageInfo
    change: str | None = None


class _Broken(ValueError):
    """Why an image file is damaged (the message is the fault's reason)."""


def verify_image(data: bytes, file: str | None = None, role: str = "rgb") -> Verified:
    """Validate every byte of an encoded image (see the module docstring) and apply the
    ``rgb`` policy; raise ``SampleError`` (kind ``bad-image``) with the reason when it fails."""
    if not data:
        raise SampleError("bad-image", "empty file", file=file)
    try:
        jpeg = _jpeg_layout(data) if data.startswith(b"\xff\xd8") else None
        png_depth = _png_layout(data) if data.startswith(_PNG_SIGNATURE) else None
        with Image.open(io.BytesIO(data)) as im:
            info = ImageInfo(im.format or "", im.width, im.height, im.mode)
            _check_size(info)
            frames = getattr(im, "n_frames", 1)
            if frames > 1:
                raise _Broken(f"{frames} frames ({info.format}); a sample is one still image")
            if jpeg is not None:
                _decode_jpeg(im, data, jpeg)
            else:
                im.load()
        if role != "rgb":
            return Verified(data, info)
        return _rgb_policy(data, info, png_depth == 16)
    except _Broken as exc:
        raise SampleError("bad-image", str(exc), file=file) from None
    except SampleError:
        raise
    except Exception as exc:  # PIL raises many types for broken files
        detail = "unrecognised or truncated header" if "cannot identify" in str(exc) else str(exc)
        raise SampleError("bad-image", f"undecodable image ({type(exc).__name__}: {detail})", file=file) from None


def _check_size(info: ImageInfo) -> None:
    if min(info.width, info.height) < MIN_SIDE:
        raise _Broken(f"{info.width}x{info.height} px: a side under {MIN_SIDE} px holds no face")
    if info.width * info.height > MAX_PIXELS:
        raise _Broken(f"{info.width}x{info.height} px: over the {MAX_PIXELS // 1_000_000} M pixel limit")


def _rgb_policy(data: bytes, info: ImageInfo, sixteen_bit: bool) -> Verified:
    """Keep 8-bit grey/RGB JPEG, PNG and BMP as stored; re-encode the rest as 8-bit PNG."""
    if info.format in KEPT_FORMATS and info.mode in KEPT_MODES and not sixteen_bit:
        return Verified(data, info)
    if info.mode in _GREY_MODES:
        target = "L"
    elif info.mode in _COLOUR_MODES:
        target = "RGB"
    else:
        raise _Broken(f"pixel mode {info.mode} ({info.format}) has no 8-bit grey or colour reading")
    with Image.open(io.BytesIO(data)) as im:
        if im.mode.startswith("I;16"):
            pixels = (np.asarray(im, dtype=np.uint16) >> 8).astype(np.uint8)
        else:
            pixels = np.asarray(im.convert(target))
    depth = " 16-bit" if sixteen_bit or info.mode.startswith("I;16") else ""
    alpha = " (alpha dropped)" if info.mode in _ALPHA_MODES else ""
    change = f"{info.format} {info.mode}{depth} → {'grey' if target == 'L' else 'RGB'} PNG{alpha}"
    return Verified(encode_png(np.ascontiguousarray(pixels)), ImageInfo("PNG", info.width, info.height, target), change)


# -- PNG ------------------------------------------------------------------------------------------
def _png_layout(data: bytes) -> int:
    """Walk a PNG's chunks, checking each CRC; the bit depth from IHDR."""
    pos, n, first, depth = 8, len(data), True, 0
    while True:
        if pos + 12 > n:
            raise _Broken("truncated PNG (no IEND chunk)")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > n:
            raise _Broken(f"truncated PNG (chunk {kind!r} at byte {pos} runs past the end)")
        if zlib.crc32(data[pos + 4 : end - 4]) != struct.unpack_from(">I", data, end - 4)[0]:
            raise _Broken(f"damaged PNG: chunk {kind.decode('latin-1')!r} at byte {pos} fails its CRC")
        if first:
            if kind != b"IHDR" or length != 13:
                raise _Broken("damaged PNG: the first chunk is not IHDR")
            depth, first = data[pos + 16], False
        if kind == b"IEND":
            return depth
        pos = end


# -- JPEG -----------------------------------------------------------------------------------------
_JPEG_LOSSLESS = frozenset({0xC3, 0xC7, 0xCB, 0xCF})
_JPEG_HUFFMAN_SEQUENTIAL = frozenset({0xC0, 0xC1})
#: In entropy-coded data 0xFF is followed by 0x00 (stuffing) or a marker; this finds markers.
_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00]")
#: Bytes fed after a baseline scan so that the decoder's read-ahead can finish it (no 0xFF).
_JPEG_FILLER = bytes(16)


@dataclass(frozen=True)
class _JpegLayout:
    frame: int  # SOFn marker
    scans: int
    scan_end: int  # offset of the marker that ends the last scan


def _jpeg_layout(data: bytes) -> _JpegLayout:
    """Walk a JPEG from SOI to EOI: segment lengths, one frame header before the scans, restart
    markers in sequence and as many as the MCUs need, no stray marker in entropy-coded data."""
    n, pos, restart, scans, scan_end = len(data), 2, 0, 0, 0
    frame: tuple[int, int, int, list[tuple[int, int, int]]] | None = None
    while True:
        if pos >= n:
            raise _Broken("truncated JPEG (no EOI marker)")
        if data[pos] != 0xFF:
            raise _Broken(f"damaged JPEG: byte {pos} should start a marker")
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            raise _Broken("truncated JPEG (no EOI marker)")
        marker, at = data[pos], pos - 1
        pos += 1
        if marker == 0xD9:
            break
        if marker in (0x00, 0x01, 0xC8) or 0xD0 <= marker <= 0xD8:
            raise _Broken(f"damaged JPEG: unexpected marker 0xFF{marker:02X} at byte {at}")
        if pos + 2 > n:
            raise _Broken("truncated JPEG (no EOI marker)")
        length = (data[pos] << 8) | data[pos + 1]
        if length < 2 or pos + length > n:
            raise _Broken(f"damaged JPEG: segment 0xFF{marker:02X} at byte {at} has length {length}, past the end")
        segment = data[pos + 2 : pos + length]
        pos += length
        if marker in _JPEG_SOF:
            if frame is not None:
                raise _Broken(f"damaged JPEG: a second frame header at byte {at}")
            frame = _jpeg_frame(marker, segment)
        elif marker == 0xDB:
            _check_dqt(segment, at)
        elif marker == 0xC4:
            _check_dht(segment, at)
        elif marker == 0xDD:
            if len(segment) != 2:
                raise _Broken(f"damaged JPEG: restart interval segment at byte {at}")
            restart = (segment[0] << 8) | segment[1]
        elif marker == 0xDA:
            if frame is None:
                raise _Broken(f"damaged JPEG: a scan before the frame header (byte {at})")
            mcus = _jpeg_scan_mcus(frame, segment, at)
            pos, markers = _skip_entropy(data, pos, restart)
            expected = -(-mcus // restart) - 1 if restart and frame[0] not in _JPEG_LOSSLESS else None
            if expected is not None and markers != expected:
                raise _Broken(f"damaged JPEG: scan {scans + 1} has {markers} restart markers, its {mcus} MCUs need {expected}")
            scans, scan_end = scans + 1, pos
    if frame is None or not scans:
        raise _Broken("damaged JPEG: no frame header or no scan before EOI")
    return _JpegLayout(frame[0], scans, scan_end)


def _check_dqt(segment: bytes, at: int) -> None:
    """Quantisation tables: 8- or 16-bit, ids 0..3, no zero entry (a zero divisor is damage)."""
    pos = 0
    while pos < len(segment):
        precision, table = segment[pos] >> 4, segment[pos] & 15
        size = 64 * (1 + precision)
        values = segment[pos + 1 : pos + 1 + size]
        if precision > 1 or table > 3 or len(values) != size:
            raise _Broken(f"damaged JPEG: malformed quantisation table at byte {at}")
        entries = struct.unpack(">64H", values) if precision else values
        if 0 in entries:
            raise _Broken(f"damaged JPEG: quantisation table {table} at byte {at} holds a zero")
        pos += 1 + size


def _check_dht(segment: bytes, at: int) -> None:
    """Huffman tables: class 0/1, ids 0..3, code lengths that fit their code space, each symbol
    once (DC symbols 0..15)."""
    pos = 0
    while pos < len(segment):
        if pos + 17 > len(segment) or segment[pos] >> 4 > 1 or segment[pos] & 15 > 3:
            raise _Broken(f"damaged JPEG: malformed Huffman table at byte {at}")
        counts, code = segment[pos + 1 : pos + 17], 0
        for length, count in enumerate(counts, 1):
            code += count
            if code > (1 << length):
                raise _Broken(f"damaged JPEG: Huffman table at byte {at} has more codes than fit")
            code <<= 1
        total = sum(counts)
        if total > 256 or pos + 17 + total > len(segment):
            raise _Broken(f"damaged JPEG: malformed Huffman table at byte {at}")
        symbols = segment[pos + 17 : pos + 17 + total]
        if len(set(symbols)) != total or (segment[pos] >> 4 == 0 and any(v > 15 for v in symbols)):
            raise _Broken(f"damaged JPEG: Huffman table at byte {at} repeats a symbol or has one out of range")
        pos += 17 + total


def _jpeg_frame(marker: int, segment: bytes) -> tuple[int, int, int, list[tuple[int, int, int]]]:
    """(SOF marker, width, height, [(component id, h, v)]) of a frame header."""
    if len(segment) < 6 or len(segment) != 6 + 3 * segment[5] or not segment[5]:
        raise _Broken("damaged JPEG: malformed frame header")
    height, width = struct.unpack_from(">HH", segment, 1)
    components = [(segment[i], segment[i + 1] >> 4, segment[i + 1] & 15) for i in range(6, len(segment), 3)]
    if not width or not height or any(not 1 <= h <= 4 or not 1 <= v <= 4 for _, h, v in components):
        raise _Broken(f"damaged JPEG: frame header says {width}x{height} px, sampling {[(h, v) for _, h, v in components]}")
    return marker, width, height, components


def _jpeg_scan_mcus(frame: tuple[int, int, int, list[tuple[int, int, int]]], segment: bytes, at: int) -> int:
    """The number of MCUs of a scan (checking its header against the frame)."""
    _, width, height, components = frame
    count = segment[0] if segment else 0
    if not count or len(segment) != 1 + 2 * count + 3:
        raise _Broken(f"damaged JPEG: malformed scan header at byte {at}")
    known = {c: (h, v) for c, h, v in components}
    chosen = [segment[1 + 2 * i] for i in range(count)]
    if any(c not in known for c in chosen):
        raise _Broken(f"damaged JPEG: the scan at byte {at} names a component the frame lacks")
    hmax, vmax = max(h for _, h, _ in components), max(v for _, _, v in components)
    if count > 1:
        return -(-width // (8 * hmax)) * -(-height // (8 * vmax))
    h, v = known[chosen[0]]
    return -(-(-(-width * h // hmax)) // 8) * -(-(-(-height * v // vmax)) // 8)


def _skip_entropy(data: bytes, pos: int, restart: int) -> tuple[int, int]:
    """(offset of the marker ending the entropy-coded data at ``pos``, restart markers in it)."""
    count = 0
    while True:
        found = _MARKER_IN_SCAN.search(data, pos)
        if found is None:
            raise _Broken("truncated JPEG: the scan data runs to the end of the file (no EOI marker)")
        at = found.start()
        code = data[at + 1]
        if not 0xD0 <= code <= 0xD7:
            return at, count
        if not restart:
            raise _Broken(f"damaged JPEG: restart marker at byte {at} but no restart interval")
        if code - 0xD0 != count % 8:
            raise _Broken(f"damaged JPEG: restart marker RST{code - 0xD0} at byte {at} out of sequence (expected RST{count % 8})")
        count, pos = count + 1, at + 2


def _decode_jpeg(im: Image.Image, data: bytes, layout: _JpegLayout) -> None:
    """Decode a JPEG in full at 1/8 scale (the entropy data in full, not the inverse DCT); for one
    Huffman-coded scan, check that the coded blocks end exactly where the scan's data does."""
    im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
    if layout.scans != 1 or layout.frame not in _JPEG_HUFFMAN_SEQUENTIAL or len(im.tile) != 1:
        im.load()
        return
    name, extents, offset, args = im.tile[0]
    decoder = Image._getdecoder(im.mode, name, args, getattr(im, "decoderconfig", ()))
    im.load_prepare()
    decoder.setimage(im.im, extents)
    pending = b""

    def feed(chunk: bytes) -> bool:
        nonlocal pending
        pending += chunk
        while True:
            used, err = decoder.decode(pending)
            if used < 0:
                if err < 0:
                    raise _Broken(f"undecodable JPEG (decoder error {err})")
                return True
            pending = pending[used:]
            if not used or not pending:
                return False

    try:
        end = layout.scan_end
        if offset >= end or feed(data[offset : end - 1]):
            raise _Broken("damaged JPEG: the coded blocks end before the scan data does (extraneous bytes)")
        if not feed(data[end - 1 : end] + _JPEG_FILLER):
            raise _Broken("damaged JPEG: the scan data ends before the coded blocks do (premature end)")
    finally:
        decoder.cleanup()
    im.tile = []
