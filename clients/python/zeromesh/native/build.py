# SPDX-License-Identifier: MIT
"""Compile the hot modules with Cython: `python -m zeromesh.native.build [--require] [--jobs N]`.

Run by `make install`, `make run` and `make test`. Each module of modules.py whose compiled copy is
missing or was built from another source is compiled (Cython to C, then the C compiler) into a
scratch directory; the finished files are moved into built/ and the manifest rewritten once all
are done, so a running process never sees half a build. Without Cython or a C compiler it says so
and exits 0: zeromesh then runs its Python source (exit 1 with --require, as CI wants).

Cython rather than mypyc: Cython compiles each module as it is, with Python's semantics (type
annotations are not enforced at run time, so bad input is rejected by the same checks as in the
source), into one extension per module named by its import name, whatever folder the module sits
in; mypyc enforces annotations at run time, rejects some dynamic code, and builds a shared library
whose module names follow the folders, which here (broker/ imports as zeromesh.broker) do not match.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from . import BUILT_DIR, EXTENSION_SUFFIX, MANIFEST_NAME, find_source, read_manifest, source_digest
from .modules import COMPILED

# Python's semantics kept: annotations are documentation here, not C types (Cython would otherwise
# turn `x: float` into a C double and reject a list subclass passed as `list`).
DIRECTIVES = {"language_level": 3, "annotation_typing": False, "binding": True, "embedsignature": False}
# -O2 without debug information: the C that Cython writes is large, and -g doubles the compile time.
CFLAGS = "-O2 -g0"


def sources(names: tuple[str, ...]) -> dict[str, Path]:
    """Each module's Python source, found as the import system finds it."""
    found = {}
    for name in names:
        package, _, _ = name.rpartition(".")
        parent = __import__(package, fromlist=["__path__"])
        source = find_source(name, parent.__path__)
        if source is None:
            raise SystemExit(f"native build: no Python source for {name}")
        found[name] = source
    return found


def why_not_buildable() -> str | None:
    try:
        import Cython  # noqa: F401
    except ImportError:
        return "Cython is not installed (pip install 'zeromesh[native]')"
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler!r} not found)"
    return None


def compile_modules(todo: dict[str, Path], jobs: int, scratch: Path) -> dict[str, Path]:
    """Cython + the C compiler, through setuptools' build_ext; returns module -> built file."""
    from Cython.Build import cythonize
    from setuptools import Extension
    from setuptools.dist import Distribution

    extensions = [Extension(name, [str(path)]) for name, path in todo.items()]
    modules = cythonize(extensions, compiler_directives=DIRECTIVES, build_dir=str(scratch / "c"), quiet=True)
    dist = Distribution({"name": "zeromesh-native", "ext_modules": modules})
    dist.script_args = [
        "--quiet",
        "build_ext",
        "--build-lib",
        str(scratch / "lib"),
        "--build-temp",
        str(scratch / "tmp"),
    ]
    dist.script_args += ["--parallel", str(jobs)]
    dist.parse_command_line()
    os.environ["CFLAGS"] = (os.environ.get("CFLAGS", "") + " " + CFLAGS).strip()
    dist.run_commands()
    built = {}
    for name in todo:
        file = scratch / "lib" / (name.replace(".", "/") + EXTENSION_SUFFIX)
        if not file.exists():
            raise RuntimeError(f"the build made no {file.name} for {name}")
        built[name] = file
    return built


def build(jobs: int, require: bool, names: tuple[str, ...] = COMPILED, built_dir: Path = BUILT_DIR) -> int:
    """Compile what is not current; 0 when done (or when it cannot and `require` is false)."""
    reason = why_not_buildable()
    if reason is not None:
        print(f"native build: not built: {reason}; zeromesh runs its Python source", file=sys.stderr)
        return 1 if require else 0
    found = sources(names)
    manifest = read_manifest(built_dir)
    entries: dict[str, dict[str, str]] = {}
    todo: dict[str, Path] = {}
    for name, source in found.items():
        digest = source_digest(source)
        entry = manifest["modules"].get(name)
        current = entry is not None and entry["sha256"] == digest and (built_dir / entry["file"]).exists()
        if current:
            entries[name] = entry
        else:
            todo[name] = source
            entries[name] = {"file": name + EXTENSION_SUFFIX, "sha256": digest, "source": str(source)}
    if not todo:
        print(f"native build: all {len(found)} compiled modules are current")
        return 0
    started = time.monotonic()
    built_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="zeromesh-native-") as scratch:
        try:
            built = compile_modules(todo, jobs, Path(scratch))
        except (Exception, SystemExit) as exc:  # distutils reports a compiler failure as SystemExit
            print(f"native build: failed: {exc}; zeromesh runs its Python source", file=sys.stderr)
            return 1 if require else 0
        for name, file in built.items():
            os.replace(file, built_dir / entries[name]["file"])
    unlisted = {entry["file"] for entry in manifest["modules"].values()} - {e["file"] for e in entries.values()}
    for stale in unlisted:  # modules dropped from the list
        (built_dir / stale).unlink(missing_ok=True)
    temporary = built_dir / (MANIFEST_NAME + ".tmp")
    temporary.write_text(json.dumps({"suffix": EXTENSION_SUFFIX, "modules": entries}, indent=1, sort_keys=True))
    os.replace(temporary, built_dir / MANIFEST_NAME)
    print(f"native build: compiled {len(todo)} of {len(found)} modules in {time.monotonic() - started:.0f}s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zeromesh.native.build", description=__doc__.splitlines()[0])
    parser.add_argument("--require", action="store_true", help="exit 1 when the modules cannot be compiled")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="C compilers run at once")
    args = parser.parse_args(argv)
    return build(max(1, args.jobs), args.require)


if __name__ == "__main__":
    sys.exit(main())
