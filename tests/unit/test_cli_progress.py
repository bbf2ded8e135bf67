# SPDX-License-Identifier: MIT
"""The CLI's progress line: in place when shown, nothing at all when not."""

from __future__ import annotations

import io

from zeromesh.cli import progress as progress_mod
from zeromesh.cli.progress import Progress


def test_the_line_gives_count_share_and_rate():
    p = Progress("pushing to q", 5000, stream=io.StringIO())
    p.started = 100.0
    p.done = 1200
    assert p.line(now=102.0) == "pushing to q: 1,200 of 5,000 (24%), 600/s"
    p.total = None
    assert p.line(now=102.0) == "pushing to q: 1,200, 600/s"


def test_nothing_is_written_when_not_on_a_terminal():
    out = io.StringIO()
    p = Progress("x", 10, stream=out)
    p.add(5)
    p.finish()
    assert out.getvalue() == ""


def test_forced_progress_redraws_in_place_and_clears_before_the_summary(monkeypatch):
    monkeypatch.setattr(progress_mod, "REDRAW_S", 0.0)
    out = io.StringIO()
    p = Progress("x", 10, stream=out, force=True)
    p.add(5)
    p.add(5)
    text = out.getvalue()
    assert text.startswith("\rx: 5 of 10 (50%)") and "\rx: 10 of 10 (100%)" in text
    drawn = text.rsplit("\r", 1)[1]
    p.finish()
    assert out.getvalue()[len(text) :] == "\r" + " " * len(drawn) + "\r"
