#!/usr/bin/env python3
"""Build questions.jsonl (and unanswerable_probes.json) from questions_src.py.

Split: about 40% "tune" / 60% "test", stratified by file and kind, random with a
fixed seed. Answerable questions are ordered by (source file, kind, random key);
unanswerable ones by (doc_kind, kind, random key); then every question is walked
in that order and marked "tune" whenever floor(0.4*i + offset) steps up
(systematic sampling with a random offset), so each file and each kind gets ~40%.
Finally ids q001... are assigned in a seeded random order (so the id does not
reveal the file or whether a question is answerable).
"""
import json, math, os, random, sys

SEED = 20240611
TUNE_FRACTION = 0.4

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import questions_src as src  # noqa: E402

DOC_KIND = {}
for line in open(os.path.join(here, "gather.sh")):
    parts = line.split()
    if len(parts) == 4 and parts[3] in ("legal", "spec", "manual") and "/" in parts[2]:
        DOC_KIND[parts[0]] = parts[3]

rng = random.Random(SEED)


def assign(items, key):
    for it in items:
        it["_r"] = rng.random()
    items.sort(key=lambda it: key(it) + (it["_r"],))
    off = rng.random()
    for i, it in enumerate(items):
        it["split"] = "tune" if math.floor(TUNE_FRACTION * (i + 1) + off) > math.floor(TUNE_FRACTION * i + off) else "test"
        del it["_r"]


ans = [dict(a) for a in src.A]
for a in ans:
    a["doc_kind"] = DOC_KIND[a["source"]]
una = [dict(u) for u in src.U]
assign(ans, lambda it: (it["source"], it["kind"]))
assign(una, lambda it: (it["doc_kind"], it["kind"]))

allq = ans + una
rng.shuffle(allq)
probes = {}
with open(os.path.join(here, "questions.jsonl"), "w") as f:
    for n, it in enumerate(allq, 1):
        qid = f"q{n:03d}"
        if "probes" in it:
            probes[qid] = it["probes"]
            rec = {"id": qid, "question": it["question"], "source": None, "answers": [],
                   "kind": it["kind"], "doc_kind": it["doc_kind"], "split": it["split"]}
        else:
            rec = {"id": qid, "question": it["question"], "source": it["source"],
                   "answers": it["answers"], "kind": it["kind"], "doc_kind": it["doc_kind"],
                   "evidence": it["evidence"], "split": it["split"]}
        f.write(json.dumps(rec, ensure_ascii=False) + "\n")
with open(os.path.join(here, "unanswerable_probes.json"), "w") as f:
    json.dump(probes, f, indent=1, sort_keys=True)
    f.write("\n")
print(f"wrote {len(allq)} questions ({len(ans)} answerable, {len(una)} unanswerable), seed {SEED}")
