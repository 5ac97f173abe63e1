"""The evaluation (综合评价) for leaders, dispatchers and admins over their scope: per role as
JSON, every role as an Excel workbook, one role as CSV (downloads are exports: audited). Heavy
reads: on the read session (a standby when there is one); the audit entry on the primary."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.deps import CurrentActor, ReadSessionDep, SessionDep, client_address
from api.evaluation_schemas import EvaluationPublic
from gis.exchange.evaluation_files import XLSX_MEDIA_TYPE, csv_text, file_stem, workbook_bytes
from gis.people import audit
from gis.queries.evaluation import Period, evaluate, evaluate_all, load_scoring, period_from
from gis.rules import BEIJING, EVALUATION_PERIODS, EVALUATION_ROLES

router = APIRouter(prefix="/api/v1/evaluation", tags=["evaluation"])

Role = Annotated[Literal[EVALUATION_ROLES], Query(
    description="department (专业部门), worker (网格员), grid (网格) or community (社区)")]


def evaluation_period(
    period: Annotated[Literal[EVALUATION_PERIODS] | None, Query(
        description="The Beijing week (from Monday), month or quarter containing `date`; "
                    "month when neither this nor since/until is given")] = None,
    day: Annotated[dt.date | None, Query(alias="date", description="A day of the period; "
                                         "default today (Beijing)")] = None,
    since: Annotated[dt.date | None, Query(description="First day (with until, instead of "
                                           "period and date)")] = None,
    until: Annotated[dt.date | None, Query(description="Last day, inclusive")] = None,
) -> Period:
    return period_from(period, day, since, until, dt.datetime.now(BEIJING).date())


PeriodDep = Annotated[Period, Depends(evaluation_period)]


@router.get("", summary="Indicators, composite score and grade A-E per department, grid worker, "
                        "grid or community, with the change from the period before",
            response_model=EvaluationPublic)
def evaluation(actor: CurrentActor, reads: ReadSessionDep, role: Role, period: PeriodDep):
    return evaluate(reads, actor, role, period)


@router.get("/export.xlsx", summary="Every role's evaluation as an Excel workbook",
            response_class=Response,
            responses={200: {"content": {XLSX_MEDIA_TYPE: {}}, "description": "The workbook"}})
def export_xlsx(request: Request, session: SessionDep, actor: CurrentActor, reads: ReadSessionDep,
                period: PeriodDep):
    results = evaluate_all(reads, actor, period)
    body = workbook_bytes(results, load_scoring(reads))
    _audit(request, session, actor, "xlsx", sum(r["count"] for r in results.values()))
    return Response(body, media_type=XLSX_MEDIA_TYPE,
                    headers=_attachment(*file_stem(period), "xlsx"))


@router.get("/export.csv", summary="One role's evaluation as CSV (UTF-8 with BOM)",
            response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "The table"}})
def export_csv(request: Request, session: SessionDep, actor: CurrentActor, reads: ReadSessionDep,
               role: Role, period: PeriodDep):
    result = evaluate(reads, actor, role, period)
    _audit(request, session, actor, "csv", result["count"])
    return Response(csv_text(result), media_type="text/csv; charset=utf-8",
                    headers=_attachment(*file_stem(period, role), "csv"))


def _audit(request: Request, session: SessionDep, actor, format: str, rows: int) -> None:
    audit.record(session, "export", username=actor.username, address=client_address(request),
                 target=f"GET {request.url.path}?{request.url.query}",
                 detail={"format": format, "rows": rows})
    session.commit()


def _attachment(ascii_stem: str, stem: str, extension: str) -> dict[str, str]:
    """Content-Disposition with an ASCII name for old clients and the Chinese one (RFC 6266,
    encoded as RFC 5987 says) for the rest."""
    return {"Content-Disposition": f'attachment; filename="{ascii_stem}.{extension}"; '
                                   f"filename*=UTF-8''{quote(f'{stem}.{extension}', safe='')}"}
