# SPDX-License-Identifier: MIT
"""`zeromesh keys new NAME` and `zeromesh keys show FILE`: CURVE certificates with roles."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def cmd_keys_new(args: argparse.Namespace) -> int:
    from zeromesh.broker.keyring import GrantError, parse_grants
    from zeromesh.protocol.curve_certs import CertificateError, write_key_pair

    roles = " ".join(args.role or [])
    try:
        parse_grants(roles)  # refuse a typo now, not when the broker loads the key
        public, secret = write_key_pair(args.dir, args.name, {"roles": roles} if roles else {})
    except (GrantError, CertificateError, OSError) as exc:
        print(f"zeromesh keys new: {exc}", file=sys.stderr)
        return 2
    print(f"public key:  {public}\nsecret key:  {secret} (mode 0600)\nroles:       {roles or '(none)'}")
    if not roles:
        print("note: a key without roles is refused by every broker; it suits a broker's own key", file=sys.stderr)
    return 0


def cmd_keys_show(args: argparse.Namespace) -> int:
    from zeromesh.protocol.curve_certs import CertificateError, read_certificate

    try:
        cert = read_certificate(args.file)
    except CertificateError as exc:
        print(f"zeromesh keys show: {exc}", file=sys.stderr)
        return 2
    print(f"name:        {cert.name}")
    print(f"public-key:  {cert.public_key.decode()}")
    print(f"roles:       {cert.metadata.get('roles') or '(none)'}")
    print(f"secret:      {'yes (keep this file private)' if cert.secret_key else 'no (a public certificate)'}")
    return 0


def add_verbs(verbs: Any) -> None:
    """Register keys new and keys show."""
    p = verbs.add_parser(
        "keys",
        help="make and read CURVE keys",
        description="CURVE key pairs in the zmq.auth certificate format, roles in their metadata.",
    )
    sub = p.add_subparsers(dest="keys_verb", metavar="new|show")
    sub.required = True
    new = sub.add_parser(
        "new",
        help="write NAME.key and NAME.key_secret",
        description="Write a fresh key pair: NAME.key (public, for the broker's clients directory) and "
        "NAME.key_secret (mode 0600, stays with its owner). Never overwrites.",
    )
    new.add_argument("name")
    new.add_argument("--dir", default=".", help="where to write them (default: here)")
    new.add_argument(
        "--role",
        action="append",
        metavar="ROLE[:PATTERN,...]",
        help="producer, worker, subscriber or admin, optionally narrowed to name globs "
        "(producer:orders,mail.*  worker:render  admin:status); repeat for several",
    )
    new.set_defaults(func=cmd_keys_new)
    show = sub.add_parser("show", help="print a certificate's public key and roles")
    show.add_argument("file")
    show.set_defaults(func=cmd_keys_show)
