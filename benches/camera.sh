#!/usr/bin/env bash
# Camera originals side by side: faceenroll's normalization, Pillow's draft pipeline
# and vipsthumbnail on the same corpus, and a whole `faceenroll enroll` of it.
#
#   bash benches/camera.sh [PERSONS] [PHOTOS_PER_PERSON]    (default 10 × 20 = 200 photos)
#
# Writes the corpus (4032×3024 JPEGs at q92, one in four tagged EXIF orientation 6)
# into a temporary folder, then prints for each pipeline the CPU per photo, photos/s
# with 2 cores, peak RSS (the largest process) and the ratios to faceenroll's.
# Pillow (`pip install pillow`) and vipsthumbnail (`apt-get install libvips-tools`)
# are run only when installed; nothing here is needed by CI. Writing the corpus takes
# a few minutes: FACEENROLL_BENCH_CORPUS=DIR keeps it in DIR, and a later run given
# the same DIR uses the photos already there.
set -euo pipefail
cd "$(dirname "$0")/.."
persons=${1:-10}
per=${2:-20}
work=$(mktemp -d)
trap 'kill ${emulator:-} 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build --release --quiet
bench() { cargo bench --quiet --bench camera -- "$@"; }
corpus=${FACEENROLL_BENCH_CORPUS:-$work/corpus}
if [ -z "$(find "$corpus" -name '*.jpg' -print -quit 2>/dev/null)" ]; then
    bench generate "$corpus" "$persons" "$per"
fi
edge=$(bench edge)
n=$(find "$corpus" -name '*.jpg' | wc -l)
echo "target: long edge $edge px, JPEG quality 85; $n photos; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"

# One line per pipeline from /usr/bin/time: user+sys CPU, wall, peak RSS (KiB).
measure() {
    local name=$1
    shift
    /usr/bin/time -f "%U %S %e %M" -o "$work/time" "$@" >"$work/out" 2>&1 || {
        cat "$work/out"
        return 1
    }
    read -r user sys wall rss <"$work/time"
    awk -v name="$name" -v u="$user" -v s="$sys" -v w="$wall" -v r="$rss" -v n="$n" \
        'BEGIN { printf "%-30s %7.0f ms CPU/photo %7.1f photos/s %6.0f MiB peak RSS\n",
                 name, (u + s) * 1000 / n, n / w, r / 1024 }' | tee -a "$work/results"
}

bin=target/release/faceenroll
mkdir -p "$work/ours"
measure "faceenroll normalize (2 thr)" \
    bash -c "cargo bench --quiet --bench camera -- normalize '$corpus' 2"

if python3 -c 'import PIL' 2>/dev/null; then
    mkdir -p "$work/pillow"
    cat >"$work/pillow.py" <<'PY'
import sys, os
from multiprocessing import Pool
from PIL import Image, ImageOps
src, dst, edge = sys.argv[1], sys.argv[2], int(sys.argv[3])
def one(path):
    with Image.open(path) as im:
        im.draft("RGB", (edge, edge))
        im = ImageOps.exif_transpose(im)
        im.thumbnail((edge, edge), Image.LANCZOS)
        im.save(os.path.join(dst, os.path.basename(path)), quality=85)
files = [os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs if f.endswith(".jpg")]
with Pool(2) as pool:
    pool.map(one, files, chunksize=4)
PY
    measure "Pillow draft+LANCZOS (2 proc)" python3 "$work/pillow.py" "$corpus" "$work/pillow" "$edge"
else
    echo "Pillow: not installed (pip install pillow)"
fi

if command -v vipsthumbnail >/dev/null; then
    mkdir -p "$work/vips"
    find "$corpus" -name '*.jpg' | sort >"$work/files"
    split -n l/2 "$work/files" "$work/half."
    measure "vipsthumbnail (2 proc)" bash -c "
        for half in '$work'/half.*; do
            VIPS_CONCURRENCY=1 xargs -a \"\$half\" vipsthumbnail --size $edge -o '$work/vips/%s.jpg[Q=85]' &
        done; wait"
else
    echo "vipsthumbnail: not installed (apt-get install libvips-tools)"
fi

# The whole job: hash, plan, normalize and send to an emulator in another process.
export FACEENROLL_ENDPOINT=http://127.0.0.1:18089 FACEENROLL_APPID=1250000000
export TENCENTCLOUD_SECRET_ID=AKIDfaceenrollREHEARSAL0000000000000
export TENCENTCLOUD_SECRET_KEY=faceenroll-rehearsal-key-not-secret
"$bin" emulator --bind 127.0.0.1:18089 --qps 0 >"$work/emulator.log" 2>&1 &
emulator=$!
sleep 1
measure "faceenroll enroll (8 workers)" \
    "$bin" enroll "$corpus" --group bench --state "$work/state" --workers 8 --qps 0 \
    --no-progress

awk 'NR == 1 { cpu = $(NF-8); rate = $(NF-5); rss = $(NF-3) }
     { printf "%-30s CPU %.2fx  photos/s %.2fx  RSS %.2fx  (of faceenroll normalize)\n",
       substr($0, 1, 30), $(NF-8) / cpu, $(NF-5) / rate, $(NF-3) / rss }' "$work/results"
