"""The pure core of the content check: document digests and range hashes (no I/O)."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.search.content import (
    RangeHashes,
    canonical,
    choose_depth,
    classify,
    differing_leaves,
    digest,
    digest_text,
    leaf_of,
)

ids = st.text(min_size=1, max_size=12)
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
docs = st.dictionaries(st.text(max_size=6).filter(lambda k: k != "id"), values, max_size=5)


def test_digest_ignores_key_order_the_id_field_and_integral_float_spelling() -> None:
    a = {"title": "Red shoe", "price": 2.0, "tags": ["a", "b"], "brand": {"name": "X", "id": 7}}
    b = {"brand": {"id": 7, "name": "X"}, "tags": ["a", "b"], "price": 2, "title": "Red shoe", "id": "p1"}
    assert canonical(a) == canonical(b)
    assert digest("p1", a) == digest("p1", b)
    assert digest("p1", a) != digest("p2", a)  # the id is part of the digest
    for change in ({"price": 2.5}, {"title": "Red shoe "}, {"tags": ["b", "a"]}, {"extra": None}, {"brand": {"id": 7}}):
        assert digest("p1", {**a, **change}) != digest("p1", a), change


@given(ids, docs)
@settings(max_examples=200, deadline=None)
def test_the_text_path_gives_the_same_digest_as_the_parsed_path(k: str, doc: dict) -> None:
    """The check hashes JSON text straight from PostgreSQL and the engine's export; the repair and
    re-reads hash parsed documents: both must agree on every document."""
    import json

    for text in (json.dumps(doc), json.dumps({**doc, "id": k}, indent=2, ensure_ascii=True)):
        assert digest_text(k, text) == digest(k, doc)


@given(st.dictionaries(ids, docs, max_size=60), st.data())
@settings(max_examples=60, deadline=None)
def test_descent_finds_exactly_the_leaves_of_the_changed_ids(source: dict, data) -> None:
    index = dict(source)
    keys = sorted(source)
    changed: set[str] = set()
    for k in data.draw(st.lists(st.sampled_from(keys), max_size=5, unique=True)) if keys else []:
        kind = data.draw(st.sampled_from(["drop", "edit"]))
        if kind == "drop":
            del index[k]
        else:
            index[k] = {**index[k], "__edited": True}
        changed.add(k)
    for g in data.draw(st.lists(ids.filter(lambda i: i not in source), max_size=3, unique=True)):
        index[g] = {"ghost": True}
        changed.add(g)
    depth = data.draw(st.integers(1, 3))
    a, b = RangeHashes(depth), RangeHashes(depth)
    for k, d in source.items():
        a.add(k, digest(k, d))
    for k, d in index.items():
        b.add(k, digest(k, d))
    leaves, compared = differing_leaves(a, b)
    assert set(leaves) == {leaf_of(k, depth) for k in changed}
    assert compared >= 1
    diff = classify({k: digest(k, d) for k, d in source.items()}, {k: digest(k, d) for k, d in index.items()})
    assert set(diff.ids()) == changed
    assert set(diff.ghost) == {k for k in changed if k not in source}
    assert set(diff.missing) == {k for k in changed if k not in index}


def test_equal_sides_cost_one_comparison_and_few_differences_cost_few() -> None:
    n = 20_000
    depth = choose_depth(n)
    assert depth == 3  # about 5 documents a leaf of 4096
    a, b = RangeHashes(depth), RangeHashes(depth)
    for i in range(n):
        d = digest(f"p{i}", {"n": i})
        a.add(f"p{i}", d)
        b.add(f"p{i}", d)
    assert differing_leaves(a, b) == ([], 1)
    b2 = RangeHashes(depth)
    for i in range(n):
        b2.add(f"p{i}", digest(f"p{i}", {"n": i if i not in (5, 77, 19_999) else -1}))
    leaves, compared = differing_leaves(a, b2)
    assert leaves == sorted({leaf_of(f"p{i}", depth) for i in (5, 77, 19_999)})
    # the root, then 16 children per differing range on the way down: far fewer than the 4096 leaves
    assert compared <= 1 + 3 * 16 * depth


def test_leaf_is_the_hex_prefix_of_sha256_of_the_utf8_id() -> None:
    for k in ("p1", "Ünïcödé", "🙂", "a b"):
        assert leaf_of(k, 4) == hashlib.sha256(k.encode("utf-8")).hexdigest()[:4]


def test_depth_grows_with_the_collection() -> None:
    assert [choose_depth(n) for n in (0, 512, 513, 100_000, 1_000_000, 10**9)] == [1, 1, 2, 3, 4, 6]
