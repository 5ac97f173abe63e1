"""Working time (docs/ARCHITECTURE.md, "Working time"): the official calendar of working days
with its local overrides, the rule that turns a time limit into a deadline, the time limits per
category, urgency and step, and the deadlines of each step of a case."""
