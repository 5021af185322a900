"""Error metrics between a float reference and a quantized result, accumulated over samples.

Only numpy. Every metric compares the *dequantized* int8 values with the float values:
- cosine similarity: 1.0 = same direction (scale-free; below ~0.99 is visible damage);
- SNR in dB: 10·log10(Σ ref² / Σ (ref − q)²); each 6 dB is one bit of precision, about 40 dB
  is what 8 bits give a well-calibrated tensor; None means no error at all;
- max and mean absolute error, in the tensor's own float units;
- top-1 agreement (classifiers): how often both models pick the same class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(slots=True)
class ErrorStats:
    """Running sums from which cosine, SNR and absolute errors are computed."""

    count: int = 0
    dot: float = 0.0
    reference_energy: float = 0.0
    test_energy: float = 0.0
    error_energy: float = 0.0
    abs_error_sum: float = 0.0
    abs_error_max: float = 0.0

    def update(self, reference: np.ndarray, test: np.ndarray) -> None:
        """Add one sample (same shape; both converted to float64 to sum without drift)."""
        ref = np.asarray(reference, dtype=np.float64).ravel()
        out = np.asarray(test, dtype=np.float64).ravel()
        error = ref - out
        self.count += ref.size
        self.dot += float(ref @ out)
        self.reference_energy += float(ref @ ref)
        self.test_energy += float(out @ out)
        self.error_energy += float(error @ error)
        if error.size:
            abs_error = np.abs(error)
            self.abs_error_sum += float(abs_error.sum())
            self.abs_error_max = max(self.abs_error_max, float(abs_error.max()))

    @property
    def cosine(self) -> float:
        """Cosine similarity of all samples taken as one vector (1.0 when both are zero)."""
        norm = math.sqrt(self.reference_energy * self.test_energy)
        if norm == 0.0:
            return 1.0 if self.reference_energy == self.test_energy else 0.0
        return self.dot / norm

    @property
    def snr_db(self) -> float:
        """Signal-to-noise ratio in dB (inf when there is no error, -inf for a zero signal)."""
        if self.error_energy == 0.0:
            return math.inf
        if self.reference_energy == 0.0:
            return -math.inf
        return 10.0 * math.log10(self.reference_energy / self.error_energy)

    @property
    def mean_abs_error(self) -> float:
        return self.abs_error_sum / self.count if self.count else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "cosine": round(self.cosine, 6),
            "snr_db": finite_or_none(self.snr_db, 2),
            "max_abs_error": self.abs_error_max,
            "mean_abs_error": self.mean_abs_error,
        }


@dataclass(slots=True)
class TopOneAgreement:
    """How often reference and test agree on the arg-max class."""

    agree: int = 0
    total: int = 0

    def update(self, reference: np.ndarray, test: np.ndarray) -> None:
        self.total += 1
        self.agree += int(np.argmax(reference) == np.argmax(test))

    @property
    def rate(self) -> float:
        return self.agree / self.total if self.total else 0.0


def is_classifier_output(shape: tuple[int, ...]) -> bool:
    """A [1, C] output with C ≥ 2: treat it as class scores for top-1 agreement."""
    return len(shape) == 2 and shape[0] == 1 and shape[1] >= 2


def finite_or_none(value: float, digits: int) -> float | None:
    """JSON has no infinity: an exact match (inf dB) becomes None."""
    return round(value, digits) if math.isfinite(value) else None
