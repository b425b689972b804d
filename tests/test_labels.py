"""A few labels: VAEOutlierDetector.fit(X, y) with known anomalies (label_weight > 0)."""

import json
import warnings

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score

from skvae import ModelFileError, VAEOutlierDetector, load, save
from skvae._labels import labelled_anomalies
from skvae._losses import labelled_anomaly_hinge, tukey_upper_fence
from skvae._persistence import _checksum

PARAMS = {"hidden_layer_sizes": (8,), "max_iter": 30, "random_state": 0, "device": "cpu"}
N_INLIERS, N_LABELLED = 400, 10


def detector(**params):
    return VAEOutlierDetector(**{**PARAMS, **params})


def quietly(method, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return method(*args)


@pytest.fixture(scope="module")
def hidden_cluster():
    """Inliers N(0, I); 40 anomalies in a tight cluster inside their range.

    The cluster is dense, so the unsupervised detector finds it likely (ROC-AUC
    about 0.45); 10 of its rows are labelled.
    """
    rng = np.random.RandomState(0)
    inliers = rng.normal(size=(N_INLIERS, 4))
    anomalies = rng.normal(loc=[1.0, -1.0, 1.0, -1.0], scale=0.1, size=(40, 4))
    X = np.vstack([inliers, anomalies])
    y = np.full(len(X), -1)
    y[N_INLIERS:N_INLIERS + N_LABELLED] = 1
    return X, y


@pytest.fixture(scope="module")
def unsupervised(hidden_cluster):
    return detector().fit(hidden_cluster[0])


@pytest.fixture(scope="module")
def labelled(hidden_cluster):
    return detector(label_weight=1.0).fit(*hidden_cluster)


# --------------------------------------------------------------- the loss term


def test_the_fence_is_q3_plus_three_iqrs():
    values = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 100.0])
    q1, q3 = np.percentile(values.numpy(), [25, 75])
    assert tukey_upper_fence(values).item() == pytest.approx(q3 + 3 * (q3 - q1))


def test_the_hinge_is_the_mean_shortfall_below_the_fence():
    reference = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])  # Q1 1, Q3 3: fence 9
    losses = torch.tensor([5.0, 9.0, 20.0], requires_grad=True)
    hinge = labelled_anomaly_hinge(losses, reference)
    assert hinge.item() == pytest.approx((4.0 + 0.0 + 0.0) / 3)
    hinge.backward()
    # Only the anomaly below the fence is pushed, upwards (the loss falls as it rises).
    np.testing.assert_allclose(losses.grad.numpy(), [-1 / 3, 0.0, 0.0])


def test_the_hinge_does_not_move_its_target():
    reference = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0], requires_grad=True)
    labelled_anomaly_hinge(torch.tensor([0.0], requires_grad=True), reference).backward()
    assert reference.grad is None


# ---------------------------------------------------------------- the training


def test_labels_push_the_labelled_and_similar_anomalies_down(hidden_cluster, unsupervised,
                                                             labelled):
    X, y = hidden_cluster
    truth = np.r_[np.zeros(N_INLIERS), np.ones(len(X) - N_INLIERS)]
    unlabelled = y == -1
    aucs = [roc_auc_score(truth[unlabelled], -fitted.score_samples(X[unlabelled]))
            for fitted in (unsupervised, labelled)]
    assert aucs[0] < 0.6 and aucs[1] > 0.85, aucs
    before, after = unsupervised.score_samples(X), labelled.score_samples(X)
    # The labelled rows themselves: typical before, among the least likely fifth after.
    assert np.median(before[y == 1]) > np.median(before[:N_INLIERS])
    assert np.median(after[y == 1]) < np.percentile(after[:N_INLIERS], 20)


def test_the_threshold_is_set_on_every_training_row(hidden_cluster):
    X, y = hidden_cluster
    fitted = detector(label_weight=1.0, contamination=0.1).fit(X, y)
    # The labelled anomalies count towards contamination, the share of X flagged.
    assert fitted.offset_ == np.percentile(fitted.score_samples(X), 10)
    assert np.mean(fitted.predict(X) == -1) == pytest.approx(0.1, abs=0.005)


@pytest.mark.parametrize("labels", ["none", "all unlabelled", "inliers only", "weight 0"])
def test_without_labelled_anomalies_the_fit_is_the_unsupervised_one(hidden_cluster,
                                                                    unsupervised, labels):
    X, y = hidden_cluster
    y_given = {"none": None, "all unlabelled": np.full(len(X), -1),
               "inliers only": np.where(y == 1, 0, -1), "weight 0": y}[labels]
    fitted = detector(label_weight=0.0 if labels == "weight 0" else 1.0).fit(X, y_given)
    np.testing.assert_array_equal(fitted.score_samples(X), unsupervised.score_samples(X))
    assert fitted.offset_ == unsupervised.offset_
    assert fitted.loss_curve_ == unsupervised.loss_curve_


def test_with_early_stopping_the_held_out_score_counts_the_hinge(hidden_cluster):
    X, y = hidden_cluster
    scores = [quietly(detector(label_weight=weight, early_stopping=True).fit, X, y)
              .validation_scores_[0] for weight in (0.0, 1.0)]
    # After one epoch the labelled anomalies are still inside the fence: a penalty.
    assert scores[1] < scores[0] - 1.0


def test_labels_with_partial_fit_and_a_memmap(hidden_cluster, tmp_path):
    X, y = hidden_cluster
    path = tmp_path / "X.npy"
    np.save(path, X)
    memmap = np.load(path, mmap_mode="r")
    fits = {"memmap": detector(label_weight=1.0).fit(memmap, y)}
    online = detector(label_weight=1.0)
    for _ in range(30):
        online.partial_fit(X, y)
    fits["partial_fit"] = online
    for name, fitted in fits.items():
        scores = fitted.score_samples(X)
        assert scores[y == 1].mean() < np.percentile(scores[:N_INLIERS], 10), name


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("y, match", [
    (np.zeros((440, 1)), "y must be 1-D"),
    (np.r_[np.full(439, -1), 2], "holds 2. Note that predict's -1"),
    (np.r_[np.full(439, -1.0), np.nan], "holds nan"),
    (np.array(["a"] * 440), "dtype <U1"),
    (np.full(439, -1), "439 labels for the 440 rows"),
    (np.ones(440), "labels every row an anomaly"),
])
def test_bad_labels_are_refused(hidden_cluster, y, match):
    with pytest.raises(ValueError, match=match):
        detector(label_weight=1.0, max_iter=1).fit(hidden_cluster[0], y)


def test_labels_may_be_bools_floats_or_a_list():
    X = np.zeros((4, 2))
    expected = [True, False, False, False]
    for y in ([1, 0, -1, -1], np.array([True, False, False, False]), [1.0, 0.0, -1.0, 0.0]):
        np.testing.assert_array_equal(labelled_anomalies(y, X), expected)


def test_a_negative_label_weight_is_refused(hidden_cluster):
    with pytest.raises(ValueError, match="label_weight"):
        detector(label_weight=-1.0).fit(hidden_cluster[0])


# ----------------------------------------------------------------- model files


def _read(path):
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        weights = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    return json.loads(metadata["skvae"]), weights


def _write(path, content, weights):
    document = json.dumps(content)
    metadata = {"skvae": document, "skvae.sha256": _checksum(document, weights)}
    path.write_bytes(safetensors_bytes(weights, metadata=metadata))


def test_a_labelled_detector_round_trips(labelled, hidden_cluster, tmp_path):
    save(labelled, tmp_path / "model.skvae")
    loaded = load(tmp_path / "model.skvae")
    assert loaded.label_weight == 1.0
    np.testing.assert_array_equal(loaded.decision_function(hidden_cluster[0]),
                                  labelled.decision_function(hidden_cluster[0]))


def test_a_detector_file_from_before_label_weight_loads(unsupervised, hidden_cluster,
                                                        tmp_path):
    save(unsupervised, tmp_path / "model.skvae")
    content, weights = _read(tmp_path / "model.skvae")
    del content["params"]["label_weight"]
    _write(tmp_path / "old.skvae", content, weights)
    old = load(tmp_path / "old.skvae")
    assert old.label_weight == 0.0
    np.testing.assert_array_equal(old.decision_function(hidden_cluster[0]),
                                  unsupervised.decision_function(hidden_cluster[0]))
    del content["params"]["trim_fraction"]  # only the newer parameter may be missing
    _write(tmp_path / "broken.skvae", content, weights)
    with pytest.raises(ModelFileError, match="parameters"):
        load(tmp_path / "broken.skvae")
