"""Money: what a finding's `amount` and `lines` are made of, in yuan, to the cent.

Claim items carry `quantity` and `unit_price`, so a claim line always has an amount
(`quantity × unit_price`). A dispensing has a price only when its producer sends the optional
`unit_price` (contract v1, additive); without it a rule's amount is None, never a guess.
Amounts are billed amounts (what the line costs, not the fund's share of it): claim lines
carry no fund share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from claimstream.model.events import ClaimItem, Dispense
from claimstream.model.outputs import Line


def cents(value: float) -> float:
    """`value` rounded to the fen (0.01 yuan), as every amount is written."""
    return round(value, 2)


def dispensing_cost(body: Dispense) -> float | None:
    """`quantity × unit_price` of a dispensing; None when it carries no price."""
    if body.unit_price is None:
        return None
    return cents(body.quantity * body.unit_price)


def claim_lines(items: Iterable[ClaimItem], keep: Callable[[ClaimItem], bool]) -> tuple[Line, ...]:
    """(index, code, amount) of each item that `keep` accepts, in the claim's order."""
    return tuple(
        (index, item.code, cents(item.quantity * item.unit_price))
        for index, item in enumerate(items)
        if keep(item)
    )


def lines_total(lines: Iterable[Line]) -> float | None:
    """The sum of the lines' amounts; None when there are none or one has no price."""
    amounts = [amount for _, _, amount in lines]
    if not amounts or any(amount is None for amount in amounts):
        return None
    return cents(sum(amount for amount in amounts if amount is not None))


def flat(lines: Iterable[Line]) -> tuple[Any, ...]:
    """Lines as a row holds them: one flat tuple (index, code, amount, index, code, amount...).

    Flat, not a tuple of tuples, so a row stays a tuple of scalars and one tuple deep: the
    garbage collector stops tracking it after a pass or two (`rules.kit.rows`).
    """
    return tuple(field for line in lines for field in line)


def as_lines(held: Sequence[Any]) -> tuple[Line, ...]:
    """The lines of a row's flat field (a tuple, or a list once read back from a changelog)."""
    return tuple(
        (int(held[n]), str(held[n + 1]), None if held[n + 2] is None else float(held[n + 2]))
        for n in range(0, len(held) - 2, 3)
    )
