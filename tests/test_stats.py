import math

import pytest

from greenbench.stats import ratio, summarize, t975


def test_t_quantiles_match_tables():
    assert t975(1) == pytest.approx(12.706)
    assert t975(2) == pytest.approx(4.303)
    assert t975(30) == pytest.approx(2.042)
    assert t975(60) == pytest.approx(2.000, abs=1e-3)
    assert t975(1000) == pytest.approx(1.962, abs=1e-3)
    assert 4.303 > t975(2.5) > 3.182
    assert math.isnan(t975(0))


def test_summarize_mean_ci_cv():
    s = summarize([1.0, 2.0, 3.0])
    assert s.n == 3 and s.mean == pytest.approx(2.0)
    assert s.std == pytest.approx(1.0)
    assert s.ci95 == pytest.approx(4.303 / math.sqrt(3))
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
