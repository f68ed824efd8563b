"""PyMC builders: names, dims, priors, the pm.Mixture oracle, minibatch scaling, start values."""

import numpy as np
import pymc as pm
import pytest

from ppl_mixtures import MixtureSpec
from ppl_mixtures.inference.pymc.models import (
    build_builtin_model,
    build_latent_model,
    build_marginal_model,
    initial_point,
    initial_points,
    mixture_random,
)
from ppl_mixtures.model.density import mixture_logp
from ppl_mixtures.model.transforms import stick_breaking_forward

RNG = np.random.default_rng(20)
POINTS_2D = np.concatenate(
    [RNG.normal([-2.0, 0.0], 1.0, (15, 2)), RNG.normal([2.0, 1.0], 0.5, (15, 2))]
)
POINTS_1D = POINTS_2D[:, :1].copy()
# a larger data set (600 rows)
LARGE_2D = np.concatenate(
    [RNG.normal([-2.0, 0.0], 1.0, (300, 2)), RNG.normal([2.0, 1.0], 0.5, (300, 2))]
)

# (name, points, spec): the oracle cases cover known per-feature sd, learned sd + ordered,
# the simplex transform and fixed weights
ORACLE_CASES = {
    "known_sd_2d": (
        POINTS_2D,
        MixtureSpec(3, mean_prior_sd=2.0, dirichlet_alpha=(0.5, 1.0, 2.0), obs_sd=(0.7, 1.3)),
    ),
    "learned_ordered_2d_large": (
        LARGE_2D,
        MixtureSpec(2, mean_prior_mean=(0.0, 1.0), obs_sd="learned", ordered=True),
    ),
    "learned_simplex_1d": (
        POINTS_1D,
        MixtureSpec(3, obs_sd="learned", weights_transform="simplex"),
    ),
    "fixed_weights_1d": (POINTS_1D, MixtureSpec(2, weights="fixed", obs_sd=0.8)),
}


def _logp_fn(model):
    """One compiled function: (total logp, observed term) at an unconstrained point."""
    fn = model.compile_fn([model.logp(), model.logp(vars=[model["x"]])], point_fn=True)
    return fn


@pytest.fixture(scope="module", params=list(ORACLE_CASES))
def oracle_pair(request):
    points, spec = ORACLE_CASES[request.param]
    marginal, builtin = build_marginal_model(points, spec), build_builtin_model(points, spec)
    return request.param, points, spec, marginal, builtin, _logp_fn(marginal), _logp_fn(builtin)


def test_marginal_logp_equals_builtin_mixture(oracle_pair):
    from ppl_mixtures.kernels.density_op import MixtureLogp

    _, _, _, marginal, builtin, f_marginal, f_builtin = oracle_pair
    assert [v.name for v in marginal.value_vars] == [v.name for v in builtin.value_vars]
    # the marginal model's density is the fused numba Op at every data size
    assert any(isinstance(node.op, MixtureLogp) for node in f_marginal.f.maker.fgraph.toposort())
    rng = np.random.default_rng(1)
    shapes = {name: np.shape(value) for name, value in marginal.initial_point().items()}
    for _ in range(3):  # random unconstrained points
        point = {name: rng.normal(size=shape) for name, shape in shapes.items()}
        total_m, obs_m = f_marginal(point)
        total_b, obs_b = f_builtin(point)
        np.testing.assert_allclose(total_m, total_b, rtol=1e-12)
        np.testing.assert_allclose(obs_m, obs_b, rtol=1e-12)


def _unconstrained(model, spec, start):
    """Map constrained start values to the model's value variables by hand (numpy)."""
    point = {}
    for name, value in start.items():
        if name == "means_first":
            point["means_first_ordered__"] = np.concatenate([value[:1], np.log(np.diff(value))])
        elif name == "weights":
            point[
                "weights_stickbreaking__"
                if spec.weights_transform == "stick_breaking"
                else "weights_simplex__"
            ] = (
                stick_breaking_forward(value)
                if spec.weights_transform == "stick_breaking"
                else np.log(value[:-1]) - np.log(value).mean()
            )
        elif name == "obs_precision":
            point["obs_precision_log__"] = np.log(value)
        else:
            point[name] = value
    assert set(point) == {v.name for v in model.value_vars}
    return point


def test_observed_term_equals_numpy_density_at_the_start(oracle_pair):
    _, points, spec, marginal, _, f_marginal, _ = oracle_pair
    start = initial_point(spec, points)
    total, observed = f_marginal(_unconstrained(marginal, spec, start))
    assert np.isfinite(total)  # valid start, also for the ordered spec
    means = (
        start["means"]
        if "means" in start
        else np.column_stack(
            [start["means_first"]] + ([start["means_rest"]] if "means_rest" in start else [])
        )
    )
    weights = start.get("weights", spec.fixed_weight_values())
    obs_sd = (
        start["obs_precision"] ** -0.5
        if spec.learned_obs_sd
        else spec.known_obs_sd(points.shape[1])
    )
    np.testing.assert_allclose(
        observed, mixture_logp(points, weights, means, obs_sd).sum(), rtol=1e-12
    )


# --------------------------------------------------------------------------- structure
def _dims(model):
    return {name: tuple(d) for name, d in model.named_vars_to_dims.items()}


def test_names_dims_and_coords_of_the_default_model():
    model = build_marginal_model(POINTS_2D, MixtureSpec(3))
    assert [v.name for v in model.free_RVs] == ["weights", "means"]
    assert [v.name for v in model.value_vars] == ["weights_stickbreaking__", "means"]
    dims = _dims(model)
    assert dims["means"] == ("component", "feature")
    assert dims["weights"] == ("component",)
    assert dims["x"] == ("obs", "feature")
    assert list(model.coords["component"]) == [0, 1, 2]
    assert list(model.coords["feature"]) == [0, 1]
    assert len(model.coords["obs"]) == 30
    assert "obs_sd" not in model.named_vars


def test_learned_sd_ordered_and_fixed_weights_variables():
    model = build_marginal_model(
        POINTS_2D, MixtureSpec(2, obs_sd="learned", ordered=True, weights="fixed")
    )
    dims = _dims(model)
    assert {v.name for v in model.free_RVs} == {"means_first", "means_rest", "obs_precision"}
    assert {v.name for v in model.deterministics} == {"means", "weights", "obs_sd"}
    assert dims["obs_sd"] == dims["obs_precision"] == dims["means"] == ("component", "feature")
    assert dims["means_first"] == ("component",)
    assert dims["means_rest"] == ("component", "feature_rest")
    np.testing.assert_array_equal(model["weights"].eval(), [0.5, 0.5])
    assert "means_first_ordered__" in {v.name for v in model.value_vars}


def test_simplex_transform_option_and_k1():
    model = build_marginal_model(POINTS_1D, MixtureSpec(2, weights_transform="simplex"))
    assert "weights_simplex__" in {v.name for v in model.value_vars}
    one = build_marginal_model(POINTS_1D, MixtureSpec(1))  # K = 1: weights fixed at [1]
    assert {v.name for v in one.free_RVs} == {"means"}
    np.testing.assert_array_equal(one["weights"].eval(), [1.0])


def test_priors_follow_the_spec():
    spec = MixtureSpec(
        2,
        mean_prior_mean=(1.0, -3.0),
        mean_prior_sd=(0.5, 2.0),
        dirichlet_alpha=(0.5, 4.0),
        obs_sd="learned",
        precision_prior_shape=3.0,
        precision_prior_rate=1.5,
    )
    model = build_marginal_model(POINTS_2D, spec)
    means, weights, precision = pm.draw(
        [model["means"], model["weights"], model["obs_precision"]], draws=4000, random_seed=2
    )
    np.testing.assert_allclose(means.mean(0), [[1.0, -3.0]] * 2, atol=0.1)
    np.testing.assert_allclose(means.std(0), [[0.5, 2.0]] * 2, rtol=0.06)
    np.testing.assert_allclose(weights.mean(0), [0.5 / 4.5, 4.0 / 4.5], atol=0.02)
    np.testing.assert_allclose(precision.mean(0), np.full((2, 2), 2.0), rtol=0.05)  # shape/rate


def test_latent_model_has_assignments_and_conditional_likelihood():
    spec = MixtureSpec(2, obs_sd=0.9)
    model = build_latent_model(POINTS_1D, spec)
    assert _dims(model)["z"] == ("obs",)
    assert _dims(model)["x"] == ("obs", "feature")
    means = np.array([[-2.0], [2.0]])
    z = (POINTS_1D[:, 0] > 0).astype(int)
    point = {
        "weights_stickbreaking__": stick_breaking_forward(np.array([0.4, 0.6])),
        "means": means,
        "z": z,
    }
    observed = model.compile_logp(vars=[model["x"]], jacobian=False)(point)
    from scipy.stats import norm

    np.testing.assert_allclose(
        observed, norm.logpdf(POINTS_1D[:, 0], means[z, 0], 0.9).sum(), rtol=1e-12
    )


# --------------------------------------------------------------------------- minibatch
def test_minibatch_model_scales_to_full_data():
    spec = MixtureSpec(2, obs_sd=1.0)
    points = np.random.default_rng(5).normal(size=(200, 2))
    full = build_marginal_model(points, spec)
    mini = build_marginal_model(points, spec, batch_size=20)
    assert "obs" not in mini.coords
    from pymc.variational.minibatch_rv import MinibatchRandomVariable

    node = mini["x"].owner
    assert isinstance(node.op, MinibatchRandomVariable)
    assert int(node.inputs[1].eval()) == 200  # total_size on the rows
    point = {"weights_stickbreaking__": np.array([0.3]), "means": np.array([[-1.0, 0], [1, 0]])}
    exact = full.compile_logp(vars=[full["x"]])(point)
    f_mini = mini.compile_logp(vars=[mini["x"]])
    calls = np.array([f_mini(point) for _ in range(200)])  # a new batch on every call
    assert np.unique(calls).size > 1
    assert abs(calls.mean() - exact) < 4 * calls.std() / np.sqrt(calls.size)
    with pytest.raises(ValueError, match="batch_size: expected an integer <= 200"):
        build_marginal_model(points, spec, batch_size=500)


# --------------------------------------------------------------------------- predictive
def test_mixture_random_frequencies_and_shapes():
    rng = np.random.default_rng(7)
    weights = np.array([[0.2, 0.8]])
    means = np.array([[[-50.0, 0.0], [50.0, 5.0]]])
    obs_sd = np.array([[[1.0, 1.0], [2.0, 0.5]]])
    draws = mixture_random(weights, means, obs_sd, rng=rng, size=(20000,))
    assert draws.shape == (20000, 2)
    first = draws[:, 0] < 0
    assert abs(first.mean() - 0.2) < 4 * np.sqrt(0.2 * 0.8 / 20000)
    np.testing.assert_allclose(draws[~first].std(0), [2.0, 0.5], rtol=0.05)


def test_prior_predictive_draw_has_data_shape():
    model = build_marginal_model(POINTS_2D, MixtureSpec(2))
    draw = pm.draw(model["x"], random_seed=3)
    assert draw.shape == POINTS_2D.shape


# --------------------------------------------------------------------------- initial point
@pytest.mark.parametrize("seed", [None, 4])
def test_initial_point_is_ordered_and_inside_the_data(seed):
    points = np.concatenate([np.zeros((10, 2)), np.ones((5, 2))])  # many ties in feature 0
    start = initial_point(MixtureSpec(4, ordered=True, obs_sd="learned"), points, random_seed=seed)
    assert set(start) == {"means_first", "means_rest", "weights", "obs_precision"}
    assert np.all(np.diff(start["means_first"]) > 0)
    assert start["means_rest"].shape == (4, 1) and start["obs_precision"].shape == (4, 2)
    np.testing.assert_allclose(start["weights"], 0.25)
    plain = initial_point(MixtureSpec(2, weights="fixed"), POINTS_2D)
    assert set(plain) == {"means"} and plain["means"].shape == (2, 2)


def test_initial_points_one_overdispersed_valid_start_per_chain():
    rng = np.random.default_rng(2)
    points = np.concatenate([rng.normal(-3, 0.5, (60, 2)), rng.normal(3, 0.5, (40, 2))])
    spec = MixtureSpec(2, ordered=True, obs_sd="learned")
    starts = initial_points(spec, points, 4, random_seed=7)
    assert len(starts) == 4
    again = initial_points(spec, points, 4, random_seed=7)
    for a, b in zip(starts, again, strict=True):  # same seed, same starts
        assert set(a) == {"means_first", "means_rest", "weights", "obs_precision"}
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    firsts = np.array([s["means_first"] for s in starts])  # (chains, K)
    assert np.all(np.diff(firsts, axis=1) > 0)  # ordered, every chain
    # the chains start apart by more than a posterior sd (~ 0.5 / sqrt(50) = 0.07): the
    # jitter is 0.25 x the data sd (2.9) = 0.73 per coordinate, so a pair's difference is
    # N(0, 1.03^2) per coordinate and both |differences| < 0.07 has probability ~0.003
    gaps = np.abs(firsts[:, None] - firsts[None]).max(-1)[np.triu_indices(4, 1)]
    assert gaps.min() > 0.07
    # near the k-means centres (-3, 3), so no chain starts in a minor mode of the ordering
    np.testing.assert_allclose(firsts.mean(0), [-3.0, 3.0], atol=1.5)
    for s in starts:
        np.testing.assert_allclose(s["weights"].sum(), 1.0)
        assert s["weights"].min() >= 0.1 / 2 / 1.1 and np.all(s["obs_precision"] > 0)
    # every start is inside the model's support: finite log p at each
    model = build_marginal_model(points, spec)
    logp = model.compile_logp()
    for s in starts:
        value = {}
        for rv in model.free_RVs:
            transform = model.rvs_to_transforms[rv]
            val = model.rvs_to_values[rv]
            x = s[rv.name]
            value[val.name] = (
                transform.forward(x, *rv.owner.inputs).eval() if transform is not None else x
            )
        assert np.isfinite(logp(value))
    other = initial_points(spec, points, 4, random_seed=8)
    assert not np.array_equal(other[0]["means_first"], starts[0]["means_first"])


def test_fused_logp_and_gradient_equal_builtin_mixture():
    """What NUTS calls (logp and gradient together, the one-pass fused node) vs pm.Mixture."""
    from pymc.blocking import DictToArrayBijection

    from ppl_mixtures.kernels.density_op import MixtureLogpAndGradParams

    points, spec = ORACLE_CASES["learned_ordered_2d_large"]
    functions = []
    for model in (build_marginal_model(points, spec), build_builtin_model(points, spec)):
        fn = model.logp_dlogp_function(ravel_inputs=True)
        fn.set_extra_values({})
        functions.append(fn)
    nodes = functions[0]._pytensor_function.maker.fgraph.toposort()
    assert any(isinstance(node.op, MixtureLogpAndGradParams) for node in nodes)
    start = initial_point(spec, points)
    size = DictToArrayBijection.map(
        _unconstrained(build_marginal_model(points, spec), spec, start)
    ).data.size
    rng = np.random.default_rng(3)
    for _ in range(3):
        flat = rng.normal(scale=0.5, size=size)
        (logp_m, grad_m), (logp_b, grad_b) = (fn(flat) for fn in functions)
        np.testing.assert_allclose(logp_m, logp_b, rtol=1e-12)
        np.testing.assert_allclose(grad_m, grad_b, rtol=1e-10, atol=1e-9)


# --------------------------------------------------------------------------- observed data
def test_observed_data_is_what_the_density_reads():
    """Substituting the variable ``observed_data`` returns changes the model's log density
    to the new data's (and only through it: the old value is untouched)."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import graph_replace

    from ppl_mixtures.inference.pymc.models import observed_data

    spec = MixtureSpec(2, weights="fixed", obs_sd=0.8)  # one free variable: means
    model = build_marginal_model(POINTS_2D, spec)
    data = observed_data(model)
    np.testing.assert_array_equal(data.get_value(), POINTS_2D)
    shifted = POINTS_2D + 3.0
    observed_logp = model.logp(vars=[model["x"]])
    on_shifted = graph_replace(observed_logp, {data: pt.constant(shifted)})
    fn = pytensor.function([model.rvs_to_values[model["means"]]], [observed_logp, on_shifted])
    means = np.array([[-1.0, 0.0], [2.0, 1.0]])
    got_old, got_new = fn(means)
    np.testing.assert_allclose(
        got_old, mixture_logp(POINTS_2D, [0.5, 0.5], means, 0.8).sum(), rtol=1e-12
    )
    np.testing.assert_allclose(
        got_new, mixture_logp(shifted, [0.5, 0.5], means, 0.8).sum(), rtol=1e-12
    )
    # a minibatch model observes the same full data through the same kind of variable
    batched = observed_data(build_marginal_model(POINTS_2D, spec, batch_size=5))
    np.testing.assert_array_equal(batched.get_value(), POINTS_2D)
    with pytest.raises(ValueError, match=r"^model: expected a model from build_marginal_model"):
        observed_data(build_builtin_model(POINTS_2D, spec))


def test_a_cached_advi_objective_fits_the_data_it_is_reset_with():
    """Regression (commit 99758db): an objective compiled for one data set and reset with
    another must give exactly the numbers of an objective built for the other, and not the
    numbers of the data it was built with."""
    from ppl_mixtures.inference.pymc.advi_objective import get_objective

    spec = MixtureSpec(2, mean_prior_sd=2.0, obs_sd=1.0)
    shifted = POINTS_2D[::-1] + 1.5  # same shape, other data
    args = (spec, "advi", None, "adagrad_window")
    cached, _ = get_objective(POINTS_2D, *args, use_cache=False)
    fresh, _ = get_objective(shifted, *args, use_cache=False)
    theta = np.linspace(-0.5, 0.5, cached.ndim)

    def run(objective, points):
        objective.reset(points, np.zeros(objective.ndim), 0.05, random_seed=3)
        trace = np.empty(150)
        objective.run(150, trace)
        return trace, objective.log_joint(theta)

    trace_old, log_joint_old = run(cached, POINTS_2D)
    trace_new, log_joint_new = run(cached, shifted)
    trace_fresh, log_joint_fresh = run(fresh, shifted)
    np.testing.assert_array_equal(trace_new, trace_fresh)
    np.testing.assert_array_equal(log_joint_new, log_joint_fresh)
    assert not np.allclose(trace_new, trace_old) and log_joint_new[0] != log_joint_old[0]
