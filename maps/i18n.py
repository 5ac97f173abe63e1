"""Map labels in Chinese (the default) and English (``?lang=en``).

Category and status names come from data (the categories table) or from here; one table so a
label is translated once.
"""

from __future__ import annotations

from gis.rules import EVENT_KIND_NAMES, PHOTO_KIND_NAMES, PHOTO_KINDS, STATUS_NAMES

LANGS = ("zh", "en")

_TEXT: dict[str, tuple[str, str]] = {
    # layers
    "grid": ("本网格", "This grid"),
    "neighbours": ("相邻网格", "Neighbouring grids"),
    "buildings": ("楼栋", "Buildings"),
    "facilities": ("部件", "Facilities"),
    "open_issues": ("待办事件", "Open issues"),
    "streets": ("街巷", "Streets"),
    "communities": ("社区边界", "Communities"),
    "grids": ("网格", "Grids"),
    "heat": ("事件热力", "Issue density"),
    "choropleth": ("网格事件数", "Issues per grid"),
    "animation": ("按周动画", "Weekly animation"),
    "hotspots": ("热点网格 (Gi*)", "Hotspot grids (Gi*)"),
    "basemap_none": ("无底图 (离线)", "No base map (offline)"),
    "basemap_osm": ("OpenStreetMap", "OpenStreetMap"),
    "basemap_tianditu": ("天地图", "Tianditu"),
    "basemap_amap": ("高德地图", "AMap"),
    # popups and tooltips
    "category": ("类别", "Category"),
    "description": ("描述", "Description"),
    "reported": ("上报", "Reported"),
    "age": ("已过", "Age"),
    "due": ("时限", "Due"),
    "overdue": ("已超期", "overdue"),
    "status": ("状态", "Status"),
    "priority": ("优先级", "Priority"),
    "act": ("处理此事件", "Act on this issue"),
    "households": ("户数", "Households"),
    "party_households": ("党员户", "Party-member households"),
    "floors": ("层数", "Floors"),
    "compound": ("院落/小区", "Compound"),
    "worker": ("网格员", "Grid worker"),
    "population": ("人口", "Population"),
    "issues": ("事件数", "Issues"),
    "open": ("未结", "Open"),
    "closed": ("已结案", "Closed"),
    "overdue_n": ("超期", "Overdue"),
    "per_1000": ("每千户事件", "Per 1,000 households"),
    "on_time_rate": ("按期结案率", "On-time closure rate"),
    "gi_z": ("Gi* z 值", "Gi* z-score"),
    "gi_p": ("p 值", "p-value"),
    "hotspot": ("热点", "Hotspot"),
    "open_grid_map": ("打开网格地图", "Open the grid map"),
    "code": ("编码", "Code"),
    "name": ("名称", "Name"),
    "facility_code": ("部件编码", "Facility code"),
    "days": ("天", "days"),
    "hours": ("小时", "hours"),
    "unassigned": ("未落入网格", "in no grid"),
    # legend and panel
    "legend": ("图例", "Legend"),
    "facility_state_bad": ("破损/缺失 (红框)", "Damaged / missing (red ring)"),
    "issue_marker": ("待办事件", "Open issue"),
    "filters": ("筛选", "Filters"),
    "all": ("全部", "All"),
    "since": ("起始日期", "From"),
    "until": ("截止日期", "To"),
    "community": ("社区", "Community"),
    "apply": ("应用", "Apply"),
    "reset": ("重置", "Reset"),
    "raw": ("事件数", "Count"),
    "rate": ("每千户", "Per 1,000 households"),
    "colour_by": ("着色依据", "Colour by"),
    "top_grids": ("事件最多的网格", "Grids with most issues"),
    "hotspot_list": ("显著热点网格 (Gi*, p ≤ 0.05)", "Significant hotspots (Gi*, p ≤ 0.05)"),
    "no_hotspots": ("无显著热点", "No significant hotspot"),
    "total": ("事件总数", "Issues"),
    "cell_size": ("热力聚合格网", "Heat aggregation cell"),
    "heatmap_title": ("事件热力图", "Issue heatmap"),
    "overview_title": ("社区网格总览", "Communities and grids"),
    "grid_title": ("网格工作图", "Grid map"),
    "locate_title": ("我的位置", "Show my location"),
    "locate_insecure": ("定位需要 HTTPS 连接", "Location needs an HTTPS connection"),
    "fullscreen": ("全屏", "Full screen"),
    "exit_fullscreen": ("退出全屏", "Exit full screen"),
    "language": ("English", "中文"),
    "open_statuses": ("未结 (全部)", "Open (all)"),
    "final_statuses": ("已结束 (结案或不予立案)", "Ended (closed or rejected)"),
    "grid_code": ("网格编码", "Grid code"),
    "area_code": ("编码", "Code"),
    "street": ("街道", "Street"),
    "district": ("区县", "District"),
    "street_outlines": ("街道边界", "Streets"),
    "district_outlines": ("区县边界", "Districts"),
    "choropleth_community": ("社区事件数", "Issues per community"),
    "choropleth_street": ("街道事件数", "Issues per street"),
    "top_communities": ("事件最多的社区", "Communities with most issues"),
    "top_streets": ("事件最多的街道", "Streets with most issues"),
    "hotspot_list_community": ("显著热点社区 (Gi*, p ≤ 0.05)",
                               "Significant hotspot communities (Gi*, p ≤ 0.05)"),
    "hotspot_list_street": ("显著热点街道 (Gi*, p ≤ 0.05)",
                            "Significant hotspot streets (Gi*, p ≤ 0.05)"),
    "by_community": ("范围内 {n} 个网格，按社区汇总", "{n} grids in view, summed by community"),
    "by_street": ("范围内 {n} 个网格，按街道汇总", "{n} grids in view, summed by street"),
    "hotspots_left_out": ("区域过多，未计算热点", "Too many areas: no hotspot analysis"),
    # the issue action page
    "issue_title": ("事件", "Issue"),
    "issue_location": ("事件位置", "Issue location"),
    "issue_grid": ("所属网格", "Grid"),
    "linked_facility": ("关联部件", "Linked facility"),
    "issue_id": ("编号", "ID"),
    "closed_at": ("结案时间", "Closed"),
    "photos": ("照片", "Photos"),
    "photo": ("照片", "Photo"),
    "case_photos": ("现场照片", "Photos of the case"),
    # alt text of a photo's thumbnail, and its caption
    "photo_alt": ("事件 #{issue} 照片 {n}（{kind}）", "Issue #{issue}, photo {n} ({kind})"),
    "photo_alt_taken": ("，拍摄于 {time}（北京时间）", ", taken {time} Beijing time"),
    "photo_taken": ("拍摄于 {time}", "Taken {time}"),
    "photo_time_unknown": ("拍摄时间不详", "Time taken unknown"),
    "history": ("处理记录", "History"),
    "time": ("时间", "Time"),
    "actor": ("操作人", "By"),
    "change": ("状态变更", "Change"),
    "note": ("备注", "Note"),
    "system": ("系统", "system"),
    "back_to_grid": ("返回网格地图", "Back to the grid map"),
    "act_heading": ("处理", "Act"),
    "login_hint": ("登录后可处理此事件。", "Log in to act on this issue."),
    "read_only": ("您可以查看此事件，但无权处理。", "You may read this issue but not act on it."),
    "login": ("登录", "Log in"),
    "note_optional": ("备注 (可选)", "Note (optional)"),
    "move_to": ("转为", "Move to"),
    # the command centre's actions on the issue page
    "command_heading": ("指挥调度", "Command centre"),
    "returned": ("已回退至派遣员，此事件不再由本部门处理。",
                 "Returned to the dispatcher: the case is no longer your department's."),
    "dispatch_to": ("派遣至", "Dispatch to"),
    "by_rule": ("按派遣规则", "by the dispatch rule"),
    "to_worker": ("网格员（社区事务）", "the grid worker (community matter)"),
    "extension_amount": ("延期时长", "Extension"),
    "reason_hint": ("回退、挂账、申请延期、驳回延期、督办和回复须在备注中写明原因或内容。",
                    "Returning, holding, asking for or refusing an extension, a notice and a "
                    "reply need the reason or text in the note."),
    "action_dispatch": ("派遣", "Dispatch"),
    "action_return": ("回退", "Return"),
    "action_hold": ("挂账", "Put on hold"),
    "action_resume": ("解除挂账", "Resume"),
    "action_request_extension": ("申请延期", "Ask for an extension"),
    "action_approve_extension": ("批准延期", "Approve the extension"),
    "action_refuse_extension": ("驳回延期", "Refuse the extension"),
    "action_supervise": ("督办", "Supervision notice"),
    "action_reply": ("回复督办", "Reply to the notice"),
    "no_next_status": ("此事件已办结，无后续操作。", "This issue is final: nothing more to do."),
    "reporter_contact": ("报告人联系方式", "Reporter contact"),
    "request_failed": ("操作失败", "Request failed"),
    "network_error": ("网络连接失败，请检查网络后重试。",
                      "The server could not be reached; check the connection and try again."),
    "sending": ("提交中…", "Sending…"),
    "details": ("详情", "Details"),
    # why a request failed, by HTTP status
    "why_401": ("登录已过期，请重新登录。", "The log-in has expired; log in again."),
    "why_403": ("您无权处理此事件，或页面已过期（请刷新页面后重试）。",
                "You may not act on this issue, or the page is stale (reload it and try again)."),
    "why_409": ("此事件的状态已被他人更改，请刷新页面后再操作。",
                "Someone has moved this issue on already; reload the page and try again."),
    "why_422": ("提交的内容不符合要求。", "The request was not accepted as sent."),
    "why_429": ("尝试次数过多，请稍候再试。", "Too many attempts; wait a moment and try again."),
    "why_503": ("服务器暂时无法访问数据库，请稍后重试。",
                "The server cannot reach its database just now; try again shortly."),
}

# The failures the issue page explains in the page's language (maps/static/issue.js).
WHY_KEYS = ("401", "403", "409", "422", "429", "503")

STATUS: dict[str, tuple[str, str]] = STATUS_NAMES

FACILITY_STATUS: dict[str, tuple[str, str]] = {
    "ok": ("完好", "OK"),
    "damaged": ("破损", "Damaged"),
    "missing": ("缺失", "Missing"),
    "repairing": ("维修中", "Repairing"),
}


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"lang should be one of {LANGS}, got {lang!r}")
    return lang


def t(key: str, lang: str) -> str:
    """The label ``key`` in ``lang``."""
    zh, en = _TEXT[key]
    return en if lang == "en" else zh


def photo_kind_label(kind: str, lang: str) -> str:
    """What a photo shows (:data:`gis.rules.PHOTO_KIND_NAMES`): 上报照片, 处置前, 处置后 or
    "as reported", "before", "after"."""
    zh, en = PHOTO_KIND_NAMES.get(kind, (kind, kind))
    return en if lang == "en" else zh


def photo_kinds(kinds) -> list[str]:
    """``kinds`` in the order of :data:`gis.rules.PHOTO_KINDS` (as the work goes), any other
    after them."""
    present = set(kinds)
    return [k for k in PHOTO_KINDS if k in present] + sorted(present - set(PHOTO_KINDS))


def status_label(status: str, lang: str) -> str:
    zh, en = STATUS.get(status, (status, status))
    return en if lang == "en" else zh


def event_kind_label(kind: str, lang: str) -> str:
    zh, en = EVENT_KIND_NAMES.get(kind, (kind, kind))
    return en if lang == "en" else zh


def facility_status_label(status: str, lang: str) -> str:
    zh, en = FACILITY_STATUS.get(status, (status, status))
    return en if lang == "en" else zh
