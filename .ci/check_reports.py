"""Fail unless every pytest session left a JUnit report and, together, they ran tests.

nox already fails when a session fails; this catches the other way to be green: sessions
that ran no test at all (a wrong path, a filter that matched nothing, a session skipped).
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

root = Path(__file__).parents[1]
reports = Path(sys.argv[1])
packages = sorted(p.parent.name for p in (root / "packages").glob("*/pyproject.toml"))
expected = {f"tests-{p}.xml" for p in packages} | {"integration.xml"}
found = {p.name for p in reports.glob("*.xml")} if reports.is_dir() else set()
missing = sorted(expected - found)
if missing:
    sys.exit(f"check_reports: no JUnit report for {', '.join(missing)} in {reports}")

total = 0
for name in sorted(expected):
    suites = ET.parse(reports / name).getroot()
    suite_list = [suites] if suites.tag == "testsuite" else list(suites)
    ran = sum(int(s.get("tests", 0)) - int(s.get("skipped", 0)) for s in suite_list)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suite_list)
    print(f"check_reports: {name}: {ran} tests ran, {failed} failed")
    if ran == 0 or failed:
        sys.exit(f"check_reports: {name} ran {ran} tests with {failed} failures")
    total += ran
print(f"check_reports: {total} tests ran in {len(expected)} sessions")
