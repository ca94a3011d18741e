"""The run record and the results store (SQLite) that training writes and the report reads."""

from memzoo.results.record import RUN_STATUSES, RunRecord, config_hash
from memzoo.results.store import DEFAULT_DB, FINAL_STATUSES, ResultsStore

__all__ = ["DEFAULT_DB", "FINAL_STATUSES", "RUN_STATUSES", "ResultsStore", "RunRecord", "config_hash"]
