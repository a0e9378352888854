#!/usr/bin/env python3
"""Writes the frame-format test vectors (docs/frame-format.md) and vectors.json.

Deliberately independent of both implementations (C filter, TypeScript decoder): it packs
bytes with `struct` straight from the spec, so a shared misunderstanding cannot hide.
Every password here is an obviously fake canary. Re-run after changing the spec:
    python3 lsa-filter/test/vectors/make-vectors.py
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MAGIC = b"PWSF"
ACK_MAGIC = b"PWSA"
SPOOL_MAGIC = b"PWSS"
VERSION = 1
HEADER_BYTES = 40
SEQUENCE = 0x01DC_7A5E_0000_0001
CAPTURED_AT = 134116992000000000  # FILETIME of 2026-01-01T00:00:00Z
CAPTURED_AT_ISO = "2026-01-01T00:00:00.000Z"


def u16(s: str) -> bytes:
    return s.encode("utf-16-le", "surrogatepass")


def frame(account: bytes, password: bytes, *, magic=MAGIC, version=VERSION,
          header_bytes=HEADER_BYTES, frame_bytes=None, flags=0, seq=SEQUENCE,
          captured=CAPTURED_AT, account_len=None, password_len=None, reserved=0) -> bytes:
    a = len(account) if account_len is None else account_len
    p = len(password) if password_len is None else password_len
    total = HEADER_BYTES + len(account) + len(password) if frame_bytes is None else frame_bytes
    head = magic + struct.pack("<HHIIQQHHI", version, header_bytes, total, flags, seq, captured, a, p, reserved)
    assert len(head) == HEADER_BYTES
    return head + account + password


vectors = []


def add(name, data, expect, note):
    fname = name + ".bin"
    with open(os.path.join(HERE, fname), "wb") as f:
        f.write(data)
    vectors.append({"name": name, "file": fname, "hex": data.hex(), "note": note, **expect})


def ok(account: str, password: str):
    return {"expect": "ok", "decoded": {
        "accountName": account,
        "accountNameHex": u16(account).hex(),
        "passwordHex": u16(password).hex(),
        "sequence": str(SEQUENCE),
        "capturedAtFiletime": str(CAPTURED_AT),
        "capturedAt": CAPTURED_AT_ISO,
    }}


def err(code, field=None):
    e = {"expect": "error", "error": {"code": code}}
    if field:
        e["error"]["field"] = field
    return e


# --- valid frames: the harness also feeds these to the filter and compares bytes ---------
VALID = [
    ("valid-ascii", "canary.ascii", "CANARY-not-a-password-Ascii1!", "plain ASCII"),
    ("valid-nonbmp", "canary.\u00fcnic\u00f8de", "CANARY-\U0001F600-\U0001D11E-not-a-password",
     "account with Latin-1 letters, password with surrogate pairs (U+1F600, U+1D11E)"),
    ("valid-max-account", "c" * 256, "CANARY-not-a-password-maxacct", "account at the 256-character limit"),
    ("valid-max-password", "canary.maxpw", ("CANARY-not-a-password-" * 12)[:256],
     "password at the 256-character limit"),
    ("valid-empty-password", "canary.emptypw", "", "empty password is forwarded; the agent decides"),
]
for name, account, password, note in VALID:
    add(name, frame(u16(account), u16(password)), ok(account, password), note)

base_a, base_p = u16("canary.ascii"), u16("CANARY-not-a-password-Ascii1!")
good = frame(base_a, base_p)

# --- malformed frames: the decoder must return exactly this typed error -------------------
add("err-empty-buffer", b"", err("Truncated"), "zero bytes")
add("err-truncated-header", good[:20], err("Truncated"), "cut inside the fixed header")
add("err-truncated-body", good[:-2], err("Truncated"), "last UTF-16 unit missing")
add("err-trailing-bytes", good + b"\x00\x00", err("TrailingBytes"), "bytes after frame_bytes")
add("err-bad-magic", b"XXXX" + good[4:], err("BadMagic"), "not a pwsync frame")
add("err-version-2", frame(base_a, base_p, version=2), err("UnsupportedVersion"), "future version")
add("err-version-0", frame(base_a, base_p, version=0), err("UnsupportedVersion"), "version 0 never existed")
add("err-header-bytes", frame(base_a, base_p, header_bytes=48), err("BadHeaderSize"), "v1 header is 40 bytes")
add("err-flags", frame(base_a, base_p, flags=1), err("UnsupportedFlags"), "no v1 flag is defined")
add("err-reserved", frame(base_a, base_p, reserved=7), err("ReservedNotZero"), "reserved must be 0")
add("err-frame-too-large", frame(base_a, base_p, frame_bytes=0xFFFFFFFF), err("FrameTooLarge"),
    "announces 4 GiB: refused before reading or allocating")
add("err-length-mismatch", frame(base_a, base_p, frame_bytes=len(good) + 2) + b"\x00\x00",
    err("LengthMismatch"), "frame_bytes disagrees with header + account + password")
add("err-odd-account", frame(base_a + b"\x41", base_p), err("OddLength", "account"), "UTF-16 needs even byte counts")
add("err-odd-password", frame(base_a, base_p + b"\x41"), err("OddLength", "password"), "UTF-16 needs even byte counts")
add("err-account-too-long", frame(u16("c" * 257), base_p), err("TooLong", "account"), "257 characters")
add("err-password-too-long", frame(base_a, u16("C" * 257)), err("TooLong", "password"), "257 characters")
add("err-empty-account", frame(b"", base_p), err("EmptyAccount"), "no account name")
add("err-account-lone-surrogate", frame(u16("canary\ud800x"), base_p), err("InvalidUtf16", "account"),
    "unpaired high surrogate")
add("err-password-lone-surrogate", frame(base_a, u16("CANARY\udc00")), err("InvalidUtf16", "password"),
    "unpaired low surrogate")
add("err-account-nul", frame(u16("canary\x00x"), base_p), err("InvalidAccountName", "account"),
    "U+0000 inside an account name")
add("err-garbage", bytes((i * 73 + 11) & 0xFF for i in range(97)), err("BadMagic"), "deterministic garbage")

# --- the ack the agent sends back, and the spool envelope --------------------------------
add("ack-accepted", ACK_MAGIC + struct.pack("<HHQ", 1, 0, SEQUENCE),
    {"expect": "ack", "ack": {"status": "accepted", "sequence": str(SEQUENCE)}}, "agent queued the frame durably")
add("ack-rejected", ACK_MAGIC + struct.pack("<HHQ", 1, 1, SEQUENCE),
    {"expect": "ack", "ack": {"status": "rejected", "sequence": str(SEQUENCE)}}, "agent refused a malformed frame")
blob = bytes(range(1, 33))  # stands in for a DPAPI blob, which only Windows can produce
add("spool-envelope", SPOOL_MAGIC + struct.pack("<HHI", 1, 0, len(blob)) + blob,
    {"expect": "spool", "spool": {"blobHex": blob.hex()}}, "envelope around a (fake) DPAPI blob")

with open(os.path.join(HERE, "vectors.json"), "w") as f:
    json.dump({"spec": "docs/frame-format.md", "version": VERSION, "vectors": vectors}, f, indent=2)
    f.write("\n")
print(f"wrote {len(vectors)} vectors")
