# SPDX-License-Identifier: MIT
"""The compiled hot modules (zeromesh/native/): a real Cython build of a small module, the finder's
choice between the compiled copy and the source in each ZEROMESH_NATIVE mode, and that this run of
the suite and the brokers it starts run in the mode the run asked for (CI runs the suite twice:
ZEROMESH_NATIVE=require, then off)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import zeromesh
from zeromesh import native
from zeromesh.native import build
from zeromesh.native.modules import COMPILED

from ..conftest import wait_until

pytestmark = pytest.mark.integration

MODE = os.environ.get("ZEROMESH_NATIVE", "auto").strip().lower() or "auto"
PROBE = "zmnativeprobe.hot"


@pytest.fixture
def probe(tmp_path, monkeypatch):
    """A package of one module, zmnativeprobe.hot, in tmp_path/src (on sys.path for the build,
    which finds sources as imports do); its builds go to tmp_path/built."""
    package = tmp_path / "src" / "zmnativeprobe"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    write_probe(package / "hot.py", 1)
    monkeypatch.syspath_prepend(str(package.parent))
    yield package, tmp_path / "built"
    sys.modules.pop("zmnativeprobe", None)


def write_probe(path: Path, value: int) -> None:
    path.write_text(
        textwrap.dedent(f"""
            VALUE = {value}

            def where() -> str:
                return __file__

            def total(items: list) -> float:
                # annotations are not enforced: a tuple is summed, as in the source
                return sum(items)
            """)
    )


LOAD = """
import json, sys
from pathlib import Path
from zeromesh import native
state = native.install(sys.argv[1], ("zmnativeprobe.hot",), Path(sys.argv[2]))
try:
    import zmnativeprobe.hot as hot
except native.NativeError as exc:
    print(json.dumps({"refused": str(exc)}))
else:
    print(json.dumps({"file": hot.where(), "value": hot.VALUE, "total": hot.total((1, 2)),
                      "fallbacks": state.fallbacks, "describe": state.describe()}))
"""


def load(package: Path, built_dir: Path, mode: str) -> dict:
    """Import the probe in a fresh process (an extension module, once loaded, stays for the
    process's life) with the finder installed in `mode`; what it found."""
    done = subprocess.run(
        [sys.executable, "-c", LOAD, mode, str(built_dir)],
        env={**os.environ, "PYTHONPATH": str(package.parent), "ZEROMESH_NATIVE": "off"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_built_module_is_used_compiled_until_its_source_changes(probe):
    package, built_dir = probe
    assert build.build(1, True, (PROBE,), built_dir) == 0
    got = load(package, built_dir, "auto")
    assert got["file"].endswith(".so") and Path(got["file"]).parent == built_dir
    assert got["value"] == 1 and got["total"] == 3  # Python semantics: the `list` annotation is not a type check
    assert "1 of 1 hot modules compiled (ZEROMESH_NATIVE=auto)" == got["describe"]

    write_probe(package / "hot.py", 2)
    got = load(package, built_dir, "auto")
    assert got["file"].endswith("hot.py") and got["value"] == 2
    assert got["fallbacks"] == {PROBE: "source changed since the build"}
    assert "0 of 1 hot modules compiled" in got["describe"] and "zmnativeprobe.hot stale" in got["describe"]
    refused = load(package, built_dir, "require")["refused"]
    assert "ZEROMESH_NATIVE=require: zmnativeprobe.hot has no current compiled copy (source changed" in refused

    assert build.build(1, True, (PROBE,), built_dir) == 0
    got = load(package, built_dir, "require")
    assert got["file"].endswith(".so") and got["value"] == 2


def test_off_uses_the_source_and_a_missing_file_falls_back(probe):
    package, built_dir = probe
    assert build.build(1, True, (PROBE,), built_dir) == 0
    assert load(package, built_dir, "off")["file"].endswith("hot.py")

    for file in built_dir.glob("*.so"):
        file.unlink()
    got = load(package, built_dir, "auto")
    assert got["file"].endswith("hot.py")
    assert got["fallbacks"] == {PROBE: "its compiled file is missing"}


def test_require_with_nothing_built_and_a_wrong_setting_are_refused(tmp_path):
    with pytest.raises(native.NativeError, match="no compiled modules are built"):
        native.install("require", (PROBE,), tmp_path / "never-built")
    with pytest.raises(native.NativeError, match="must be one of auto, off, require, not 'fast'"):
        native.install("fast", (PROBE,), tmp_path)


def test_a_wrong_setting_stops_a_zeromesh_command_with_the_reason(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "zeromesh", "--version"],
        env={**os.environ, "ZEROMESH_NATIVE": "fast"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "ZEROMESH_NATIVE must be one of auto, off, require, not 'fast'" in done.stderr


def test_this_run_uses_the_modules_it_asked_for():
    """Each listed module came from its compiled copy exactly when one is current (never under off);
    under ZEROMESH_NATIVE=require all of them did. This is what keeps CI's two runs honest."""
    import importlib

    loaded = [importlib.import_module(name) for name in COMPILED]
    files = {module.__name__: module.__file__ or "" for module in loaded}
    states = zeromesh.NATIVE.check_all() if MODE != "off" else dict.fromkeys(COMPILED, "off")
    for name, file in files.items():
        assert file.endswith(".so") == (states[name] == "compiled"), (name, file, states[name])
    if MODE == "require":
        assert set(states.values()) == {"compiled"}, states


def test_a_broker_says_at_start_which_modules_it_runs(broker_factory):
    broker = broker_factory()
    wait_until(lambda: "hot modules" in broker.log(), timeout=10, message="the broker's modules line")
    line = next(line for line in broker.log().splitlines() if "hot modules" in line)
    if MODE == "require":
        assert f"{len(COMPILED)} of {len(COMPILED)} hot modules compiled (ZEROMESH_NATIVE=require)" in line
    elif MODE == "off":
        assert "hot modules from Python source (ZEROMESH_NATIVE=off)" in line
    else:
        assert "ZEROMESH_NATIVE=auto" in line


def test_the_build_compiles_only_what_changed(probe, capsys):
    package, built_dir = probe
    assert build.build(1, True, (PROBE,), built_dir) == 0
    started = time.monotonic()
    assert build.build(1, True, (PROBE,), built_dir) == 0
    assert "all 1 compiled modules are current" in capsys.readouterr().out
    assert time.monotonic() - started < 5


def test_a_cython_twin_beside_the_source_is_what_gets_compiled(probe):
    """A module with a .pyx of the same name beside it (protocol/fastio) is compiled from that
    twin, whose edits make the copy stale; the .py stays the fallback."""
    package, built_dir = probe
    twin = package / "hot.pyx"
    twin.write_text("VALUE = 7\n\ndef where():\n    return __file__\n\ndef total(items):\n    return sum(items)\n")
    assert build.build(1, True, (PROBE,), built_dir) == 0
    assert json.loads((built_dir / native.MANIFEST_NAME).read_text())["modules"][PROBE]["source"] == str(twin)
    got = load(package, built_dir, "auto")
    assert got["file"].endswith(".so") and got["value"] == 7
    assert load(package, built_dir, "off")["value"] == 1  # the fallback: hot.py

    twin.write_text(twin.read_text().replace("VALUE = 7", "VALUE = 8"))
    got = load(package, built_dir, "auto")
    assert got["file"].endswith("hot.py") and got["fallbacks"] == {PROBE: "source changed since the build"}
