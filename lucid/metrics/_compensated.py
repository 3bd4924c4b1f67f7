"""A float64 running sum that stays accurate over any number of additions.

The streaming metric, the evaluation job and the Dask reductions all add up
partial sums, one per batch, chunk or block. A plain float64 running sum loses
about one rounding per addition, so its error grows with the number of
batches; Neumaier's compensated sum carries the lost low-order bits along and
keeps the error near one rounding however many partial sums there are.
"""
import math


class CompensatedSum:
    """A Neumaier-compensated float64 sum of the values added to it."""

    __slots__ = ("total", "compensation")

    def __init__(self, total=0.0, compensation=0.0):
        self.total = float(total)
        self.compensation = float(compensation)

    def add(self, value):
        """Add one float to the sum."""
        value = float(value)
        total = self.total + value
        # Whichever operand is larger in magnitude keeps its bits; the rounding
        # error of the addition is what the smaller one lost.
        if abs(self.total) >= abs(value):
            self.compensation += (self.total - total) + value
        else:
            self.compensation += (value - total) + self.total
        self.total = total

    def merge(self, other):
        """Add another compensated sum to this one."""
        self.add(other.total)
        self.compensation += other.compensation

    @property
    def value(self):
        """The sum, as a float; inf and NaN totals are returned as they are."""
        # With an infinite total the compensation is inf - inf = NaN: meaningless.
        if not math.isfinite(self.total):
            return self.total
        return self.total + self.compensation

    def __getstate__(self):
        return (self.total, self.compensation)

    def __setstate__(self, state):
        self.total, self.compensation = state
