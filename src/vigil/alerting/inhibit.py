"""Inhibition with Alertmanager's semantics (``inhibit/inhibit.go``), pure.

An inhibit rule mutes an alert (the target) while another alert (the source) fires when:

- the target matches the rule's ``target_matchers``;
- a firing alert matches its ``source_matchers`` and has the same value as the target for every
  label in ``equal`` (a label neither has counts as equal: both are empty);
- and, when the target also matches the source matchers, that source does not itself match the
  target matchers (an alert never mutes itself, nor alerts of its own kind: Alertmanager's
  ``excludeTwoSidedMatch``).

The reference plan's rule: a firing ``search-down`` mutes the ``search-freshness`` burn alerts of the
same service::

    inhibit_rules:
      - source_matchers: ['alertname="search-down"']
        target_matchers: ['slo="search-freshness"']
        equal: [service]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from vigil.selector import Matcher


@dataclass(frozen=True)
class Rule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    @classmethod
    def of(cls, spec_rule: Any) -> "Rule":
        return cls(tuple(spec_rule.source_matchers), tuple(spec_rule.target_matchers), tuple(spec_rule.equal))

    def _all(self, ms: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in ms)

    def mutes(self, labels: Mapping[str, str], firing: Iterable[Mapping[str, str]]) -> bool:
        if not self._all(self.target, labels):
            return False
        two_sided = self._all(self.source, labels)
        for src in firing:
            if not self._all(self.source, src):
                continue
            if any(src.get(n, "") != labels.get(n, "") for n in self.equal):
                continue
            if two_sided and self._all(self.target, src):
                continue
            return True
        return False


class Inhibitor:
    """The spec's inhibit rules over the alerts firing now."""

    def __init__(self, rules: Iterable[Any]) -> None:
        self.rules = [r if isinstance(r, Rule) else Rule.of(r) for r in rules]

    def muted(self, alerts: Mapping[str, Mapping[str, str]], firing: Mapping[str, Mapping[str, str]]) -> set[str]:
        """The fingerprints among ``alerts`` (fingerprint -> labels) muted by a firing alert
        (``firing``: fingerprint -> labels of every alert firing now)."""
        if not self.rules:
            return set()
        sources = list(firing.values())
        return {fp for fp, labels in alerts.items() if any(r.mutes(labels, sources) for r in self.rules)}
