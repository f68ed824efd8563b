"""Branch-free exp and log for numba loops that LLVM vectorizes (shared by the kernels).

numba has no vector math library here: ``np.exp`` / ``np.log`` inside a loop become calls
to the scalar libm (~18 ns each on our machine), which also stops LLVM from vectorizing
the loop. The functions below are straight-line arithmetic on the bits of a float64, so a
loop over them compiles to AVX-512/AVX2 code (~1 ns per lane). They are inlined into their
callers (``inline="always"``) and used by :mod:`ppl_mixtures.kernels.density` (the fused
mixture density for NUTS) and :mod:`ppl_mixtures.kernels.estep` (the CAVI/EM/SVI pass).

- :func:`exp2_nonpositive` -- 2^t for t <= 0, <= 4.5e-16 relative error (2 ulp);
- :func:`exp_nonpositive` -- exp(x) = 2^(x log2 e) for x <= 0, with NaN and -inf handled;
- :func:`log_positive` -- log(t) for a normal t > 0, <= 5e-16 relative error (2 ulp).

Accuracy is checked against numpy over their whole ranges in ``tests/test_numba_math.py``.

numba's on-disk cache (``cache=True``) does not track imports: after editing this file,
touch the modules that use it (or clear their ``__pycache__``) so that their cached
machine code is rebuilt.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["EXP2_FLOOR", "LN2", "LOG2E", "exp2_nonpositive", "exp_nonpositive", "log_positive"]

LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453
#: exp2_nonpositive returns 0 at and below this (2^-1021 ~ 4.5e-308, the smallest result
#: that is still a normal number: subnormals are slow and never matter next to 1).
EXP2_FLOOR = -1021.0
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split in two (Cody-Waite): e * LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_SQRT2 = 1.4142135623730951

# 2^u on |u| <= 1/2: the degree-10 Chebyshev interpolant of 2^u (near-minimax), computed in
# 60-digit decimal arithmetic and rounded to float64; max relative error 4.5e-16 including
# the rounding of Horner's rule (the degree-12 Taylor polynomial it replaces: 2 more FMAs).
_P10 = 7.0725859329506076e-09
_P9 = 1.0208690299958305e-07
_P8 = 1.321544258802368e-06
_P7 = 1.5252657260200837e-05
_P6 = 0.00015403530441735828
_P5 = 0.0013333558230164974
_P4 = 0.009618129107606888
_P3 = 0.05550410866444772
_P2 = 0.24022650695910097
_P1 = 0.69314718055995
_P0 = 1.0


@intrinsic
def f64_from_bits(typingctx, bits):
    """The float64 whose IEEE-754 bits are the int64 ``bits`` (a bit cast, no conversion)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def bits_from_f64(typingctx, value):
    """The IEEE-754 bits of the float64 ``value`` as an int64 (a bit cast)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@numba.njit(inline="always", cache=True, error_model="numpy")
def exp2_nonpositive(t):
    """2^t for EXP2_FLOOR < t <= 0; exactly 1.0 at t = 0 and 0.0 at or below EXP2_FLOOR.

    t = n + u with n = round(t) and |u| <= 1/2 (t - n is exact), 2^u by the polynomial
    above, 2^n assembled from its exponent bits. No NaN handling: callers pass finite t.
    """
    keep = t > EXP2_FLOOR
    clamped = t if keep else EXP2_FLOOR
    n = np.floor(clamped + 0.5)
    u = clamped - n
    p = _P10
    p = p * u + _P9
    p = p * u + _P8
    p = p * u + _P7
    p = p * u + _P6
    p = p * u + _P5
    p = p * u + _P4
    p = p * u + _P3
    p = p * u + _P2
    p = p * u + _P1
    p = p * u + _P0
    value = p * f64_from_bits((np.int64(n) + 1023) << 52)  # type: ignore[call-arg]
    return value if keep else 0.0


@numba.njit(inline="always", cache=True, error_model="numpy")
def exp_nonpositive(x):
    """exp(x) for x <= 0 (relative error <= ~1e-16 (1 + |x|)); 0 below -708; NaN stays NaN."""
    value = exp2_nonpositive(x * LOG2E)
    return value if x == x else x  # NaN in, NaN out


@numba.njit(inline="always", cache=True, error_model="numpy")
def log_positive(t):
    """log(t) for a normal number t > 0 to 2 ulp; NaN stays NaN.

    t = m 2^e with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(s), s = (m-1)/(m+1),
    |s| < 0.172, by its series to s^23 (remainder < 1e-18).
    """
    bits = bits_from_f64(t)  # type: ignore[call-arg,var-annotated]
    e = (bits >> 52) - 1023
    m = f64_from_bits((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + 1 if big else e
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    q = 1.0 / 23.0
    q = q * s2 + 1.0 / 21.0
    q = q * s2 + 1.0 / 19.0
    q = q * s2 + 1.0 / 17.0
    q = q * s2 + 1.0 / 15.0
    q = q * s2 + 1.0 / 13.0
    q = q * s2 + 1.0 / 11.0
    q = q * s2 + 1.0 / 9.0
    q = q * s2 + 1.0 / 7.0
    q = q * s2 + 1.0 / 5.0
    q = q * s2 + 1.0 / 3.0
    q = q * s2 + 1.0
    fe = np.float64(e)
    value = fe * _LN2_HI + (2.0 * s * q + fe * _LN2_LO)
    return value if t == t else t  # NaN in, NaN out
