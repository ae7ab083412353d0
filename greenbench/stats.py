"""Statistics over repetitions, computed in one place: mean, 95% CI, CV, and ratios with CIs."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from greenbench.energy.meter import COMPONENTS
from greenbench.records import TOKEN_LATENCY_COLUMNS
from greenbench.sweep import param_value, varying_params
from greenbench.tasks import ordered_phases
from greenbench.variants import variant_order


@functools.lru_cache(maxsize=4096)  # summaries ask for the same few integer df again and again
def t975(df: float) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom, exact for fractional
    df too (Welch's): t's CDF through the regularized incomplete beta function, solved by
    Newton's method to 1e-12. NaN below 1 degree of freedom."""
    if not df >= 1:
        return math.nan
    # the CDF is concave for t > 0, so Newton's steps from the normal quantile, which lies
    # below every t quantile, rise to the root without overshooting it
    t = 1.959963984540054
    for _ in range(100):
        step = (0.975 - _t_cdf(t, df)) / _t_pdf(t, df)
        t += step
        if abs(step) < 1e-12:
            break
    return t


def _t_pdf(t: float, df: float) -> float:
    norm = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    return norm * (1 + t * t / df) ** (-(df + 1) / 2)


def _t_cdf(t: float, df: float) -> float:
    """P(T <= t) for t >= 0."""
    return 1 - 0.5 * _incomplete_beta(df / 2, 0.5, df / (df + t * t))


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):  # where the continued fraction converges fast
        return front * _beta_fraction(a, b, x) / a
    return 1 - front * _beta_fraction(b, a, 1 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The incomplete beta function's continued fraction (modified Lentz's method)."""
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1) < 1e-15:
            break
    return result


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float  # sample standard deviation (n - 1)
    ci95: float  # half-width of the 95% confidence interval of the mean
    cv: float  # std / |mean|
    # The idle baseline's part of the mean's standard error. Every window of a cell subtracts
    # the same idle estimate, so its error does not average out over windows: it adds to the
    # windows' own spread, with degrees of freedom from the idle samples.
    idle_se: float = 0.0
    idle_df: float = math.inf

    @property
    def se(self) -> float:
        """The standard error of the mean, idle's error included."""
        return math.sqrt(self.std**2 / self.n + self.idle_se**2) if self.n >= 2 else math.nan

    @property
    def df(self) -> float:
        """Welch-Satterthwaite degrees of freedom of `se`."""
        if self.n < 2:
            return math.nan
        spread, idle = self.std**2 / self.n, self.idle_se**2
        denominator = spread**2 / (self.n - 1) + (idle**2 / self.idle_df if idle else 0.0)
        return (spread + idle) ** 2 / denominator if denominator else self.n - 1.0

    @property
    def low(self) -> float:
        return self.mean - self.ci95

    @property
    def high(self) -> float:
        return self.mean + self.ci95


def summarize(
    values: Iterable[float | None], idle_se: float = 0.0, idle_df: float = math.inf
) -> Summary:
    """Mean, spread and 95% CI of `values`; `idle_se` (with `idle_df`) is the idle baseline's
    standard error in the mean (see idle_error), added to the windows' own."""
    data = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(data)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = sum(data) / n
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan, idle_se, idle_df)
    std = math.sqrt(sum((x - mean) ** 2 for x in data) / (n - 1))
    cv = std / abs(mean) if mean else math.nan
    summary = Summary(n, mean, std, math.nan, cv, idle_se, idle_df)
    return dataclasses.replace(summary, ci95=t975(summary.df) * summary.se)


# the columns that tell one cell's windows (one idle baseline) from another's
_CELL_COLUMNS = ["run_id", "cell_id", "attempt"]


def idle_error(windows: pd.DataFrame, per: str = "unit_count") -> tuple[float, float]:
    """The idle baselines' standard error in the mean J/unit of `windows` (J per call with
    `per="calls"`), and its degrees of freedom.

    A cell's idle power has standard error se_k (from its idle samples); window i subtracts it
    over duration_i for unit_count_i units, so the cell's error enters the mean of all n
    windows as sum_i(se_k * duration_i / unit_count_i) / n, the same sign in every window.
    Cells' idle errors are independent: their variances add (Welch-Satterthwaite for the df).
    Records without idle samples (older ones, imports) carry none.
    """
    if "idle_power_se_w" not in windows or windows.empty:
        return 0.0, math.inf
    se = pd.to_numeric(windows["idle_power_se_w"], errors="coerce")
    units = pd.to_numeric(windows[per], errors="coerce")
    per_window = (se * pd.to_numeric(windows["duration_s"], errors="coerce") / units).fillna(0.0)
    samples = pd.to_numeric(
        windows.get("idle_samples", pd.Series(math.nan, index=windows.index)), errors="coerce"
    )
    keys = [windows[c] for c in _CELL_COLUMNS if c in windows]
    cells = per_window.groupby(keys, dropna=False).groups if keys else {0: windows.index}
    variance, denominator = 0.0, 0.0
    for index in cells.values():
        term = float(per_window[index].sum()) / len(windows)
        # an idle of m samples gives m - 1 degrees of freedom; unknown m: the fewest, 2
        m = float(samples[index].iloc[0])
        df = (m if math.isfinite(m) else 2.0) - 1
        variance += term**2
        denominator += term**4 / df
    if variance == 0:
        return 0.0, math.inf
    return math.sqrt(variance), variance**2 / denominator if denominator else math.inf


@dataclass(frozen=True)
class Ratio:
    value: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """The 95% interval excludes 1: a change beyond the noise."""
        return math.isfinite(self.low) and (self.low > 1 or self.high < 1)


def ratio(a: Summary, b: Summary) -> Ratio:
    """a.mean / b.mean with a 95% CI: delta method on the log ratio, Welch degrees of freedom."""
    if not (a.n and b.n) or a.mean <= 0 or b.mean <= 0:
        value = a.mean / b.mean if b.n and b.mean else math.nan
        return Ratio(value, math.nan, math.nan)
    value = a.mean / b.mean
    if a.n < 2 or b.n < 2:
        return Ratio(value, math.nan, math.nan)
    va = (a.se / a.mean) ** 2
    vb = (b.se / b.mean) ** 2
    se = math.sqrt(va + vb)
    if se == 0:
        return Ratio(value, value, value)
    df = (va + vb) ** 2 / (va**2 / a.df + vb**2 / b.df)
    spread = math.exp(t975(df) * se)
    return Ratio(value, value / spread, value * spread)


# a summary row is one workload x phase x variant x device on one machine with one set of
# workload parameters and one GPU power limit: rows from two machines, two batch sizes or two
# power limits are never pooled
SUMMARY_KEYS = ["workload", "phase", "variant", "device", "node", "params", "power_limit_w"]
# the same, across machines: what a run is compared with another run (maybe elsewhere) by
CELL_KEYS = [k for k in SUMMARY_KEYS if k != "node"]
PHASE_ORDER = ordered_phases()


def phase_order(phase: str) -> tuple[int, str]:
    """Sort key: the kinds' phases in registry order (prefill, decode, forward, train), then
    any other phase by name."""
    return (PHASE_ORDER.index(phase) if phase in PHASE_ORDER else len(PHASE_ORDER), phase)


def limit_order(text: str) -> tuple[int, float]:
    """Sort key of a summary's power_limit_w: the GPU as it was (no limit set) first, then
    the limits in watts (250 before 1000)."""
    return (0, 0.0) if text == "" else (1, float(text))


def in_catalogue_order(
    frame: pd.DataFrame, keys: Sequence[str], numeric: Sequence[str] = ()
) -> pd.DataFrame:
    """`frame` sorted by `keys`, phases and variants in catalogue order (fp32 first), power
    limits as limit_order; the `numeric` keys (swept parameters) by value, rows without one
    last."""
    order = {"phase": phase_order, "variant": variant_order, "power_limit_w": limit_order}

    def key(col: pd.Series) -> pd.Series:
        if col.name in order:
            return col.map(order[col.name])
        if col.name in numeric:
            return pd.to_numeric(col, errors="coerce")
        return col

    return frame.sort_values(list(keys), key=key).reset_index(drop=True)


def param_columns(
    frame: pd.DataFrame, within: Sequence[str] = ("workload",)
) -> tuple[pd.DataFrame, list[str]]:
    """`frame` with a column per workload parameter whose value differs between its rows of
    one `within` group (a sweep's `batch`), read from `params`; and those columns' names.
    Tables show these instead of the params JSON; a row without the parameter holds None."""
    if "params" not in frame or frame.empty:
        return frame, []
    groups = frame[list(within)].astype(str).agg("/".join, axis=1)
    names = [
        k
        for k in varying_params(zip(groups, frame["params"], strict=True))
        if k not in frame.columns
    ]
    if not names:
        return frame, []
    out = frame.copy()
    for name in names:
        values = [param_value(p, name) for p in frame["params"]]
        out[name] = pd.Series(values, index=frame.index, dtype=object)  # 4 stays 4, not 4.0
    return out, names


def valid_mask(frame: pd.DataFrame) -> pd.Series:
    """Rows whose figures can be right (records older than the `valid` column count as valid)."""
    if "valid" not in frame:
        return pd.Series(True, index=frame.index)
    return frame["valid"].ne(False)


def key_text(value: Any) -> Any:
    """A group key as summaries hold it: missing is "", a number its text (300, not the 300.0
    of a column with missing values), text as it is."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def as_keys(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """A copy of `frame` with its `keys` columns as key_text: older or synthetic records may
    lack node, params or power_limit_w, an empty key, not a lost group."""
    out = frame.copy(deep=False)  # copy-on-write: only the key columns are new
    for key in keys:
        if key not in out:
            out[key] = ""
        else:  # power_limit_w: numbers as their text
            out[key] = key_column(out[key], numbers_as_text=True)
    return out


def key_column(column: pd.Series, numbers_as_text: bool = False) -> pd.Series:
    """A key column as objects, missing as "" (numbers as key_text's text when asked): each
    distinct value converted once, not a Python object made per row of a year of records."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    numeric = numbers_as_text and pd.api.types.is_numeric_dtype(column)
    values = [key_text(u) if numeric else u for u in uniques.tolist()]
    table = np.array([*values, ""], dtype=object)  # code -1, missing, reads the last: ""
    keys = pd.Series(table[codes], index=column.index, dtype=object, name=column.name)
    return keys.infer_objects() if numeric else keys  # the dtype Series.map(key_text) gave


def floats(values: pd.Series) -> pd.Series:
    """pd.to_numeric(values, errors="coerce") as floats. A column of nothing but missing
    values (an object column of None: a field no record filled, such as the token latencies of
    a CNN-only history) is NaN at once, not converted value by value (0.35 s a column at a
    year of history, several dozen columns a report)."""
    if values.dtype == object and not values.notna().any():
        return pd.Series(math.nan, index=values.index, name=values.name)
    return pd.to_numeric(values, errors="coerce").astype(float)


def summarize_frame(frame: pd.DataFrame, keys: Sequence[str] = SUMMARY_KEYS) -> pd.DataFrame:
    """One row per group of `ok` records: J/unit (net) mean, CI95, CV and the other means.

    Energy figures come from the valid windows only: an invalid one (net energy <= 0, a counter
    that went backwards) cannot be right, so it must not pull a mean or a ratio. A group whose
    windows are all invalid keeps its row, with n = 0 and no figures; `invalid` counts them.
    Every group is computed at once (groupby aggregations): the figures are summarize's and
    idle_error's for each group alone, which stay the one-group reference.
    """
    ok = as_keys(frame[frame["status"] == "ok"], keys).reset_index(drop=True)
    if ok.empty:
        return pd.DataFrame()
    group = pd.Series(ok.groupby(list(keys), sort=True, dropna=False).ngroup(), index=ok.index)
    count = int(group.max()) + 1
    heads = ok.loc[~group.duplicated()].set_index(group[~group.duplicated()]).sort_index()
    valid = valid_mask(ok)
    part, part_group = ok[valid], group[valid]
    per_unit = summarize_groups(part, part_group, count)
    every = range(count)

    def mean(rows: pd.DataFrame, by: pd.Series, column: str) -> pd.Series:
        if column not in rows:
            return pd.Series(math.nan, index=every)
        values = floats(rows[column])
        return values.groupby(by).mean().reindex(every)

    def median(column: str) -> pd.Series:
        # a cell's p90 is the median of its valid windows' p90s, not a pool of their calls:
        # records keep each window's percentiles, not every call, and the windows are
        # repetitions of one measurement, so their median is the typical window's figure,
        # which one disturbed window (a stall, another process) does not move
        if column not in part:
            return pd.Series(math.nan, index=every)
        values = floats(part[column])
        return values.groupby(part_group).median().reindex(every)

    out = heads[list(keys)].copy()
    out["n"] = per_unit["n"]
    windows = group.value_counts().reindex(every)
    out["invalid"] = windows - part_group.value_counts().reindex(every, fill_value=0)
    out["unit"] = heads["unit"]
    out["j_per_unit"] = per_unit["mean"]
    out["j_per_unit_ci95"] = per_unit["ci95"]
    out["j_per_unit_cv"] = per_unit["cv"]
    out["j_per_unit_std"] = per_unit["std"]
    out["j_per_unit_idle_se"] = per_unit["idle_se"]
    out["j_per_unit_idle_df"] = per_unit["idle_df"]
    out["gross_j_per_unit"] = mean(part, part_group, "gross_energy_per_unit_j")
    out["j_per_call"] = mean(part, part_group, "energy_per_call_j")
    # text kinds: per token, from the tokens each sequence holds (NaN otherwise)
    out["j_per_token"] = per_unit["mean"] / mean(ok, group, "tokens_per_unit")
    for column in ("fidelity_top1", "fidelity_kl"):
        out[column] = mean(ok, group, column)
    out["quality_metric"] = _first_text(ok, group, "quality_metric", count)
    for column in ("quality", "fidelity_cosine", "quantized_share", "throughput"):
        out[column] = mean(ok, group, column)
    out["power_w"] = mean(part, part_group, "power_w")
    out["g_per_1k_units"] = mean(part, part_group, "emissions_per_1k_units_g")
    # the footprint beyond electricity: estimates (footprint.py), NaN where not recorded
    out["embodied_g_per_unit"] = mean(part, part_group, "embodied_per_unit_g")
    out["water_l_per_unit"] = mean(part, part_group, "water_per_unit_l")
    out["methods"] = _methods(ok, group, count)
    out["estimated"] = ok["estimated"].astype(bool).groupby(group).any().reindex(every)
    out["reliable"] = ok["reliable"].astype(bool).groupby(group).all().reindex(every)
    for column in LATENCY_COLUMNS:
        out[column] = median(column)
    # columns from the plain values, so their dtypes are inferred as for rows built one by one
    # (text columns as str, a column of None as object)
    return pd.DataFrame({column: out[column].tolist() for column in out.columns})


def summarize_groups(windows: pd.DataFrame, groups: pd.Series, count: int) -> pd.DataFrame:
    """summarize(energy_per_unit_j, *idle_error(...)) of each group of `windows` at once:
    n, mean, std, ci95, cv, idle_se, idle_df indexed by group number 0..count-1 (`groups`,
    aligned with `windows`, numbers each window's group; a number without windows gets n = 0).
    """
    every = range(count)
    raw = floats(windows["energy_per_unit_j"])
    value = raw.where(np.isfinite(raw))
    by = value.groupby(groups)
    n = by.count().reindex(every, fill_value=0).astype(int)
    mean = (by.sum() / by.count()).reindex(every)
    deviation = (value - mean.reindex(groups.to_numpy()).to_numpy()) ** 2
    std = np.sqrt(deviation.groupby(groups).sum().reindex(every) / (n - 1)).where(n >= 2)
    idle_se, idle_df = _idle_errors(windows, groups, count)
    idle_se = idle_se.where(n > 0, 0.0)  # no windows: summarize's Summary has no idle part
    idle_df = idle_df.where(n > 0, math.inf)
    cv = (std / mean.abs()).where((n >= 2) & (mean != 0))
    spread, idle = std**2 / n, idle_se**2
    se = np.sqrt(spread + idle)
    denominator = spread**2 / (n - 1) + (idle**2 / idle_df).where(idle != 0, 0.0)
    df = ((spread + idle) ** 2 / denominator).where(denominator != 0, n - 1.0)
    ci95 = pd.Series([t975(d) for d in df], index=every) * se
    return pd.DataFrame(
        {"n": n, "mean": mean, "std": std, "ci95": ci95.where(n >= 2), "cv": cv,
         "idle_se": idle_se, "idle_df": idle_df},
        index=every,
    )  # fmt: skip


def _idle_errors(
    windows: pd.DataFrame, groups: pd.Series, count: int
) -> tuple[pd.Series, pd.Series]:
    """idle_error of each group of `windows` at once: its idle_se and idle_df by number."""
    every = range(count)
    if "idle_power_se_w" not in windows or windows.empty:
        return pd.Series(0.0, index=every), pd.Series(math.inf, index=every)
    se = floats(windows["idle_power_se_w"])
    units = floats(windows["unit_count"])
    duration = floats(windows["duration_s"])
    per_window = (se * duration / units).fillna(0.0)
    samples = floats(windows.get("idle_samples", pd.Series(math.nan, index=windows.index)))
    cell_keys = [windows[c] for c in _CELL_COLUMNS if c in windows]
    cells = pd.Series(
        windows.groupby([groups, *cell_keys], sort=False, dropna=False).ngroup().to_numpy(),
        index=windows.index,
    )
    first = ~cells.duplicated()  # a cell's idle samples: its first window's, as idle_error
    cell_group = groups[first].set_axis(cells[first].to_numpy()).sort_index()
    m = samples[first].set_axis(cells[first].to_numpy()).sort_index()
    windows_in_group = groups.value_counts()
    term = per_window.groupby(cells).sum() / windows_in_group.reindex(cell_group).to_numpy()
    # an idle of m samples gives m - 1 degrees of freedom; unknown m: the fewest, 2
    df = m.where(np.isfinite(m), 2.0) - 1
    variance = (term**2).groupby(cell_group).sum().reindex(every, fill_value=0.0)
    denominator = (term**4 / df).groupby(cell_group).sum().reindex(every, fill_value=0.0)
    idle_se = np.sqrt(variance).where(variance != 0, 0.0)
    idle_df = (variance**2 / denominator).where((variance != 0) & (denominator != 0), math.inf)
    return idle_se, idle_df


# the latency percentiles a summary row carries, named as the record columns they summarise
LATENCY_COLUMNS = ("call_p50_s", "call_p90_s", "call_p99_s", *TOKEN_LATENCY_COLUMNS)


def _first_text(rows: pd.DataFrame, groups: pd.Series, column: str, count: int) -> pd.Series:
    """Each group's first non-null value of a text column that older records or some cells
    lack, as text; None where there is none."""
    texts: list[str | None] = [None] * count
    if column in rows:
        values = rows[column].dropna()
        first = values[~groups[values.index].duplicated()]
        for number, value in zip(groups[first.index], first, strict=True):
            texts[number] = str(value)
    return pd.Series(texts, index=range(count), dtype=object)


def _methods(rows: pd.DataFrame, groups: pd.Series, count: int) -> pd.Series:
    """Each group's measuring methods, "component:method" sorted and space-joined ("none" left
    out), over all its rows."""
    pairs = []
    for component in COMPONENTS:
        method = rows[f"method_{component}"]
        kept = method.notna() & (method != "none")
        # the distinct (group, method) pairs first: a year of records has few of them
        found = pd.DataFrame({"group": groups[kept], "method": method[kept]}).drop_duplicates()
        texts = [f"{component}:{m}" for m in found["method"]]
        pairs.append(pd.DataFrame({"group": found["group"].to_numpy(), "text": texts}))
    every = pd.concat(pairs).drop_duplicates().sort_values(["group", "text"])
    joined = every.groupby("group")["text"].agg(" ".join)
    return joined.reindex(range(count), fill_value="").astype(object)


# the columns of a summarize_frame row that summary_of reads back
SUMMARY_COLUMNS = (
    "n",
    "j_per_unit",
    "j_per_unit_std",
    "j_per_unit_ci95",
    "j_per_unit_cv",
    "j_per_unit_idle_se",
    "j_per_unit_idle_df",
)


def summary_of(row: Mapping[str, float]) -> Summary:
    """The J/unit Summary back from a summarize_frame row."""
    return Summary(
        n=int(row["n"]),
        mean=row["j_per_unit"],
        std=row["j_per_unit_std"],
        ci95=row["j_per_unit_ci95"],
        cv=row["j_per_unit_cv"],
        idle_se=_finite_or(row.get("j_per_unit_idle_se"), 0.0),
        idle_df=_finite_or(row.get("j_per_unit_idle_df"), math.inf),
    )


def _finite_or(value: object, default: float) -> float:
    """A row's number, or `default` where older summaries lack it (None or NaN)."""
    number = float(value) if isinstance(value, int | float) else math.nan
    return number if math.isfinite(number) else default
