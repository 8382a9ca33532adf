"""Collects the outputs of benches/gpu/run.sh in OUT into OUT/gpu_throughput.json
(the layout of reports/reference/gpu_throughput.json) and OUT/gpu_throughput.md.
Usage: python3 benches/gpu/report.py OUT"""
import glob, json, os, re, sys

out = sys.argv[1]

def text(name):
    p = os.path.join(out, name + ".txt")
    return open(p).read() if os.path.exists(p) else ""

def number(pattern, s):
    m = re.search(pattern, s)
    return float(m.group(1)) if m else None

def leaves(x, path=""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from leaves(v, f"{path}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from leaves(v, f"{path}[{i}]")
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield path, float(x)

machine = text("machine").splitlines()
device = [l for l in machine if l.strip()][0] if machine else "unknown"
peer = text("pytorch")
rows = []
for net, label in [("lenet300_100", "lenet300_100"), ("lenet5", "lenet5"), ("conv4", "conv4"), ("resnet20", "resnet20")]:
    rows.append({
        "network": net,
        "ltk": number(r"; (\d+) samples/s", text("ltk_" + label)),
        "pytorch": number(rf"^{net}: median (\d+) samples/s", re.sub(r"(?m)^\s+", "", peer)) if peer else None,
    })
single = rows[0]["ltk"]
ens = number(r"; (\d+) samples/s over all replicas", text("ltk_ensemble16"))
peer_loop = number(r"ensemble16_lenet300_100: median (\d+) samples/s", peer)

checks = {}
for t in ["test_device_resident", "test_ensemble", "test_ntk_empirical"]:
    s = text(t)
    m = re.search(r"test result: (\w+)\. (\d+) passed; (\d+) failed", s)
    checks[t] = m.group(0) if m else ("not run" if not s else s.strip().splitlines()[-1])
dev = "cuda" if glob.glob(os.path.join(out, "digits_mlp_cuda.txt")) else "cpu"
for name in ["digits_mlp", "digits_conv", "replicas4"]:
    a, b = text(f"{name}_{dev}"), text(f"{name}_cpu")
    accs = lambda s: [float(x) for x in re.findall(r"final test accuracy (\d+\.\d+)%", s)]
    if accs(a) and accs(b):
        checks[name] = {"device": accs(a), "cpu": accs(b), "max_abs_diff_pp": max(abs(x - y) for x, y in zip(accs(a), accs(b)))}
    else:
        checks[name] = "missing output"
sa, sb = [os.path.join(out, f"runs_{d}", "imp_digits", "summary.json") for d in (dev, "cpu")]
if os.path.exists(sa) and os.path.exists(sb):
    la = {k: v for k, v in leaves(json.load(open(sa))) if "accuracy" in k}
    lb = {k: v for k, v in leaves(json.load(open(sb))) if "accuracy" in k}
    common = [k for k in la if k in lb]
    checks["imp_digits"] = {"accuracies": len(common), "max_abs_diff": max((abs(la[k] - lb[k]) for k in common), default=None)}
else:
    checks["imp_digits"] = "missing summary"

sa, sb = [os.path.join(out, f"runs_{d}", "ntk_small", "summary.json") for d in (dev, "cpu")]
if os.path.exists(sa) and os.path.exists(sb):
    la = {k: v for k, v in leaves(json.load(open(sa))) if "second" not in k and "timing" not in k}
    lb = {k: v for k, v in leaves(json.load(open(sb))) if "second" not in k and "timing" not in k}
    common = [k for k in la if k in lb]
    rel = [abs(la[k] - lb[k]) / max(abs(lb[k]), 1e-12) for k in common]
    verdicts = lambda p: [c.get("verdict") for c in json.load(open(p)).get("verdicts", []) if isinstance(c, dict)]
    checks["ntk_compare_small"] = {"numbers": len(common), "max_rel_diff": max(rel, default=None),
                                   "same_verdicts": verdicts(sa) == verdicts(sb)}
else:
    checks["ntk_compare_small"] = "missing summary"
conclusive = text("ntk_compare_conclusive")
conclusive_s = number(r"ntk_compare_conclusive rc=0 ([\d.]+) s", open(os.path.join(out, "log.txt")).read()) if os.path.exists(os.path.join(out, "log.txt")) else None

commit = next((l.strip() for l in machine if re.fullmatch(r"[0-9a-f]{7,40}", l.strip())), None)
date = next((l.strip() for l in machine if re.match(r"\d{4}-\d\d-\d\dT", l.strip())), None)
result = {
    "device": device,
    "date": date,
    "commit": commit,
    "rows": rows,
    "ensemble": {"k": 16, "ratio": (ens / single) if ens and single else None, "ltk": ens,
                 "pytorch_loop": peer_loop},
    "imp_lenet_full_s": None,
    "ntk_compare_conclusive_s": conclusive_s,
    "checks": checks,
}
json.dump(result, open(os.path.join(out, "gpu_throughput.json"), "w"), indent=2)
fmt = lambda v: "–" if v is None else f"{v:,.0f}"
lines = [f"# Training throughput, {device} ({date}, commit {commit})", "",
         "| network | ltk samples/s | PyTorch samples/s | ratio |", "|---|---:|---:|---:|"]
for r in rows:
    ratio = f"{r['ltk'] / r['pytorch']:.2f}" if r["ltk"] and r["pytorch"] else "–"
    lines.append(f"| {r['network']} | {fmt(r['ltk'])} | {fmt(r['pytorch'])} | {ratio} |")
e = result["ensemble"]
ratio = "–" if e["ratio"] is None else f"{e['ratio']:.1f}"
lines += ["", f"16 LeNet-300-100s (`ltk train --replicas 16`; one computation on a GPU): {fmt(e['ltk'])} samples/s, {ratio}x one network; "
          f"PyTorch looping over 16: {fmt(e['pytorch_loop'])} samples/s.", "", "Checks against the CPU:", ""]
for k, v in checks.items():
    lines.append(f"- {k}: {v}")
open(os.path.join(out, "gpu_throughput.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
