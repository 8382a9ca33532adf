"""SHA-256 of every run's summary.json under a directory, raw and with the
timing fields removed (keys containing seconds, per_second, timing,
throughput or wall), canonical JSON with sorted keys. Used to check that a
refactor keeps every experiment's science bit for bit:
    python3 reports/baseline/hash_summaries.py RUNS_DIR
"""
import hashlib
import json
import os
import sys

TIMING = ("seconds", "per_second", "timing", "throughput", "wall")


def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if not any(t in k for t in TIMING)}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v


root = sys.argv[1] if len(sys.argv) > 1 else "runs"
for d in sorted(os.listdir(root)):
    p = os.path.join(root, d, "summary.json")
    if os.path.isfile(p):
        raw = open(p, "rb").read()
        canon = json.dumps(strip(json.loads(raw)), sort_keys=True, separators=(",", ":")).encode()
        print(d, hashlib.sha256(raw).hexdigest(), hashlib.sha256(canon).hexdigest())
