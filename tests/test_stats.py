import math

import pandas as pd
import pytest

from greenbench.report.sample import synthetic_frame
from greenbench.stats import idle_error, ratio, summarize, summarize_frame, summary_of, t975


def test_t_quantiles_match_tables():
    assert t975(1) == pytest.approx(12.706, abs=5e-4)  # tables round to three decimals
    assert t975(2) == pytest.approx(4.303, abs=5e-4)
    assert t975(30) == pytest.approx(2.042, abs=5e-4)
    assert t975(60) == pytest.approx(2.000, abs=1e-3)
    assert t975(1000) == pytest.approx(1.962, abs=1e-3)
    assert 4.303 > t975(2.5) > 3.182
    assert math.isnan(t975(0))


def test_summarize_mean_ci_cv():
    s = summarize([1.0, 2.0, 3.0])
    assert s.n == 3 and s.mean == pytest.approx(2.0)
    assert s.std == pytest.approx(1.0)
    assert s.ci95 == pytest.approx(4.302653 / math.sqrt(3))
    assert s.cv == pytest.approx(0.5)


def test_summarize_single_value_has_no_interval_and_skips_nan():
    s = summarize([5.0, float("nan"), None])
    assert s.n == 1 and s.mean == 5.0 and math.isnan(s.ci95)


def test_ratio_ci_contains_the_ratio_and_flags_real_differences():
    a = summarize([2.0, 2.1, 1.9, 2.0])
    b = summarize([1.0, 1.05, 0.95, 1.0])
    r = ratio(a, b)
    assert r.value == pytest.approx(2.0)
    assert r.low < 2.0 < r.high
    assert r.significant
    same = ratio(b, summarize([1.0, 1.1, 0.9, 1.0]))
    assert same.low < 1 < same.high and not same.significant


def _t_pdf(t, df):
    norm = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    return norm * (1 + t * t / df) ** (-(df + 1) / 2)


@pytest.mark.parametrize("df", [1.0, 1.5, 2.5, 3.7, 7.3, 42.0])
def test_t_quantiles_are_exact_for_fractional_degrees_of_freedom(df):
    # an independent check: Simpson's rule on t's density from 0 to the quantile gives 0.475
    q, steps = t975(df), 20_000
    h = q / steps
    area = _t_pdf(0, df) + _t_pdf(q, df)
    area += sum((4 if i % 2 else 2) * _t_pdf(i * h, df) for i in range(1, steps))
    assert area * h / 3 == pytest.approx(0.475, abs=1e-9)


def test_t_quantiles_match_their_closed_forms():
    assert t975(1) == pytest.approx(math.tan(0.475 * math.pi), abs=1e-10)
    assert t975(2) == pytest.approx(0.95 * math.sqrt(2 / (4 * 0.975 * 0.025)), abs=1e-10)


def test_the_idle_baselines_error_widens_the_interval_and_does_not_average_out():
    plain = summarize([1.0, 2.0, 3.0])
    s = summarize([1.0, 2.0, 3.0], idle_se=1.0, idle_df=2.0)
    spread, idle = 1.0 / 3, 1.0
    assert s.se == pytest.approx(math.sqrt(spread + idle))
    df = (spread + idle) ** 2 / (spread**2 / 2 + idle**2 / 2)
    assert s.df == pytest.approx(df)
    assert s.ci95 == pytest.approx(t975(df) * math.sqrt(spread + idle))
    assert s.ci95 > plain.ci95
    # without idle error the figures are the plain t interval's
    assert (plain.se, plain.df) == (pytest.approx(1 / math.sqrt(3)), 2.0)


def _windows(cells):
    """Window rows: per cell (id, idle SE in W, idle samples), two windows of 2 s x 10 units."""
    rows = []
    for cell, se_w, samples in cells:
        for _ in range(2):
            rows.append(
                {
                    "run_id": "r",
                    "cell_id": cell,
                    "attempt": 1,
                    "idle_power_se_w": se_w,
                    "idle_samples": samples,
                    "duration_s": 2.0,
                    "unit_count": 10,
                }
            )
    return pd.DataFrame(rows)


def test_idle_error_is_common_to_a_cells_windows_and_independent_between_cells():
    # one cell: 0.5 W x 2 s / 10 units = 0.1 J/unit in each window, the same 0.1 in the mean
    se, df = idle_error(_windows([("a", 0.5, 6)]))
    assert (se, df) == (pytest.approx(0.1), pytest.approx(5.0))
    # two cells of equal error: each carries half the windows, so 0.05 each, added in quadrature
    se, df = idle_error(_windows([("a", 0.5, 6), ("b", 0.5, 6)]))
    assert se == pytest.approx(math.sqrt(2) * 0.05)
    assert df == pytest.approx(10.0)  # Welch-Satterthwaite: 5 + 5
    # records without idle samples carry no idle error
    assert idle_error(_windows([("a", None, None)])) == (0.0, math.inf)
    # a standard error without its sample count: the fewest samples, 2, give 1 df
    unknown = _windows([("a", 0.5, 6)]).drop(columns="idle_samples")
    assert idle_error(unknown) == (pytest.approx(0.1), pytest.approx(1.0))


def test_summaries_and_ratios_carry_the_idle_error():
    frame = synthetic_frame({"cnn": ["forward"]}, ["fp32", "int8-dynamic"])
    quiet = summarize_frame(frame)
    frame["idle_power_se_w"] = 2.0
    frame["idle_samples"] = 6
    noisy = summarize_frame(frame)
    assert (noisy["j_per_unit_ci95"] > quiet["j_per_unit_ci95"]).all()
    a, b = (summary_of(noisy.iloc[i]) for i in (0, 1))
    qa, qb = (summary_of(quiet.iloc[i]) for i in (0, 1))
    wide, narrow = ratio(a, b), ratio(qa, qb)
    assert wide.value == pytest.approx(narrow.value)
    assert wide.high - wide.low > narrow.high - narrow.low
