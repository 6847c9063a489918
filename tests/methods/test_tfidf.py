import numpy as np
import pytest

from frugaltext.cost.meter import CostMeter
from frugaltext.errors import ConfigError, ModelLoadError
from frugaltext.methods import get_method_class, load_model
from frugaltext.models.tfidf import TfidfLinearClassifier
from tests.conftest import TOY_LABELS, TOY_TEXTS
from tests.helpers import make_data


@pytest.mark.parametrize("name", ["tfidf-lr", "tfidf-svm"])
def test_fit_predict_save_load_round_trip(name, tmp_path):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    meter = CostMeter()
    method = get_method_class(name)().fit(data, meter)
    assert len(meter.epoch_durations_s) == 1
    proba = method.predict_proba(TOY_TEXTS)
    assert proba.shape == (8, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    # separable toy data: training documents are classified correctly
    assert list(method.predict(TOY_TEXTS)) == list(data.train.labels)
    method.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is type(method) and loaded.label_names == method.label_names
    np.testing.assert_allclose(loaded.predict_proba(TOY_TEXTS), proba, rtol=1e-5, atol=1e-6)
    assert method.n_params() == 4 * len(method.estimator.pipeline_.named_steps["tfidf"].vocabulary_) + 4
    flops = method.flops_per_document(TOY_TEXTS)
    assert flops["flops"] > 0 and flops["flops_train_step"] is None


@pytest.mark.parametrize("name", ["tfidf-lr", "tfidf-svm"])
def test_multi_label(name, tmp_path):
    labels = [["earn"], ["crude"], ["grain", "trade"], ["interest"], ["earn"], ["crude"], ["grain"],
              ["interest", "trade"]]
    data = make_data(TOY_TEXTS, labels, multi_label=True)
    method = get_method_class(name)(C=100.0).fit(data, CostMeter())
    pred = method.predict(TOY_TEXTS)
    assert pred.shape == (8, 5) and set(np.unique(pred)) <= {0, 1}
    method.save(tmp_path / "m")
    np.testing.assert_array_equal(load_model(tmp_path / "m").predict(TOY_TEXTS), pred)
    np.testing.assert_array_equal(pred, method.estimator.predict(TOY_TEXTS))


def test_unknown_setting_and_bad_classifier():
    with pytest.raises(ConfigError, match="unknown setting 'epochs'"):
        get_method_class("tfidf-lr")(epochs=3)
    with pytest.raises(ConfigError, match="'lr' or 'svm'"):
        TfidfLinearClassifier(classifier="tree").fit(["a b", "c d"], [0, 1])


def test_load_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="frugaltext_method.json"):
        load_model(tmp_path)


def test_sklearn_contract():
    from sklearn.base import clone
    from sklearn.utils.estimator_checks import (
        check_get_params_invariance,
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_set_params,
    )

    # the numeric-input checks of parametrize_with_checks do not apply: this estimator takes raw texts
    est = TfidfLinearClassifier(classifier="svm", C=2.0)
    for check in (check_parameters_default_constructible, check_get_params_invariance, check_set_params,
                  check_no_attributes_set_in_init):
        check("TfidfLinearClassifier", est)
    copy = clone(est)
    assert copy.get_params() == est.get_params() and not hasattr(copy, "pipeline_")
    y = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    fitted = copy.fit(TOY_TEXTS, y)
    assert fitted is copy and copy.get_params() == est.get_params()


@pytest.mark.parametrize("name", ["tfidf-lr", "tfidf-svm"])
def test_multi_label_with_a_label_never_on_in_training(name, tmp_path):
    # "trade" only appears in the test split: one-vs-rest keeps a constant predictor for it
    labels = [["earn"], ["crude"], ["grain"], ["interest"], ["earn"], ["crude"], ["grain"], ["interest"]]
    data = make_data(TOY_TEXTS, labels, multi_label=True)
    y = np.hstack([data.train.labels, np.zeros((8, 1), dtype=np.float32)])
    est = TfidfLinearClassifier(classifier=name.split("-")[1], C=100.0).fit(TOY_TEXTS, y)
    coef, intercept = est.coefficients()
    assert coef.shape[0] == 5 and not coef[4].any() and intercept[4] < 0
    est.save(tmp_path)
    loaded = TfidfLinearClassifier.load(tmp_path)
    np.testing.assert_array_equal(loaded.predict(TOY_TEXTS), est.predict(TOY_TEXTS))
    assert not est.predict(TOY_TEXTS)[:, 4].any()
    assert (est.predict_proba(TOY_TEXTS)[:, 4] < 0.5).all()  # probabilities agree with predict
    from frugaltext.methods.base import probabilities_to_predictions

    np.testing.assert_array_equal(probabilities_to_predictions(est.predict_proba(TOY_TEXTS), True),
                                  est.predict(TOY_TEXTS))
