#!/usr/bin/env bash
# The device check of a lent GPU machine, in one command of a few minutes.
# Builds nothing: it runs binaries built beforehand with `--features cuda`
# (README, "Feature flags"; benches/gpu/prepare.sh builds them and packs them
# as $BIN/bundle.tar.xz, unpacked here):
#   $BIN/ltk                         the cuda build of ltk
#   $BIN/device_resident, $BIN/ensemble, $BIN/ntk_empirical   the cuda builds of
#                                    those test binaries (cargo test --no-run)
# and Fashion-MNIST's four IDX files in $IDX. It
#   1. checks device results against CPU results: the two test binaries with
#      LTK_TEST_DEVICE=cuda (resident training and K networks as one
#      computation against the host loop, the device NTK against the CPU's), and `ltk train` / `ltk imp` on the
#      embedded digits with --device cuda against --device cpu;
#   2. measures `ltk train --device cuda` samples/s for LeNet-300-100, LeNet-5,
#      Conv-4 and ResNet-20 at batch 128 against PyTorch eager on the same GPU
#      in the same command (benches/peers/pytorch_conv.py --device cuda), and
#      16 LeNet-300-100s as one computation (`ltk train --replicas 16`)
#      against one network and against PyTorch's loop over 16;
#   3. writes $OUT/gpu_throughput.json (the layout of
#      reports/reference/gpu_throughput.json) and $OUT/gpu_throughput.md.
# Usage (from the repository root):
#   BIN=gpu-bin IDX=data/fashion-mnist OUT=$OUT bash benches/gpu/run.sh
# DEVICE=cpu runs the same steps on the CPU (to check the script without a GPU,
# with CPU builds of the four binaries in $BIN; QUICK=1 shortens every run).
set -u
BIN=${BIN:-gpu-bin}
IDX=${IDX:-/usr/share/datasets/fashion-mnist}
OUT=${OUT:-/tmp/gpu-check}
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
mkdir -p "$OUT"
if [ -f "$BIN/bundle.tar.xz" ] && [ ! -x "$BIN/ltk" ]; then
    tar -C "$BIN" -xJf "$BIN/bundle.tar.xz"   # benches/gpu/prepare.sh packs the binaries
fi
if [ "$DEVICE" != cpu ]; then
    # The toolkit's libraries (cuBLAS, cuRAND, NVRTC, runtime 13): PyTorch's wheels carry them.
    for d in $(python3 -c "import glob, site; print(' '.join(glob.glob(p + '/nvidia/cu13/lib') [0] for p in site.getsitepackages() if glob.glob(p + '/nvidia/cu13/lib')))" 2>/dev/null); do
        export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    done
fi
LTK="$BIN/ltk"
LOG="$OUT/log.txt"
: > "$LOG"
say() { echo "== $*" | tee -a "$LOG"; }
run() { # label, command...: runs it, keeps its output in $OUT/<label>.txt, prints its last line
    local label=$1; shift
    local t0=$(date +%s.%N)
    "$@" > "$OUT/$label.txt" 2>&1
    local rc=$?
    local t1=$(date +%s.%N)
    printf '%s rc=%s %.1f s: %s\n' "$label" "$rc" "$(echo "$t1 - $t0" | bc)" "$(tail -1 "$OUT/$label.txt")" | tee -a "$LOG"
    return $rc
}

say "machine"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  lscpu | grep -E "Model name|^CPU\(s\)|Flags" | sed 's/Flags:.*avx512f.*/ISA: AVX-512/; s/Flags:.*avx2.*/ISA: AVX2/'
  git rev-parse --short HEAD 2>/dev/null; date -u +%Y-%m-%dT%H:%M:%SZ; } | tee "$OUT/machine.txt" | tee -a "$LOG"

steps() { if [ "$QUICK" = 1 ]; then echo $(( ($1 + 9) / 10 )); else echo "$1"; fi; }

say "1. device against CPU"
for t in device_resident ensemble ntk_empirical; do
    if [ -x "$BIN/$t" ]; then
        filter=""; [ $t = ntk_empirical ] && filter=device_kernel
        run "test_$t" env LTK_TEST_DEVICE=$DEVICE "$BIN/$t" --test-threads 1 $filter
    else
        echo "test_$t: not run ($BIN/$t missing)" | tee -a "$LOG"
    fi
done
for d in $DEVICE cpu; do
    run "digits_mlp_$d" "$LTK" train --config experiments/digits_mlp.toml --device $d --out "$OUT/runs_$d" --force --quiet
    run "digits_conv_$d" "$LTK" train --config experiments/digits_conv.toml --device $d --out "$OUT/runs_$d" --force --quiet
    run "replicas4_$d" "$LTK" train --config experiments/digits_mlp.toml --replicas 4 --name replicas4 --device $d --out "$OUT/runs_$d" --force --quiet
    run "imp_digits_$d" "$LTK" imp --config experiments/imp_digits.toml --rounds 3 --device $d --out "$OUT/runs_$d" --force --quiet
    run "ntk_compare_$d" "$LTK" ntk-compare --widths 64,128,256 --seeds 0,1 --steps "$(steps 400)" --device $d --out "$OUT/runs_$d" --name ntk_small --force --quiet
done

say "2. throughput at batch 128 (Fashion-MNIST)"
thr() { # label, model kind, steps, extra args
    local label=$1 net=$2 n=$3; shift 3
    run "ltk_$label" "$LTK" train --config benches/gpu/throughput.toml --idx-dir "$IDX" --set model.kind=\"$net\" \
        --iterations "$(steps $n)" --device $DEVICE --out "$OUT/runs_thr" --name "$label" --force --quiet "$@"
}
thr lenet300_100 lenet300_100 2000
thr lenet5 lenet5 1000
thr conv4 conv4 500
thr resnet20 resnet 300
thr ensemble16 lenet300_100 1000 --replicas 16
# The conclusive ntk_compare sweep (README: four regime widths) widened to 4096, 3 seeds, on the device.
if [ "$QUICK" = 1 ]; then W=256,512; else W=1024,1448,2048,2896,4096; fi
run ntk_compare_conclusive timeout 300 "$LTK" ntk-compare --widths $W --lr 0.14817780472366948 --device $DEVICE \
    --out "$OUT/runs_thr" --name ntk_conclusive --force --quiet
if python3 -c "import torch" 2>/dev/null; then
    run pytorch python3 benches/peers/pytorch_conv.py --device $DEVICE --threads "$(nproc)"
else
    echo "pytorch: not run (no torch)" | tee -a "$LOG"
fi

say "3. report"
python3 benches/gpu/report.py "$OUT" | tee -a "$LOG"
