#!/usr/bin/env bash
# Builds, here, the bench executables that benches/peers/cpu_ratios.sh runs
# with BENCHES=cpu-bin on a machine without the Rust toolchain (a lent
# device machine, for its 16-core CPU), and puts them where the device tool
# carries them from (git-ignored):
#   cpu-bin/train_throughput, cpu-bin/ntk   the default (CPU) build, stripped
# Then, on the device machine (PyTorch there; no neural-tangents):
#   run(command="BENCHES=cpu-bin NT_PY=none PY=python3 THREADS=16 ROUNDS=2 OUT=$OUT bash benches/peers/cpu_ratios.sh",
#       carry=["cpu-bin"], timeout_s=540)
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p cpu-bin
for b in train_throughput ntk; do
    log=$(cargo bench --bench "$b" --no-run 2>&1)
    exe=$(echo "$log" | grep -o "target/release/deps/$b-[0-9a-f]*" | tail -1)
    [ -n "$exe" ] || { echo "$log" >&2; echo "no executable for the bench $b" >&2; exit 1; }
    cp "$exe" "cpu-bin/$b"
    strip "cpu-bin/$b" || true
done
du -sh cpu-bin
