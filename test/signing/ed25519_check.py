"""Verifies Standard Webhooks v1a (Ed25519) signatures with Python's `cryptography`, independently of hookrelay.

Reads JSON on stdin: {"publicKeys": ["whpk_…"], "id": "msg_…", "timestamp": "1700000000", "body": "<base64>",
"signature": "<the webhook-signature header>"}. Prints JSON: for each public key, whether one of the header's v1a
signatures verifies over `id.timestamp.body` (the exact body bytes).
"""
import base64
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def verifies(public_key: str, content: bytes, signatures: list) -> bool:
    if not public_key.startswith("whpk_"):
        raise SystemExit(f"not a whpk_ key: {public_key!r}")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key[len("whpk_"):], validate=True))
    for signature in signatures:
        try:
            key.verify(signature, content)
            return True
        except InvalidSignature:
            continue
    return False


def main() -> None:
    request = json.load(sys.stdin)
    content = f"{request['id']}.{request['timestamp']}.".encode() + base64.b64decode(request["body"])
    signatures = [base64.b64decode(entry[len("v1a,"):]) for entry in request["signature"].split(" ") if entry.startswith("v1a,")]
    json.dump({"v1a": len(signatures), "verified": [verifies(k, content, signatures) for k in request["publicKeys"]]}, sys.stdout)


main()
