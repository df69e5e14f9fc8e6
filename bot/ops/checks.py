"""A doctor check's result, and how results are shown (one line each, or JSON)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "fail", "skip", "warn"]
_MARKS = {"ok": "✓", "fail": "✗", "skip": "–", "warn": "!"}


@dataclass(frozen=True)
class CheckResult:
    """`name` is stable (scripts read it from --json); `message` says what was found, `fix` what to do."""

    name: str
    status: Status
    message: str
    fix: str | None = None
    details: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == "fail"


def ok(name: str, message: str, **data: Any) -> CheckResult:
    return CheckResult(name, "ok", message, data=data)


def fail(name: str, message: str, fix: str | None = None, *, details: Iterable[str] = (),
         **data: Any) -> CheckResult:
    return CheckResult(name, "fail", message, fix, tuple(details), data)


def warn(name: str, message: str, fix: str | None = None, **data: Any) -> CheckResult:
    return CheckResult(name, "warn", message, fix, data=data)


def skip(name: str, because: str) -> CheckResult:
    return CheckResult(name, "skip", f"skipped: {because}")


def render_text(results: Sequence[CheckResult]) -> str:
    lines = []
    for result in results:
        line = f"{_MARKS[result.status]} {result.message}"
        if result.fix:
            line += f" — {result.fix}"
        lines.append(line)
        lines.extend(f"    {detail}" for detail in result.details)
    failed = sum(result.failed for result in results)
    lines.append("all checks passed" if not failed else f"{failed} check(s) failed")
    return "\n".join(lines)


def render_json(results: Sequence[CheckResult]) -> str:
    return json.dumps([
        {"check": r.name, "status": r.status, "message": r.message, "fix": r.fix, "details": list(r.details),
         **({"data": r.data} if r.data else {})}
        for r in results
    ], ensure_ascii=False, indent=2)
