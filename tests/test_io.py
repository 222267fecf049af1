from pathlib import Path

from reverso.contracts import Session
from reverso.io import enforce_quarantine_limit, quarantine_path, read_rows, write_jsonl, write_quarantine
from reverso.io import DataError

import pytest

GOOD = ('{"session_id": "s1", "system": "You are helpful.", "system_constraints": [], '
        '"turns": [{"user": "Hi", "constraints": [], "cumulative": true}], "split": "train", "seed": 1}')


def test_bad_rows_are_quarantined_with_line_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "sessions.jsonl"
    lines = [GOOD.encode(), b"{not json", b'"a string"', GOOD.replace('"train"', '"test"').encode(),
             b"\xff\xfe bad bytes", b"", GOOD.replace('"s1"', '"s2"').encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = read_rows(path, Session)
    assert [r.session_id for r in result.rows] == ["s1", "s2"]
    assert result.lines == [1, 7]
    reasons = {q.line: q.reason for q in result.quarantined}
    assert set(reasons) == {2, 3, 4, 5}
    assert "bad JSON" in reasons[2] and "JSON object" in reasons[3]
    assert "field split" in reasons[4] and "UTF-8" in reasons[5]
    assert result.total == len(result.rows) + len(result.quarantined)  # in = out + quarantined


def test_semantic_check_quarantines(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(GOOD + "\n")
    result = read_rows(path, Session, check=lambda row: "nope" if row.session_id == "s1" else None)
    assert not result.rows and result.quarantined[0].reason == "nope"


def test_write_quarantine_and_limit(tmp_path: Path) -> None:
    out = tmp_path / "verdicts.jsonl"
    write_jsonl(out, [])
    target = write_quarantine(out, [])
    assert target == quarantine_path(out) and target.read_text() == ""
    enforce_quarantine_limit("stage", 100, 5, 0.05)
    with pytest.raises(DataError, match="exceeds the limit"):
        enforce_quarantine_limit("stage", 100, 6, 0.05)


def test_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_rows(tmp_path / "absent.jsonl", Session)
