"""tools/audit.py (`make audit`): what pip-audit's report means, so that a report of nothing audited is never read as
"no known vulnerability", and exceptions expire."""

from __future__ import annotations

import datetime as dt

import pytest

from tools.audit import UNREACHABLE, judge, parse_exceptions

TODAY = dt.date(2026, 12, 3)
FLASK_VULN = {"name": "flask", "version": "2.0.0",
              "vulns": [{"id": "PYSEC-2023-62", "aliases": ["GHSA-m2qf-hxjv-5gpq"], "fix_versions": ["2.2.5"]}]}
CLEAN = {"name": "six", "version": "1.17.0", "vulns": []}


def test_nothing_audited_is_unreachable_not_clean() -> None:
    report = {"dependencies": [{"name": "six", "skip_reason": "Dependency not found on PyPI and could not be audited"}]}
    verdict = judge(report, [], TODAY)
    assert verdict.status == UNREACHABLE and "did not answer" in verdict.lines[0]


def test_a_known_vulnerability_fails_and_names_the_fix() -> None:
    verdict = judge({"dependencies": [CLEAN, FLASK_VULN]}, [], TODAY)
    assert verdict.status == 1
    assert verdict.lines[0] == "VULNERABLE flask 2.0.0: PYSEC-2023-62 (fixed in 2.2.5)"
    assert judge({"dependencies": [CLEAN]}, [], TODAY).status == 0


def test_an_exception_excuses_until_its_review_date_by_id_or_alias() -> None:
    later = parse_exceptions("# reviewed\nGHSA-m2qf-hxjv-5gpq Flask 2027-01-31 only the CLI's dev server uses it\n")
    verdict = judge({"dependencies": [FLASK_VULN]}, later, TODAY)
    assert verdict.status == 0 and verdict.lines[0].startswith("excepted flask 2.0.0")
    lapsed = parse_exceptions("PYSEC-2023-62 flask 2026-12-01 was fine once\n")
    verdict = judge({"dependencies": [FLASK_VULN]}, lapsed, TODAY)
    assert verdict.status == 1 and "reviewed by 2026-12-01" in verdict.lines[0]


@pytest.mark.parametrize("line", ["PYSEC-1 flask", "PYSEC-1 flask soon because"])
def test_a_malformed_exception_is_refused(line: str) -> None:
    with pytest.raises(ValueError, match="audit-exceptions.txt:1"):
        parse_exceptions(line)
