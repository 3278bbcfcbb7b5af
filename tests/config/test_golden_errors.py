"""Golden error messages for a corpus of bad pipeline files (tests/config/bad/*.yaml).

Each file's errors, in every environment it defines, must equal its .expected file exactly. To
update after an intended change: UPDATE_GOLDEN=1 pytest tests/config/test_golden_errors.py, then
read the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_dataops.config.resolve import validate_text

BAD = Path(__file__).parent / "bad"
CASES = sorted(BAD.glob("*.yaml"))


def render(path: Path) -> str:
    issues = validate_text(path.read_bytes(), path.name, base_dir=path.parent)
    return "".join(f"{issue}\n" for issue in sorted(issues, key=lambda i: (i.line, i.column, i.message)))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden_errors(case: Path):
    expected_file = case.with_suffix(".expected")
    actual = render(case)
    if os.environ.get("UPDATE_GOLDEN"):
        expected_file.write_text(actual)
    assert expected_file.exists(), f"no golden file for {case.name}: run with UPDATE_GOLDEN=1"
    assert actual == expected_file.read_text()


def test_every_bad_file_has_errors_with_positions():
    for case in CASES:
        if case.name == "missing_environment.yaml":
            continue  # valid in the environments it defines; the loader/--env tests cover it
        text = render(case)
        assert text, f"{case.name} produced no errors"
        for line in text.splitlines():
            file, line_no, column, rest = line.split(":", 3)
            assert file == case.name and int(line_no) >= 1 and int(column) >= 1 and rest.strip()


def test_secrets_are_reported_but_never_echoed():
    text = render(BAD / "secrets.yaml")
    assert text.count("looks like") == 4
    for secret in ("xoxb-123456789", "XXXXSECRET1", "XXXXSECRET2", "hunter2"):
        assert secret not in text
