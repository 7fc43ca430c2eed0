#!/usr/bin/env bash
# The service's official Python SDK (qcloud-image 1.0.0) as a peer of faceenroll:
# its signatures against `faceenroll sign`, its calls against `faceenroll emulator`,
# and a faceenroll job's faces read back through it (benches/sdk_peer.py says how).
#
#   bash benches/sdk_peer.sh
#
# `bash benches/sdk_peer.sh pace` instead times a short job (150 persons, one
# newperson and one addface each; PERSONS=N for another size) both ways against a
# fresh `faceenroll emulator --qps 50 --latency-ms L` for each L of LATENCIES
# (default "50 300 1000"): the SDK in a plain pool of THREADS threads (default 64),
# sending a call answered 15 again after RETRY seconds (default 1), then
# `faceenroll enroll` (benches/sdk_peer_pace.py says how).
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
# FACEENROLL_BIN=PATH runs that binary instead of building the release one.
bin=${FACEENROLL_BIN:-target/release/faceenroll}
[ -n "${FACEENROLL_BIN:-}" ] || cargo build --release --quiet
port=18097
export FACEENROLL_ENDPOINT=http://127.0.0.1:$port FACEENROLL_APPID=1250000000
export TENCENTCLOUD_SECRET_ID=AKIDfaceenrollREHEARSAL0000000000000
export TENCENTCLOUD_SECRET_KEY=faceenroll-rehearsal-key-not-secret
if [ "${1:-}" = pace ]; then
    persons=${PERSONS:-150}
    python3 benches/sdk_peer_pace.py photos "$work/photos" "$persons"
    for latency in ${LATENCIES:-50 300 1000}; do
        echo "latency $latency ms, cap 50/s ($(uptime | sed 's/.*load/load/'))"
        "$bin" emulator --bind 127.0.0.1:$port --qps 50 --latency-ms "$latency" >"$work/emulator.log" 2>&1 &
        emulator=$!
        sleep 1
        python3 benches/sdk_peer_pace.py sdk 127.0.0.1:$port "$work/photos" "${THREADS:-64}" "${RETRY:-1}"
        kill $emulator && wait $emulator 2>/dev/null || true
        "$bin" emulator --bind 127.0.0.1:$port --qps 50 --latency-ms "$latency" >"$work/emulator.log" 2>&1 &
        emulator=$!
        sleep 1
        rm -rf "$work/state"
        start=$(date +%s.%N)
        "$bin" enroll "$work/photos" --group faceenroll_pace --state "$work/state" --no-progress \
            >"$work/job.log" 2>&1 || true
        end=$(date +%s.%N)
        echo "faceenroll: $(python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.2f} s")' "$start" "$end");" \
            "$(grep -o 'this run: .*' "$work/job.log")"
        kill $emulator && wait $emulator 2>/dev/null || true
    done
    exit 0
fi
"$bin" emulator --bind 127.0.0.1:$port --qps 0 >"$work/emulator.log" 2>&1 &
emulator=$!
sleep 1
"$bin" enroll samples/tree --group staff --state "$work/state" --no-progress >"$work/job.log" 2>&1 || true
python3 benches/sdk_peer.py "$bin" 127.0.0.1:$port samples/tree "$work/state/report.csv"
