from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.layered import LayeredMap, LayeredSet, Overlay, OverlaySet

batches = st.lists(st.dictionaries(st.integers(0, 60), st.integers(), max_size=12), max_size=30)


@given(st.dictionaries(st.integers(0, 60), st.integers(), max_size=10), batches)
def test_every_version_matches_a_plain_dict(
    start: dict[int, int], changes: list[dict[int, int]]
) -> None:
    versions = [LayeredMap(start)]
    models = [dict(start)]
    for change in changes:
        versions.append(versions[-1].derive(change))
        models.append({**models[-1], **change})
    for version, model in zip(versions, models, strict=True):  # old versions are untouched
        assert dict(version) == model
        assert len(version) == len(model)
        for key in range(61):
            assert (key in version) == (key in model)
            assert version.get(key) == model.get(key)


def test_layers_stay_few() -> None:
    m: LayeredMap[int, int] = LayeredMap()
    for i in range(2000):
        m = m.derive({i: i})
    assert len(m._layers) <= 12  # about log2(2000)
    assert len(m) == 2000 and m[1234] == 1234


@given(st.lists(st.lists(st.integers(0, 40), max_size=8), max_size=20))
def test_sets(batches_: list[list[int]]) -> None:
    s: LayeredSet[int] = LayeredSet()
    model: set[int] = set()
    for batch in batches_:
        before, before_model = s, set(model)
        s = s.derive(batch)
        model |= set(batch)
        assert set(before) == before_model
    assert set(s) == model and len(s) == len(model)


def test_overlays_write_aside() -> None:
    base = LayeredMap({"a": 1})
    over = Overlay(base)
    over["b"] = 2
    over["a"] = 3
    assert over["a"] == 3 and over["b"] == 2 and dict(base) == {"a": 1}
    assert over.changes == {"b": 2, "a": 3}
    with pytest.raises(TypeError):
        del over["a"]
    oset = OverlaySet(LayeredSet([1]))
    oset.add(1)
    oset.add(2)
    assert 1 in oset and 2 in oset and oset.added == {2: None} and len(oset) == 2
