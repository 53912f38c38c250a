"""Spend accounting with a hard cap.

Before a request is sent, its worst-case cost (estimated input tokens + ``max_tokens`` output
tokens at the spec's prices) is reserved; when it ends, the reservation is replaced by what it
really cost. A request whose reservation would push spent + reserved past the cap is not sent,
so a run stops cleanly *before* exceeding its budget, with its unsent work still pending.
"""

from __future__ import annotations


class BudgetExhausted(Exception):
    """Raised instead of sending a request that could take spend past the cap."""


class Budget:
    def __init__(self, limit_usd: float | None, *, spent_usd: float = 0.0) -> None:
        if limit_usd is not None and limit_usd <= 0:
            raise ValueError("budget must be > 0 USD")
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd
        self.reserved_usd = 0.0
        self.exhausted = False

    def reserve(self, amount_usd: float) -> None:
        if self.limit_usd is not None and amount_usd > 0 and (
                self.exhausted or self.spent_usd + self.reserved_usd + amount_usd > self.limit_usd):
            self.exhausted = True
            raise BudgetExhausted(
                f"budget of ${self.limit_usd:.4f} reached (spent ${self.spent_usd:.4f}, "
                f"${self.reserved_usd:.4f} reserved for requests in flight)")
        self.reserved_usd += amount_usd

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        self.reserved_usd = max(0.0, self.reserved_usd - reserved_usd)
        self.spent_usd += actual_usd

    @property
    def remaining_usd(self) -> float | None:
        return None if self.limit_usd is None else max(0.0, self.limit_usd - self.spent_usd)
