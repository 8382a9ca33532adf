#!/usr/bin/env bash
# One command: ltk against its peers on this machine's CPU, interleaved, as
# ratios. Prints the CPU model, ISA (AVX-512 or AVX2) and cores, then runs
# ROUNDS (default 3) rounds of
#   PyTorch eager (benches/peers/pytorch_conv.py: LeNet-300-100 at batch 60
#     and 128, LeNet-5, Conv-4, ResNet-20 at batch 128, 28x28x1),
#   neural-tangents (benches/peers/nt_ntk.py: empirical NTK of
#     784-512-512-10, traced and full, N = 128 and 512),
#   ltk (cargo bench: train_step_lenet300_100, train_step_conv_b128,
#     ntk_784_512_512_10),
# and the peers once more at the end, and writes the table of ratios to
# $OUT/cpu_ratios.md (default target/cpu_ratios.md): per round, ltk's figure
# over the mean of the two peer runs around it (throughput for training,
# time for the NTK; medians over samples on every side), then the median
# and range over rounds. The same rounds give dense training's share of
# the machine's matmul peak: ltk's LeNet-300-100 GFLOP/s at batch 128 over
# PyTorch's 1024^3 matmul GFLOP/s in the peer runs around it. Shared and
# virtual machines drift by tens of percent within minutes; a ratio taken
# between runs minutes apart measures the drift as much as the code, so
# each ratio is taken against the peer runs next to it.
# THREADS (default: all cores) sets every side's threads; PY the Python with
# torch, NT_PY the one with neural-tangents 0.6.5 (it needs JAX 0.4.25;
# default PY). ISA=avx2 on an AVX-512 machine runs AVX2 code on both
# training sides: ltk built without its `avx512-gemm` feature and under
# LTK_SIMD=avx2, PyTorch under ATEN_CPU_CAPABILITY=avx2,
# MKL_ENABLE_INSTRUCTIONS=AVX2 and ONEDNN_MAX_CPU_ISA=AVX2 (JAX 0.4.25's
# XLA has no such cap: neural-tangents keeps AVX-512). It measures the AVX2
# kernels where no AVX2 machine is at hand, with this machine's caches.
# NT_PY=none leaves the NTK out (neural-tangents and ltk's NTK bench).
# BENCHES=dir runs bench executables built beforehand by
# benches/peers/cpu_bins.sh (dir/train_throughput, dir/ntk) instead of
# `cargo bench`, on a machine without the Rust toolchain: a lent device
# machine's 16-core CPU, where only PyTorch is at hand:
#   BENCHES=cpu-bin NT_PY=none PY=python3 THREADS=16 ROUNDS=2 bash benches/peers/cpu_ratios.sh
#   PY=venv/bin/python NT_PY=ntvenv/bin/python THREADS=2 bash benches/peers/cpu_ratios.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python3}
NT_PY=${NT_PY:-$PY}
THREADS=${THREADS:-$(nproc)}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-target}
mkdir -p "$OUT"
LOG="$OUT/cpu_ratios.log"
isa=AVX2; grep -q avx512f /proc/cpuinfo && isa=AVX-512
# Family and model tell apart CPUs sold under one name (AMD EPYC: family 25
# is Zen 3 or Zen 4, 26 is Zen 5).
field() { grep -m1 "^$1[[:space:]]*:" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'; }
machine="$(field 'model name') (family $(field 'cpu family'), model $(field model)), $(nproc) cores, $isa; $THREADS threads"
FEATURES=()
case "${ISA:-}" in
    "") ;;
    avx2)
        [ -z "${BENCHES:-}" ] || { echo "ISA=avx2 builds the AVX2 benches here: run it without BENCHES" >&2; exit 2; }
        [ "$isa" = AVX-512 ] || { echo "ISA=avx2 caps an AVX-512 machine; this one has AVX2 only: run without ISA" >&2; exit 2; }
        FEATURES=(--no-default-features)
        export LTK_SIMD=avx2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2
        machine="$machine, capped at AVX2 (ltk and PyTorch; neural-tangents not capped)"
        ;;
    *) echo "ISA=${ISA} not known: expected avx2 (or unset)" >&2; exit 2 ;;
esac
echo "machine: $machine" | tee "$LOG"
NTK=1; [ "$NT_PY" = none ] && NTK=0
# Criterion's results, where the medians below are read (a bench executable
# run outside cargo would otherwise pick its folder from the working one).
export CRITERION_HOME="$PWD/target/criterion"
# bench NAME ARGS...: the bench executable NAME with criterion's ARGS.
if [ -n "${BENCHES:-}" ]; then
    for b in train_throughput ntk; do
        [ -x "$BENCHES/$b" ] || { echo "BENCHES=$BENCHES has no executable $b: build it with benches/peers/cpu_bins.sh" >&2; exit 2; }
    done
    bench() { local name=$1; shift; "$BENCHES/$name" --bench "$@"; }
else
    cargo bench "${FEATURES[@]}" --bench train_throughput --no-run >/dev/null 2>&1
    [ "$NTK" = 0 ] || cargo bench "${FEATURES[@]}" --bench ntk --no-run >/dev/null 2>&1
    bench() { local name=$1; shift; cargo bench "${FEATURES[@]}" --bench "$name" -- "$@"; }
fi
# The peers on the first THREADS cores (JAX has no thread-count setting).
export OMP_NUM_THREADS=$THREADS
pin="taskset -c 0-$((THREADS - 1))"
peers() {
    $pin $PY benches/peers/pytorch_conv.py --threads "$THREADS" --no-ensemble 2>/dev/null | sed "s/^/[$1] pytorch /" | tee -a "$LOG"
    [ "$NTK" = 0 ] || $pin $NT_PY benches/peers/nt_ntk.py 2>/dev/null | sed "s/^/[$1] /" | tee -a "$LOG"
}
crit="--warm-up-time 1 --measurement-time 3"
for r in $(seq 1 "$ROUNDS"); do
    peers $((r - 1))
    RAYON_NUM_THREADS=$THREADS bench train_throughput 'train_step_lenet300_100/fast|train_step_conv_b128/.*_fast' $crit 2>&1 \
        | grep -E "^train_step|thrpt|^ltk kernels" | sed 's/^ *//' | sed "s/^/[$r] /" | tee -a "$LOG"
    [ "$NTK" = 0 ] || RAYON_NUM_THREADS=$THREADS bench ntk 'ntk_784_512_512_10/' $crit 2>&1 \
        | grep -E "^ntk_784|time:|^ltk kernels" | sed 's/^ *//' | sed "s/^/[$r] /" | tee -a "$LOG"
    # Criterion prints the mean over its samples, slow first samples
    # included; the peers report medians. Criterion's median (ns per
    # iteration) goes to the log too, and the ratios use it.
    grep -E "^\[$r\] (train_step|ntk_784)" "$LOG" | cut -d' ' -f2 | while read -r id; do
        est="$CRITERION_HOME/$id/new/estimates.json"
        if [ -f "$est" ]; then
            ns=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["median"]["point_estimate"])' "$est")
            echo "[$r] median $id $ns ns" | tee -a "$LOG"
        fi
    done
done
peers "$ROUNDS"
$PY benches/peers/cpu_ratios_report.py "$LOG" "$machine" > "$OUT/cpu_ratios.md"
cat "$OUT/cpu_ratios.md"
