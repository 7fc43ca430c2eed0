#!/usr/bin/env bash
# The service's official Python SDK (qcloud-image 1.0.0) as a peer of faceenroll:
# its signatures against `faceenroll sign`, its calls against `faceenroll emulator`,
# and a faceenroll job's faces read back through it (benches/sdk_peer.py says how).
#
#   bash benches/sdk_peer.sh
#
# Needs `pip install qcloud-image` (and its `requests`); without it, says so and
# exits 0. Nothing here is needed by CI. All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c 'import qcloud_image' 2>/dev/null; then
    echo "qcloud-image: not installed (pip install qcloud-image); nothing to compare"
    exit 0
fi
work=$(mktemp -d)
trap 'kill ${emulator:-} 2>/dev/null || true; rm -rf "$work"' EXIT
cargo build --release --quiet
bin=target/release/faceenroll
port=18097
export FACEENROLL_ENDPOINT=http://127.0.0.1:$port FACEENROLL_APPID=1250000000
export TENCENTCLOUD_SECRET_ID=AKIDfaceenrollREHEARSAL0000000000000
export TENCENTCLOUD_SECRET_KEY=faceenroll-rehearsal-key-not-secret
"$bin" emulator --bind 127.0.0.1:$port --qps 0 >"$work/emulator.log" 2>&1 &
emulator=$!
sleep 1
"$bin" enroll samples/tree --group staff --state "$work/state" --no-progress >"$work/job.log" 2>&1 || true
python3 benches/sdk_peer.py "$bin" 127.0.0.1:$port samples/tree "$work/state/report.csv"
