"""The HTML report, built only from the results store."""

from memzoo.report.html import write_report

__all__ = ["write_report"]
