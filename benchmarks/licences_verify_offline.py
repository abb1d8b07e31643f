"""Offline token verification in one process (target: >= 2,000 per second).

Signs N tokens with three issuer keys, then checks them with ``licenses.signing.Verifier`` (parse,
key lookup, Ed25519 verification, identifier check digit), as a bank's offline verifier would with the
published keys. Baseline in the same run: bare Ed25519 verification of the same bytes with
``cryptography``, so the figure shows what the token format costs on top of the signature.

    .venv/bin/python -m benchmarks.licences_verify_offline [--count 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

from catalog.codes import make_uscc
from licenses.identifiers import make_identifier
from licenses.signing import KeyStore, PublicKey, TokenClaims, Verifier, b64d, make_token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = KeyStore(Path(tmp))
        issuers = [make_uscc("11321203", f"MB15800{i}") for i in range(3)]
        keys = [store.key_for(code) for code in issuers]
        tokens = []
        for i in range(args.count):
            key = keys[i % 3]
            ident = make_identifier("11100000000013338W032", key.issuer_code, f"2018{i:08d}")
            tokens.append(
                make_token(
                    key,
                    TokenClaims(
                        key.kid,
                        i + 1,
                        ident,
                        "张*",
                        "321203********123X",
                        date(2018, 1, 1),
                        date(2028, 12, 31),
                        1_700_000_000,
                    ),
                )
            )
        verifier = Verifier({k.kid: PublicKey(k.kid, k.algorithm, k.issuer_code, k.public_raw) for k in keys})

        started = time.perf_counter()
        ok = sum(verifier.check(t).ok for t in tokens)
        full = time.perf_counter() - started
        if ok != args.count:
            raise SystemExit(f"only {ok} of {args.count} tokens verified")

        publics = {k.kid: k.private_key.public_key() for k in keys}
        raw = []
        for i, t in enumerate(tokens):
            head, _, sig = t.rpartition(".")
            raw.append((publics[keys[i % 3].kid], b64d(sig), head.encode()))
        started = time.perf_counter()
        for pub, signature, signed in raw:
            pub.verify(signature, signed)
        bare = time.perf_counter() - started
    print(
        f"offline token checks: {args.count} in {full:.2f} s = {args.count / full:,.0f} per second "
        f"(baseline bare Ed25519 verify: {args.count / bare:,.0f} per second; "
        f"token length {len(tokens[0])} chars)"
    )


if __name__ == "__main__":
    main()
