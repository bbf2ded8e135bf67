# SPDX-License-Identifier: MIT
"""Compiled copies of the hot modules, used in place of their Python source when built and current.

`make install` (and `make run`, `make test`) runs `python -m zeromesh.native.build`, which compiles
the modules listed in modules.py with Cython when Cython and a C compiler are there. A compiled copy
is the same module compiled, not another implementation, so the Python source is always the fallback.
The one exception is a module with a Cython twin beside its source (the same name, `.pyx`: only
protocol/fastio, the multipart reads and writes): its copy is built from the twin, a C
implementation of the same functions that tests/integration/test_fastio.py holds to the source's
behaviour, and the `.py` stays the fallback.
The setting ZEROMESH_NATIVE, read once by `zeromesh/__init__.py` and passed to `install`:

  auto     (default) each listed module from its compiled copy when that was built from the source
           as it is now; otherwise from the source
  off      every module from its Python source (the pure-Python fallback)
  require  every listed module from a current compiled copy; importing one that has none fails
           (what CI's compiled run sets, so that it cannot quietly run the fallback)

A copy is current when the SHA-256 of the module's source matches the one recorded when it was
built (built/manifest.json), checked when the module is first imported: an edited source is used
as it is until the next build.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from .modules import COMPILED

MODES = ("auto", "off", "require")
BUILT_DIR = Path(__file__).resolve().parent / "built"
MANIFEST_NAME = "manifest.json"
NOT_BUILT = "not built"
FILE_MISSING = "its compiled file is missing"
EXTENSION_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


class NativeError(ImportError):
    """ZEROMESH_NATIVE=require and a listed module has no current compiled copy (or the setting is wrong)."""


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(built_dir: Path) -> dict[str, Any]:
    """{"suffix": EXTENSION_SUFFIX, "modules": {name: {"file", "sha256", "source"}}}; empty when never built."""
    try:
        manifest = json.loads((built_dir / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return {"modules": {}}
    if manifest.get("suffix") != EXTENSION_SUFFIX:  # built for another Python: not loadable here
        return {"modules": {}}
    return manifest


def find_source(fullname: str, path: Any) -> Path | None:
    """What `fullname`'s compiled copy is built from: its Python source, found as the import system
    would without us, or a Cython twin of it (the same name, .pyx) where one sits beside it."""
    spec = importlib.machinery.PathFinder.find_spec(fullname, path)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    source = Path(spec.origin)
    twin = source.with_suffix(".pyx")
    return twin if twin.exists() else source


@dataclass
class NativeState:
    """What `install` set up; `loaded` and `fallbacks` fill in as modules are imported.
    `names`: the modules it may load compiled; `built_dir`: where their copies and manifest are."""

    mode: str
    names: frozenset[str] = frozenset(COMPILED)
    built_dir: Path = BUILT_DIR
    built: dict[str, dict[str, str]] = field(default_factory=dict)
    loaded: list[str] = field(default_factory=list)
    fallbacks: dict[str, str] = field(default_factory=dict)  # module -> why its source was used

    def describe(self) -> str:
        """One line for a process's start-up log: how many listed modules run compiled, and why not the rest."""
        if self.mode == "off":
            return "hot modules from Python source (ZEROMESH_NATIVE=off)"
        if not self.built:
            return (
                f"hot modules from Python source: none compiled (make install builds them; ZEROMESH_NATIVE={self.mode})"
            )
        states = self.check_all()
        compiled = sum(1 for state in states.values() if state == "compiled")
        text = f"{compiled} of {len(states)} hot modules compiled (ZEROMESH_NATIVE={self.mode})"
        others = sorted(f"{name} {state}" for name, state in states.items() if state != "compiled")
        return text + (f"; from source: {', '.join(others)}" if others else "")

    def why_not_current(self, entry: dict[str, str] | None, source: Path | None) -> str | None:
        """Why a module's compiled copy must not be used (None: it is current). `entry` is its
        manifest entry, `source` its Python source as found now."""
        if entry is None:
            return NOT_BUILT
        if not (self.built_dir / entry["file"]).exists():
            return FILE_MISSING
        if source is None or not source.exists():
            return "its source is missing"
        if source_digest(source) != entry["sha256"]:
            return "source changed since the build"
        return None

    def check_all(self) -> dict[str, str]:
        """Every listed module's state without importing any: name -> "compiled", "stale" or "missing"
        (its source taken where it was when it was built)."""
        states = {}
        for name in sorted(self.names):
            entry = self.built.get(name)
            why = self.why_not_current(entry, Path(entry["source"]) if entry else None)
            states[name] = "compiled" if why is None else "missing" if why in (NOT_BUILT, FILE_MISSING) else "stale"
        return states


class CompiledFinder(importlib.abc.MetaPathFinder):
    """Finds the listed modules' compiled copies; anything else, or a copy that is not current,
    is left to the import system's own finders (the Python source)."""

    def __init__(self, state: NativeState) -> None:
        self.state = state

    def find_spec(self, fullname: str, path: Any = None, target: ModuleType | None = None) -> Any:
        state = self.state
        if fullname not in state.names:
            return None
        entry = state.built.get(fullname)
        why = state.why_not_current(entry, find_source(fullname, path) if entry else None)
        if why is not None:
            if state.mode == "require":
                raise NativeError(
                    f"ZEROMESH_NATIVE=require: {fullname} has no current compiled copy ({why}); "
                    "run `make install` (python -m zeromesh.native.build) or set ZEROMESH_NATIVE=auto"
                )
            state.fallbacks[fullname] = why
            return None
        assert entry is not None
        file = state.built_dir / entry["file"]
        state.loaded.append(fullname)
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


def install(mode: str, names: tuple[str, ...] = COMPILED, built_dir: Path = BUILT_DIR) -> NativeState:
    """Put the compiled copies in front of the sources, as `mode` says (see the module's docstring)."""
    if mode not in MODES:
        raise NativeError(f"ZEROMESH_NATIVE must be one of {', '.join(MODES)}, not {mode!r}")
    for finder in sys.meta_path:  # the package imported again (a reload): keep one finder for its names
        if isinstance(finder, CompiledFinder) and finder.state.built_dir == built_dir:
            return finder.state
    state = NativeState(mode, frozenset(names), built_dir)
    if mode == "off":
        return state
    state.built = read_manifest(built_dir)["modules"]
    if mode == "require" and not state.built:
        raise NativeError(
            "ZEROMESH_NATIVE=require but no compiled modules are built; run `make install` "
            "(python -m zeromesh.native.build) or set ZEROMESH_NATIVE=auto"
        )
    sys.meta_path.insert(0, CompiledFinder(state))
    return state


def uninstall(state: NativeState) -> None:
    """Take out the finder `install` put in for `state` (modules already imported stay as they are)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not (isinstance(f, CompiledFinder) and f.state is state)]
