"""Immutable maps and sets that share structure between successive states.

Each block adds a few settled ids to sets that grow without bound; copying them per
block would make verifying a chain quadratic. A ``LayeredMap`` is a stack of frozen
dict layers, newest last; deriving a new map pushes one layer and merges the top layers
while a layer is at least half the size of the one below it (as a binary counter
carries), so each entry is copied O(log n) times in all and a lookup visits O(log n)
layers. Layers are never mutated once built, so old states stay valid.

``Overlay`` and ``OverlaySet`` are the mutable working copies used while one block is
applied: writes go to a private dict over an immutable base.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping, MutableMapping, Set
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _merge_layers(layers: list[dict[Any, Any]]) -> tuple[dict[Any, Any], ...]:
    while len(layers) >= 2 and 2 * len(layers[-1]) >= len(layers[-2]):
        top = layers.pop()
        merged = dict(layers.pop())
        merged.update(top)
        layers.append(merged)
    return tuple(layers)


class LayeredMap(Mapping[K, V]):
    """An immutable mapping; ``derive`` returns a new one with changes applied (no deletes)."""

    __slots__ = ("_layers",)

    def __init__(self, data: Mapping[K, V] | None = None) -> None:
        self._layers: tuple[dict[K, V], ...] = (dict(data),) if data else ()

    @classmethod
    def _from_layers(cls, layers: tuple[dict[K, V], ...]) -> LayeredMap[K, V]:
        made: LayeredMap[K, V] = cls()
        made._layers = layers
        return made

    def derive(self, changes: Mapping[K, V]) -> LayeredMap[K, V]:
        if not changes:
            return self
        return self._from_layers(_merge_layers([*self._layers, dict(changes)]))

    def __getitem__(self, key: K) -> V:
        for layer in reversed(self._layers):
            if key in layer:
                return layer[key]
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        for layer in self._layers:  # noqa: SIM110 - no generator: on every transaction's path
            if key in layer:
                return True
        return False

    def _flat(self) -> dict[K, V]:
        if len(self._layers) == 1:
            return self._layers[0]
        merged: dict[K, V] = {}
        for layer in self._layers:
            merged.update(layer)
        return merged

    def __iter__(self) -> Iterator[K]:
        return iter(self._flat())

    def __len__(self) -> int:
        return len(self._flat())

    def __repr__(self) -> str:
        return f"LayeredMap({self._flat()!r})"


class LayeredSet(Set[K]):
    """An immutable set with the same sharing as ``LayeredMap``."""

    __slots__ = ("_map",)

    def __init__(self, items: Iterable[K] = ()) -> None:
        self._map: LayeredMap[K, None] = LayeredMap(dict.fromkeys(items))

    def derive(self, added: Iterable[K]) -> LayeredSet[K]:
        new = dict.fromkeys(added)
        if not new:
            return self
        made: LayeredSet[K] = LayeredSet()
        made._map = self._map.derive(new)
        return made

    def __contains__(self, item: object) -> bool:
        return item in self._map

    def __iter__(self) -> Iterator[K]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def __repr__(self) -> str:
        return f"LayeredSet({set(self._map)!r})"


class Overlay(MutableMapping[K, V], Generic[K, V]):
    """A writable view over an immutable map; ``changes`` holds what was written."""

    def __init__(self, base: Mapping[K, V]) -> None:
        self.base = base
        self.changes: dict[K, V] = {}

    def __getitem__(self, key: K) -> V:
        if key in self.changes:
            return self.changes[key]
        return self.base[key]

    def __contains__(self, key: object) -> bool:
        return key in self.changes or key in self.base

    def __setitem__(self, key: K, value: V) -> None:
        self.changes[key] = value

    def __delitem__(self, key: K) -> None:
        raise TypeError("an Overlay does not delete")

    def __iter__(self) -> Iterator[K]:
        yield from self.changes
        yield from (k for k in self.base if k not in self.changes)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class OverlaySet(Set[K]):
    """A set view over an immutable set, with ``add``; ``added`` holds the new members."""

    def __init__(self, base: Set[K]) -> None:
        self.base = base
        self.added: dict[K, None] = {}

    def add(self, item: K) -> None:
        if item not in self.base:
            self.added[item] = None

    def __contains__(self, item: object) -> bool:
        return item in self.added or item in self.base

    def __iter__(self) -> Iterator[K]:
        yield from self.added
        yield from self.base

    def __len__(self) -> int:
        return len(self.added) + len(self.base)
