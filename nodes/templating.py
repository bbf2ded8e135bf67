# SPDX-License-Identifier: MIT
"""Sandboxed Jinja2 environments, one per site (template set), and template errors as plain facts.

Templates live in `<root>/<site>/`; a site's loader searches its own folder,
then `<root>/default/`, so a co-branded site overrides only what differs
(typically base.html). A site name that has no folder gets the default set.

Undefined values are strict (StrictUndefined) in development and production
alike: a typo in a variable fails the page with an error naming the template
and line, rather than rendering an empty hole that gets cached. Templates test
optional values with `{% if x is defined %}` or `{{ x | default("") }}`. Strict
undefined also turns every refused sandbox lookup (`''.__class__`) into an
error instead of an empty string.
"""

from __future__ import annotations

import os
import re
import traceback
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemBytecodeCache,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

DEFAULT_SITE = "default"
"""The template set every site falls back to, and the one used when a request names none."""

_SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SITES_MEMO_MAX = 1024


class TemplateFailure(Exception):
    """A template could not be loaded or rendered: which one, where, and why.

    str() is "card.html line 12: UndefinedError: 'card' is undefined", the
    message the ERROR reply carries. `template` and `lineno` may be None when
    Jinja could not tell (a template that does not exist has no line).
    """

    def __init__(
        self, template: str | None, lineno: int | None, kind: str, detail: str, rendering: str | None = None
    ) -> None:
        self.template = template
        self.lineno = lineno
        self.kind = kind
        self.detail = detail
        where = template or "?"
        if lineno:
            where += f" line {lineno}"
        if rendering and rendering != template:
            where += f" (rendering {rendering})"
        super().__init__(f"{where}: {kind}: {detail}")


def make_environment(
    search_path: list[Path],
    *,
    dev: bool = False,
    bytecode_dir: str | None = None,
    globals: dict[str, Any] | None = None,  # noqa: A002 - Jinja2's own name for them
) -> SandboxedEnvironment:
    """One sandboxed, autoescaping environment over `search_path` (first match wins)."""
    if bytecode_dir is not None:
        os.makedirs(bytecode_dir, exist_ok=True)
    env = SandboxedEnvironment(
        autoescape=select_autoescape(),
        loader=FileSystemLoader([str(p) for p in search_path]),
        # Compiled templates survive restarts; the key includes the file's path, so sites can share a folder.
        bytecode_cache=FileSystemBytecodeCache(bytecode_dir),
        auto_reload=dev,
        # A template set is a folder of files, so keep every compiled template: a plain dict instead of
        # the LRU cache, whose lock (gevent's, once patched) every get_template, extends and include took.
        cache_size=-1,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    if globals:
        env.globals.update(globals)
    return env


class TemplateSets:
    """The environments of every site under `root`, made on first use and kept."""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        dev: bool = False,
        bytecode_dir: str | None = None,
        globals: dict[str, Any] | None = None,  # noqa: A002 - Jinja2's own name for them
    ) -> None:
        self.root = Path(root).resolve()
        if not (self.root / DEFAULT_SITE).is_dir():
            raise FileNotFoundError(f"no {DEFAULT_SITE!r} template set: {self.root / DEFAULT_SITE} is not a folder")
        self.dev = dev
        self.bytecode_dir = bytecode_dir
        self.globals = dict(globals or {})
        self._envs: dict[str, SandboxedEnvironment] = {}
        self._sites: dict[str | None, str] = {}

    def site_for(self, name: str | None) -> str:
        """The template set serving site `name`: its own folder if it has one, else the default."""
        site = self._sites.get(name)
        if site is None:
            site = name if name and _SITE_NAME.match(name) and (self.root / name).is_dir() else DEFAULT_SITE
            # A stat per request was a tenth of a render. Folders appearing later count only with --dev
            # (like template changes); the names cached are bounded by _SITE_NAME's alphabet and length,
            # and by clearing the memo when it grows.
            if not self.dev:
                if len(self._sites) >= _SITES_MEMO_MAX:
                    self._sites.clear()
                self._sites[name] = site
        return site

    def env(self, name: str | None) -> SandboxedEnvironment:
        site = self.site_for(name)
        env = self._envs.get(site)
        if env is None:
            path = [self.root / site] if site == DEFAULT_SITE else [self.root / site, self.root / DEFAULT_SITE]
            env = make_environment(path, dev=self.dev, bytecode_dir=self.bytecode_dir, globals=self.globals)
            self._envs[site] = env
        return env

    def search_path(self, name: str | None) -> list[Path]:
        site = self.site_for(name)
        return [self.root / site] if site == DEFAULT_SITE else [self.root / site, self.root / DEFAULT_SITE]


def describe(exc: BaseException, rendering: str, search_path: list[Path]) -> TemplateFailure:
    """Turn a Jinja error (or any exception raised by template code) into a TemplateFailure.

    Syntax errors carry their template and line. Runtime errors (undefined,
    sandbox SecurityError, an exception in a filter) do not, but Jinja rewrites
    the traceback so that template code appears as frames of the template
    file at the template's line: the innermost such frame is the place.
    """
    kind = type(exc).__name__
    if isinstance(exc, TemplateSyntaxError):
        return TemplateFailure(
            exc.name or _name_of(exc.filename, search_path), exc.lineno, kind, exc.message or str(exc), rendering
        )
    if isinstance(exc, TemplateNotFound):
        return TemplateFailure(
            exc.name if isinstance(exc.name, str) else rendering,
            None,
            kind,
            f"template {exc.name!r} not found",
            rendering,
        )
    template, lineno = None, None
    for frame in traceback.extract_tb(exc.__traceback__):
        name = _name_of(frame.filename, search_path)
        if name is not None:
            template, lineno = name, frame.lineno
    detail = exc.message if isinstance(exc, TemplateError) and exc.message else str(exc)
    return TemplateFailure(template or rendering, lineno, kind, detail or kind, rendering)


def _name_of(filename: str | None, search_path: list[Path]) -> str | None:
    """The template name of a file under the search path, else None."""
    if not filename:
        return None
    path = Path(filename)
    for root in search_path:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except (ValueError, OSError):
            continue
    return None
