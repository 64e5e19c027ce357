"""Statistics over run seeds: the spread of one method's IIA, and a paired comparison of two
methods measured at the same seeds (the MLP's DAS against its best neuron split).

A run seed draws everything: the entities, the network's data and initial weights, DAS's
counterfactuals and initial rotation, the test counterfactuals. Seeds are therefore independent
replicates, and the two methods at one seed share a network and a test set: the comparison is
paired, on the per-seed differences.

Usage::

    result = paired({42: 0.96, 43: 0.9995}, {42: 0.933, 43: 0.995}, seed=0)
    result["significant"], result["statement"]

The test is the exact sign-flip permutation test on the differences (two-sided): under "no
difference" each seed's difference is as likely positive as negative, so its p is the share of
the 2^N sign patterns whose mean difference is at least as far from 0 as the observed one. It
assumes neither normality nor equal variances, which matters for IIA near 1. Its smallest
possible p is 2 / 2^N: with 5 seeds 0.0625, so 5 seeds can never show a difference at the 5 %
level, however consistent. The paired t-test and the t-test's power are given beside it.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

ALPHA = 0.05
EXACT_UP_TO = 16                        # seeds; above, this many random sign patterns
SIGN_PATTERNS = 2 ** EXACT_UP_TO
BOOTSTRAP_RESAMPLES = 10_000
POWER_EFFECT = 1.0                      # a "large" standardized effect (Cohen's d)
TEST = ("exact two-sided sign-flip permutation test on the per-seed differences "
        f"(random sign patterns above {EXACT_UP_TO} seeds)")


def describe(values) -> dict:
    """n, mean, sd (n - 1 in the denominator; None for one value), min and max."""
    values = np.asarray(list(values), dtype=float)
    return {"n": len(values), "mean": float(values.mean()),
            "sd": float(values.std(ddof=1)) if len(values) > 1 else None,
            "min": float(values.min()), "max": float(values.max())}


def sign_flip_p(differences, seed: int) -> float:
    """Two-sided p of the sign-flip test of mean(differences) = 0."""
    d = np.asarray(differences, dtype=float)
    result = stats.permutation_test((d,), np.mean, permutation_type="samples",
                                    n_resamples=SIGN_PATTERNS, alternative="two-sided",
                                    vectorized=True, rng=np.random.default_rng(seed))
    return float(result.pvalue)


def paired_t(differences) -> tuple[float | None, float | None]:
    """(t, two-sided p) of the paired t-test; None where the differences do not vary."""
    d = np.asarray(differences, dtype=float)
    if len(d) < 2 or np.ptp(d) == 0:
        return None, None
    result = stats.ttest_1samp(d, 0.0)
    return float(result.statistic), float(result.pvalue)


def t_power(n: int, effect: float) -> float:
    """Power of the two-sided paired t-test at level ALPHA with n pairs, for a true mean
    difference of ``effect`` standard deviations of the differences."""
    df = n - 1
    crit = stats.t.ppf(1 - ALPHA / 2, df)
    nc = effect * math.sqrt(n)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def seeds_for_power(effect: float, power: float = 0.8, most: int = 10_000) -> int | None:
    """The fewest seeds at which the paired t-test reaches ``power`` for ``effect``."""
    if not effect or not math.isfinite(effect):
        return None
    return next((n for n in range(2, most) if t_power(n, abs(effect)) >= power), None)


def bootstrap_ci(differences, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean difference, resampling seeds. With few seeds
    it is too narrow (5 values have only 126 distinct resamples): read it with the test."""
    d = np.asarray(differences, dtype=float)
    if np.ptp(d) == 0:
        return float(d[0]), float(d[0])
    result = stats.bootstrap((d,), np.mean, method="percentile", confidence_level=level,
                             n_resamples=BOOTSTRAP_RESAMPLES, vectorized=True,
                             rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired(first: dict, second: dict, seed: int, names: tuple[str, str] = ("das", "neurons"),
           labels: tuple[str, str] | None = None) -> dict:
    """``first`` against ``second`` ({run seed: IIA}, the same seeds, at least 2): each one's
    spread, the per-seed differences first - second, the test, the bootstrap interval and the
    power that this number of seeds has. ``seed`` seeds the resampling; ``names`` are the JSON
    keys, ``labels`` (default: the names) how the statement calls the two methods."""
    if sorted(first) != sorted(second) or len(first) < 2:
        raise ValueError("paired: the same run seeds, at least two, for both methods")
    seeds = sorted(first)
    a, b = (np.array([m[s] for s in seeds], dtype=float) for m in (first, second))
    d = a - b
    t, t_p = paired_t(d)
    p = sign_flip_p(d, seed)
    low, high = bootstrap_ci(d, seed)
    sd = d.std(ddof=1)
    effect = float(d.mean() / sd) if sd > 0 else None
    result = {
        "seeds": seeds, names[0]: spread(first), names[1]: spread(second),
        "difference": {"of": f"{names[0]} - {names[1]}", **spread(dict(zip(seeds, d))),
                       "bootstrap_ci_95": [low, high],
                       "effect_size_d": effect,
                       "wins": {names[0]: int((d > 0).sum()), names[1]: int((d < 0).sum()),
                                "ties": int((d == 0).sum())}},
        "test": {"name": TEST, "p": p, "alpha": ALPHA,
                 "smallest_possible_p": max(2.0 / 2 ** len(d), 1.0 / SIGN_PATTERNS)},
        "paired_t_test": {"t": t, "df": len(d) - 1, "p": t_p},
        "power": {"t_test_at_effect_size_d": POWER_EFFECT,
                  "t_test_power": t_power(len(d), POWER_EFFECT),
                  "seeds_for_80_percent_power_at_observed_d":
                      seeds_for_power(effect) if effect is not None else None},
        "significant": bool(p < ALPHA)}
    result["statement"] = statement(result, names, labels or names)
    return result


def statement(result: dict, names: tuple[str, str], labels: tuple[str, str]) -> str:
    """The comparison in one paragraph, from the numbers of :func:`paired`."""
    d, test, power = result["difference"], result["test"], result["power"]
    n = d["n"]
    t = result["paired_t_test"]
    t_text = (f"the paired t-test gives t({t['df']}) = {t['t']:.2f}, p = {t['p']:.3f}"
              if t["p"] is not None else "the paired t-test is undefined (the differences do "
              "not vary)")
    verdict = ("significant" if result["significant"] else "not significant")
    text = (f"{labels[0]} - {labels[1]} over {n} seeds: mean {d['mean']:+.4f} (sd "
            f"{_number(d['sd'])}, per seed {d['min']:+.4f} to {d['max']:+.4f}; "
            f"{labels[0]} higher at {d['wins'][names[0]]} of {n} seeds, {labels[1]} at "
            f"{d['wins'][names[1]]}), 95 % bootstrap interval over seeds "
            f"[{d['bootstrap_ci_95'][0]:+.4f}, {d['bootstrap_ci_95'][1]:+.4f}] (too narrow at "
            "few seeds: the test decides). Exact sign-flip test, two-sided: p = "
            f"{test['p']:.4f}, {verdict} at {test['alpha']:g}; {t_text}.")
    if test["smallest_possible_p"] >= test["alpha"]:
        text += (f" With {n} seeds the sign-flip test cannot go below p = "
                 f"{test['smallest_possible_p']:.4f}, so no outcome could be significant at "
                 f"{test['alpha']:g}: it takes at least {_fewest_seeds(test['alpha'])} seeds.")
    text += (f" The paired t-test's power against a large effect (d = "
             f"{power['t_test_at_effect_size_d']:g}) is {power['t_test_power']:.2f} at {n} seeds")
    needed = power["seeds_for_80_percent_power_at_observed_d"]
    if needed is not None and d["effect_size_d"] is not None:
        text += (f"; 80 % power at the observed effect (d = {d['effect_size_d']:.2f}) "
                 f"would take {needed} seeds")
    return text + "."


def _fewest_seeds(alpha: float) -> int:
    return next(n for n in range(1, 64) if 2.0 / 2 ** n < alpha)


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def spread(values: dict) -> dict:
    """{run seed: IIA} of one method: its seeds and :func:`describe`."""
    values = {int(s): float(v) for s, v in values.items()}
    seeds = sorted(values)
    return {"seeds": seeds, "per_seed": {str(s): values[s] for s in seeds},
            **describe(values[s] for s in seeds)}
