"""Photo files made in the tests with Pillow: a camera JPEG with EXIF (GPS, make and model,
orientation, the time taken), PNG, WebP, and files that only pretend to be photos."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import ExifTags, Image, ImageCms

CAMERA_MAKE, CAMERA_MODEL = "HUAWEI", "MatePad-Pro-13"
TAKEN = "2026:03:14 09:26:53"  # DateTimeOriginal, no offset: Beijing time


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    return float(degrees), float(minutes), round((value - degrees - minutes / 60) * 3600, 4)


def camera_exif(*, gps: tuple[float, float] | None = None, orientation: int | None = None,
                taken: str | None = TAKEN, offset: str | None = None) -> Image.Exif:
    """EXIF as a phone camera writes it: make and model, orientation, the GPS position
    (lon, lat) and when the photo was taken."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = CAMERA_MAKE
    exif[ExifTags.Base.Model] = CAMERA_MODEL
    exif[ExifTags.Base.Software] = "camera 14.2.0"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if gps is not None:
        lon, lat = gps
        exif.get_ifd(ExifTags.IFD.GPSInfo).update({
            ExifTags.GPS.GPSLatitudeRef: "N" if lat >= 0 else "S",
            ExifTags.GPS.GPSLatitude: _dms(abs(lat)),
            ExifTags.GPS.GPSLongitudeRef: "E" if lon >= 0 else "W",
            ExifTags.GPS.GPSLongitude: _dms(abs(lon)),
            ExifTags.GPS.GPSMapDatum: "WGS-84"})
    details = exif.get_ifd(ExifTags.IFD.Exif)
    if taken is not None:
        details[ExifTags.Base.DateTimeOriginal] = taken
        details[ExifTags.Base.BodySerialNumber] = "SN-0042-7731"
    if offset is not None:
        details[ExifTags.Base.OffsetTimeOriginal] = offset
    return exif


def picture(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """A picture with some detail: a gradient, so that the encoders have something to keep."""
    width, height = size
    gradient = Image.linear_gradient("L").resize(size)
    if mode == "RGBA":
        return Image.merge("RGBA", (gradient, gradient.transpose(Image.Transpose.ROTATE_90)
                                    .resize(size), Image.new("L", size, 90), gradient))
    image = Image.merge("RGB", (gradient, Image.new("L", size, 120),
                                gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    return image.convert(mode) if mode != "RGB" else image


def camera_jpeg(size: tuple[int, int] = (400, 300), *, gps: tuple[float, float] | None = None,
                orientation: int | None = 6, taken: str | None = TAKEN, offset: str | None = None,
                icc: bool = True, xmp: bool = True, quality: int = 90) -> bytes:
    """A JPEG as a tablet's camera saves it: EXIF (make, model, serial number, GPS when given,
    orientation), an sRGB ICC profile and an XMP packet naming the device."""
    extra = {}
    if icc:
        extra["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    if xmp:
        extra["xmp"] = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/'
                        b'1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe'
                        b'.com/tiff/1.0/" tiff:Make="' + CAMERA_MAKE.encode() + b'"/></rdf:RDF>'
                        b'</x:xmpmeta>')
    out = io.BytesIO()
    picture(size).save(out, "JPEG", quality=quality,
                       exif=camera_exif(gps=gps, orientation=orientation, taken=taken, offset=offset),
                       **extra)
    return out.getvalue()


def png(size: tuple[int, int] = (320, 240), mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    picture(size, mode).save(out, "PNG")
    return out.getvalue()


def webp(size: tuple[int, int] = (320, 240)) -> bytes:
    out = io.BytesIO()
    picture(size).save(out, "WEBP", quality=80, exif=camera_exif(gps=(112.86, 36.84)))
    return out.getvalue()


def gif(size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    picture(size).convert("P").save(out, "GIF")
    return out.getvalue()


NOT_AN_IMAGE = "这不是照片，只是一个改名为 .jpg 的文本文件。\nnot a photo\n".encode()


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A PNG of a few hundred bytes that declares ``width`` x ``height`` pixels (1-bit grey):
    decoding it would need gigabytes (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 4096, 9)  # the start of the rows; the header is the point
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows)
            + chunk(b"IEND", b""))


def metadata_left(data: bytes) -> list[str]:
    """What of the camera's metadata a stored JPEG still carries (empty: none)."""
    found = []
    image = Image.open(io.BytesIO(data))
    exif = image.getexif()
    if len(exif):
        found.append(f"EXIF tags {sorted(exif)}")
    if exif.get_ifd(ExifTags.IFD.GPSInfo):
        found.append("GPS")
    for key in ("exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment"):
        if key in image.info:
            found.append(f"info[{key!r}]")
    for marker in (b"Exif\x00\x00", CAMERA_MAKE.encode(), CAMERA_MODEL.encode(), b"SN-0042",
                   b"ns.adobe.com", b"ICC_PROFILE", b"WGS-84"):
        if marker in data:
            found.append(f"bytes {marker!r}")
    return found
