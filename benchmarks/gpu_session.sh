#!/usr/bin/env bash
# The GPU checks of docs/benchmarks.md in one command, for a machine with a CUDA GPU and no
# registry access (such as the lent H100/H200: carry the wheels ../shared/tools/device-wheels.sh
# fetched into .whl/, see docs/benchmarks.md "Running the GPU checks").
#
#   benchmarks/gpu_session.sh check        # about 8 min: CUDA tests, `run --device cuda` on
#                                          # the quick suite (5 repetitions), nvml_check, report
#   benchmarks/gpu_session.sh suite [S]    # the gpu suite for S seconds (default 500), resuming
#                                          # the newest unfinished run under results/suite
#
# Everything it writes goes to $OUT (default /tmp/gpu-session): session.log, nvml_check.json,
# results.tgz and report.html.
set -uo pipefail
mode=${1:-check}
OUT=${OUT:-/tmp/gpu-session}
mkdir -p "$OUT"
log="$OUT/session.log"
export PYTHONUNBUFFERED=1 CUDA_DEVICE_ORDER=PCI_BUS_ID

if ! python3 -c "import codecarbon, apscheduler, plotly, torchao" 2>/dev/null; then
  ls .whl/*.whl >/dev/null 2>&1 || { echo "no .whl/: run ../shared/tools/device-wheels.sh first"; exit 2; }
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 2
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONPATH=${PYTHONPATH:-$PWD}
# without an installed greenbench (no entry point), pytest finds its plugin only by name
python3 -c "import importlib.metadata as m; m.distribution('greenbench')" 2>/dev/null ||
  export PYTEST_PLUGINS=greenbench.pytest_plugin
python3 -c "import greenbench.cli, codecarbon, apscheduler, plotly, torchao, sqlalchemy, pynvml" || {
  echo "a package is missing: see docs/benchmarks.md, Running the GPU checks"; exit 2; }
gb() { python3 -m greenbench.cli "$@"; }
section() { printf '\n===== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)" | tee -a "$log"; }

section environment
{ nvidia-smi --query-gpu=name,driver_version,power.limit,temperature.gpu --format=csv
  python3 -c "import torch, transformers, torchao, codecarbon
print('torch', torch.__version__, 'cuda', torch.version.cuda, '| transformers', transformers.__version__,
      '| torchao', torchao.__version__, '| codecarbon', codecarbon.__version__)"
  gb devices; } 2>&1 | tee -a "$log"

results="results/$mode"  # kept apart, so `suite` never resumes a `check` run
pack() {
  tar czf "$OUT/results.tgz" "$results" 2>/dev/null
  gb report "$results" -o "$OUT/report.html" 2>&1 | tail -2 | tee -a "$log"
}
timed() { local started=$SECONDS; "$@"; local rc=$?; echo "wall $((SECONDS - started)) s, exit $rc"; }

case "$mode" in
  check)
    section "CUDA tests"
    python3 -m pytest -q -p no:cacheprovider tests/test_nvml.py tests/test_devices.py 2>&1 | tail -15 | tee -a "$log"
    section "greenbench run --device cuda --repetitions 5 (quick suite)"
    # bounded, so the counter check below still runs if cooldowns are long (what finished stays)
    timed timeout -s INT 420 python3 -m greenbench.cli run --device cuda --repetitions 5 \
      --out "$results" 2>&1 | tee -a "$log"
    section "nvml_check"
    python3 benchmarks/nvml_check.py --seconds 8 --json "$OUT/nvml_check.json" 2>&1 | tee -a "$log"
    section "compare"
    gb compare "$results" 2>&1 | tee -a "$log"
    pack
    ;;
  suite)
    seconds=${2:-500}
    newest=$(ls -t "$results" 2>/dev/null | head -1)
    if [ -n "$newest" ] && ! grep -q '"status": "complete"' "$results/$newest/run.json"; then
      section "resume $newest of the gpu suite for ${seconds} s"
      timed timeout -s INT "$seconds" python3 -m greenbench.cli run --out "$results" \
        --resume "$newest" 2>&1 | tee -a "$log"
    else
      section "gpu suite for ${seconds} s"
      timed timeout -s INT "$seconds" python3 -m greenbench.cli run --out "$results" \
        --suite gpu 2>&1 | tee -a "$log"
    fi
    pack
    ;;
  *) echo "usage: benchmarks/gpu_session.sh check|suite [SECONDS]"; exit 2 ;;
esac
section done
