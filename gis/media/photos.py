"""A photo of a case, checked and cleaned before it is kept (no web, no database).

:func:`clean_photo` takes the bytes a tablet sent and gives back what GridMap stores:

- the file is decoded with Pillow and must be a JPEG, PNG or WebP by its content (its name and
  declared type are not trusted), within the byte limit (:class:`~gis.errors.PhotoTooLarge`,
  413) and the pixel limit checked from the header before anything is decoded, so a small file
  that declares a huge image (a decompression bomb) is refused (:class:`~gis.errors.InvalidPhoto`,
  422) instead of filling the memory;
- what the photo's EXIF says that GridMap uses is read first: the GPS position (WGS84, the GPS
  datum) and when it was taken (``DateTimeOriginal``, Beijing time when it carries no offset);
- the camera's orientation is applied, colours are converted to sRGB when an ICC profile says
  they are in another space, transparency is laid on white, and the photo is shrunk to at most
  :data:`MAX_SIDE` pixels on its long side;
- it is re-encoded as a fresh JPEG built from the pixels alone, so no EXIF (location, camera,
  serial numbers), XMP, ICC profile or comment of the upload survives; a thumbnail of at most
  :data:`THUMBNAIL_SIDE` pixels is made the same way.

The same upload always gives the same bytes, so content-addressed storage keeps it once.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from datetime import datetime

from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError

from gis.errors import InvalidPhoto, PhotoTooLarge
from gis.rules import BEIJING

FORMATS = ("JPEG", "PNG", "WEBP")  # what Pillow may try to decode an upload as; nothing else
MAX_SIDE = 1600  # pixels on the stored photo's long side, at most
THUMBNAIL_SIDE = 320
QUALITY = 85
THUMBNAIL_QUALITY = 80
MEDIA_TYPE = "image/jpeg"  # of every stored photo and thumbnail
DEFAULT_MAX_BYTES = 10_000_000
DEFAULT_MAX_PIXELS = 40_000_000  # 8,000 x 5,000: more than a phone camera's usual photo
# Pillow's own decompression-bomb limit, which it warns past (a refusal here): the highest
# pixel limit a setting may give.
PILLOW_MAX_PIXELS = Image.MAX_IMAGE_PIXELS

_SRGB = ImageCms.createProfile("sRGB")
_GPS_STATUS, _LAT_REF, _LAT, _LON_REF, _LON = 9, 1, 2, 3, 4  # EXIF GPS IFD tags
_OFFSET_TIME_ORIGINAL = 0x9011


@dataclass(frozen=True)
class PhotoLimits:
    """The largest upload in bytes and in pixels (width x height as its header declares)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS


DEFAULT_LIMITS = PhotoLimits()


@dataclass(frozen=True)
class CleanPhoto:
    """A photo ready to keep: ``data`` and ``thumbnail`` are JPEG without metadata;
    ``position`` is (lon, lat) in WGS84 from the upload's EXIF GPS, ``taken_at`` its
    ``DateTimeOriginal`` (both None when it had none); ``source_format`` what the upload was."""

    data: bytes
    width: int
    height: int
    thumbnail: bytes
    thumbnail_width: int
    thumbnail_height: int
    source_format: str
    position: tuple[float, float] | None
    taken_at: datetime | None


def clean_photo(data: bytes, limits: PhotoLimits = DEFAULT_LIMITS) -> CleanPhoto:
    """Check ``data`` and return the photo to keep (see the module's docstring)."""
    if len(data) > limits.max_bytes:
        raise PhotoTooLarge(
            f"the photo is {len(data)} bytes; at most {limits.max_bytes} are taken",
            zh=f"照片大小为 {len(data)} 字节，超过上限 {limits.max_bytes} 字节")
    if not data:
        raise InvalidPhoto("the photo file is empty", zh="照片文件为空")
    with warnings.catch_warnings():
        # Pillow's own bomb check warns past its limit: a refusal here, like ours below.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = _open(data, limits)
        position, taken_at = _exif_facts(image)
        icc = image.info.get("icc_profile")
        try:
            image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # a JPEG decodes at a fraction of its size
            image.load()
            upright = ImageOps.exif_transpose(image)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb(image.size, limits) from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise InvalidPhoto(f"the {image.format} file is damaged and cannot be decoded ({exc})",
                               zh=f"该 {image.format} 文件已损坏，无法解码") from exc
    pixels = _fresh_rgb(_in_srgb(upright, icc))
    pixels.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    thumb = pixels.copy()
    thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    return CleanPhoto(_jpeg(pixels, QUALITY), *pixels.size, _jpeg(thumb, THUMBNAIL_QUALITY),
                      *thumb.size, image.format, position, taken_at)


def _open(data: bytes, limits: PhotoLimits) -> Image.Image:
    """The upload opened (its header read, nothing decoded yet) and its size checked."""
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError as exc:
        raise InvalidPhoto(
            "the file is not a JPEG, PNG or WebP image (its content was checked, not its name)",
            zh="该文件不是 JPEG、PNG 或 WebP 图片（按文件内容判断，而非文件名）") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb(None, limits) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidPhoto(f"the image file is damaged and cannot be read ({exc})",
                           zh="该图片文件已损坏，无法读取") from exc
    width, height = image.size
    if width < 1 or height < 1 or width * height > limits.max_pixels:
        raise _bomb(image.size, limits)
    return image


def _bomb(size: tuple[int, int] | None, limits: PhotoLimits) -> InvalidPhoto:
    said = f"{size[0]} x {size[1]} pixels" if size else "more pixels than Pillow decodes safely"
    said_zh = f"{size[0]} × {size[1]} 像素" if size else "像素数超出安全解码范围"
    return InvalidPhoto(
        f"the image declares {said}; at most {limits.max_pixels} pixels are taken",
        zh=f"该图片声明的尺寸为 {said_zh}，超过 {limits.max_pixels} 像素的上限")


# -- what the EXIF says ------------------------------------------------------------------------
def _exif_facts(image: Image.Image) -> tuple[tuple[float, float] | None, datetime | None]:
    """(position, taken_at) from the upload's EXIF; (None, None) when it has none or it cannot be
    read (EXIF is whatever the device wrote; a broken block is dropped with the rest)."""
    try:
        exif = image.getexif()
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        details = exif.get_ifd(ExifTags.IFD.Exif)
    except Exception:  # noqa: BLE001 - any malformed EXIF: read nothing from it
        return None, None
    taken = details.get(ExifTags.Base.DateTimeOriginal) or exif.get(ExifTags.Base.DateTime)
    return exif_position(gps), exif_time(taken, details.get(_OFFSET_TIME_ORIGINAL))


def exif_position(gps: dict) -> tuple[float, float] | None:
    """(lon, lat) from an EXIF GPS block, or None when it has no usable fix: missing or
    malformed values, a void fix (GPSStatus V), out of range, or 0, 0 (a device without a fix)."""
    if not gps or _text(gps.get(_GPS_STATUS)) == "V":
        return None
    lat = _degrees(gps.get(_LAT), _text(gps.get(_LAT_REF)), ("N", "S"))
    lon = _degrees(gps.get(_LON), _text(gps.get(_LON_REF)), ("E", "W"))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    if lat == 0 and lon == 0:
        return None
    return lon, lat


def _degrees(value, ref: str | None, refs: tuple[str, str]) -> float | None:
    try:
        parts = [float(v) for v in (value if isinstance(value, tuple | list) else (value,))]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not 1 <= len(parts) <= 3 or not all(math.isfinite(p) and p >= 0 for p in parts):
        return None
    degrees = sum(p / 60 ** i for i, p in enumerate(parts))
    if ref not in refs:
        return None
    return -degrees if ref == refs[1] else degrees


def _text(value) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.strip("\x00 ").upper() if isinstance(value, str) else None


def exif_time(value, offset=None) -> datetime | None:
    """An EXIF date-time (``2026:03:14 09:26:53``) with its offset (``+08:00``) if any, else
    taken as Beijing time; None when it is missing or not a date-time."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.strptime(value.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if isinstance(offset, bytes):
        offset = offset.decode("ascii", "replace")
    if isinstance(offset, str):
        try:
            return datetime.fromisoformat(f"{moment.isoformat()}{offset.strip(chr(0) + ' ')}")
        except ValueError:
            pass
    return moment.replace(tzinfo=BEIJING)


# -- the pixels ------------------------------------------------------------------------------
def _in_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """``image`` converted to sRGB when its ICC profile names another colour space (a wide-gamut
    camera); unchanged without a profile, or with one that cannot be read."""
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(image, source, _SRGB,
                                         outputMode="RGBA" if image.mode == "RGBA" else "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image


def _fresh_rgb(image: Image.Image) -> Image.Image:
    """The pixels alone in a new RGB image: transparency laid on white, no metadata carried."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    rgb = image.convert("RGB")
    return Image.frombytes("RGB", rgb.size, rgb.tobytes())


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()
