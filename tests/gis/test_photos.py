"""Photos checked and cleaned (gis.media.photos) and kept by content (gis.media.storage), without
a database: what a tablet sends goes in, what GridMap stores comes out."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image

from gis.errors import InvalidPhoto, NotFound, PhotoTooLarge
from gis.media.photos import (
    MAX_SIDE,
    THUMBNAIL_SIDE,
    PhotoLimits,
    clean_photo,
    exif_position,
    exif_time,
)
from gis.media.storage import FileStorage, content_key
from gis.rules import BEIJING
from tests.photo_files import (
    NOT_AN_IMAGE,
    camera_jpeg,
    gif,
    metadata_left,
    picture,
    png,
    png_bomb,
    webp,
)

WUXIANG = (112.8652, 36.8374)  # lon, lat


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


# -- what is kept -------------------------------------------------------------------------------
def test_a_camera_jpeg_keeps_its_position_and_time_and_loses_every_piece_of_metadata():
    upload = camera_jpeg((400, 300), gps=WUXIANG, orientation=6)
    assert len(metadata_left(upload)) >= 8  # the upload does carry them: the test can fail
    photo = clean_photo(upload)
    lon, lat = photo.position
    assert lon == pytest.approx(WUXIANG[0], abs=1e-6) and lat == pytest.approx(WUXIANG[1], abs=1e-6)
    assert photo.taken_at == datetime(2026, 3, 14, 9, 26, 53, tzinfo=BEIJING)
    assert metadata_left(photo.data) == [] and metadata_left(photo.thumbnail) == []
    assert _open(photo.data).format == "JPEG" and photo.source_format == "JPEG"


def test_the_orientation_is_applied_to_the_pixels():
    # Orientation 6: the camera was held upright, the sensor wrote the picture on its side.
    photo = clean_photo(camera_jpeg((400, 300), orientation=6))
    assert (photo.width, photo.height) == (300, 400) == _open(photo.data).size
    unrotated = clean_photo(camera_jpeg((400, 300), orientation=1))
    assert (unrotated.width, unrotated.height) == (400, 300)


def test_a_large_photo_is_shrunk_and_its_thumbnail_is_smaller_still():
    photo = clean_photo(camera_jpeg((3200, 2400), orientation=1, quality=70))
    assert (photo.width, photo.height) == (MAX_SIDE, 1200)
    assert (photo.thumbnail_width, photo.thumbnail_height) == (THUMBNAIL_SIDE, 240)
    assert _open(photo.thumbnail).size == (THUMBNAIL_SIDE, 240)
    assert len(photo.thumbnail) < len(photo.data)


def test_a_small_photo_is_not_enlarged():
    photo = clean_photo(camera_jpeg((120, 90), orientation=1))
    assert (photo.width, photo.height) == (120, 90)
    assert (photo.thumbnail_width, photo.thumbnail_height) == (120, 90)


@pytest.mark.parametrize("data, source", [(png(), "PNG"), (png(mode="L"), "PNG"),
                                          (png(mode="P"), "PNG"), (webp(), "WEBP")])
def test_png_and_webp_are_taken_and_stored_as_jpeg(data, source):
    photo = clean_photo(data)
    assert photo.source_format == source
    assert _open(photo.data).format == "JPEG" and _open(photo.data).mode == "RGB"
    assert metadata_left(photo.data) == []


def test_transparency_is_laid_on_white():
    out = io.BytesIO()
    Image.new("RGBA", (40, 30), (255, 0, 0, 0)).save(out, "PNG")  # fully transparent red
    r, g, b = _open(clean_photo(out.getvalue()).data).getpixel((20, 15))
    assert min(r, g, b) >= 250


def test_the_webp_exif_position_is_read_too():
    assert clean_photo(webp()).position == pytest.approx((112.86, 36.84), abs=1e-6)


def test_the_same_upload_gives_the_same_bytes():
    upload = camera_jpeg((500, 400), gps=WUXIANG)
    assert clean_photo(upload).data == clean_photo(upload).data


# -- what is refused ----------------------------------------------------------------------------
@pytest.mark.parametrize("data, says", [
    (NOT_AN_IMAGE, "not a JPEG, PNG or WebP"),
    (gif(), "not a JPEG, PNG or WebP"),
    (b"", "empty"),
    (camera_jpeg((600, 400))[:900], "damaged"),
])
def test_what_is_not_a_photo_is_refused_saying_why(data, says):
    with pytest.raises(InvalidPhoto, match=says) as refused:
        clean_photo(data)
    assert refused.value.zh  # a Chinese message for the tablet


def test_a_file_over_the_byte_limit_is_too_large():
    data = camera_jpeg((400, 300))
    with pytest.raises(PhotoTooLarge, match=f"at most {len(data) - 1}"):
        clean_photo(data, PhotoLimits(max_bytes=len(data) - 1))
    assert clean_photo(data, PhotoLimits(max_bytes=len(data))).width == 300


def test_a_decompression_bomb_is_refused_before_it_is_decoded():
    bomb = png_bomb(50_000, 50_000)
    assert len(bomb) < 1_000
    with pytest.raises(InvalidPhoto, match="pixels"):
        clean_photo(bomb)
    # under Pillow's own limit, the setting's limit refuses it
    with pytest.raises(InvalidPhoto, match="declares 5000 x 4000 pixels; at most 10000000"):
        clean_photo(png_bomb(5_000, 4_000), PhotoLimits(max_pixels=10_000_000))


def test_the_pixel_limit_counts_the_declared_size():
    data = camera_jpeg((400, 300))
    with pytest.raises(InvalidPhoto, match="400 x 300 pixels; at most 119999"):
        clean_photo(data, PhotoLimits(max_pixels=119_999))
    assert clean_photo(data, PhotoLimits(max_pixels=120_000)).height == 400


# -- reading the EXIF ---------------------------------------------------------------------------
@pytest.mark.parametrize("gps, expected", [
    ({1: "N", 2: (36.0, 50.0, 14.64), 3: "E", 4: (112.0, 51.0, 54.72)}, (112.8652, 36.8374)),
    ({1: "S", 2: (33.0, 52.0, 0.0), 3: "W", 4: (151.0, 12.0, 36.0)}, (-151.21, -33.866667)),
    ({1: b"N\x00", 2: (36.5,), 3: b"E\x00", 4: (112.25,)}, (112.25, 36.5)),  # decimal degrees
    ({1: "N", 2: (0.0, 0.0, 0.0), 3: "E", 4: (0.0, 0.0, 0.0)}, None),  # no fix
    ({1: "N", 2: (36.0, 50.0, 14.0), 3: "E", 4: (112.0, 51.0, 54.0), 9: "V"}, None),  # void
    ({1: "N", 2: (36.0, 50.0, 14.0)}, None),  # no longitude
    ({1: "X", 2: (36.0, 50.0, 14.0), 3: "E", 4: (112.0, 51.0, 54.0)}, None),  # unknown reference
    ({1: "N", 2: (95.0, 0.0, 0.0), 3: "E", 4: (112.0, 0.0, 0.0)}, None),  # off the globe
    ({1: "N", 2: (float("nan"), 0.0, 0.0), 3: "E", 4: (112.0, 0.0, 0.0)}, None),  # 0/0 rational
    ({1: "N", 2: "36", 3: "E", 4: (112.0, 0.0, 0.0)}, (112.0, 36.0)),
    ({1: "N", 2: "north", 3: "E", 4: (112.0, 0.0, 0.0)}, None),
    ({}, None),
])
def test_the_gps_position_is_read_as_the_camera_wrote_it(gps, expected):
    found = exif_position(gps)
    assert found == (None if expected is None else pytest.approx(expected, abs=1e-6))


@pytest.mark.parametrize("value, offset, expected", [
    ("2026:03:14 09:26:53", None, datetime(2026, 3, 14, 9, 26, 53, tzinfo=BEIJING)),
    (b"2026:03:14 09:26:53\x00", "+05:30",
     datetime(2026, 3, 14, 9, 26, 53, tzinfo=timezone(timedelta(hours=5, minutes=30)))),
    ("2026:03:14 09:26:53", "garbage", datetime(2026, 3, 14, 9, 26, 53, tzinfo=BEIJING)),
    ("0000:00:00 00:00:00", None, None),
    ("yesterday", None, None),
    (None, None, None),
])
def test_the_time_taken_is_read_in_beijing_time_unless_it_says_otherwise(value, offset, expected):
    assert exif_time(value, offset) == expected


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow says so as it reads it
def test_a_broken_exif_block_is_dropped_without_refusing_the_photo():
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "HUAWEI"
    raw = bytearray(exif.tobytes())
    raw[10:14] = b"\xff\xff\xff\xff"  # an entry pointing nowhere
    out = io.BytesIO()
    picture((80, 60)).save(out, "JPEG", exif=bytes(raw))
    photo = clean_photo(out.getvalue())
    assert photo.position is None and metadata_left(photo.data) == []


# -- any size, any orientation ------------------------------------------------------------------
SWAPS = {5, 6, 7, 8}  # orientations that turn the picture a quarter


@settings(max_examples=25, deadline=None)
@given(width=st.integers(1, 2600), height=st.integers(1, 2600), orientation=st.integers(1, 8),
       fmt=st.sampled_from(["JPEG", "PNG", "WEBP"]))
def test_any_photo_is_stored_within_1600_px_upright_and_without_exif(width, height, orientation,
                                                                     fmt):
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "HUAWEI"
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 140, 90)).save(out, fmt, exif=exif)
    photo = clean_photo(out.getvalue())
    stored = _open(photo.data)
    assert stored.size == (photo.width, photo.height)
    assert max(stored.size) <= MAX_SIDE and min(stored.size) >= 1
    assert max(_open(photo.thumbnail).size) <= THUMBNAIL_SIDE
    turned = (height, width) if orientation in SWAPS else (width, height)
    if max(turned) <= MAX_SIDE:
        assert stored.size == turned
    else:  # shrunk to 1,600 px on the long side, the proportions kept to a pixel
        scale = MAX_SIDE / max(turned)
        assert max(stored.size) == MAX_SIDE
        assert abs(stored.width - turned[0] * scale) <= 1
        assert abs(stored.height - turned[1] * scale) <= 1
    assert len(stored.getexif()) == 0 and b"HUAWEI" not in photo.data


# -- the store ----------------------------------------------------------------------------------
def test_the_store_keeps_bytes_under_their_sha256_sharded_and_once(tmp_path):
    store = FileStorage(tmp_path / "media")
    data = b"\xff\xd8 a photo's bytes"
    key = store.put(data)
    assert key == hashlib.sha256(data).hexdigest() == content_key(data)
    assert store.path(key) == tmp_path / "media" / key[:2] / key[2:4] / key
    assert store.exists(key) and store.put(data) == key
    with store.open(key) as f:
        assert f.read() == data
    files = [p for p in (tmp_path / "media").rglob("*") if p.is_file()]
    assert files == [store.path(key)]  # no temporary file left beside it


def test_the_store_says_what_it_does_not_hold(tmp_path):
    store = FileStorage(tmp_path)
    missing = content_key(b"never stored")
    assert not store.exists(missing)
    with pytest.raises(NotFound, match=missing):
        store.open(missing)
    for bad in ("../../etc/passwd", "A" * 64, missing[:-1], "0" * 63 + "/"):
        with pytest.raises(ValueError, match="64 lower-case hexadecimal"):
            store.path(bad)


def test_a_failed_write_leaves_nothing_under_the_key(tmp_path, monkeypatch):
    import os

    store = FileStorage(tmp_path)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.put(b"half a photo")
    assert not store.exists(content_key(b"half a photo"))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
