"""Masking phone and ID-card numbers in free text (no database)."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gis.people.privacy import contains_personal, mask_text, redact

MOBILE = st.builds(lambda second, rest: f"1{second}{rest}",
                   st.sampled_from("3456789"), st.text("0123456789", min_size=9, max_size=9))
ID_CARD = st.builds(lambda first, rest, last: f"{first}{rest}{last}",
                    st.sampled_from("123456789"), st.text("0123456789", min_size=16, max_size=16),
                    st.sampled_from("0123456789X"))
# Text around a number: Chinese, letters, punctuation, never a digit touching it.
SURROUNDING = st.text(alphabet=st.sampled_from(list("号楼单元室电话，。：; abcXYZ（）-")), max_size=12)


@pytest.mark.parametrize("text, masked", [
    ("5号楼1单元902室，电话13812345678", "5号楼1单元902室，电话138****5678"),
    ("联系 138-1234-5678 或 139 1234 5678", "联系 138****5678 或 139****5678"),
    ("+8613912345678", "+86139****5678"),
    ("身份证11010519900307123X。", "身份证110***********123X。"),
    ("旧证 110105900307123", "旧证 110********7123"),
    ("１３８１２３４５６７８", "138****5678"),  # full-width digits, as Chinese input types them
    ("工单号 2026113012345678901", "工单号 2026113012345678901"),  # longer digit runs are not numbers of a person
    ("12345678901", "12345678901"),  # 12… is no mobile prefix
    ("139****5678", "139****5678"),  # already masked
    ("", ""),
])
def test_examples(text, masked):
    assert mask_text(text) == masked
    assert contains_personal(text) == (text != masked)


@given(SURROUNDING, MOBILE, SURROUNDING)
def test_a_mobile_number_in_any_text_is_masked_to_its_first_three_and_last_four(before, number, after):
    out = mask_text(before + number + after)
    assert number not in out
    assert f"{number[:3]}****{number[-4:]}" in out
    assert out.startswith(before) and out.endswith(after)


@given(SURROUNDING, ID_CARD, SURROUNDING)
def test_an_id_card_number_in_any_text_is_masked(before, number, after):
    out = mask_text(before + number + after)
    assert number not in out and f"{number[:3]}{'*' * 11}{number[-4:]}" in out


@given(st.text(max_size=60))
def test_masking_is_idempotent_and_leaves_nothing_to_mask(text):
    once = mask_text(text)
    assert mask_text(once) == once
    assert not contains_personal(once)


@given(st.text(alphabet=st.characters(blacklist_categories=("Nd",)), max_size=60))
def test_text_without_digits_is_untouched(text):
    assert mask_text(text) == text


def test_none_stays_none():
    assert mask_text(None) is None and not contains_personal(None)


def test_masked_text_keeps_its_length_for_ascii_numbers():
    text = "电话13812345678，身份证110105199003071234"
    assert len(mask_text(text)) == len(text)
    assert re.fullmatch(r"电话138\*{4}5678，身份证110\*{11}1234", mask_text(text))


@given(SURROUNDING, MOBILE, SURROUNDING, ID_CARD)
def test_logs_keep_no_part_of_a_number(before, mobile, after, id_card):
    out = redact(f"{before}{mobile}{after} {id_card}")
    assert out == f"{before}<phone>{after} <id-card>"
