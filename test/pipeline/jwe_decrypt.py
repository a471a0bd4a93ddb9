"""Decrypts a JWE compact serialisation with Python's `jwcrypto`, independently of hookrelay and of `jose`.

Reads JSON on stdin: {"key": <private JWK>, "token": "<compact JWE>"}. Prints JSON: the protected header and the
plaintext as base64 (so the test compares bytes, not a re-encoded string).
"""
import base64
import json
import sys

from jwcrypto import jwe, jwk


def main() -> None:
    request = json.load(sys.stdin)
    key = jwk.JWK(**request["key"])
    token = jwe.JWE()
    token.deserialize(request["token"], key=key)
    json.dump({"header": json.loads(token.objects["protected"]), "plaintext": base64.b64encode(token.payload).decode()}, sys.stdout)


main()
