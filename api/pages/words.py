"""The words of the log-in, password and admin pages and of the leaders' dashboard, in Chinese
(the default) and English (``?lang=en``): one table, so each is translated once. The dashboard's
script gets its words from the page (:data:`DASH_SCRIPT_WORDS`)."""

from __future__ import annotations

from typing import Literal

from gis.rules import ROLE_NAMES

PageLang = Literal["zh", "en"]

WORDS: dict[str, tuple[str, str]] = {
    "gridmap": ("GridMap 网格化管理", "GridMap community grids"),
    "other_language": ("English", "中文"),
    # log-in
    "login_title": ("登录", "Log in"),
    "username": ("用户名", "Username"),
    "password": ("密码", "Password"),
    "login": ("登录", "Log in"),
    "logout": ("退出登录", "Log out"),
    "stale_form": ("登录表单已过期，请重新输入后登录。",
                   "The log-in form had expired; enter your username and password again."),
    # the password change
    "password_title": ("修改密码", "Change your password"),
    "initial_password": ("您正在使用管理员设置的初始密码，请先设置自己的密码。",
                         "You logged in with an initial password set by an administrator: set "
                         "your own first."),
    "old_password": ("原密码", "Current password"),
    "new_password": ("新密码", "New password"),
    "confirm_password": ("确认新密码", "Confirm the new password"),
    "save_password": ("保存新密码", "Save the new password"),
    "passwords_differ": ("两次输入的新密码不一致。", "The two new passwords differ."),
    "password_rules": ("至少 {length} 个字符，包含小写字母、大写字母、数字、其他字符中的至少 {classes} 类，"
                       "不得包含用户名。",
                       "At least {length} characters, with {classes} of: lower-case letters, "
                       "upper-case letters, digits, other characters; not containing the "
                       "username."),
    # the bar on every page
    "logged_in_as": ("当前用户", "Logged in as"),
    "users_title": ("用户管理", "Users"),
    "password_link": ("修改密码", "Password"),
    "overview": ("网格总览", "Overview"),
    # the admin's user page
    "users": ("用户", "Users"),
    "add_user": ("新增用户", "Add a user"),
    "display_name": ("姓名", "Name"),
    "role": ("角色", "Role"),
    "phone": ("手机号", "Phone"),
    "grids": ("负责网格", "Grids"),
    "grids_hint": ("网格编码，多个用逗号或空格分隔（仅网格员）",
                   "Grid codes, separated by commas or spaces (workers only)"),
    "region": ("管辖区域", "Region"),
    "region_hint": ("领导、派遣员须选择", "For leaders and dispatchers"),
    "department": ("所属部门", "Department"),
    "department_hint": ("部门人员须选择", "For department staff"),
    "none": ("（无）", "(none)"),
    "active": ("状态", "Status"),
    "enabled": ("启用", "active"),
    "disabled": ("停用", "disabled"),
    "must_change": ("须改密码", "Must change password"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "actions": ("操作", "Actions"),
    "edit": ("修改角色与范围", "Change role and scope"),
    "save": ("保存", "Save"),
    "create": ("新增", "Add"),
    "disable": ("停用", "Disable"),
    "enable": ("启用", "Enable"),
    "reset_password": ("重置密码", "Reset the password"),
    "created": ("已新增用户 {username}。", "User {username} added."),
    "saved": ("已保存用户 {username}。", "User {username} saved."),
    "now_disabled": ("已停用用户 {username}，其登录已全部失效。",
                     "User {username} disabled; their log-ins have ended."),
    "now_enabled": ("已启用用户 {username}。", "User {username} enabled."),
    "password_reset": ("已重置用户 {username} 的密码，其登录已全部失效。",
                       "The password of {username} was reset; their log-ins have ended."),
    "initial_password_once": (
        "初始密码（仅显示这一次，请当面或电话告知本人；首次登录须修改）：",
        "Initial password (shown this once only: tell the user in person or by phone; they "
        "must change it at the first log-in):"),
    "not_yourself": ("不能停用自己的账号。", "You cannot disable your own account."),
    "dash_link": ("驾驶舱", "Dashboard"),
    "notifications_link": ("通知", "Notifications"),
    "notifications_title": ("通知", "Notifications"),
    "unread_count": ("{n} 条未读", "{n} unread"),
    "mark_all_read": ("全部标为已读", "Mark all read"),
    "no_notifications": ("暂无通知。", "No notifications."),
    "notification_kind_overdue": ("超时", "late"),
    "notification_kind_returned": ("回退", "returned"),
    "notification_kind_extension_request": ("延期申请", "extension asked"),
    "notification_kind_extension_decided": ("延期审批", "extension decided"),
    "notification_kind_supervision": ("督办", "supervision notice"),
    "notification_kind_supervision_reply": ("督办回复", "reply to a notice"),
    "open_issue": ("查看事件", "Open the issue"),
    # the leaders' dashboard (/dash)
    "dash_title": ("领导驾驶舱", "Leaders' dashboard"),
    "big_screen": ("大屏", "Big screen"),
    "tablet_view": ("平板", "Tablet"),
    "period": ("统计周期", "Period"),
    "period_week": ("周", "Week"),
    "period_month": ("月", "Month"),
    "period_quarter": ("季度", "Quarter"),
    "day": ("日期", "Date"),
    "community": ("社区", "Community"),
    "all_communities": ("全部社区", "All communities"),
    "category": ("类别", "Category"),
    "all_categories": ("全部类别", "All categories"),
    "apply": ("查看", "Show"),
    "kpi_open": ("在办案件", "Open cases"),
    "kpi_overdue": ("当前超期", "Overdue now"),
    "kpi_reported": ("本期上报", "Reported in the period"),
    "kpi_closed": ("本期结案", "Closed in the period"),
    "kpi_on_time": ("本期按期结案率", "On-time closure rate"),
    "trend_title": ("每周案件趋势（按类别）", "Cases reported per week, by category"),
    "on_time_title": ("每周按期结案率", "On-time closure rate per week"),
    "heat_title": ("本期案件热力", "Where cases were reported in the period"),
    "overdue_title": ("超期案件", "Overdue cases"),
    "league_title": ("部门排行", "Department league table"),
    "workers_title": ("网格员评价", "Grid workers' grades"),
    "loading": ("加载中…", "Loading…"),
    "no_data": ("暂无数据", "No data yet"),
    "evaluation_pending": ("综合评价功能尚未启用", "The evaluation is not available yet"),
    "load_failed": ("加载失败", "Could not load"),
    "col_case": ("案件", "Case"),
    "col_category": ("类别", "Category"),
    "col_grid": ("网格", "Grid"),
    "col_department": ("部门", "Department"),
    "col_late": ("超期时长", "Late by"),
    "col_step": ("超期环节", "Overdue step"),
    "col_rank": ("名次", "Rank"),
    "col_name": ("名称", "Name"),
    "col_score": ("得分", "Score"),
    "col_grade": ("等级", "Grade"),
    "col_change": ("较上期", "Change"),
    "promised": ("承诺时限", "Promised deadline"),
    "hours": ("小时", "h"),
    "cases": ("件", "cases"),
    "closed_n": ("结案数", "Closed"),
    "on_time_rate": ("按期结案率", "On-time rate"),
    "selected_period": ("本期", "This period"),
    "no_grid": ("无网格", "No grid"),
    "no_department": ("未派遣", "Not dispatched"),
    "grid_worker": ("网格员", "Grid worker"),
    "more_rows": ("另有 {n} 件未显示", "{n} more not shown"),
    "export_xlsx": ("导出 Excel", "Export XLSX"),
    "export_csv": ("导出 CSV", "Export CSV"),
    # errors
    "error_title": ("出错了", "Something went wrong"),
    "error_401": ("请先登录", "Log in first"),
    "error_403": ("无权访问", "Not allowed"),
    "error_404": ("未找到", "Not found"),
    "error_422": ("请求有误", "The request is invalid"),
    "back_to_overview": ("返回网格总览", "Back to the overview"),
}


# The words the dashboard's script writes (charts, tables, states), handed to it by the page.
DASH_SCRIPT_WORDS = (
    "loading", "no_data", "evaluation_pending", "load_failed", "col_case", "col_category",
    "col_grid", "col_department", "col_late", "col_step", "col_rank", "col_name", "col_score",
    "col_grade", "col_change", "promised", "hours", "cases", "closed_n", "on_time_rate",
    "selected_period", "no_grid", "no_department", "grid_worker", "more_rows", "export_xlsx", "export_csv",
    "big_screen", "tablet_view", "other_language", "period_week", "period_month",
    "period_quarter")


def page_lang(value: str | None) -> PageLang:
    """The page language a query or form names; Chinese unless it says ``en``."""
    return "en" if value == "en" else "zh"


def t(key: str, lang: str, **values) -> str:
    """The words ``key`` in ``lang``, with ``{name}`` places filled from ``values``."""
    zh, en = WORDS[key]
    text = en if lang == "en" else zh
    return text.format(**values) if values else text


def role_name(role: str, lang: str) -> str:
    zh, en = ROLE_NAMES.get(role, (role, role))
    return en if lang == "en" else zh
