"""Turns benches/peers/cpu_ratios.sh's log into a markdown table of ratios:
training throughput ltk / PyTorch (the better of PyTorch's two runs), NTK
time neural-tangents / ltk (the better of its two runs), so above 1 means
ltk is ahead. ltk's figure is criterion's median estimate.
    python3 benches/peers/cpu_ratios_report.py LOG "machine description"
"""
import re, sys
log, machine = open(sys.argv[1]).read(), sys.argv[2]
def unit(v, u):
    return float(v) * {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}[u]
def kelem(v, u):
    return float(v) * {"elem/s": 1, "Kelem/s": 1e3, "Melem/s": 1e6}[u]
ours = {}
lines = log.splitlines()
for i, l in enumerate(lines):
    m = re.match(r"^(train_step_\S+|ntk_784\S+)", l)
    if not m:
        continue
    name = m.group(1)
    for l2 in lines[i:i + 3]:
        t = re.search(r"thrpt:\s+\[\S+\s+\S+\s+(\S+)\s+(\S+)\s", l2)
        if t:
            ours[name] = kelem(*t.groups()); break
        t = re.search(r"time:\s+\[\S+\s+\S+\s+(\S+)\s+(\S+)\s", l2)
        if t:
            ours[name] = unit(*t.groups()); break
torch, nt = {}, {}
for m in re.finditer(r"^pytorch (\S+): median (\d+) samples/s", log, re.M):
    torch[m.group(1)] = max(torch.get(m.group(1), 0), float(m.group(2)))
for m in re.finditer(r"^nt (\w+) (\d+): median (\S+) s", log, re.M):
    k = (m.group(1), m.group(2))
    nt[k] = min(nt.get(k, 1e9), float(m.group(3)))
rows = [
    ("LeNet-300-100, batch 60", "train_step_lenet300_100/fast/60", "lenet300_100_b60"),
    ("LeNet-300-100, batch 128", "train_step_lenet300_100/fast/128", "lenet300_100"),
    ("LeNet-5, batch 128", "train_step_conv_b128/lenet5_fast/128", "lenet5"),
    ("Conv-4, batch 128", "train_step_conv_b128/conv4_fast/128", "conv4"),
    ("ResNet-20, batch 128", "train_step_conv_b128/resnet20_fast/128", "resnet20"),
]
out = [f"Machine: {machine}.", "", "| training (samples/s) | ltk | PyTorch (better run) | ratio |", "|---|---:|---:|---:|"]
for label, key, peer in rows:
    a, b = ours.get(key), torch.get(peer)
    r = f"{a / b:.2f}x" if a and b else "–"
    out.append(f"| {label} | {a:,.0f} | {b:,.0f} | {r} |" if a and b else f"| {label} | {a or '–'} | {b or '–'} | – |")
out += ["", "| empirical NTK 784-512-512-10 (s) | ltk | neural-tangents (better run) | ltk's share of its time |", "|---|---:|---:|---:|"]
for kind in ["traced", "full"]:
    for n in ["128", "512"]:
        a, b = ours.get(f"ntk_784_512_512_10/{kind}/{n}"), nt.get((kind, n))
        r = f"{a / b:.2f}x" if a and b else "–"
        out.append(f"| {kind}, N = {n} | {a:.4f} | {b:.4f} | {r} |" if a and b else f"| {kind}, N = {n} | – | – | – |")
print("\n".join(out))
