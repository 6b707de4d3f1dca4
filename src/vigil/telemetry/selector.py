"""Selectors moved to the shared kernel: :mod:`vigil.selector`. This name stays for old imports."""

from vigil.selector import *  # noqa: F401,F403
from vigil.selector import LABEL_NAME, MAX_SELECTOR_LENGTH, METRIC_NAME, OPS, Matcher, Selector, SelectorError, parse_selector  # noqa: F401
