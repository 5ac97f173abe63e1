"""The page to act on one issue (``/maps/issue/{id}``), where the grid map's popup link leads.

A small map (the issue's pin over its grid outline, the linked facility, nearby streets as the
offline base map) beside a panel with the issue's details and history, and the workflow form:
one button per status the workflow allows next, with an optional note, for a reader who may act
on the issue. The form is driven by maps/static/issue.js against the JSON API with the page's
session cookie and its CSRF token (a ``<meta name="csrf-token">`` the server adds to each answer,
never to the cached page); after a change the page reloads and shows the new status and history.
Below the form, the photos uploaded for the case (:func:`photos_html`), given by the caller as
records with their URLs (this package knows no routes).

The page never carries personal data: it is built from
:data:`gis.issues.detail.ISSUE_DETAIL_COLUMNS` with the description and notes masked, and :func:`build_issue_page` refuses a frame that carries
reporter contact. For a reader who may see personal data (:class:`gis.issues.detail.IssueAccess`)
issue.js fetches the issue and its history from the API and shows them in full. Laid out for
1024x768 either way up, controls of 44 px or more.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import quote

import folium
import pandas as pd

from gis.issues.detail import IssueAccess, IssueDetail
from gis.rules import BEIJING_TZ_NAME, LIMIT_UNIT_NAMES
from maps.assets import ISSUE_PAGE_JS
from maps.base import (
    BaseMapOptions,
    JSCSSMixin,
    PageInit,
    RawHtml,
    Template,
    age_text,
    esc,
    geojson,
    local_time,
    new_map,
    to_datum,
)
from maps.grid_map import PII_COLUMNS, STREET_COLOUR, grid_outline
from maps.i18n import (
    WHY_KEYS,
    event_kind_label,
    facility_status_label,
    photo_kind_label,
    photo_kinds,
    status_label,
    t,
)

ISSUE_ZOOM = 18  # the zoom around an issue in no grid (otherwise the grid is fitted)
PHOTO_FIELDS = ("id", "url", "thumbnail_url", "kind", "taken_at", "width", "height")


class IssuePageAssets(JSCSSMixin):
    """Links maps/static/issue.js (the workflow form) into this page only."""

    _template = Template("")
    default_js = [(f"gridmap-issue-js-{i}", url) for i, url in enumerate(ISSUE_PAGE_JS)]


def build_issue_page(data: IssueDetail, *, access: IssueAccess | None = None, lang: str = "zh",
                     options: BaseMapOptions | None = None, now: datetime | None = None,
                     photos: Sequence[Mapping] = ()) -> folium.Map:
    """The action page of one issue, from :func:`gis.issues.detail.issue_detail`'s data, for a
    reader with ``access`` (by default an anonymous one: no form, no personal data), with the
    photos uploaded for it: records of :data:`PHOTO_FIELDS` (the photo and its thumbnail as a
    path on this site or an http(s) URL; ``taken_at`` an aware datetime or None)."""
    leaked = PII_COLUMNS & set(data.issue.columns)
    if leaked:
        raise ValueError(f"the issue row for a page must not carry personal data; drop {sorted(leaked)}")
    options = options or BaseMapOptions()
    now = now or datetime.now(UTC)
    datum = options.datum
    issue = to_datum(data.issue, datum)
    row = issue.iloc[0]
    title = f"{t('issue_title', lang)} #{int(row['id'])} · {_category_name(data.category, lang)}"
    # A report that waits for its photo's GPS position has no place yet: the map opens where
    # maps open by default, without a pin, and the panel is what the page is for.
    located = row.geometry is not None and not row.geometry.is_empty
    at = {"location": (row.geometry.y, row.geometry.x)} if located else {}
    m = new_map(options, lang, title=title, zoom=ISSUE_ZOOM, **at)
    grid = to_datum(data.grid, datum)
    if located:
        _fit(m, grid, row.geometry)
    _streets(m, to_datum(data.streets, datum), lang)
    grid_outline(m, grid, lang)
    _facility(m, to_datum(data.facility, datum), lang)
    if located:
        _issue_marker(m, row, data.category, lang)
    m.add_child(IssuePageAssets())
    m.get_root().html.add_child(RawHtml(panel_html(data, lang, now, access, photos)),
                                name="gm-panel")
    m.add_child(PageInit({"lang": lang, "page": "issue", "issueId": int(row["id"])}))
    return m


def _category_name(category: dict, lang: str) -> str:
    return category["name_en"] if lang == "en" else category["name_zh"]


def _fit(m: folium.Map, grid, point) -> None:
    """The grid and the pin in view; a pin in no grid stays centred at ISSUE_ZOOM."""
    if grid.empty:
        return
    minx, miny, maxx, maxy = grid.total_bounds
    minx, maxx = min(minx, point.x), max(maxx, point.x)
    miny, maxy = min(miny, point.y), max(maxy, point.y)
    fit = folium.FitBounds([[miny, minx], [maxy, maxx]], padding=(24, 24))
    fit.options["animate"] = False  # open at the final view, not zooming out from the pin
    m.add_child(fit)


def _streets(m: folium.Map, streets, lang: str) -> None:
    if streets.empty:
        return
    folium.GeoJson(
        geojson(streets, ["name"]), name=t("streets", lang),
        style_function=lambda f: {"color": STREET_COLOUR, "weight": 6, "opacity": 0.9},
        tooltip=folium.GeoJsonTooltip(fields=["name"], labels=False),
    ).add_to(m)


def _facility(m: folium.Map, facility, lang: str) -> None:
    if facility.empty:
        return
    f = facility.iloc[0]
    folium.CircleMarker(
        [f.geometry.y, f.geometry.x], radius=9, color="#ffffff", weight=3, fill=True,
        fill_color="#455a64", fill_opacity=0.95,
        tooltip=f"{t('linked_facility', lang)}: {esc(f['name'] or f['code'])} · "
                f"{esc(facility_status_label(f['status'], lang))}",
    ).add_to(m)


def _issue_marker(m: folium.Map, row, category: dict, lang: str) -> None:
    icon = folium.DivIcon(
        html=f'<div style="background:{esc(category["colour"])}">'
             f'<i class="fa fa-{esc(category["icon"])}"></i></div>',
        icon_size=(34, 34), icon_anchor=(17, 34), class_name="gm-issue gm-issue-here")
    folium.Marker([row.geometry.y, row.geometry.x], icon=icon,
                  tooltip=esc(f"{t('issue_location', lang)} · {_category_name(category, lang)}"),
                  ).add_to(m)


# -- the panel ----------------------------------------------------------------------------------
def panel_html(data: IssueDetail, lang: str, now: datetime,
               access: IssueAccess | None = None, photos: Sequence[Mapping] = ()) -> str:
    """Details, the action form, the photos and the history, as escaped HTML."""
    access = access or IssueAccess()
    issue = data.issue.iloc[0]
    issue_id = int(issue["id"])
    other = "zh" if lang == "en" else "en"
    links = [f'<a href="?lang={other}">{esc(t("language", lang))}</a>']
    if _given(issue["grid_code"]):
        links.append(f'<a href="/maps/grid/{esc(issue["grid_code"])}?lang={lang}">'
                     f'{esc(t("back_to_grid", lang))}</a>')
    status = str(issue["status"])
    badge = f'<span class="gm-status gm-status-{esc(status)}">{esc(status_label(status, lang))}</span>'
    if bool(issue["overdue"]):
        badge += f' <span class="gm-overdue">{esc(t("overdue", lang))}</span>'
    text = {k: t(k, lang) for k in ("request_failed", "network_error", "sending", "details",
                                    "returned")}
    config = {"id": issue_id, "lang": lang, "text": text, "reveal": access.personal,
              "why": {k: t(f"why_{k}", lang) for k in WHY_KEYS},
              "supervision": access.command.supervision}
    return (f'<div id="gm-panel" class="gm-issue-panel" '
            f'data-gm-issue="{esc(json.dumps(config, ensure_ascii=False))}">'
            f'<h1>{esc(t("issue_title", lang))} #{issue_id} · '
            f'{esc(_category_name(data.category, lang))}</h1>'
            f'<p class="gm-links">{" · ".join(links)}</p><p>{badge}</p>'
            f'{_details(data, lang, now)}{_action_form(data, access, lang)}'
            f'{photos_html(photos, issue_id, lang)}{_history(data, lang)}</div>')


def _details(data: IssueDetail, lang: str, now: datetime) -> str:
    i = data.issue.iloc[0]
    due = "—"
    if _given(i["due_at"]):
        due = esc(local_time(i["due_at"]))
        if bool(i["overdue"]):
            due += f' <span class="gm-overdue">({esc(t("overdue", lang))})</span>'
    grid = (f'{esc(i["grid_name"])} ({esc(i["grid_code"])})' if _given(i["grid_code"])
            else esc(t("unassigned", lang)))
    rows = [(t("issue_id", lang), f"#{int(i['id'])}"),
            (t("category", lang), esc(_category_name(data.category, lang))),
            (t("status", lang), esc(status_label(str(i["status"]), lang))),
            (t("description", lang), f'<span class="gm-description">{esc(i["description"])}</span>'),
            (t("reported", lang), esc(local_time(i["reported_at"]))),
            (t("due", lang), due),
            (t("age", lang), esc(age_text(i["reported_at"], now, lang))),
            (t("priority", lang), esc(i["priority"]))]
    if _given(i["closed_at"]):
        rows.append((t("closed_at", lang), esc(local_time(i["closed_at"]))))
    rows += [(t("issue_grid", lang), grid), (t("worker", lang), esc(_text(i["worker"])))]
    if _given(i["facility_code"]) or _given(i["facility_name"]):
        rows.append((t("linked_facility", lang),
                     f'{esc(_text(i["facility_name"]))} ({esc(_text(i["facility_code"]))})'))
    photos = _photo_links(i["photo_urls"], lang)
    if photos:
        rows.append((t("photos", lang), photos))
    cells = "".join(f"<tr><td>{esc(k)}</td><td>{v}</td></tr>" for k, v in rows)
    # Filled in by issue.js when the API shows the logged-in user the reporter's contact.
    contact = (f'<tr id="gm-contact-row" hidden><td>{esc(t("reporter_contact", lang))}</td>'
               f'<td id="gm-contact"></td></tr>')
    return f'<table class="gm-details">{cells}{contact}</table>'


def _action_form(data: IssueDetail, access: IssueAccess, lang: str) -> str:
    """The workflow buttons for a reader who may act; otherwise a line saying why there are none."""
    issue_id = int(data.issue["id"].iloc[0])
    if not access.logged_in:
        target = esc(quote(f"/maps/issue/{issue_id}?lang={lang}", safe="/"))
        actions = (f'<p class="gm-login-hint">{esc(t("login_hint", lang))} '
                   f'<a href="/login?next={target}&amp;lang={lang}">'
                   f'{esc(t("login", lang))}</a></p>')
    elif not access.may_act:
        actions = f'<p class="gm-read-only">{esc(t("read_only", lang))}</p>'
    elif data.allowed_next or access.command.actions:
        # A dispatch names who fixes the case: the command centre's form, not a plain move.
        moves = [s for s in data.allowed_next if s != "dispatched"]
        buttons = "".join(
            f'<button type="button" class="gm-transition" data-to="{esc(s)}">'
            f'{esc(status_label(s, lang))}</button>' for s in moves)
        transitions = (f'<p class="gm-move-to">{esc(t("move_to", lang))}:</p>'
                       f'<div class="gm-transitions">{buttons}</div>' if moves else "")
        actions = (f'<div id="gm-actions"><label class="gm-note" for="gm-note">'
                   f'{esc(t("note_optional", lang))}</label>'
                   f'<textarea id="gm-note" maxlength="2000" rows="2"></textarea>'
                   f'{transitions}{_command_form(access, lang)}</div>')
    else:
        actions = f'<p class="gm-final">{esc(t("no_next_status", lang))}</p>'
    return (f'<h2>{esc(t("act_heading", lang))}</h2>'
            f'<div id="gm-error" class="gm-error" role="alert" hidden></div>{actions}')


def _command_form(access: IssueAccess, lang: str) -> str:
    """The command centre's actions open to the reader now (gis.issues.branches.available):
    one button each, with a department choice for a dispatch and an amount for an extension."""
    command = access.command
    if not command.actions:
        return ""
    fields = []
    if "dispatch" in command.actions:
        options = [("", t("by_rule", lang)), ("@worker", t("to_worker", lang)),
                   *command.departments]
        choices = "".join(f'<option value="{esc(v)}">{esc(n)}</option>' for v, n in options)
        fields.append(f'<label for="gm-department">{esc(t("dispatch_to", lang))}</label>'
                      f'<select id="gm-department">{choices}</select>')
    if "request_extension" in command.actions:
        units = "".join(f'<option value="{u}">{esc(LIMIT_UNIT_NAMES[u][0 if lang != "en" else 1])}'
                        f'</option>' for u in ("workdays", "hours"))
        fields.append(f'<label for="gm-extension-value">{esc(t("extension_amount", lang))}</label>'
                      f'<span class="gm-extension"><input id="gm-extension-value" type="number" '
                      f'min="1" max="366" value="1" inputmode="numeric">'
                      f'<select id="gm-extension-unit" aria-label="{esc(t("extension_amount", lang))}">'
                      f'{units}</select></span>')
    buttons = "".join(
        f'<button type="button" class="gm-command" data-action="{esc(a)}">'
        f'{esc(t("action_" + a, lang))}</button>' for a in command.actions)
    return (f'<h3 class="gm-command-heading">{esc(t("command_heading", lang))}</h3>'
            f'<p class="gm-reason-hint">{esc(t("reason_hint", lang))}</p>'
            f'<div class="gm-command-fields">{"".join(fields)}</div>'
            f'<div class="gm-commands">{buttons}</div>')


def _history(data: IssueDetail, lang: str) -> str:
    head = "".join(f"<th>{esc(t(k, lang))}</th>" for k in ("time", "actor", "change", "note"))
    rows = []
    for e in data.history:
        change = _change(e, lang)
        rows.append(f'<tr class="gm-event" data-gm-event="{int(e["id"])}">'
                    f'<td>{esc(local_time(e["at"]))}</td>'
                    f'<td>{esc(e["actor"] or t("system", lang))}</td><td>{change}</td>'
                    f'<td class="gm-event-note">{esc(e["note"] or "")}</td></tr>')
    return (f'<h2>{esc(t("history", lang))} ({len(data.history)})</h2>'
            f'<table class="gm-history"><tr>{head}</tr>{"".join(rows)}</table>')


def _change(event: Mapping, lang: str) -> str:
    """A move as 'from → to', led by its branch (回退, 派遣...) and department; an entry that is
    not a move (延期申请, 督办...) by its kind alone."""
    kind = event.get("kind", "move")
    branch = "" if kind == "move" else event_kind_label(kind, lang)
    if event.get("department_name"):
        branch += f" · {event['department_name']}"
    if event["to_status"] is None:
        return esc(branch)
    move = (f'{esc(status_label(event["from_status"], lang)) if event["from_status"] else "—"}'
            f' → {esc(status_label(event["to_status"], lang))}')
    return f'<span class="gm-branch">{esc(branch)}</span> {move}' if branch else move


def photos_html(photos: Sequence[Mapping], issue_id: int, lang: str) -> str:
    """The photos uploaded for the case, a thumbnail each (loaded when scrolled to) linking to
    the photo, grouped by what they show in the order of the work (as reported, before, after);
    nothing at all when there are none. The images are fetched with the reader's session: their
    URLs serve only those who may read the case."""
    if not photos:
        return ""
    groups = "".join(_photo_group(kind, [p for p in photos if p["kind"] == kind], issue_id, lang)
                     for kind in photo_kinds(p["kind"] for p in photos))
    return (f'<section class="gm-photos"><h2>{esc(t("case_photos", lang))} ({len(photos)})</h2>'
            f'{groups}</section>')


def _photo_group(kind: str, photos: list[Mapping], issue_id: int, lang: str) -> str:
    name = photo_kind_label(kind, lang)
    figures = "".join(_thumbnail(p, n, issue_id, name, lang) for n, p in enumerate(photos, 1))
    return (f'<div class="gm-photo-kind" data-kind="{esc(kind)}">'
            f'<h3>{esc(name[:1].upper() + name[1:])} ({len(photos)})</h3>'
            f'<div class="gm-photo-row">{figures}</div></div>')


def _thumbnail(photo: Mapping, n: int, issue_id: int, kind_name: str, lang: str) -> str:
    taken = photo["taken_at"]
    alt = t("photo_alt", lang).format(issue=issue_id, n=n, kind=kind_name)
    if _given(taken):
        alt += t("photo_alt_taken", lang).format(time=local_time(taken))
        caption = (f'<time datetime="{esc(_beijing_iso(taken))}">'
                   f'{esc(t("photo_taken", lang).format(time=local_time(taken)))}</time>')
    else:
        caption = esc(t("photo_time_unknown", lang))
    # The photo's own width and height give the thumbnail its shape before it loads.
    size = (f' width="{int(photo["width"])}" height="{int(photo["height"])}"'
            if _given(photo.get("width")) and _given(photo.get("height")) else "")
    return (f'<figure class="gm-photo" data-gm-photo="{int(photo["id"])}">'
            f'<a href="{esc(_own_url(photo["url"]))}" target="_blank" rel="noopener">'
            f'<img src="{esc(_own_url(photo["thumbnail_url"]))}" alt="{esc(alt)}"{size} '
            f'loading="lazy" decoding="async"></a><figcaption>{caption}</figcaption></figure>')


def _own_url(url) -> str:
    """A photo URL as given (a path on this site, or http(s)); anything else is refused rather
    than written into a link (no javascript: or protocol-relative URL from data)."""
    text = str(url)
    if (text.startswith("/") and not text.startswith("//")) or \
            text.lower().startswith(("http://", "https://")):
        return text
    raise ValueError(f"a photo URL should be a path on this site or http(s); got {text!r}")


def _beijing_iso(ts) -> str:
    return pd.Timestamp(ts).tz_convert(BEIJING_TZ_NAME).isoformat()


def _photo_links(urls, lang: str) -> str:
    """Links to the photos; only http(s) URLs become links (no javascript: from stored data)."""
    links = []
    for k, url in enumerate(urls if isinstance(urls, list) else [], start=1):
        label = esc(f"{t('photo', lang)} {k}")
        if str(url).lower().startswith(("http://", "https://")):
            links.append(f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer">{label}</a>')
        else:
            links.append(f"{label}: {esc(url)}")
    return " · ".join(links)


def _given(value) -> bool:
    """False for a missing scalar (None, NaN, NaT) as it comes out of a frame."""
    return value is not None and not pd.isna(value)


def _text(value) -> str:
    return str(value) if _given(value) else "—"
