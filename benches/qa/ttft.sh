#!/usr/bin/env bash
# Time to first token of `folio ask` on the first 12 answerable questions of the QA set's test
# split, for this build and for another folio binary (an earlier release), one question at a
# time on the index `./dev bench qa` built. Run it on a quiet machine:
#   benches/qa/ttft.sh /path/to/older/folio
# Prints one line per run: binary, first-token ms, prompt tokens, retrieval ms, evidence ms; then
# the medians.
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-$HOME/.cache/folio/target}"
qa="$target/qa"
new="$target/debug/folio"
old="${1:?usage: benches/qa/ttft.sh OLDER_FOLIO_BINARY}"
[ -d "$qa/index" ] || { echo "run ./dev bench qa first (it builds $qa/index)" >&2; exit 1; }
python3 - > "$target/qa/ttft-questions.txt" <<'PY'
import json
qs = [json.loads(l) for l in open("benches/qa/questions.jsonl")]
for q in [q for q in qs if q["split"] == "test" and q.get("answers")][:12]:
    print(q["question"])
PY
for which in new old; do
  exe=$new; [ "$which" = old ] && exe=$old
  while read -r q; do
    "$exe" ask --json "$q" --index "$qa/index" --config "$qa/config.toml" 2>/dev/null |
      python3 -c "import json,sys; t=json.load(sys.stdin)['timings']; print('$which', round(t['first_token_ms']), t['prompt_tokens'], round(t.get('retrieve_ms', 0)), round(t.get('evidence_ms', 0)))"
  done < "$target/qa/ttft-questions.txt"
done | tee "$target/qa/ttft.txt"
python3 - "$target/qa/ttft.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for b in ("new", "old"):
    r = [x for x in rows if x[0] == b]
    print(f"{b}: first token p50 {statistics.median(int(x[1]) for x in r):.0f} ms "
          f"(max {max(int(x[1]) for x in r)}), prompt tokens p50 {statistics.median(int(x[2]) for x in r):.0f}, "
          f"evidence p50 {statistics.median(int(x[4]) for x in r):.0f} ms (max {max(int(x[4]) for x in r)})")
PY
