"""Secret scanning: precision and recall on the labelled corpus, beside detect-secrets alone, and speed.

Run: .venv/bin/python benchmarks/secrets.py [--corpus DIR] [--speed DIR] [--repeat N]

The corpus (default tests/data/secrets) is a directory with ``labels.json``: the true secrets as
(path, line, rule) and the look-alike files. A finding counts as a true positive when a labelled
secret is on its line of its file (the rule is reported beside, not required here: the test in
tests/test_security_secrets.py holds the exact rules); every other finding is a false positive.

It prints, for vigil's scanner and for detect-secrets' own scan with its default plugins and
filters (the engine vigil builds on, run through its library API with no verification, so nothing
leaves the machine): true positives, false positives, false negatives, precision and recall, and
the findings per rule. Then it times a scan of ``--speed`` (default: this repository's src, tests
and docs, without the corpus) and prints bytes per second (minimum of ``--repeat`` runs).

For comparison, SecretBench (Basak et al., ESEM 2023, 97,479 labelled candidates from 818 public
repositories) measured gitleaks at 46% precision / 88% recall and TruffleHog at 52% recall. The
corpora differ: ours is small, written for vigil's providers, and the scanner was tuned on it, so
its figures say that the labelled cases work, not how it would score on SecretBench.

It asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from vigil.security.scanner import scan_text  # noqa: E402
from vigil.security.sources import walk_path  # noqa: E402


def score(found: set[tuple[str, int]], labels: dict) -> dict:
    truth = {(x["path"], x["line"]) for x in labels["true_secrets"]}
    tp, fp, fn = len(found & truth), len(found - truth), len(truth - found)
    return {
        "tp": tp, "fp": fp, "fn": fn,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "false_positives": sorted(found - truth), "missed": sorted(truth - found),
    }


def vigil_scan(corpus: Path) -> tuple[set[tuple[str, int]], Counter]:
    w = walk_path(str(corpus), excludes=["labels.json"])
    found: set[tuple[str, int]] = set()
    rules: Counter = Counter()
    for t in w.texts:
        for h in scan_text(t.text, t.path):
            found.add((t.path, t.file_line(h.line)))
            rules[h.rule] += 1
    return found, rules


def detect_secrets_scan(corpus: Path) -> tuple[set[tuple[str, int]], Counter]:
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    found: set[tuple[str, int]] = set()
    kinds: Counter = Counter()
    old = os.getcwd()
    os.chdir(corpus)
    try:
        with default_settings():
            coll = SecretsCollection()
            for p in sorted(corpus.rglob("*")):
                if p.is_file() and p.name != "labels.json":
                    coll.scan_file(str(p.relative_to(corpus)))
        for path, secret in coll:
            found.add((path, secret.line_number))
            kinds[secret.type] += 1
    finally:
        os.chdir(old)
    return found, kinds


def show(name: str, s: dict, rules: Counter) -> None:
    print(f"{name}: {s['tp']} true positives, {s['fp']} false positives, {s['fn']} missed;"
          f" precision {s['precision']:.1%}, recall {s['recall']:.1%}")
    print("  by rule: " + ", ".join(f"{k} {v}" for k, v in sorted(rules.items())))
    for x in s["false_positives"][:20]:
        print(f"  false positive: {x[0]}:{x[1]}")
    for x in s["missed"][:20]:
        print(f"  missed: {x[0]}:{x[1]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--corpus", type=Path, default=ROOT / "tests" / "data" / "secrets")
    ap.add_argument("--speed", type=Path, action="append", help="directories to time a scan of (repeatable)")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    labels = json.loads((a.corpus / "labels.json").read_text())
    print(f"corpus {a.corpus}: {len(labels['true_secrets'])} labelled secrets, {len(labels['lookalike_files'])} look-alike files")
    found, rules = vigil_scan(a.corpus)
    show("vigil secrets scan", score(found, labels), rules)
    ds_found, kinds = detect_secrets_scan(a.corpus)
    show("detect-secrets alone (default plugins and filters)", score(ds_found, labels), kinds)
    print("published, on SecretBench (another corpus): gitleaks precision 46% recall 88%; TruffleHog recall 52%")

    dirs = a.speed or [ROOT / "src", ROOT / "tests", ROOT / "README.md"]
    texts = []
    for d in dirs:
        texts += walk_path(str(d), excludes=["data/secrets"]).texts
    total = sum(len(t.text.encode("utf-8", "surrogatepass")) for t in texts)
    times = []
    for _ in range(max(1, a.repeat)):
        t0 = time.perf_counter()
        for t in texts:
            scan_text(t.text, t.path)
        times.append(time.perf_counter() - t0)
    best = min(times)
    print(f"speed: {len(texts)} files, {total / 1e6:.2f} MB in {best:.2f} s (min of {len(times)}): {total / best / 1e6:.2f} MB/s,"
          f" load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
