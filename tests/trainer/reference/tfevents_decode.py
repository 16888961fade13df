#!/usr/bin/python3
"""Independent decoder for TensorBoard event files, for clinrl's tests.

Checks the TFRecord framing with its own bitwise CRC-32C, decodes each record
with Debian's protoc (`--decode_raw` for well-formedness, then `--decode`
with tensorboard_event.proto), and prints JSON:
{"records": N, "file_version": "...", "scalars": [[step, tag, value]...],
 "texts": [[step, tag, text]...]}.
"""
import json
import os
import re
import struct
import subprocess
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    with open(path, "rb") as f:
        blob = f.read()
    pos = 0
    while pos < len(blob):
        header = blob[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (len_crc,) = struct.unpack("<I", blob[pos + 8:pos + 12])
        if masked(crc32c(header)) != len_crc:
            raise SystemExit(f"bad length CRC at offset {pos}")
        data = blob[pos + 12:pos + 12 + length]
        (data_crc,) = struct.unpack("<I", blob[pos + 12 + length:pos + 16 + length])
        if masked(crc32c(data)) != data_crc:
            raise SystemExit(f"bad data CRC at offset {pos}")
        yield data
        pos += 16 + length


def unescape(text):
    return text.encode("latin-1").decode("unicode_escape").encode("latin-1").decode("utf-8")


PROTO_DIR = os.path.dirname(os.path.abspath(__file__))


def main():
    out = {"records": 0, "file_version": None, "scalars": [], "texts": []}
    for data in records(sys.argv[1]):
        out["records"] += 1
        # Well-formed protobuf at all (schema-free) ...
        subprocess.run(["protoc", "--decode_raw"], input=data, capture_output=True, check=True)
        # ... and the Event schema's reading of it.
        text = subprocess.run(
            ["protoc", f"--proto_path={PROTO_DIR}", "--decode=clinrl_test.Event",
             "tensorboard_event.proto"],
            input=data, capture_output=True, check=True).stdout.decode()
        step_m = re.search(r"^step: (\d+)$", text, re.M)
        step = int(step_m.group(1)) if step_m else 0
        version = re.search(r'^file_version: "(.*)"$', text, re.M)
        if version:
            out["file_version"] = version.group(1)
        for block in re.findall(r"value \{(.*?)\n  \}", text, re.S):
            tag = re.search(r'tag: "((?:[^"\\]|\\.)*)"', block)
            if not tag:
                continue
            tag = unescape(tag.group(1))
            strings = re.findall(r'string_val: "((?:[^"\\]|\\.)*)"', block)
            if strings:
                out["texts"].append([step, tag, unescape(strings[0])])
                continue
            value = re.search(r"simple_value: (\S+)", block)
            out["scalars"].append([step, tag, float(value.group(1)) if value else 0.0])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
