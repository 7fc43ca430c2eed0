"""A short job's wall time: the official Python SDK (qcloud-image) in a plain pool of
threads against faceenroll, the same job against the same emulator.

Run by benches/sdk_peer.sh (`bash benches/sdk_peer.sh pace`), which starts
`faceenroll emulator --qps 50 --latency-ms L` afresh for each side; see there.

The job: PERSONS persons of 3 small PNG photos each, one `newperson` (the first
photo) and one `addface` (the other two) per person, as faceenroll sends them.
The SDK's side runs each person's two calls in order on one thread of a pool of
THREADS. The SDK never retries; a plain pool that must finish the job sends a call
answered 15 ("too frequent") again after RETRY seconds (default 1), as a script
around the SDK would, so both sides enroll every photo.

    python3 sdk_peer_pace.py sdk ADDRESS DIR THREADS [RETRY]   # the SDK's side
    python3 sdk_peer_pace.py photos DIR PERSONS        # writes the photos

Prints one line: the wall time, the calls, and the answers by code.
"""

import collections
import concurrent.futures
import os
import struct
import sys
import time
import zlib


def png(seed):
    """A 24x24 PNG, distinct for every seed (the emulator needs two colours)."""
    rows = b""
    for y in range(24):
        row = bytearray([0])
        for x in range(24):
            v = (seed * 2654435761 ^ (x * 31 + y * 17)) & 0xFFFFFFFF
            row += bytes([v & 0xFF, (v >> 8) & 0xFF, (x * 10 + y) & 0xFF])
        rows += bytes(row)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 24, 24, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def photos(root, persons):
    for p in range(persons):
        folder = os.path.join(root, f"p{p:06}")
        os.makedirs(folder, exist_ok=True)
        for i in range(3):
            with open(os.path.join(folder, f"{i}.png"), "wb") as f:
                f.write(png(p * 3 + i))


def sdk(address, root, threads, retry):
    from qcloud_image import CIBuffer, CIBuffers, Client
    from qcloud_image.conf import Conf

    Conf._Conf__SERVICE_ADDR = address
    client = Client(os.environ["FACEENROLL_APPID"], os.environ["TENCENTCLOUD_SECRET_ID"],
                    os.environ["TENCENTCLOUD_SECRET_KEY"], "")
    client.use_http()
    persons = sorted(os.listdir(root))
    codes = collections.Counter()

    def until_not_15(send, got):
        while True:
            code = send().get("code")
            got.append(code)
            if code != 15:
                return code
            time.sleep(retry)

    def one(person):
        folder = os.path.join(root, person)
        data = []
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), "rb") as f:
                data.append(f.read())
        got = []
        if until_not_15(lambda: client.face_newperson(person, ["sdk_pace"], CIBuffer(data[0])),
                        got) == 0:
            until_not_15(lambda: client.face_addface(person, CIBuffers(data[1:])), got)
        return got

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for got in pool.map(one, persons):
            codes.update(got)
    elapsed = time.monotonic() - start
    calls = sum(codes.values())
    print(f"sdk, {threads} threads, 15 sent again after {retry} s: {len(persons)} persons, "
          f"{calls} calls in {elapsed:.2f} s; answers by code {dict(sorted(codes.items()))}")


if __name__ == "__main__":
    if sys.argv[1] == "photos":
        photos(sys.argv[2], int(sys.argv[3]))
    else:
        sdk(sys.argv[2], sys.argv[3], int(sys.argv[4]),
            float(sys.argv[5]) if len(sys.argv) > 5 else 1.0)
