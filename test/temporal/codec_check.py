"""Cross-language check of hookrelay's Temporal codec against Python's `cryptography` AESGCM, done the way
temporalio/samples-python's encryption/codec.py does it: AESGCM(key).encrypt(nonce, Payload.SerializeToString(), None),
data = nonce(12) || ciphertext || tag(16), outer metadata encoding=binary/encrypted, encryption-key-id=<id>.

The inner Payload proto (map<string, bytes> metadata = 1; bytes data = 2) is encoded and decoded by hand, so that
only `cryptography` is needed.

stdin:  {"key": hex, "keyId": str,
         "decrypt": [outer payload], "encrypt": [inner payload]}   payload = {"metadata": {k: b64}, "data": b64}
stdout: {"decrypted": [inner payload], "encrypted": [outer payload]}
"""
import base64
import json
import os
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(buf, pos):
    shift = result = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def length_delimited(field, value):
    return varint(field << 3 | 2) + varint(len(value)) + value


def fields(buf):
    pos = 0
    while pos < len(buf):
        tag, pos = read_varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 2:
            size, pos = read_varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise ValueError("unexpected wire type %d" % wire)
        yield field, value


def serialize_payload(metadata, data):
    out = b""
    for key in sorted(metadata):
        entry = length_delimited(1, key.encode()) + length_delimited(2, metadata[key])
        out += length_delimited(1, entry)
    if data:
        out += length_delimited(2, data)
    return out


def parse_payload(buf):
    metadata, data = {}, b""
    for field, value in fields(buf):
        if field == 1:
            entry = dict(fields(value))
            metadata[entry.get(1, b"").decode()] = entry.get(2, b"")
        elif field == 2:
            data = value
    return metadata, data


def b64(raw):
    return base64.b64encode(raw).decode()


def main():
    request = json.load(sys.stdin)
    key_id = request["keyId"]
    aesgcm = AESGCM(bytes.fromhex(request["key"]))

    decrypted = []
    for outer in request["decrypt"]:
        meta = {k: base64.b64decode(v) for k, v in outer["metadata"].items()}
        if meta.get("encoding") != b"binary/encrypted":
            raise SystemExit("not an encrypted payload: %r" % meta.get("encoding"))
        if meta.get("encryption-key-id", b"").decode() != key_id:
            raise SystemExit("unexpected key id %r" % meta.get("encryption-key-id"))
        data = base64.b64decode(outer["data"])
        inner_meta, inner_data = parse_payload(aesgcm.decrypt(data[:12], data[12:], None))
        decrypted.append({"metadata": {k: b64(v) for k, v in inner_meta.items()}, "data": b64(inner_data)})

    encrypted = []
    for inner in request["encrypt"]:
        plain = serialize_payload({k: base64.b64decode(v) for k, v in inner["metadata"].items()}, base64.b64decode(inner["data"]))
        nonce = os.urandom(12)
        encrypted.append({
            "metadata": {"encoding": b64(b"binary/encrypted"), "encryption-key-id": b64(key_id.encode())},
            "data": b64(nonce + aesgcm.encrypt(nonce, plain, None)),
        })

    json.dump({"decrypted": decrypted, "encrypted": encrypted}, sys.stdout)


main()
