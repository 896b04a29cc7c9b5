"""Parameter spaces: deterministic iterables of parameter dicts, for building experiments."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any


def _choices(space: Mapping[str, Any], what: str) -> dict[str, list[Any]]:
    if not isinstance(space, Mapping):
        raise TypeError(
            f"{what} takes a dict of name -> list of values, got {type(space).__name__}"
        )
    checked: dict[str, list[Any]] = {}
    for name, values in space.items():
        if not isinstance(name, str):
            raise TypeError(f"{what} parameter names must be strings, got {name!r}")
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, (Sequence, range)):
            raise TypeError(
                f"{what} values of {name!r} must be a list, got {type(values).__name__} "
                f"{values!r}; write [{values!r}] for a single value"
            )
        if len(values) == 0:
            raise ValueError(f"{what} values of {name!r} are empty: give at least one value")
        checked[name] = list(values)
    return checked


class ParamSpace:
    """An explicit, ordered collection of parameter dicts; the base of the other spaces."""

    def __init__(self, points: Iterable[Mapping[str, Any]] = ()) -> None:
        self._points = [dict(p) for p in points]
        for point in self._points:
            if not all(isinstance(k, str) for k in point):
                raise TypeError(f"parameter names must be strings, got {point!r}")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (dict(p) for p in self._points)

    def __len__(self) -> int:
        return len(self._points)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} points)"


class GridSpace(ParamSpace):
    """Every combination of the given values, the last name varying fastest."""

    def __init__(self, space: Mapping[str, Sequence[Any]]) -> None:
        self.space = _choices(space, "GridSpace")
        super().__init__()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        names = list(self.space)
        for combo in itertools.product(*self.space.values()):
            yield dict(zip(names, combo, strict=True))

    def __len__(self) -> int:
        size = 1
        for values in self.space.values():
            size *= len(values)
        return size


class UniformSpace(ParamSpace):
    """``n_samples`` draws, each value chosen uniformly from its list; repeatable per seed."""

    def __init__(
        self, space: Mapping[str, Sequence[Any]], n_samples: int, seed: int | None = 0
    ) -> None:
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples must be a whole number >= 1, got {n_samples!r}")
        self.space = _choices(space, "UniformSpace")
        self.n_samples = n_samples
        self.seed = 0 if seed is None else seed
        super().__init__()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rng = random.Random(self.seed)
        for _ in range(self.n_samples):
            yield {name: rng.choice(values) for name, values in self.space.items()}

    def __len__(self) -> int:
        return self.n_samples
