"""The quantile maps of real-valued columns, against their closed forms."""

import numpy as np
import pytest
from scipy.special import ndtri
from scipy.stats import norm

from skvae._column_maps import (
    MAX_KNOTS,
    QuantileMaps,
    expected_log_slope,
    fit_knots,
    forward,
    images_of,
    inverse,
    log_slope,
)
from skvae import VAETransformer
from skvae._data import DataSpace


def skewed(n=400, seed=0):
    return np.random.RandomState(seed).lognormal(size=n)


def test_distinct_values_give_a_knot_per_five_rows_at_the_normal_quantile_of_its_rank():
    values = np.random.RandomState(0).permutation(np.arange(25.0) ** 2)
    knots, low, high = fit_knots(values)
    # Levels 0, 1/4, ..., 1 of 25 rows: the values of ranks 0, 6, 12, 18, 24.
    ranks = np.array([0, 6, 12, 18, 24])
    np.testing.assert_array_equal(knots, ranks.astype(float) ** 2)
    # Rank i of n sits at level (i + 0.5) / n.
    np.testing.assert_allclose(low, ndtri((ranks + 0.5) / 25))
    np.testing.assert_array_equal(low, high)
    # Fewer than ten rows: the two ends, a linear map.
    np.testing.assert_array_equal(fit_knots(np.array([3.0, -1.0, 10.0, 2.5]))[0], [-1.0, 10.0])


def test_a_repeated_value_spans_the_levels_of_its_rows():
    values = np.r_[np.zeros(30), np.arange(1.0, 21.0)]
    knots, low, high = fit_knots(values)
    # 10 levels of 50 rows, at ranks 0, 5, 11, 16, 22, 27, 33, 38, 44, 49: the
    # thirty zeros take six of them, and hold ranks 0..29.
    np.testing.assert_array_equal(knots, [0.0, 4.0, 9.0, 15.0, 20.0])
    np.testing.assert_allclose([low[0], high[0]], ndtri(np.array([0.5, 29.5]) / 50))
    assert forward(np.array([0.0]), knots, low, high)[0] == pytest.approx(
        (ndtri(0.01) + ndtri(0.59)) / 2)


def test_held_out_values_get_about_their_true_density():
    # A knot at every row makes the map a histogram of one row per bin, its
    # log-density about 0.58 nats (Euler's constant) too low on held-out
    # values; with five rows per knot, about 0.1.
    rng = np.random.RandomState(0)
    knots, low, high = fit_knots(rng.normal(size=400))
    held_out = rng.normal(size=20000)
    log_density = norm.logpdf(forward(held_out, knots, low, high)) + log_slope(
        held_out, knots, low, high)
    assert log_density.mean() == pytest.approx(norm.logpdf(held_out).mean(), abs=0.2)


def test_at_most_max_knots_and_nothing_to_map_for_a_constant_column():
    knots, _, _ = fit_knots(np.arange(5000.0))
    assert len(knots) == MAX_KNOTS
    assert fit_knots(np.array([2.0, 2.0, np.nan])) == (None, None, None)
    # NaN entries are left out of the fit.
    np.testing.assert_array_equal(fit_knots(np.array([1.0, np.nan, 2.0]))[0], [1.0, 2.0])


def test_inverse_undoes_forward_inside_and_beyond_the_training_range():
    knots, low, high = fit_knots(skewed())
    x = np.r_[np.linspace(knots[0] - 3.0, knots[-1] + 10.0, 2001), np.nan]
    back = inverse(forward(x, knots, low, high), knots, low, high)
    np.testing.assert_allclose(back[:-1], x[:-1], rtol=1e-9, atol=1e-9)
    assert np.isnan(back[-1])
    # Strictly increasing everywhere: an invertible map.
    assert np.all(np.diff(forward(x[:-1], knots, low, high)) > 0)


def test_a_draw_anywhere_in_a_repeated_values_interval_comes_back_as_that_value():
    values = np.array([0.0] * 50 + [1.0] * 30 + list(np.linspace(1.5, 9.0, 20)))
    knots, low, high = fit_knots(values)
    inside = np.linspace(low[0], high[0], 11)
    np.testing.assert_array_equal(inverse(inside, knots, low, high), 0.0)
    inside = np.linspace(low[1], high[1], 11)
    np.testing.assert_array_equal(inverse(inside, knots, low, high), 1.0)
    # Standard normal draws mapped back repeat each value about as often as the data.
    draws = inverse(np.random.RandomState(0).normal(size=20000), knots, low, high)
    assert np.mean(draws == 0.0) == pytest.approx(0.5, abs=0.02)
    assert np.mean(draws == 1.0) == pytest.approx(0.3, abs=0.02)


def test_log_slope_is_the_derivative_of_forward():
    knots, low, high = fit_knots(skewed(60))
    # Points off the knots, in the range and beyond it.
    x = np.r_[(knots[:-1] + knots[1:]) / 2, knots[0] - 1.0, knots[-1] + 5.0]
    step = 1e-7 * np.minimum(np.diff(knots).min(), 1.0)
    numeric = (forward(x + step, knots, low, high) - forward(x - step, knots, low, high)) / (
        2 * step)
    np.testing.assert_allclose(np.exp(log_slope(x, knots, low, high)), numeric, rtol=1e-4)
    assert np.isnan(log_slope(np.array([np.nan]), knots, low, high)[0])


def test_the_change_of_variables_gives_a_density_of_the_values():
    # phi(f(x)) f'(x) integrates to 1 over the real line: a density of x.
    knots, low, high = fit_knots(skewed(200))
    # The midpoint rule inside each segment, where the density is smooth, and
    # over the tails.
    edges = np.r_[knots[0] - 20.0, knots, knots[-1] + 40.0]
    total = 0.0
    for a, b in zip(edges, edges[1:]):
        width = (b - a) / 400
        x = a + width * (np.arange(400) + 0.5)
        density = norm.pdf(forward(x, knots, low, high)) * np.exp(
            log_slope(x, knots, low, high))
        total += density.sum() * width
    assert total == pytest.approx(1.0, abs=1e-3)


def test_expected_log_slope_is_the_mean_under_a_standard_normal_image():
    knots, low, high = fit_knots(skewed(300))
    y = np.random.RandomState(1).normal(size=400000)
    x = inverse(y, knots, low, high)  # no value repeats: the exact inverse
    monte_carlo = log_slope(x, knots, low, high).mean()
    assert expected_log_slope(knots, low, high) == pytest.approx(monte_carlo, abs=0.01)


def test_maps_change_only_their_columns_and_give_zero_slope_elsewhere():
    rng = np.random.RandomState(0)
    X = np.column_stack([rng.lognormal(size=100), np.ones(100), rng.normal(size=100)])
    maps = QuantileMaps.fit(X, [0, 1])  # column 1 is constant: not mapped
    assert maps.columns == (0,)
    mapped = maps.apply(X)
    np.testing.assert_array_equal(mapped[:, 1:], X[:, 1:])
    np.testing.assert_allclose(maps.invert(mapped), X, rtol=1e-12)
    slopes = maps.log_slopes(X)
    assert np.all(slopes[:, 1:] == 0) and np.all(slopes[:, 0] != 0)
    assert QuantileMaps.fit(X, [1]) is None


# ------------------------------------------------------------------ the data layer


def mixed_space(X, transform="quantile"):
    return DataSpace.fit(X, "auto", [0, 0, 3], estimator_name="test",
                         numeric_transform=transform)


def table(n=300, seed=0):
    rng = np.random.RandomState(seed)
    return np.column_stack([rng.lognormal(size=n), rng.normal(size=n),
                            rng.randint(3, size=n).astype(float)])


def test_auto_maps_the_numeric_columns_of_a_table_and_not_a_homogeneous_array():
    X = table()
    assert mixed_space(X, "auto").maps.columns == (0, 1)
    assert mixed_space(X, "none").maps is None
    numbers = X[:, :2]
    assert DataSpace.fit(numbers, "auto", None, estimator_name="t",
                         numeric_transform="auto").maps is None
    assert DataSpace.fit(numbers, "auto", None, estimator_name="t",
                         numeric_transform="quantile").maps.columns == (0, 1)


def test_the_log_determinant_of_each_row_counts_its_own_slopes_and_the_scale():
    X = table()
    space = mixed_space(X)
    slopes = space.maps.log_slopes(X)
    expected = np.log(space.scale).sum() - slopes.sum(axis=1)
    np.testing.assert_allclose(space.log_abs_det_of(X), expected)
    np.testing.assert_allclose(space.complete_log_abs_det_of(X), expected)
    # A hole: the marginal leaves its entry out; the completed count uses the
    # map's expected slope in its place.
    holed = X.copy()
    holed[0, 0] = np.nan
    marginal = space.log_abs_det_of(holed)[0]
    assert marginal == pytest.approx(np.log(space.scale[1:]).sum() - slopes[0, 1])
    completed = space.complete_log_abs_det_of(holed)[0]
    assert completed == pytest.approx(
        np.log(space.scale).sum() - space.maps.expected_log_slopes[0] - slopes[0, 1])


def test_rows_become_the_standardised_images_and_come_back_as_they_were():
    X = table()
    space = mixed_space(X)
    tensor = space.to_tensor(X, "cpu").numpy()
    images = space.maps.apply(X)
    np.testing.assert_allclose(tensor[:, :2], (images[:, :2] - space.shift[:2])
                               / space.scale[:2], rtol=1e-5, atol=1e-6)
    # The images are close to standard normal: the scaling is nearly the identity.
    assert np.all(np.abs(space.shift[:2]) < 0.05) and np.all(np.abs(space.scale[:2] - 1) < 0.1)
    codes = np.column_stack([tensor[:, :2], np.eye(3)[X[:, 2].astype(int)]])
    np.testing.assert_allclose(space.to_data(codes.astype(np.float64)), X, rtol=1e-5)


def test_the_maps_are_saved_and_read_back_equal():
    space = mixed_space(table())
    again = DataSpace.from_state(space.get_state(), 3)
    assert again == space and again.maps is not None


def _state_with(**changes):
    state = mixed_space(table()).get_state()
    maps = state["maps"]
    for key, change in changes.items():
        maps[key] = change(maps[key])
    return state


@pytest.mark.parametrize("changes, message", [
    ({"columns": lambda c: [2, 1]}, "not distinct, ascending"),
    ({"columns": lambda c: [0, 2]}, "real-valued columns"),
    ({"columns": lambda c: [0, 0]}, "not distinct"),
    ({"columns": lambda c: []}, "not distinct"),
    ({"knots": lambda k: [list(reversed(k[0])), k[1]]}, "strictly increasing"),
    ({"knots": lambda k: [k[0][:-1], k[1]]}, "knots but"),
    ({"low": lambda v: [[v[0][1]] + v[0][1:], v[1]]}, "strictly increasing"),
    ({"high": lambda v: [[x + 10.0 for x in v[0]], v[1]]}, "separate intervals"),
    ({"knots": lambda k: [k[0][:-1] + [float("nan")], k[1]]}, "NaN or infinite"),
    ({"knots": lambda k: [k[0][:1], k[1]]}, "2 to 1000 numbers"),
    ({"knots": lambda k: [list(np.linspace(0, 1, 1001)), k[1]]}, "2 to 1000 numbers"),
    ({"knots": lambda k: [["1"] + k[0][1:], k[1]]}, "2 to 1000 numbers"),
    ({"low": lambda v: v[:1]}, "one map per mapped column"),
    ({"knots": lambda k: [[k[0][0], k[0][0] + 1e-320] + k[0][2:], k[1]]}, "finite slopes"),
])
def test_crafted_maps_are_refused_naming_what_is_wrong(changes, message):
    with pytest.raises(ValueError, match=message):
        DataSpace.from_state(_state_with(**changes), 3)


def test_a_maps_entry_that_is_not_the_expected_dict_is_refused():
    state = mixed_space(table()).get_state()
    state["maps"] = {**state["maps"], "extra": 1}
    with pytest.raises(ValueError, match="quantile maps entry is malformed"):
        DataSpace.from_state(state, 3)


def test_images_are_the_middles_of_the_intervals():
    np.testing.assert_array_equal(images_of([0.0, 1.0], [2.0, 1.0]), [1.0, 1.0])


def test_wide_tables_get_fewer_knots_per_column_and_files_no_more_than_the_total(monkeypatch):
    import skvae._column_maps as column_maps

    X = np.random.RandomState(0).lognormal(size=(5000, 600))
    maps = QuantileMaps.fit(X, range(600))
    assert max(len(k) for k in maps.knots) == column_maps.MAX_TOTAL_KNOTS // 600
    space = mixed_space(table())
    monkeypatch.setattr(column_maps, "MAX_TOTAL_KNOTS", 10)
    with pytest.raises(ValueError, match="more than 10 knots"):
        DataSpace.from_state(space.get_state(), 3)


def test_a_state_too_large_for_a_file_is_a_clear_error_and_writes_nothing(monkeypatch, tmp_path):
    import skvae._persistence as persistence

    vae = VAETransformer(hidden_layer_sizes=(4,), max_iter=1, random_state=0).fit(table())

    def too_large(weights, metadata):
        raise RuntimeError("Error while serializing: header too large")

    monkeypatch.setattr(persistence, "safetensors_bytes", too_large)
    with pytest.raises(ValueError, match="more than a safetensors header holds"):
        persistence.save(vae, tmp_path / "m.skvae")
    assert not list(tmp_path.iterdir())


def test_beyond_the_range_inverse_goes_back_at_forwards_pace_even_with_repeated_ends():
    # A count piled up at zero: its end interval is wide, the gap after it narrow.
    counts = np.random.RandomState(0).poisson(0.5, size=2000).astype(float)
    knots, low, high = fit_knots(counts)
    x = np.array([-3.0, -1.0, knots[-1] + 3.0, knots[-1] + 10.0])
    back = inverse(forward(x, knots, low, high), knots, low, high)
    # Off by at most half an end interval's width over the end slope, not by 100.
    images = images_of(low, high)
    slopes = np.diff(images)[[0, -1]] / np.diff(knots)[[0, -1]]
    offset = np.array([(images[0] - low[0]) / slopes[0], (high[-1] - images[-1]) / slopes[1]])
    assert np.all(np.abs(back - x) <= offset[[0, 0, 1, 1]] + 1e-9)
    assert np.all(np.diff(back) > 0)


def test_a_column_of_subnormal_steps_is_left_unmapped():
    X = np.tile([0.0, 1e-320, 2e-320], 20)[:, None]
    assert QuantileMaps.fit(X, [0]) is None
    assert QuantileMaps.fit(np.tile([0.0, 1e-300, 2e-300], 20)[:, None], [0]) is not None
