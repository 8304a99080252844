"""Black-body physics for the synthetic sky: Planck's law integrated over a band's wavelengths.

A star's colour is set by its temperature alone, so the ratio of two band fluxes measures the
temperature, and with it the colour in every other band. That is the known truth that lets a
test tell whether a model given several bands really predicts colours better than one given one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy import constants as const
from scipy.integrate import simpson

H = const.h.si.value
C = const.c.si.value
K_B = const.k_B.si.value


@dataclass(frozen=True)
class Band:
    """A top-hat filter: wavelength range in micrometres."""
    name: str
    lo_um: float
    hi_um: float


def planck_lambda(wavelength_m: np.ndarray, temperature_k: np.ndarray | float) -> np.ndarray:
    """Spectral radiance B_lambda(T) in W sr^-1 m^-3 (broadcast over wavelength and temperature)."""
    wavelength_m = np.asarray(wavelength_m, dtype=np.float64)
    temperature_k = np.asarray(temperature_k, dtype=np.float64)
    x = H * C / (wavelength_m * K_B * temperature_k)
    return 2.0 * H * C ** 2 / wavelength_m ** 5 / np.expm1(x)


def band_radiance(temperature_k: np.ndarray | float, band: Band, samples: int = 257) -> np.ndarray:
    """Radiance integrated over the band, W sr^-1 m^-2, by Simpson's rule on a fine wavelength grid."""
    temperature_k = np.atleast_1d(np.asarray(temperature_k, dtype=np.float64))
    wavelengths = np.linspace(band.lo_um, band.hi_um, samples) * 1e-6
    values = planck_lambda(wavelengths[None, :], temperature_k[:, None])
    return simpson(values, x=wavelengths, axis=1)


def relative_band_fluxes(temperature_k: np.ndarray, bands: list[Band], reference: Band,
                         white_k: float = 6000.0) -> np.ndarray:
    """(N, len(bands)) flux in each band per unit flux in `reference`, calibrated so that a
    `white_k` star has ratio 1 in every band (a Sun-like star looks white, hotter ones blue)."""
    temperature_k = np.atleast_1d(np.asarray(temperature_k, dtype=np.float64))
    ref = band_radiance(temperature_k, reference)
    white_ref = band_radiance(white_k, reference)[0]
    columns = [band_radiance(temperature_k, band) / ref / (band_radiance(white_k, band)[0] / white_ref)
               for band in bands]
    return np.stack(columns, axis=1)
