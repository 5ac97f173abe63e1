"""The community office's roster (花名册) in: an Excel workbook with Chinese headers and numbers
typed as numbers, CSV in GBK or with a BOM; every bad row reported and nothing imported; a
re-import updates by username and keeps who held which grid. Database tests roll back."""

from __future__ import annotations

import pytest
from openpyxl import Workbook
from sqlalchemy import text

from gis.errors import ImportFailed
from gis.people import accounts
from gis.people.passwords import PasswordPolicy, verify_password
from gis.people.roster import import_roster, read_roster, typed_digits

GRID_01, GRID_02, GRID_03, GRID_05 = (f"1404291000010{n:02d}" for n in (1, 2, 3, 5))
ZH_HEADERS = ["序号", "用户名", "姓名", "手机号", "角色", "网格编码", "管辖区域", "部门", "初始密码"]
GIVEN = "Chu-Shi-Mi-2024"


def xlsx(path, rows, headers=ZH_HEADERS, title="太东社区网格员花名册"):
    book = Workbook()
    sheet = book.active
    sheet.title = "花名册"
    if title:
        sheet.append([title])
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def user(session, username) -> dict:
    row = session.execute(text("""
        SELECT u.username, u.display_name, u.role, u.phone, u.must_change_password, u.password_hash,
               r.code AS region, d.code AS department,
               coalesce((SELECT array_agg(grid_code ORDER BY grid_code) FROM grid_workers
                          WHERE user_id = u.id), '{}') AS grids
          FROM users u LEFT JOIN regions r ON r.id = u.region_id
          LEFT JOIN departments d ON d.id = u.department_id WHERE u.username = :u"""),
        {"u": username}).mappings().first()
    return dict(row) if row else None


def test_an_excel_roster_with_chinese_headers_and_numbers_typed_as_numbers(tmp_path, session):
    path = xlsx(tmp_path / "花名册.xlsx", [
        [1, "zhang.wei", "张伟", 13800001111, "网格员", f"{GRID_01}、{GRID_02}", None, None, GIVEN],
        [2, "li.na", "李娜", 13800002222.0, "网格员", float(GRID_03), None, None, None],
        [3, "wang.fang", "王芳", None, "社区书记", None, "太东社区", None, None],
        [4, "zhao.lei", "赵磊", "138-0000-4444", "部门人员", None, None, "市政所", None],
        [5, "chen.jing", "陈静", 1.38000055e10, "派遣员", None, 140429, None, None],
    ])
    roster = read_roster(path)
    assert roster.problems == [] and roster.ignored_columns == ["序号"]
    assert [r.row for r in roster.rows] == [3, 4, 5, 6, 7]  # as Excel numbers them, under a title
    result = import_roster(session, roster, by="cli:clerk", policy=PasswordPolicy())
    assert result.created == ["zhang.wei", "li.na", "wang.fang", "zhao.lei", "chen.jing"]
    assert result.updated == [] and result.kept_passwords == []

    zhang, li = user(session, "zhang.wei"), user(session, "li.na")
    assert (zhang["role"], zhang["phone"], zhang["grids"]) == ("worker", "13800001111", [GRID_01, GRID_02])
    assert (li["phone"], li["grids"]) == ("13800002222", [GRID_03])
    assert verify_password(GIVEN, zhang["password_hash"])
    assert (user(session, "wang.fang")["role"], user(session, "wang.fang")["region"]) == ("leader", "140429100001")
    assert user(session, "chen.jing")["region"] == "140429" and user(session, "chen.jing")["phone"] == "13800005500"
    assert (user(session, "zhao.lei")["role"], user(session, "zhao.lei")["department"]) == ("department", "shizheng")
    assert all(user(session, u)["must_change_password"] for u in result.created)
    # a generated password for each row without one, and only for those; each one works
    assert [u for u, _ in result.generated] == ["li.na", "wang.fang", "zhao.lei", "chen.jing"]
    for username, password in result.generated:
        PasswordPolicy().check(password, username=username)
        assert verify_password(password, user(session, username)["password_hash"])
    audited = session.execute(text("SELECT target FROM audit_log WHERE action = 'user_admin' "
                                   "AND username = 'cli:clerk' ORDER BY id")).scalars().all()
    assert audited == result.created


def test_every_bad_row_is_reported_and_nothing_is_imported(tmp_path, session):
    path = xlsx(tmp_path / "bad.xlsx", [
        [1, "good.one", "好人", 13800001111, "网格员", GRID_01, None, None, None],
        [2, "guard", "门卫", None, "保安", None, None, None, None],
        [3, "lost.grid", "迷路", None, "网格员", f"{GRID_02}、140429100001099", None, None, None],
        [4, "leader.two", "无区域", None, "领导", None, None, None, None],
    ], title=None)
    with pytest.raises(ImportFailed) as failed:
        import_roster(session, read_roster(path), by="cli:clerk")
    rows = dict(failed.value.rows)
    assert sorted(rows) == [3, 4, 5]
    assert "unknown role '保安'" in rows[3] and "未知的角色" in rows[3]
    assert "140429100001099" in rows[4] and "现行网格" in rows[4]
    assert "needs a region" in rows[5] and "管辖区域" in rows[5]
    assert "3 bad row(s)" in str(failed.value) and "未导入" in failed.value.zh
    assert user(session, "good.one") is None  # the good row was not imported either
    assert session.execute(text("SELECT count(*) FROM audit_log WHERE username = 'cli:clerk'")).scalar() == 0


def test_a_username_twice_in_the_file_is_an_error(tmp_path, session):
    path = xlsx(tmp_path / "twice.xlsx", [
        [1, "zhang.wei", "张伟", None, "网格员", GRID_01, None, None, None],
        [2, "Zhang.Wei", "张伟", None, "网格员", GRID_02, None, None, None],
    ], title=None)
    with pytest.raises(ImportFailed) as failed:
        import_roster(session, read_roster(path), by="cli:clerk")
    assert failed.value.rows == [(3, "username 'Zhang.Wei' is already on row 2 / "
                                     "用户名 'Zhang.Wei' 与第 2 行重复")]
    assert user(session, "zhang.wei") is None


def test_a_reimport_updates_by_username_and_keeps_the_grid_history(tmp_path, session):
    first = xlsx(tmp_path / "v1.xlsx", [
        [1, "zhang.wei", "张伟", 13800001111, "网格员", GRID_01, None, None, GIVEN]])
    import_roster(session, read_roster(first), by="cli:clerk")
    hash_before = user(session, "zhang.wei")["password_hash"]
    second = xlsx(tmp_path / "v2.xlsx", [
        [1, "zhang.wei", "张伟", 13900009999, "网格员", GRID_05, None, None, "Other-Pass-2025"],
        [2, "li.na", "李娜", None, "网格员", GRID_01, None, None, None]])
    result = import_roster(session, read_roster(second), by="cli:clerk")
    assert (result.created, result.updated) == (["li.na"], ["zhang.wei"])
    assert result.kept_passwords == ["zhang.wei"] and [u for u, _ in result.generated] == ["li.na"]
    zhang = user(session, "zhang.wei")
    assert (zhang["phone"], zhang["grids"]) == ("13900009999", [GRID_05])
    assert zhang["password_hash"] == hash_before  # an existing account keeps its password
    held = [(h["username"], h["valid_to"] is None) for h in accounts.grid_history(session, GRID_01)]
    assert ("zhang.wei", False) in held and ("li.na", True) in held and ("worker01", True) in held


def test_an_empty_grid_cell_hands_the_grids_back_and_an_absent_column_leaves_them(tmp_path, session):
    import_roster(session, read_roster(xlsx(tmp_path / "a.xlsx", [
        [1, "zhang.wei", "张伟", None, "网格员", GRID_01, None, None, None]])), by="x")
    only_phone = xlsx(tmp_path / "b.xlsx", [["zhang.wei", 13800001111]], headers=["用户名", "手机号"])
    import_roster(session, read_roster(only_phone), by="x")
    assert user(session, "zhang.wei")["grids"] == [GRID_01]
    empty_grid = xlsx(tmp_path / "c.xlsx", [["zhang.wei", None]], headers=["用户名", "网格编码"])
    import_roster(session, read_roster(empty_grid), by="x")
    assert user(session, "zhang.wei")["grids"] == []


def test_a_gbk_csv_with_english_headers(tmp_path, session):
    path = tmp_path / "roster.csv"
    path.write_bytes(
        ("username,name,phone,role,grid,region,department,password\r\n"
         f"liu.yang,刘洋,13800006666,worker,{GRID_01}；{GRID_02},,,\r\n"
         "sun.li,孙丽,,领导,,太东社区,,\r\n").encode("gbk"))
    result = import_roster(session, read_roster(path), by="cli:clerk")
    assert result.created == ["liu.yang", "sun.li"]
    assert user(session, "liu.yang")["display_name"] == "刘洋"
    assert user(session, "liu.yang")["grids"] == [GRID_01, GRID_02]
    assert user(session, "sun.li")["region"] == "140429100001"


def test_a_utf8_csv_with_bom_and_spaced_headers(tmp_path, session):
    path = tmp_path / "roster.csv"
    path.write_text(" 用户名 , 姓名 ,角色 ,网格编码\n"
                    f"zhou.min,周敏,网格员,\"{GRID_03}, {GRID_05}\"\n", encoding="utf-8-sig")
    roster = read_roster(path)
    assert roster.columns == {"username": "用户名", "display_name": "姓名", "role": "角色",
                              "grids": "网格编码"}
    import_roster(session, roster, by="cli:clerk")
    assert user(session, "zhou.min")["grids"] == [GRID_03, GRID_05]


# -- reading alone: no database --------------------------------------------------------------------
def test_digits_typed_as_numbers_read_as_typed():
    assert typed_digits("13800001111.0", "phone") == "13800001111"
    assert typed_digits("1.40429100001001E14", "grid code") == "140429100001001"
    assert typed_digits(GRID_01, "grid code") == GRID_01
    with pytest.raises(Exception, match="shortened by Excel to 6 digits"):
        typed_digits("1.40429E+14", "grid code")


def test_a_shortened_grid_code_is_a_bad_row(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("用户名,姓名,角色,网格编码\nzhang.wei,张伟,网格员,1.40429E+14\n", encoding="utf-8")
    roster = read_roster(path)
    assert roster.rows == [] and roster.problems[0][0] == 2
    assert "format the column as text" in roster.problems[0][1] and "文本格式" in roster.problems[0][1]


def test_a_file_without_a_username_column_or_of_another_kind_is_refused(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("姓名,角色\n张伟,网格员\n", encoding="utf-8")
    with pytest.raises(ImportFailed, match="no header row with a username column"):
        read_roster(path)
    (tmp_path / "r.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(ImportFailed, match=r"save an \.xls file as \.xlsx"):
        read_roster(tmp_path / "r.xls")
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip")
    with pytest.raises(ImportFailed, match="not a readable Excel workbook"):
        read_roster(tmp_path / "broken.xlsx")
