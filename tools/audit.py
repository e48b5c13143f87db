"""`make audit`: pip-audit over requirements.lock (what the program runs with), failing on a known vulnerability.

    python tools/audit.py [--unreachable fail|warn]

pip-audit runs from a virtual environment of its own, build/audit-venv (made on first use with PIP_AUDIT's version):
the tool and its dependencies stay out of the environment it audits.

Exit status: 0 nothing known; 1 a known vulnerability not excepted, or an exception past its review date; 3 the
vulnerability service could not be asked (with --unreachable warn: one line, status 0, for CI on a machine that
reaches only the package index).

pip-audit says "No known vulnerabilities found" even when it could audit nothing (every package "not found on PyPI":
its JSON API did not answer); this script counts what was audited, so that silence is never taken for a clean bill.

Exceptions are reviewed, not permanent: audit-exceptions.txt (top level) holds one per line,
`<vulnerability id> <package> <review-by YYYY-MM-DD> <why it does not apply>`; past its date it fails again.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
EXCEPTIONS = ROOT / "audit-exceptions.txt"
UNREACHABLE = 3
AUDIT_VENV = ROOT / "build" / "audit-venv"
PIP_AUDIT = "pip-audit==2.10.1"


@dataclasses.dataclass(frozen=True)
class AuditException:
    vuln_id: str
    package: str
    review_by: dt.date
    why: str


@dataclasses.dataclass(frozen=True)
class Verdict:
    status: int
    lines: list[str]


def parse_exceptions(text: str) -> list[AuditException]:
    """audit-exceptions.txt -> its entries; ValueError naming the line that is not one."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 3)
        if len(parts) < 4:
            raise ValueError(f"audit-exceptions.txt:{number}: needs '<id> <package> <review-by YYYY-MM-DD> <why>'")
        try:
            review_by = dt.date.fromisoformat(parts[2])
        except ValueError:
            raise ValueError(f"audit-exceptions.txt:{number}: {parts[2]!r} is not a date (YYYY-MM-DD)") from None
        found.append(AuditException(parts[0], parts[1].lower(), review_by, parts[3]))
    return found


def judge(report: dict, exceptions: list[AuditException], today: dt.date) -> Verdict:
    """pip-audit's JSON report -> what to say and the exit status."""
    dependencies = report.get("dependencies", [])
    audited = [dep for dep in dependencies if "skip_reason" not in dep]
    if dependencies and not audited:
        return Verdict(UNREACHABLE, [f"audit: the vulnerability service did not answer: none of the "
                                     f"{len(dependencies)} locked packages could be audited"])
    excepted = {(e.vuln_id, e.package): e for e in exceptions}
    lines, failed = [], False
    for dep in audited:
        for vuln in dep.get("vulns", []):
            ids = [vuln["id"], *vuln.get("aliases", [])]
            exception = next((excepted[(i, dep["name"].lower())] for i in ids if (i, dep["name"].lower()) in excepted),
                             None)
            fixed = ", ".join(vuln.get("fix_versions", [])) or "none yet"
            where = f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixed})"
            if exception is None:
                failed = True
                lines.append(f"VULNERABLE {where}")
            elif exception.review_by < today:
                failed = True
                lines.append(f"VULNERABLE {where}: its exception was to be reviewed by {exception.review_by}")
            else:
                lines.append(f"excepted {where} until {exception.review_by}: {exception.why}")
    skipped = len(dependencies) - len(audited)
    lines.append(f"audit: {len(audited)} packages audited" + (f", {skipped} could not be" if skipped else "")
                 + ("; known vulnerabilities above" if failed else "; no known vulnerability"))
    return Verdict(1 if failed else 0, lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--unreachable", choices=("fail", "warn"), default="fail")
    args = parser.parse_args(argv)
    exceptions = parse_exceptions(EXCEPTIONS.read_text()) if EXCEPTIONS.exists() else []
    verdict = _install() or _audit(exceptions)
    for line in verdict.lines:
        print(line)
    if verdict.status == UNREACHABLE and args.unreachable == "warn":
        return 0
    return verdict.status


def _install() -> Verdict | None:
    """build/audit-venv with pip-audit, unless it is there; a Verdict when it cannot be made."""
    if (AUDIT_VENV / "bin" / "pip-audit").exists():
        return None
    made = subprocess.run([sys.executable, "-m", "venv", str(AUDIT_VENV)], capture_output=True, text=True)
    if made.returncode == 0:
        made = subprocess.run([str(AUDIT_VENV / "bin" / "python"), "-m", "pip", "install", "-q", PIP_AUDIT],
                              capture_output=True, text=True, timeout=600)
    if made.returncode == 0:
        return None
    last = (made.stderr.strip().splitlines() or ["no output"])[-1]
    return Verdict(UNREACHABLE, [f"audit: {PIP_AUDIT} could not be installed into {AUDIT_VENV} ({last[:200]})"])


def _audit(exceptions: list[AuditException]) -> Verdict:
    # --no-deps: the lock already lists every package, pinned; --disable-pip: audit the pins, install nothing.
    run = subprocess.run([str(AUDIT_VENV / "bin" / "pip-audit"), "-r", str(LOCK), "--no-deps", "--disable-pip",
                          "-f", "json"], capture_output=True, text=True, timeout=600)
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        return Verdict(UNREACHABLE, [f"audit: pip-audit could not ask the vulnerability service ({last[:200]})"])
    return judge(report, exceptions, dt.date.today())


if __name__ == "__main__":
    sys.exit(main())
