"""The classic rules of thumb, kept beside the detailed figures so people can compare.

- Inference: weights = parameters × bytes per parameter of the number format.
- Training (the classic fp32 + AdamW case): weights + gradients (one copy each) +
  optimizer states (AdamW two per parameter: m and v; SGD with momentum one; plain SGD
  none), so ≈ 4 × inference for AdamW, 3 × with SGD momentum, 2 × with plain SGD. The
  factor may be set directly (the literature quotes 3 to 4).

Source: Hugging Face "Model training anatomy" (fp32 AdamW: 4 + 4 + 8 = 16 bytes/param);
EleutherAI "Transformer Math 101" (Anthony, Biderman, Schoelkopf 2023).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil

from modelmem.errors import InvalidValueError, UnknownNameError
from modelmem.formats import NumberFormat
from modelmem.memory.breakdown import MemoryBreakdown, MemoryComponent

# Optimizer states per parameter, in copies of the parameter (torch allocates each state
# like the parameter): AdamW m and v; SGD's momentum buffer; none for plain SGD.
STATE_COPIES: dict[str, int] = {"adamw": 2, "adam": 2, "sgd-momentum": 1, "sgd": 0}
MIN_TRAINING_FACTOR, MAX_TRAINING_FACTOR = Fraction(2), Fraction(4)
# Mixed-precision AdamW, before activations: 16-bit weights and gradients (2 + 2) and the
# fp32 master copy with both Adam moments (4 + 4 + 4 = K = 12). Rajbhandari et al. 2020
# (ZeRO), §3.1: "16Ψ bytes" for a model of Ψ parameters.
MIXED_PRECISION_ADAMW_BYTES_PER_PARAM = 16


@dataclass(frozen=True, slots=True)
class RuleOfThumb:
    params: int
    format: NumberFormat
    optimizer: str
    training_factor: Fraction
    inference: MemoryBreakdown  # weights only
    training: MemoryBreakdown  # weights + gradients + optimizer states

    @property
    def inference_bytes(self) -> int:
        return self.inference.total_bytes

    @property
    def training_bytes(self) -> int:
        return self.training.total_bytes

    def to_dict(self) -> dict[str, object]:
        return {
            "inference_bytes": self.inference_bytes,
            "training_bytes": self.training_bytes,
            "format": self.format.name,
            "bytes_per_param": str(self.format.bytes_per_value),
            "optimizer": self.optimizer,
            "training_factor": str(self.training_factor),
            "training_components": [c.to_dict() for c in self.training.components],
        }


def weights_bytes_rule(params: int, fmt: NumberFormat) -> int:
    """params × bytes per value (block overhead included), rounded up to a whole byte."""
    return ceil(params * fmt.bytes_per_value)


def rule_of_thumb(
    params: int,
    fmt: NumberFormat,
    optimizer: str = "adamw",
    training_factor: Fraction | int | float | None = None,
) -> RuleOfThumb:
    """Inference = params × bytes; training = factor × inference, split into its parts.

    Without ``training_factor`` the factor follows from the optimizer (2 + its state
    copies). A given factor must lie in [2, 4]; the part above weights + gradients is
    shown as optimizer states.
    """
    if isinstance(params, bool) or not isinstance(params, int) or params <= 0:
        raise InvalidValueError("params", params, "must be a positive integer")
    if optimizer not in STATE_COPIES:
        raise UnknownNameError("optimizer", optimizer, STATE_COPIES)
    states = Fraction(STATE_COPIES[optimizer])
    if training_factor is not None:
        factor = Fraction(training_factor).limit_denominator(1000)
        if not MIN_TRAINING_FACTOR <= factor <= MAX_TRAINING_FACTOR:
            raise InvalidValueError(
                "training_factor",
                training_factor,
                "must be between 2 and 4 (weights + gradients + states)",
            )
        states = factor - 2
    weights = weights_bytes_rule(params, fmt)
    per = f"{params:,} params × {fmt.bytes_per_value} B ({fmt.name})"
    inference = MemoryBreakdown((MemoryComponent("weights", weights, per),))
    training = MemoryBreakdown(
        (
            MemoryComponent("weights", weights, per),
            MemoryComponent("gradients", weights, "one gradient per parameter, same format"),
            MemoryComponent(
                "optimizer_states",
                ceil(weights * states),
                f"{states} × weights ({optimizer}: AdamW 2, SGD+momentum 1, SGD 0)",
            ),
        )
    )
    return RuleOfThumb(params, fmt, optimizer, 2 + states, inference, training)
