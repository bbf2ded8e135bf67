# SPDX-License-Identifier: MIT
"""Every vector in protocol/vectors through the Python codec, in-process and via the driver."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import msgpack
import pytest

from zeromesh.protocol import codec, conformance, wire
from zeromesh.protocol.errors import ProtocolError

from .vector_files import FILES, IDS, ROOT, VECTORS, load

pytestmark = pytest.mark.conformance

SPEC = ROOT / "protocol" / "SPEC.md"
SCHEMA = json.loads((VECTORS / "schema.json").read_text())
DRIVER_TIMEOUT_S = 20


def test_there_are_vectors() -> None:
    assert len(FILES) > 100


# -- the codec against every vector -------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_vector(path: Path) -> None:
    vector = load(path)
    if "decoded" in vector:
        assert conformance.decode(vector) == vector["decoded"]
    else:
        with pytest.raises(ProtocolError) as info:
            conformance.decode(vector)
        assert info.value.code == vector["error"], info.value.message


def from_json(value):
    """The inverse of the decoded-JSON mapping of README.md."""
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return bytes.fromhex(value["$bin"])
        if set(value) == {"$ext"}:
            return msgpack.ExtType(value["$ext"][0], bytes.fromhex(value["$ext"][1]))
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


CANONICAL = [(p, i) for p, i in zip(FILES, IDS) if "decoded" in (v := load(p)) and v.get("canonical", True)]


@pytest.mark.parametrize("path", [p for p, _ in CANONICAL], ids=[i for _, i in CANONICAL])
def test_codec_encodes_canonical_vectors_byte_for_byte(path: Path) -> None:
    vector = load(path)
    decoded = vector["decoded"]
    if vector["endpoint"] == "pub":
        frames = codec.pack_event(decoded["topic"], from_json(decoded["header"]), bytes.fromhex(decoded["body_hex"]))
    elif "items" in decoded:
        items = [(from_json(i["header"]), bytes.fromhex(i["body_hex"])) for i in decoded["items"]]
        frames = codec.pack_items(wire.COMMANDS_BY_NAME[decoded["command"]], items)
    elif "bodies_hex" in decoded and wire.COMMANDS_BY_NAME[decoded["command"]] in wire.PACKED_COMMANDS:
        header = from_json(decoded["header"])
        sizes = header.pop("sizes")  # pack_packed computes them from the bodies
        bodies = [bytes.fromhex(b) for b in decoded["bodies_hex"]]
        assert sizes == [len(b) for b in bodies]
        frames = codec.pack_packed(wire.COMMANDS_BY_NAME[decoded["command"]], header, bodies)
    elif "bodies_hex" in decoded:
        frames = codec.pack_batch(
            wire.COMMANDS_BY_NAME[decoded["command"]],
            from_json(decoded["header"]),
            [bytes.fromhex(b) for b in decoded["bodies_hex"]],
        )
    else:
        frames = codec.pack_control(wire.COMMANDS_BY_NAME[decoded["command"]], from_json(decoded["header"]))
    assert [f.hex() for f in frames] == vector["frames_hex"]


# -- the driver as a subprocess (the contract other languages follow) ---------


def run_driver(stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zeromesh.protocol.conformance"],
        input=stdin.encode(),
        capture_output=True,
        timeout=DRIVER_TIMEOUT_S,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.parametrize(
    "name",
    [
        "valid/push/batch.json",
        "valid/push/unknown_fields_ignored.json",
        "valid/ack/spec_example.json",
        "valid/push/body_at_limit.json",
        "events/valid/utf8_topic.json",
        "invalid/bad_version_2.json",
        "invalid/body_too_large.json",
        "invalid/key_repeated.json",
        "events/invalid/missing_seq.json",
    ],
)
def test_driver_subprocess(name: str) -> None:
    vector = load(VECTORS / name)
    proc = run_driver(json.dumps(vector))
    if "decoded" in vector:
        assert proc.returncode == 0, proc.stderr.decode()
        assert json.loads(proc.stdout) == vector["decoded"]
    else:
        assert proc.returncode == 1, proc.stderr.decode()
        assert proc.stdout.decode().strip() == vector["error"]


def test_driver_fails_apart_from_refusals() -> None:
    proc = run_driver("not json")
    assert proc.returncode == 2 and proc.stdout == b""
    assert b"conformance driver failed" in proc.stderr


# -- the vector files themselves ----------------------------------------------

VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def test_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_vector_file_matches_schema(path: Path) -> None:
    VALIDATOR.validate(load(path))


def test_schema_rejects_malformed_vectors() -> None:
    good = load(VECTORS / "valid/ack/spec_example.json")
    bad = [
        {**good, "frames_hex": ["5A4D0104"]},  # upper-case hex
        {**good, "frames_hex": ["5a4d010"]},  # odd length
        {**good, "error": "bad_header"},  # both decoded and error
        {k: v for k, v in good.items() if k != "endpoint"},
        {**good, "endpoint": "pub"},
        {**good, "decoded": {"command": "NOPE", "header": {"id": "x"}}},
        {**good, "decoded": {"command": "PUSH", "header": {"id": "x"}}},  # item command, control shape
        {**good, "extra": 1},
        {"description": "x", "endpoint": "broker", "frames_hex": [], "error": "no_such_code"},
        {"description": "x", "endpoint": "broker", "frames_hex": [], "error": "too_large", "max_body": -1},
    ]
    for vector in bad:
        assert not VALIDATOR.is_valid(vector), vector


def test_layout() -> None:
    commands_seen = set()
    for path, rel in zip(FILES, IDS):
        vector = load(path)
        parts = rel.split("/")
        assert path.stat().st_size < 200_000, rel
        if parts[0] == "valid":
            assert len(parts) == 3 and vector["endpoint"] == "broker" and "decoded" in vector, rel
            assert parts[1] == vector["decoded"]["command"].lower(), rel
            commands_seen.add(vector["decoded"]["command"])
        elif parts[0] == "invalid":
            assert len(parts) == 2 and vector["endpoint"] == "broker" and "error" in vector, rel
        else:
            assert parts[0] == "events" and len(parts) == 3 and vector["endpoint"] == "pub", rel
            assert ("decoded" in vector) == (parts[1] == "valid"), rel
    assert commands_seen == set(wire.COMMANDS_BY_NAME)
    for code in wire.ITEM_COMMANDS:
        name = wire.COMMAND_NAMES[code].lower()
        for variant in ("minimal", "all_optional_fields", "empty_body", "binary_body", "utf8_body", "batch"):
            assert (VECTORS / "valid" / name / f"{variant}.json").is_file(), (name, variant)


def test_invalid_vectors_use_protocol_error_codes() -> None:
    codes = {load(p)["error"] for p in FILES if "error" in load(p)}
    assert codes <= wire.ERROR_CODES
    assert codes == {"bad_frame", "bad_version", "unknown_command", "bad_header", "too_large"}


def test_committed_vectors_match_the_generator(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("zmsh_generate", VECTORS / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    assert generate.main(["--out", str(tmp_path)]) == 0
    fresh = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json"))
    assert fresh == IDS, "run: python protocol/vectors/generate.py"
    for rel in fresh:
        assert (tmp_path / rel).read_bytes() == (VECTORS / rel).read_bytes(), rel


# -- SPEC.md agrees with the vectors ------------------------------------------


def _spec_hex() -> str:
    return re.sub(r"\s+", "", SPEC.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "path",
    [p for p in FILES if p.stem == "spec_example"],
    ids=[i for p, i in zip(FILES, IDS) if p.stem == "spec_example"],
)
def test_spec_shows_the_example_frames(path: Path) -> None:
    text = _spec_hex()
    for n, frame in enumerate(load(path)["frames_hex"]):
        assert f"Frame{n}:{frame}" in text, (path.name, n, frame)


def test_spec_lists_every_error_code_and_command() -> None:
    text = SPEC.read_text(encoding="utf-8")
    for code in wire.ERROR_CODES:
        assert f"| `{code}`" in text, code
    for name, value in wire.COMMANDS_BY_NAME.items():
        assert f"### {name} (0x{value:02X})" in text, name
