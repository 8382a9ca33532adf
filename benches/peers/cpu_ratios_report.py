"""Turns benches/peers/cpu_ratios.sh's log into a markdown table of ratios:
training throughput ltk / PyTorch, NTK time ltk / neural-tangents. Lines
are tagged `[r]`: ltk's run of round r (r = 1, 2, ...) sits between the
peers' runs r − 1 and r, and its ratio is taken against their mean. The
table gives the median of the per-round ratios and their range, ltk's
median figure (criterion's median over its samples where the log has it,
else its printed mean) and the peers' median over runs. A last table puts
dense training against the machine's matmul peak, per round: ltk's
LeNet-300-100 GFLOP/s at batch 128 (DENSE_FLOP per sample) over the mean of
PyTorch's 1024^3 matmul GFLOP/s in the peer runs on either side.
    python3 benches/peers/cpu_ratios_report.py LOG "machine description"
"""
import re, statistics, sys
log, machine = open(sys.argv[1]).read(), sys.argv[2]
def unit(v, u):
    return float(v) * {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}[u]
def kelem(v, u):
    return float(v) * {"elem/s": 1, "Kelem/s": 1e3, "Melem/s": 1e6}[u]
ours, peer = {}, {}  # (key, round) -> figure
lines = log.splitlines()
for i, l in enumerate(lines):
    m = re.match(r"^\[(\d+)\] (train_step_\S+|ntk_784\S+)", l)
    if not m:
        continue
    r, name = int(m.group(1)), m.group(2)
    for l2 in lines[i + 1:i + 4]:
        t = re.search(r"thrpt:\s+\[\S+\s+\S+\s+(\S+)\s+(\S+)\s", l2)
        if t:
            ours[name, r] = kelem(*t.groups()); break
        t = re.search(r"time:\s+\[\S+\s+\S+\s+(\S+)\s+(\S+)\s", l2)
        if t:
            ours[name, r] = unit(*t.groups()); break
# Criterion's median (ns per iteration), when logged, replaces its printed
# mean: the peers' figures are medians too. Training iterations are one
# step of the batch size that ends the bench's name.
for m in re.finditer(r"^\[(\d+)\] median (\S+) (\S+) ns", log, re.M):
    r, name, sec = int(m.group(1)), m.group(2), float(m.group(3)) * 1e-9
    ours[name, r] = int(name.rsplit("/", 1)[1]) / sec if name.startswith("train_step") else sec
for m in re.finditer(r"^\[(\d+)\] pytorch (\S+): median (\d+) samples/s", log, re.M):
    peer[m.group(2), int(m.group(1))] = float(m.group(3))
for m in re.finditer(r"^\[(\d+)\] pytorch torch matmul 1024\^3: (\S+) GFLOP/s", log, re.M):
    peer["matmul", int(m.group(1))] = float(m.group(2))
for m in re.finditer(r"^\[(\d+)\] nt (\w+) (\d+): median (\S+) s", log, re.M):
    peer[f"nt_{m.group(2)}_{m.group(3)}", int(m.group(1))] = float(m.group(4))
rounds = sorted({r for (_, r) in ours})
def row(label, key, pkey, fmt):
    rs = [ours[key, r] / ((peer[pkey, r - 1] + peer[pkey, r]) / 2)
          for r in rounds if (key, r) in ours and (pkey, r - 1) in peer and (pkey, r) in peer]
    a = [ours[key, r] for r in rounds if (key, r) in ours]
    b = [v for (k, _), v in peer.items() if k == pkey]
    if not rs:
        return f"| {label} | – | – | – | – |"
    return (f"| {label} | {fmt(statistics.median(a))} | {fmt(statistics.median(b))} | "
            f"{statistics.median(rs):.2f}x | {min(rs):.2f}-{max(rs):.2f} |")
out = [f"Machine: {machine}. Rounds: {len(rounds)}.", "",
       "| training (samples/s) | ltk | PyTorch | ltk / PyTorch, median of rounds | range |", "|---|---:|---:|---:|---:|"]
for label, key, pkey in [
    ("LeNet-300-100, batch 60", "train_step_lenet300_100/fast/60", "lenet300_100_b60"),
    ("LeNet-300-100, batch 128", "train_step_lenet300_100/fast/128", "lenet300_100"),
    ("LeNet-5, batch 128", "train_step_conv_b128/lenet5_fast/128", "lenet5"),
    ("Conv-4, batch 128", "train_step_conv_b128/conv4_fast/128", "conv4"),
    ("ResNet-20, batch 128", "train_step_conv_b128/resnet20_fast/128", "resnet20"),
]:
    out.append(row(label, key, pkey, lambda v: f"{v:,.0f}"))
# The NTK's table, unless the run left the NTK out (NT_PY=none).
if any(k.startswith("ntk_784") for k, _ in ours) or any(k.startswith("nt_") for k, _ in peer):
    out += ["", "| empirical NTK 784-512-512-10 (s) | ltk | neural-tangents | ltk's share of its time, median of rounds | range |",
            "|---|---:|---:|---:|---:|"]
    for kind in ["traced", "full"]:
        for n in ["128", "512"]:
            out.append(row(f"{kind}, N = {n}", f"ntk_784_512_512_10/{kind}/{n}", f"nt_{kind}_{n}", lambda v: f"{v:.4f}"))
# LeNet-300-100 (784-300-100-10) per training sample: the forward product
# and the weight gradient of every layer, the input gradient of all but the
# first (2 FLOP per multiply-add).
LAYERS = [(784, 300), (300, 100), (100, 10)]
DENSE_FLOP = 2 * (2 * sum(i * o for i, o in LAYERS) + sum(i * o for i, o in LAYERS[1:]))
key = "train_step_lenet300_100/fast/128"
fr = [(r, ours[key, r] * DENSE_FLOP / 1e9, (peer["matmul", r - 1] + peer["matmul", r]) / 2)
      for r in rounds if (key, r) in ours and ("matmul", r - 1) in peer and ("matmul", r) in peer]
if fr:
    out += ["", f"| dense training against the matmul peak | round {' | round '.join(str(r) for r, _, _ in fr)} |",
            "|---|" + "---:|" * len(fr),
            "| ltk LeNet-300-100, batch 128 (GFLOP/s) | " + " | ".join(f"{g:.1f}" for _, g, _ in fr) + " |",
            "| PyTorch matmul 1024³, mean of the runs around it (GFLOP/s) | " + " | ".join(f"{p:.1f}" for _, _, p in fr) + " |",
            "| share of the peak | " + " | ".join(f"{g / p:.2f}" for _, g, p in fr) + " |",
            "", f"({DENSE_FLOP:,} FLOP per LeNet-300-100 sample.)"]
print("\n".join(out))
