"""What can be done to a case in each status, written once from gis.rules: the workflow's
transitions, the command centre's branch actions, the field actions and the entries that leave
the status (an extension asked for, a supervision notice). A refused action is a 409 that names
them (:func:`require_status`), so a client never has to guess the next legal move.
"""

from __future__ import annotations

from gis.errors import IllegalTransition
from gis.rules import (
    BRANCH_MOVES,
    EVENT_KIND_NAMES,
    EXTENSION_STATUSES,
    FIELD_ACTION_NAMES,
    FIELD_ACTIONS,
    SELF_RESOLVE,
    STATUS_NAMES,
    SUPERVISION_STATUSES,
    TRANSITIONS,
)

# Actions that leave the status as it is, by the statuses they apply in.
NOTE_ACTIONS: dict[str, tuple[str, ...]] = {
    "request_extension": EXTENSION_STATUSES,
    "supervise": SUPERVISION_STATUSES,
}
_ACTION_NAMES = {
    **{a: EVENT_KIND_NAMES[a] for a in BRANCH_MOVES},
    **FIELD_ACTION_NAMES,
    "request_extension": EVENT_KIND_NAMES["extension_request"],
    "supervise": EVENT_KIND_NAMES["supervise"],
    "approve_extension": ("批准延期", "approving an extension"),
}


def allowed_actions(status: str) -> dict[str, list[str]]:
    """``{"to": statuses a transition may lead to, "actions": the named actions}`` in ``status``."""
    actions = [a for a, (sources, _) in BRANCH_MOVES.items() if status in sources]
    actions += [a for s, a in FIELD_ACTIONS.items() if s == status]
    actions += ["self_resolve"] if status == SELF_RESOLVE[0] else []
    actions += [a for a, sources in NOTE_ACTIONS.items() if status in sources]
    return {"to": list(TRANSITIONS.get(status, ())), "actions": actions}


def describe_allowed(status: str, lang: str = "en") -> str:
    allowed = allowed_actions(status)
    if lang == "zh":
        parts = [f"「{STATUS_NAMES[s][0]}」" for s in allowed["to"]]
        parts += [f"{_ACTION_NAMES[a][0]}" for a in allowed["actions"]]
        return "、".join(parts) if parts else "（无：已是最终状态）"
    parts = [repr(s) for s in allowed["to"]] + [a for a in allowed["actions"]]
    return ", ".join(parts) if parts else "nothing (final)"


def require_status(issue_id: int, current: str, action: str, sources: tuple[str, ...]) -> None:
    """Refuse ``action`` on case ``issue_id`` unless its status ``current`` is one of ``sources``."""
    if current in sources:
        return
    zh, en = _ACTION_NAMES[action]
    needs_en = ", ".join(repr(s) for s in sources)
    needs_zh = "、".join(f"「{STATUS_NAMES[s][0]}」" for s in sources)
    raise IllegalTransition(
        f"issue {issue_id} is {current!r}; {en} ({action}) is for cases in {needs_en}. "
        f"Allowed now: {describe_allowed(current)}",
        zh=f"事件 {issue_id} 当前为「{STATUS_NAMES[current][0]}」，{zh}只适用于{needs_zh}状态的事件；"
           f"当前可以：{describe_allowed(current, 'zh')}",
        allowed=allowed_actions(current))
