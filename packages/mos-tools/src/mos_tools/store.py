"""The ratings of a local listening test, in SQLite: raters, invitations, drafts and
submissions, and their export as a results CSV that ``score`` reads unchanged.

The database runs in WAL mode with ``synchronous=FULL``; each submission is one
transaction, so a rating the server acknowledged survives a crash of the server or of the
machine. One rater rates one HIT at most once (a unique constraint, not a check in code).
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import MosError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS raters (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token TEXT UNIQUE,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS drafts (
    rater INTEGER NOT NULL REFERENCES raters(id),
    hit TEXT NOT NULL,
    answers TEXT NOT NULL,
    updated TEXT NOT NULL,
    PRIMARY KEY (rater, hit)
);
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY,
    rater INTEGER NOT NULL REFERENCES raters(id),
    hit TEXT NOT NULL,
    urls TEXT NOT NULL,
    answers TEXT NOT NULL,
    submitted TEXT NOT NULL,
    UNIQUE (rater, hit)
);
"""
_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,40}")


@dataclass(frozen=True)
class Rater:
    id: int
    name: str


class AlreadyRated(MosError):
    """The rater has submitted this HIT before."""


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def check_rater_name(name: str) -> str:
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise MosError(f"rater name {name!r}: 1 to 40 printable characters")
    return name


class Store:
    """One ratings database; open one per thread (``sqlite3`` connections are not shared)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.is_dir():
            raise MosError(f"--db {path}: is a folder; name a database file")
        if not path.parent.is_dir():
            raise MosError(f"--db {path}: the folder {path.parent} does not exist")
        try:
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise MosError(f"--db {path}: not a mos-tools ratings database ({exc})") from None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- settings --------------------------------------------------------------------------
    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def ensure_meta(self, key: str, make: str) -> str:
        """The stored value of ``key``, storing ``make`` first if there is none."""
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, make))
        value = self.meta(key)
        assert value is not None
        return value

    # -- raters ----------------------------------------------------------------------------
    def has_invitations(self) -> bool:
        return (
            self.db.execute("SELECT 1 FROM raters WHERE token IS NOT NULL").fetchone() is not None
        )

    def invite(self, names: Sequence[str]) -> list[tuple[str, str]]:
        """New raters with invitation tokens; ``(name, token)`` each."""
        made = []
        with self.transaction() as db:
            for raw in names:
                name = check_rater_name(raw)
                token = secrets.token_urlsafe(18)
                try:
                    db.execute(
                        "INSERT INTO raters (name, token, created) VALUES (?, ?, ?)",
                        (name, token, _now()),
                    )
                except sqlite3.IntegrityError:
                    raise MosError(f"rater {name!r} exists already in {self.path}") from None
                made.append((name, token))
        return made

    def rater_by_token(self, token: str) -> Rater | None:
        row = self.db.execute("SELECT id, name FROM raters WHERE token = ?", (token,)).fetchone()
        return Rater(int(row[0]), str(row[1])) if row else None

    def rater_by_id(self, rater_id: int) -> Rater | None:
        row = self.db.execute("SELECT id, name FROM raters WHERE id = ?", (rater_id,)).fetchone()
        return Rater(int(row[0]), str(row[1])) if row else None

    def join(self, name: str) -> Rater:
        """The rater called ``name`` (open studies: created on first use)."""
        name = check_rater_name(name)
        with self.transaction() as db:
            row = db.execute("SELECT id, token FROM raters WHERE name = ?", (name,)).fetchone()
            if row is not None and row[1] is not None:
                raise MosError(f"{name!r} was invited: use the invitation link")
            if row is None:
                cursor = db.execute(
                    "INSERT INTO raters (name, token, created) VALUES (?, NULL, ?)", (name, _now())
                )
                rater_id = int(cursor.lastrowid or 0)
            else:
                rater_id = int(row[0])
        return Rater(rater_id, name)

    # -- drafts and submissions --------------------------------------------------------------
    def rated(self, rater: Rater) -> set[str]:
        rows = self.db.execute("SELECT hit FROM submissions WHERE rater = ?", (rater.id,))
        return {str(r[0]) for r in rows}

    def draft(self, rater: Rater, hit: str) -> dict[str, str]:
        row = self.db.execute(
            "SELECT answers FROM drafts WHERE rater = ? AND hit = ?", (rater.id, hit)
        ).fetchone()
        return dict(json.loads(row[0])) if row else {}

    def save_draft(self, rater: Rater, hit: str, answers: dict[str, str]) -> None:
        with self.transaction() as db:
            if db.execute(
                "SELECT 1 FROM submissions WHERE rater = ? AND hit = ?", (rater.id, hit)
            ).fetchone():
                raise AlreadyRated(f"{rater.name} has rated {hit} already")
            row = db.execute(
                "SELECT answers FROM drafts WHERE rater = ? AND hit = ?", (rater.id, hit)
            ).fetchone()
            merged = {**(json.loads(row[0]) if row else {}), **answers}
            db.execute(
                "INSERT OR REPLACE INTO drafts (rater, hit, answers, updated) VALUES (?, ?, ?, ?)",
                (rater.id, hit, json.dumps(merged, sort_keys=True), _now()),
            )

    def submit(
        self, rater: Rater, hit: str, urls: list[tuple[str, str]], answers: dict[str, str]
    ) -> int:
        """Store one HIT's answers in one transaction; its draft goes with it.

        Raises:
            AlreadyRated: the rater submitted this HIT before (nothing changes).
        """
        with self.transaction() as db:
            try:
                cursor = db.execute(
                    "INSERT INTO submissions (rater, hit, urls, answers, submitted) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (rater.id, hit, json.dumps(urls), json.dumps(answers, sort_keys=True), _now()),
                )
            except sqlite3.IntegrityError:
                raise AlreadyRated(f"{rater.name} has rated {hit} already") from None
            db.execute("DELETE FROM drafts WHERE rater = ? AND hit = ?", (rater.id, hit))
            return int(cursor.lastrowid or 0)

    def submissions(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT s.id, r.name, s.hit, s.urls, s.answers, s.submitted "
            "FROM submissions s JOIN raters r ON r.id = s.rater ORDER BY s.id"
        )
        return [
            {
                "id": int(i),
                "worker": str(name),
                "hit": str(hit),
                "urls": json.loads(urls),
                "answers": json.loads(answers),
                "submitted": str(when),
            }
            for i, name, hit, urls, answers, when in rows
        ]


def export_csv(store: Store) -> str:
    """Every submission as an MTurk results CSV: ``HITId``, ``AssignmentId``, ``WorkerId``,
    ``AssignmentStatus``, ``SubmitTime``, the clip URL inputs and the answers."""
    rows = store.submissions()
    if not rows:
        raise MosError(f"{store.path}: holds no submitted ratings yet")
    inputs: list[str] = []
    answers: list[str] = []
    for row in rows:
        for column, _ in row["urls"]:
            if f"Input.{column}" not in inputs:
                inputs.append(f"Input.{column}")
        for key in row["answers"]:
            if f"Answer.{key}" not in answers:
                answers.append(f"Answer.{key}")
    header = ["HITId", "AssignmentId", "WorkerId", "AssignmentStatus", "SubmitTime",
              *inputs, *sorted(answers)]  # fmt: skip
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, restval="")
    writer.writeheader()
    for row in rows:
        record = {
            "HITId": row["hit"],
            "AssignmentId": f"local-{row['id']}",
            "WorkerId": row["worker"],
            "AssignmentStatus": "Submitted",
            "SubmitTime": row["submitted"],
        }
        record.update({f"Input.{column}": url for column, url in row["urls"]})
        record.update({f"Answer.{key}": value for key, value in row["answers"].items()})
        writer.writerow(record)
    return buffer.getvalue()
