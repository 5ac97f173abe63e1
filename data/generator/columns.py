"""The columns of each frame a dataset holds, in order (what the loader and exporters read)."""

REGION_COLUMNS = ["code", "name", "level", "parent_code"]
GRID_COLUMNS = ["code", "name", "community_code", "households", "population", "worker_username"]
STREET_COLUMNS = ["name", "kind"]
COMPOUND_COLUMNS = ["name", "kind", "has_property_company", "built_year", "grid_code",
                    "property_company"]
BUILDING_COLUMNS = ["name", "compound", "floors", "households", "party_households", "grid_code"]
FACILITY_COLUMNS = ["code", "category", "name", "status", "install_date", "owner", "maintainer",
                    "grid_code"]
USER_COLUMNS = ["username", "display_name", "phone", "role", "grid_code", "region_code", "department"]
DEPARTMENT_COLUMNS = ["code", "name", "categories"]
ISSUE_COLUMNS = ["client_uuid", "category", "description", "channel", "reporter_contact",
                 "reported_at", "status", "urgency", "due_at", "closed_at", "department",
                 "self_resolved", "grid_code", "facility_code"]
EVENT_COLUMNS = ["issue_client_uuid", "at", "actor_username", "from_status", "to_status", "note",
                 "kind", "department", "details"]
DISPATCH_RULE_COLUMNS = ["category", "region_code", "department", "auto"]
EXTENSION_COLUMNS = ["issue_client_uuid", "requested_by", "requested_at", "value", "unit",
                     "reason", "decided_by", "decided_at", "approved", "decision_note",
                     "due_before", "due_after"]
SUPERVISION_COLUMNS = ["issue_client_uuid", "issued_by", "issued_at", "note", "reply_due_at",
                       "replied_by", "replied_at", "reply"]
