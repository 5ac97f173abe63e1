"""Request and response models of the work on site: 核实, 核查, 自处理, facility checks, the
worker's tasks and the duplicates of a report about to be sent (api/routes/field.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.issue_schemas import PhotoLink
from api.schemas import FeatureCollectionPublic, FeaturePublic, GeometryPublic, IssueProperties
from gis.rules import FACILITY_CHECK_RESULTS, FACILITY_STATUSES, FIELD_ACTIONS, ISSUE_STATUSES

Note = Annotated[str, Field(max_length=2000)]
FieldAction = Literal[tuple(FIELD_ACTIONS.values())]


class VerifyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    valid: bool = Field(description="true: a real case (accepted); false: not one (rejected)")
    reason: Note | None = Field(None, description="Why; required when valid is false")


class CheckCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    passed: bool = Field(description="true: fixed (closed); false: rework (reopened), which "
                                     "needs an after photo uploaded since it was resolved")
    note: Note | None = None


class SelfResolveCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note | None = Field(None, description="What was done")


class MovePublic(BaseModel):
    """A case's move by an action on site (the same shape as a workflow transition's answer)."""

    model_config = ConfigDict(populate_by_name=True)

    id: int
    from_: Literal[ISSUE_STATUSES] = Field(alias="from")
    to: Literal[ISSUE_STATUSES]
    allowed_next: list[Literal[ISSUE_STATUSES]]
    replayed: bool = Field(description="The same Idempotency-Key did this before; nothing new "
                                       "was written")


class FacilityCheckCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: Literal[FACILITY_CHECK_RESULTS] = Field(description="ok | damaged | missing")
    note: Note | None = Field(None, description="What was found (the case's description)")
    category: str | None = Field(None, max_length=32, description=(
        "Issue category of the case a damaged or missing facility opens; by default the first "
        "that covers the facility's category, else facility_damaged"))


class FacilityCheckPublic(BaseModel):
    id: int
    facility_id: int
    result: Literal[FACILITY_CHECK_RESULTS]
    issue_id: int | None = Field(description="The case it opened or joined (null for ok)")
    issue_created: bool = Field(description="false: no case, the case already open for the "
                                            "facility, or a replay")
    checked_at: datetime
    facility_status: Literal[FACILITY_STATUSES]


class CheckPhotoPublic(PhotoLink):
    """A stored photo of a facility check, as its upload is answered (the shape of a case's
    photo; ``issue_id`` is the case the check opened, if any, which lists it too)."""

    issue_id: int | None
    facility_check_id: int
    bytes: int
    uploaded_at: datetime
    located: bool = Field(False, description="Always false: a check's case has its location")


class TaskProperties(IssueProperties):
    action: FieldAction | None = Field(description=(
        "The action on site the case waits for: verify (核实) or check (核查); null for none"))
    distance_m: float | None = Field(description="Metres from lon/lat (null without them)")


class TaskPublic(FeaturePublic[TaskProperties]):
    geometry: GeometryPublic | None


class TasksPublic(FeatureCollectionPublic[TaskPublic]):
    pass


class DuplicatePublic(BaseModel):
    id: int
    status: Literal[ISSUE_STATUSES]
    category: str
    reported_at: datetime
    distance_m: float
