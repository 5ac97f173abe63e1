from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import SessionDep
from api.schemas import CategoriesPublic
from gis.queries import reads

router = APIRouter(prefix="/api/v1/categories", tags=["categories"])


@router.get("", summary="Facility (部件) and issue (事件) categories, in Chinese and English")
def list_categories(
    session: SessionDep,
    kind: Annotated[Literal["facility", "issue"] | None,
                    Query(description="Only facility or only issue categories")] = None,
) -> CategoriesPublic:
    rows = reads.list_categories(session, kind)
    return CategoriesPublic(data=rows, count=len(rows))
