"""Toy sequence-to-sequence tasks, generated from a seed, that need no download: each teaches an encoder-decoder
something different. Reversal needs the last source character first (attention finds it; a fixed-size state must
carry the whole string), sorting needs the whole source before the first output, addition carries digits right to
left while reading left to right, and dates map many spellings of one thing to one form."""
from __future__ import annotations

import datetime
import random
import string
from collections.abc import Callable
from typing import Annotated

from pydantic import Field

from dlx.data.base import ArrayData
from dlx.data.sequence_pairs import pair_data
from dlx.errors import DlxError
from dlx.registry import datasets

Size = Annotated[int, Field(ge=8, le=2_000_000)]
Seed = Annotated[int, Field(ge=0, lt=2**63)]
Length = Annotated[int, Field(ge=1, le=1000)]


def generated(name: str, n: int, seed: int, pair: Callable[[random.Random], tuple[str, str]]) -> ArrayData:
    """n pairs drawn by `pair` from one random stream fixed by the seed (Python's Mersenne Twister: the same on every
    platform)."""
    rng = random.Random(seed)
    return pair_data([pair(rng) for _ in range(n)], f"data '{name}'")


def _lengths(min_length: int, max_length: int) -> None:
    if min_length > max_length:
        raise DlxError(f"data.min_length={min_length} is above data.max_length={max_length}")


@datasets.register("reverse", "seq2seq: a string of random letters -> the same string reversed (lengths 5-12)")
def reverse(*, n: Size = 20000, min_length: Length = 5, max_length: Length = 12,
            letters: Annotated[int, Field(ge=2, le=26)] = 26, seed: Seed = 0) -> ArrayData:
    """letters: the alphabet's size (the first k lower-case letters)."""
    _lengths(min_length, max_length)
    alphabet = string.ascii_lowercase[:letters]

    def pair(rng: random.Random) -> tuple[str, str]:
        text = "".join(rng.choices(alphabet, k=rng.randint(min_length, max_length)))
        return text, text[::-1]

    return generated("reverse", n, seed, pair)


@datasets.register("sort_digits", "seq2seq: a string of random digits -> its digits in ascending order")
def sort_digits(*, n: Size = 20000, min_length: Length = 5, max_length: Length = 12, seed: Seed = 0) -> ArrayData:
    _lengths(min_length, max_length)

    def pair(rng: random.Random) -> tuple[str, str]:
        digits = rng.choices(string.digits, k=rng.randint(min_length, max_length))
        return "".join(digits), "".join(sorted(digits))

    return generated("sort_digits", n, seed, pair)


@datasets.register("addition", "seq2seq: two numbers written as text, '317+45' -> '362'")
def addition(*, n: Size = 20000, max_digits: Annotated[int, Field(ge=1, le=100)] = 3, seed: Seed = 0) -> ArrayData:
    """Each number has 1..max_digits digits, the count drawn uniformly, so short numbers are as common as long ones."""

    def number(rng: random.Random) -> int:
        digits = rng.randint(1, max_digits)
        return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10**digits - 1)

    def pair(rng: random.Random) -> tuple[str, str]:
        a, b = number(rng), number(rng)
        return f"{a}+{b}", str(a + b)

    return generated("addition", n, seed, pair)


MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _ordinal(day: int) -> str:
    return f"{day}{'th' if 10 <= day % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"


# the ways a date is written; each is unambiguous on its own (US slashes, European dots)
DATE_FORMATS: tuple[Callable[[datetime.date], str], ...] = (
    lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}",
    lambda d: f"{MONTHS[d.month - 1][:3]} {d.day} {d.year}",
    lambda d: f"{d.day:02d}-{MONTHS[d.month - 1][:3]}-{d.year}",
    lambda d: f"{d.day} {MONTHS[d.month - 1].lower()} {d.year}",
    lambda d: f"{MONTHS[d.month - 1].upper()} {d.day} {d.year}",
    lambda d: f"{WEEKDAYS[d.weekday()]}, {MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{WEEKDAYS[d.weekday()][:3]} {d.day} {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"the {_ordinal(d.day)} of {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{d.month}/{d.day}/{d.year}",
    lambda d: f"{d.day}.{d.month}.{d.year}",
    lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",
    lambda d: f"{d.year}{d.month:02d}{d.day:02d}",
)


@datasets.register("dates", "seq2seq: a date written one of 14 ways ('Tue 3 March 2026', '3.3.2026', ...) -> ISO "
                            "form 2026-03-03")
def dates(*, n: Size = 20000, first_year: Annotated[int, Field(ge=1, le=9999)] = 1900,
          last_year: Annotated[int, Field(ge=1, le=9999)] = 2099, seed: Seed = 0) -> ArrayData:
    if first_year > last_year:
        raise DlxError(f"data.first_year={first_year} is after data.last_year={last_year}")
    first = datetime.date(first_year, 1, 1).toordinal()
    last = datetime.date(last_year, 12, 31).toordinal()

    def pair(rng: random.Random) -> tuple[str, str]:
        day = datetime.date.fromordinal(rng.randint(first, last))
        return rng.choice(DATE_FORMATS)(day), day.isoformat()

    return generated("dates", n, seed, pair)
