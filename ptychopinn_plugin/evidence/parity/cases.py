"""The architectures the parity experiments compare, and how two results are compared."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...config import Mode, ModelConfig

__all__ = ['ALL_CASES', 'Case', 'relative_error']


@dataclass(frozen=True)
class Case:
    """One architecture: pattern size, gridsize and training mode."""

    pattern_size_px: int
    gridsize: int
    mode: Mode

    @classmethod
    def parse(cls, text: str) -> Case:
        """``'64:2:pinn'`` -> Case(64, 2, Mode.PINN)."""
        try:
            size, gridsize, mode = text.split(':')
            return cls(int(size), int(gridsize), Mode(mode))
        except ValueError as exc:
            raise SystemExit(
                f'cannot read the case {text!r}: write N:GRIDSIZE:MODE, e.g. 64:2:pinn or '
                f'128:1:supervised ({exc})'
            ) from exc

    @property
    def label(self) -> str:
        return f'N={self.pattern_size_px}, gridsize {self.gridsize}, {self.mode.value}'

    def model(self, n_filters_scale: int = 2) -> ModelConfig:
        return ModelConfig(
            mode=self.mode,
            pattern_size_px=self.pattern_size_px,
            gridsize=self.gridsize,
            num_neighbors=4 if self.gridsize > 1 else 7,
            n_filters_scale=n_filters_scale,
        )


ALL_CASES = tuple(
    Case(n, g, m) for n in (64, 128) for g in (1, 2) for m in (Mode.PINN, Mode.SUPERVISED)
)


def relative_error(value: np.ndarray, reference: np.ndarray) -> float:
    """max |value - reference| / max |reference|."""
    peak = float(np.max(np.abs(reference)))
    if peak == 0:
        raise ValueError('the reference is zero everywhere; no relative error can be formed')
    return float(np.max(np.abs(np.asarray(value) - reference)) / peak)
