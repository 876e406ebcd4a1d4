#!/usr/bin/env python3
"""check.py - validate the folio development QA set against its corpus.

Usage:
    python3 check.py [--corpus DIR] [--questions FILE] [--probes FILE] [--dump-text DIR]

Defaults: --corpus ../corpus and --questions ./questions.jsonl, relative to this file.
Needs only the Python 3 standard library, plus `pdftotext` (Debian package
poppler-utils) for the PDF files of the corpus.

Checks
  * schema: ids unique, required fields, allowed values of kind / doc_kind / split;
  * answerable questions: the source file exists, the "evidence" string occurs in
    it (after whitespace normalisation; for .html the text with tags stripped and
    entities decoded, for .pdf the text given by pdftotext), and every accepted
    answer form occurs (case-insensitively) in the evidence;
  * unanswerable questions: source null, answers [] and no evidence, and none of the
    probe patterns listed for it in unanswerable_probes.json matches any corpus file
    (the probes describe what a file would have to state to answer the question);
  * leak warnings: an accepted answer form that appears in the question itself, or a
    run of 5+ consecutive words shared between question and evidence;
  * coverage: counts by split / kind / doc_kind / file.
Exit status 0 when there is no error (warnings allowed), 1 otherwise.
"""
import argparse
import collections
import html
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata

KINDS = {"how_many", "how_long", "when", "who", "what", "yes_no", "where"}
DOC_KINDS = {"legal", "spec", "manual"}
SPLITS = {"tune", "test"}
GENERIC_ANSWERS = {"yes", "no", "true", "false", "a", "an", "the", "it", "one"}

# unanswerable_probes.json (next to this file) maps each unanswerable question id to
# case-insensitive regexes that must match NO file of the corpus (checked on the
# normalised raw and extracted text). They encode "no file states this".


class _TextExtractor(html.parser.HTMLParser):
    BLOCK = {"p", "div", "br", "li", "ul", "ol", "tr", "td", "th", "table", "h1", "h2",
             "h3", "h4", "h5", "h6", "pre", "dt", "dd", "dl", "blockquote", "section",
             "article", "header", "footer", "nav", "hr", "title", "figure", "caption"}
    SKIP = {"script", "style", "head"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_to_text(raw):
    p = _TextExtractor()
    p.feed(raw)
    p.close()
    return "".join(p.parts)


def pdf_to_text(path):
    if shutil.which("pdftotext") is None:
        raise RuntimeError("pdftotext not found (apt-get install poppler-utils)")
    return subprocess.run(["pdftotext", "-enc", "UTF-8", path, "-"], check=True,
                          capture_output=True).stdout.decode("utf-8", "replace")


def normalise(s):
    s = unicodedata.normalize("NFKC", s)
    s = s.replace("\u00ad", "")                       # soft hyphen
    s = re.sub(r"[\u2018\u2019\u201a\u201b]", "'", s)  # curly single quotes
    s = re.sub(r"[\u201c\u201d\u201e\u201f]", '"', s)  # curly double quotes
    s = re.sub(r"[\u2010\u2011\u2012\u2013\u2014]", "-", s)
    return re.sub(r"\s+", " ", s).strip()


def load_texts(corpus):
    """Return {file name: [normalised candidate texts]} (raw text, extracted text)."""
    texts = {}
    for name in sorted(os.listdir(corpus)):
        path = os.path.join(corpus, name)
        if name.startswith(".") or not os.path.isfile(path):
            continue
        ext = name.rsplit(".", 1)[-1].lower()
        if ext == "pdf":
            texts[name] = [normalise(pdf_to_text(path))]
        else:
            with open(path, encoding="utf-8", errors="replace") as f:
                raw = f.read()
            cands = [normalise(raw)]
            if ext in ("html", "htm"):
                cands.append(normalise(html_to_text(raw)))
            texts[name] = cands
    return texts


def words(s):
    return re.findall(r"[a-z0-9_]+", s.lower())


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=os.path.join(here, "..", "corpus"))
    ap.add_argument("--questions", default=os.path.join(here, "questions.jsonl"))
    ap.add_argument("--probes", default=os.path.join(here, "unanswerable_probes.json"))
    ap.add_argument("--dump-text", help="write the extracted text of each file here")
    args = ap.parse_args()

    texts = load_texts(args.corpus)
    if args.dump_text:
        os.makedirs(args.dump_text, exist_ok=True)
        for name in texts:
            path = os.path.join(args.corpus, name)
            ext = name.rsplit(".", 1)[-1].lower()
            if ext == "pdf":
                t = pdf_to_text(path)
            else:
                with open(path, encoding="utf-8", errors="replace") as f:
                    t = f.read()
                if ext in ("html", "htm"):
                    t = html_to_text(t)
                    t = re.sub(r"\n\s*\n+", "\n\n", t)
            with open(os.path.join(args.dump_text, name + ".txt"), "w") as f:
                f.write(t)
        print(f"dumped {len(texts)} files to {args.dump_text}")
        return 0

    errors, warnings = [], []
    with open(args.probes, encoding="utf-8") as f:
        probes_by_id = json.load(f)
    qs = []
    with open(args.questions, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                qs.append(json.loads(line))
            except json.JSONDecodeError as e:
                errors.append(f"line {n}: bad JSON: {e}")

    seen = set()
    for q in qs:
        qid = q.get("id", "?")
        if qid in seen:
            errors.append(f"{qid}: duplicate id")
        seen.add(qid)
        for field in ("id", "question", "source", "answers", "kind", "doc_kind", "split"):
            if field not in q:
                errors.append(f"{qid}: missing field {field}")
        if q.get("kind") not in KINDS:
            errors.append(f"{qid}: bad kind {q.get('kind')!r}")
        if q.get("split") not in SPLITS:
            errors.append(f"{qid}: bad split {q.get('split')!r}")
        src = q.get("source")
        if src is None:  # unanswerable
            if q.get("answers") != []:
                errors.append(f"{qid}: unanswerable question must have answers []")
            if q.get("evidence"):
                errors.append(f"{qid}: unanswerable question has evidence")
            if q.get("doc_kind") not in DOC_KINDS:
                errors.append(f"{qid}: bad doc_kind {q.get('doc_kind')!r}")
            probes = probes_by_id.get(qid)
            if not probes:
                errors.append(f"{qid}: no probe patterns in {args.probes}")
                continue
            for pat in probes:
                rx = re.compile(pat, re.I)
                for name, cands in texts.items():
                    if any(rx.search(c) for c in cands):
                        errors.append(f"{qid}: probe /{pat}/ matches {name}")
            continue
        if q.get("doc_kind") not in DOC_KINDS:
            errors.append(f"{qid}: bad doc_kind {q.get('doc_kind')!r}")
        if src not in texts:
            errors.append(f"{qid}: source {src!r} not in corpus")
            continue
        answers = q.get("answers") or []
        if not answers:
            errors.append(f"{qid}: no answers")
        ev = normalise(q.get("evidence") or "")
        if not ev:
            errors.append(f"{qid}: no evidence")
            continue
        if not any(ev in c for c in texts[src]):
            errors.append(f"{qid}: evidence not found verbatim in {src}: {ev[:90]!r}")
        else:
            hits = [n for n, cands in texts.items() if any(ev in c for c in cands)]
            if len(hits) > 1:
                warnings.append(f"{qid}: evidence also occurs in {sorted(set(hits) - {src})}")
        evl = ev.lower()
        ql = q["question"].lower()
        for a in answers:
            al = normalise(a).lower()
            if al in GENERIC_ANSWERS or len(al) < 2 or re.fullmatch(r"\d", al):
                errors.append(f"{qid}: answer form too generic: {a!r}")
        if not any(normalise(a).lower() in evl for a in answers):
            errors.append(f"{qid}: no answer form occurs in the evidence")
        for a in answers:
            al = normalise(a).lower()
            if re.search(r"(?<![a-z0-9])" + re.escape(al) + r"(?![a-z0-9])", ql):
                warnings.append(f"{qid}: answer form {a!r} appears in the question")
        qw, ew = words(ql), words(evl)
        egrams = {tuple(ew[i:i + 5]) for i in range(len(ew) - 4)}
        for i in range(len(qw) - 4):
            if tuple(qw[i:i + 5]) in egrams:
                warnings.append(f"{qid}: question shares 5 words with evidence: {' '.join(qw[i:i+5])!r}")
                break

    # coverage report
    ans = [q for q in qs if q.get("source")]
    una = [q for q in qs if not q.get("source")]
    print(f"questions: {len(qs)} ({len(ans)} answerable, {len(una)} unanswerable)")
    print(f"files used by answerable questions: {len({q['source'] for q in ans})} of {len(texts)}")
    for field in ("split", "kind", "doc_kind"):
        for group, sub in (("answerable", ans), ("unanswerable", una)):
            c = collections.Counter(q.get(field) for q in sub)
            print(f"  {group:12s} by {field:8s}: " + ", ".join(f"{k}={v}" for k, v in sorted(c.items())))
    c = collections.Counter((q.get("split"), q.get("source") is not None) for q in qs)
    print("  split x answerable: " + ", ".join(f"{s}/{'ans' if a else 'unans'}={v}" for (s, a), v in sorted(c.items())))
    byfile = collections.Counter(q["source"] for q in ans)
    print("  by file: " + ", ".join(f"{k}={v}" for k, v in sorted(byfile.items())))
    for w in warnings:
        print("WARNING:", w)
    for e in errors:
        print("ERROR:", e)
    print(f"{len(errors)} errors, {len(warnings)} warnings")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
