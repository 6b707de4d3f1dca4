"""The WAF suite: go-ftw YAML test cases (:mod:`.ftw`), a runner that sends them byte for byte and
scores them as GoTestWAF does (:mod:`.runner`), the rate-limit check (:mod:`.ratelimit`) and the
AWS WAFv2 web ACL audit (:mod:`.audit`). Findings go to the ledger as SARIF of ``vigil-waf``."""
