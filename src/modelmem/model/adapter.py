"""A LoRA adapter as PEFT describes it: a pure description, read from an
``adapter_config.json`` by :mod:`modelmem.model.sources.adapter` and priced by
:mod:`modelmem.memory.finetune`."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["AdapterConfig"]


@dataclass(frozen=True, slots=True)
class AdapterConfig:
    """A LoRA adapter as PEFT describes it."""

    rank: int
    alpha: float
    targets: tuple[str, ...] | str  # names, "all-linear", or one regex (see ``targets_regex``)
    targets_regex: bool = False
    base_model: str | None = None
    dora: bool = False
    lora_bias: bool = False
    bias: str = "none"  # none | all | lora_only: which base biases train
    rank_pattern: tuple[tuple[str, int], ...] = ()
    layers_to_transform: tuple[int, ...] = ()
    exclude_modules: tuple[str, ...] | str | None = None
    modules_to_save: tuple[str, ...] = ()
    origin: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def uniform(self) -> bool:
        """Whether one rank on named targets describes it (what the training estimate takes)."""
        return not (
            self.targets_regex
            or self.rank_pattern
            or self.layers_to_transform
            or self.exclude_modules
            or self.modules_to_save
            or self.lora_bias
            or self.bias != "none"
        )
