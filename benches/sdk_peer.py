"""The official Python SDK (qcloud-image) as a peer of faceenroll.

Run by benches/sdk_peer.sh, which starts `faceenroll emulator` and a job; see there.

1. Signatures: the SDK's `Auth.get_sign` and `faceenroll sign` give the same value
   for the same fields (the SDK's clock and random number fixed for the comparison).
2. The SDK's calls against the emulator: every person call the SDK has, in the
   bodies it builds (multipart with a filename on every part, JSON for URLs),
   answered as the contract says.
3. What a faceenroll job enrolled, read back through the SDK: each person's face
   ids on the service are the ones the job's report lists.
"""

import csv
import json
import os
import random
import subprocess
import sys
import time

from qcloud_image import CIBuffer, CIBuffers, CIFile, CIFiles, Client
from qcloud_image.auth import Auth
from qcloud_image.conf import Conf

binary, address, photos_dir, report = sys.argv[1:5]
appid = os.environ["FACEENROLL_APPID"]
secret_id = os.environ["TENCENTCLOUD_SECRET_ID"]
secret_key = os.environ["TENCENTCLOUD_SECRET_KEY"]
failures = []


def check(what, ok, detail=""):
    print(f"  {'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail and not ok else ''}")
    if not ok:
        failures.append(what)


print("1. signatures, the SDK's and faceenroll's")
rng = random.Random(20261126)
for _ in range(5):
    now = rng.randint(1_600_000_000, 1_900_000_000)
    valid = rng.randint(1, 7_776_000)
    rand = rng.randint(0, 999_999_999)
    real_time, real_randint = time.time, random.randint
    time.time, random.randint = (lambda: now), (lambda a, b: rand)
    try:
        theirs = Auth(appid, secret_id, secret_key).get_sign("", valid).decode()
    finally:
        time.time, random.randint = real_time, real_randint
    ours = subprocess.run(
        [binary, "sign", "--appid", appid, "--now", str(now),
         "--expires", str(now + valid), "--rand", str(rand)],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    check(f"t={now} e=t+{valid} r={rand}", ours == theirs, f"{ours} != {theirs}")

print("2. the SDK's calls against faceenroll emulator")
Conf._Conf__SERVICE_ADDR = address
client = Client(appid, secret_id, secret_key, "")
client.use_http()
# Six distinct photos of one person of the sample tree.
bob = os.path.join(photos_dir, "bob")
files = sorted(os.path.join(bob, f) for f in os.listdir(bob) if f.endswith(".jpg"))[:6]


def answered(what, answer, code=0, **data):
    got = answer.get("code")
    ok = got == code and all(answer.get("data", {}).get(k) == v for k, v in data.items())
    check(f"{what} -> {code}", ok, json.dumps(answer)[:200])
    return answer.get("data", {})


answered("newperson (file)", client.face_newperson(
    "sdk_peer", ["sdk_g1", "sdk_g2"], CIFile(files[0]), person_name="Peer", tag="t1"),
    suc_group=2, suc_face=1)
answered("newperson again", client.face_newperson("sdk_peer", ["sdk_g1"], CIFile(files[0])), -1302)
answered("addface (files)", client.face_addface("sdk_peer", CIFiles(files[1:4])),
         added=3, ret_codes=[0, 0, 0])
answered("addface (a photo it holds)", client.face_addface("sdk_peer", CIFiles(files[1:2])),
         added=0, ret_codes=[-1312])
with open(files[4], "rb") as f:
    answered("addface (buffers)", client.face_addface("sdk_peer", CIBuffers([f.read()])), added=1)
info = answered("getinfo", client.face_getinfo("sdk_peer"), person_name="Peer", tag="t1")
check("getinfo holds 5 faces", len(info.get("face_ids", [])) == 5, str(info))
answered("getgroupids", client.face_getgroupids())
answered("getpersonids", client.face_getpersonids("sdk_g2"), person_ids=["sdk_peer"])
faces = answered("getfaceids", client.face_getfaceids("sdk_peer")).get("face_ids", [])
answered("getfaceinfo", client.face_getfaceinfo(faces[0] if faces else ""))
answered("setinfo", client.face_setinfo("sdk_peer", person_name="Peer 2", tag="t2"))
answered("getinfo after setinfo", client.face_getinfo("sdk_peer"), person_name="Peer 2", tag="t2")
answered("delface", client.face_delface("sdk_peer", faces[:1]), deleted=1)
with open(files[5], "rb") as f:
    answered("newperson (buffer)", client.face_newperson("sdk_peer2", ["sdk_g1"], CIBuffer(f.read())))
answered("delperson", client.face_delperson("sdk_peer2"), deleted=1)
answered("getinfo of a deleted person", client.face_getinfo("sdk_peer2"), -1303)

print("3. a faceenroll job's faces, read back through the SDK")
listed = {}
with open(report, newline="") as f:
    for row in csv.DictReader(f):
        if row["status"] == "enrolled" and row["face_id"]:
            listed.setdefault(row["person_id"], set()).add(row["face_id"])
for person, ids in sorted(listed.items()):
    held = set(client.face_getfaceids(person).get("data", {}).get("face_ids", []))
    check(f"{person}: the {len(ids)} face ids of the report are on the service", ids <= held,
          f"missing {sorted(ids - held)}")

print(f"sdk peer: {len(failures)} failed" + (f": {failures}" if failures else ", all as the contract says"))
sys.exit(1 if failures else 0)
