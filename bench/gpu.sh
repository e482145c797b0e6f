#!/usr/bin/env bash
# Everything one (short) GPU session measures, each step's output in a file under $OUT.
#
#   bench/gpu.sh             # on CUDA: full-size random-weight models, bf16, 50 steps, grid 384
#   bench/gpu.sh --smoke     # anywhere (CPU too): every step, with medium models, 1 step, grid 32
#   bench/gpu.sh --check     # only: which Python packages are missing on this machine
#
# Steps, in order of value, each with a time limit so a slow one cannot eat the others:
#   env        nvidia-smi, torch, CUDA, the dtype and the attention kernel each network gets
#   cuda-tests pytest -m cuda (tests/backend/test_cuda.py: flash/cuDNN attention only, peaks)
#   bench      bench/gpu.py: the official app's choices (our code set to them) and ours, back
#              to back: stage seconds, FLOPs, peak memory, low-memory mode's peak, --compile,
#              the two meshes compared (gpu_bench.json, jobs/)
#   dit-flops  bench/dit_flops.py (counted, not timed)
#   load       bench/load.py: cold start from published and from converted weights
#
# Environment: PYTHON (default python3; must have torch), OUT (default outputs/gpu),
# WHEELS (default bench/wheels), SCRATCH (default /tmp; full-size checkpoints, ~11 GB).
#
# A machine without network gets the missing packages as wheels: on a machine with network,
# for the GPU machine's Python version and platform (see `--check` there, or nvidia's image):
#   python -m pip download --dest bench/wheels --only-binary=:all: -c constraints.txt \
#     --python-version 3.12 --platform manylinux2014_x86_64 -r bench/gpu_requirements.txt
# then bring bench/wheels along (e.g. the device tool's `carry`; leave out the wheels of what
# `--check` says is already there if the folder is too big). They are installed with
# `pip --target` into $SCRATCH/partpacker-site, which goes first on PYTHONPATH; torch stays the
# machine's own.
set -u
cd "$(dirname "$0")/.."
MODE=full
case "${1:-}" in
  --smoke) MODE=smoke ;;
  --check) MODE=check ;;
  "") ;;
  *) echo "usage: bench/gpu.sh [--smoke|--check]" >&2; exit 2 ;;
esac
PY=${PYTHON:-python3}
OUT=${OUT:-outputs/gpu}
WHEELS=${WHEELS:-bench/wheels}
SCRATCH=${SCRATCH:-/tmp}
SITE="$SCRATCH/partpacker-site"
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"

missing_packages() {  # the pip names of bench/gpu_requirements.txt whose module does not import
  "$PY" - <<'PY'
import importlib, pathlib
for line in pathlib.Path("bench/gpu_requirements.txt").read_text().splitlines():
    if line.strip() and not line.startswith("#"):
        package, module = line.split("#")[0].split()[0], line.split("import:")[-1].strip()
        try:
            importlib.import_module(module)
        except Exception:
            print(package)
PY
}

step() {  # step NAME SECONDS COMMAND...: output to $OUT/NAME.txt, a line in summary.txt
  local name=$1 limit=$2 start rc
  shift 2
  echo "== $name (limit ${limit}s)"
  start=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.txt" 2>&1
  rc=$?
  echo "$name: exit $rc after $(( $(date +%s) - start )) s" | tee -a "$OUT/summary.txt"
  tail -n 25 "$OUT/$name.txt"
}

missing=$(missing_packages)
if [ "$MODE" = check ]; then
  echo "${missing:-nothing missing}"
  exit 0
fi
if [ -n "$missing" ]; then
  echo "installing from $WHEELS: $missing"
  # shellcheck disable=SC2086  # one word per package
  "$PY" -m pip install --quiet --no-index --find-links "$WHEELS" --target "$SITE" $missing \
    >"$OUT/install.txt" 2>&1 || { echo "install failed, see $OUT/install.txt"; exit 1; }
fi
: >"$OUT/summary.txt"
echo "mode $MODE, $(date -u +%FT%TZ)" >>"$OUT/summary.txt"

step env 60 "$PY" - <<'PY'
import subprocess, torch
from backend.device import attention_kernels, choose_placement
from backend.pipeline import ModelConfigs
if torch.cuda.is_available():
    print(subprocess.run(["nvidia-smi"], capture_output=True, text=True).stdout)
placement = choose_placement("auto")
print("torch", torch.__version__, "cuda", torch.version.cuda, "placement", placement)
print("full-size attention kernels:", attention_kernels(placement, ModelConfigs().attention_head_dims()))
PY
step cuda-tests 120 "$PY" -m pytest tests/backend/test_cuda.py -m cuda -q -rs -p no:cacheprovider
if [ "$MODE" = smoke ]; then
  step bench 900 "$PY" bench/gpu.py --out "$OUT" --smoke
  step dit-flops 120 "$PY" bench/dit_flops.py
  step load 600 "$PY" bench/load.py --size medium --folder "$SCRATCH"
else
  step bench 420 "$PY" bench/gpu.py --out "$OUT"
  step dit-flops 60 "$PY" bench/dit_flops.py
  step load 240 "$PY" bench/load.py --size full --folder "$SCRATCH"
fi
cat "$OUT/summary.txt"
