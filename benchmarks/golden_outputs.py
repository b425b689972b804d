"""Pin every output of a fixed set of fitted models, for refactors that must change nothing.

Fits the three estimators on small data in the configurations that take different
paths (dense Bernoulli and Gaussian networks, a conv network, a DataFrame with
categories and holes, early stopping, warm start, three ``partial_fit`` calls, a
memmap, ``n_training_samples=5``, every ``anomaly_score``, imputer draws 0 and 1)
and records a SHA-256 of each output (encode, decode, seeded samples,
``score_samples`` with and without ``random_state``, ``decision_function``,
``predict``, ``transform``, ``loss_curve_``, ``validation_scores_``, ``offset_``)
and of each model file ``skvae.save`` writes. Run it before and after a change and
compare the two JSON reports: any difference is a change of behaviour.

``--files DIR`` also writes the model files to ``DIR``; ``--load DIR`` instead loads
the files found there (written by another commit) and records the outputs of the
loaded models, which must equal those of the fitted ones: old files load in new
code and new files in old code.

    PYTHONPATH=. python benchmarks/golden_outputs.py --output /tmp/before.json --files /tmp/files
    PYTHONPATH=. python benchmarks/golden_outputs.py --output /tmp/after.json
    PYTHONPATH=. python benchmarks/golden_outputs.py --load /tmp/files --output /tmp/loaded.json
    python benchmarks/golden_outputs.py --compare /tmp/before.json /tmp/after.json
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
import warnings

import numpy as np


def digest(value):
    """SHA-256 of an output: arrays by dtype, shape and bytes; frames column by column."""
    hasher = hashlib.sha256()
    if hasattr(value, "iloc"):  # a DataFrame
        for name in value.columns:
            column = value[name]
            hasher.update(f"{name}|{column.dtype}|".encode())
            hasher.update(repr(column.tolist()).encode())
        return hasher.hexdigest()
    if value is None or isinstance(value, (float, int, list)):
        return hashlib.sha256(repr(value).encode()).hexdigest()
    array = np.ascontiguousarray(value)
    hasher.update(f"{array.dtype.str}|{array.shape}|".encode())
    if array.dtype == object:
        hasher.update(repr(array.tolist()).encode())
    else:
        hasher.update(array.tobytes())
    return hasher.hexdigest()


def data():
    """The fixed inputs: digits in [0, 1], correlated Gaussians, and a mixed frame."""
    from sklearn.datasets import load_digits

    digits = load_digits().data[:400] / 16.0
    rng = np.random.RandomState(0)
    latent = rng.normal(size=(300, 2))
    gauss = latent @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(300, 6))
    frame = None
    try:
        import pandas as pd

        frame = pd.DataFrame({
            "a": gauss[:, 0], "b": gauss[:, 1] * 3 + 1,
            "colour": pd.Categorical(rng.choice(["red", "green", "blue"], 300)),
            "flag": rng.rand(300) < 0.3,
            "n": rng.randint(0, 5, 300),
        })
        frame.loc[::7, "a"] = np.nan
        frame.loc[3::11, "colour"] = np.nan
    except ImportError:
        pass
    return digits, gauss, frame


def fitted_models(workdir):
    """Name -> (fitted estimator, input it is scored on)."""
    from skvae import VAEImputer, VAEOutlierDetector, VAETransformer

    digits, gauss, frame = data()
    small = dict(hidden_layer_sizes=(32,), random_state=0, device="cpu")
    models = {}
    models["dense_bernoulli"] = (
        VAETransformer(likelihood="bernoulli", max_iter=5, **small).fit(digits), digits)
    models["dense_gaussian_early_stopping"] = (
        VAETransformer(likelihood="gaussian", early_stopping=True, max_iter=15,
                       n_iter_no_change=3, **small).fit(gauss), gauss)
    models["conv"] = (
        VAETransformer(architecture="conv", image_shape=(8, 8), conv_channels=(4, 8),
                       conv_dense_width=16, likelihood="bernoulli", max_iter=2,
                       random_state=0, device="cpu").fit(digits[:200]), digits[:200])
    warm = VAETransformer(warm_start=True, max_iter=3, **small).fit(gauss)
    models["warm_start"] = (warm.set_params(max_iter=2).fit(gauss), gauss)
    partial = VAETransformer(**small)
    for chunk in np.array_split(gauss, 3):
        partial.partial_fit(chunk)
    models["partial_fit_3"] = (partial, gauss)
    path = os.path.join(workdir, "digits.npy")
    np.save(path, digits)
    memmap = np.load(path, mmap_mode="r")
    models["memmap"] = (
        VAETransformer(likelihood="bernoulli", max_iter=3, **small).fit(memmap), digits)
    models["iwae_5"] = (
        VAETransformer(n_training_samples=5, max_iter=4, **small).fit(gauss), gauss)
    for score in ("log_likelihood", "reconstruction", "latent"):
        models[f"detector_{score}"] = (
            VAEOutlierDetector(anomaly_score=score, max_iter=8, **small).fit(gauss), gauss)
    if frame is not None:
        models["frame_mixed"] = (
            VAETransformer(max_iter=6, **small).fit(frame), frame)
        models["detector_frame"] = (
            VAEOutlierDetector(max_iter=6, **small).fit(frame), frame)
        models["imputer_frame"] = (
            VAEImputer(max_iter=8, n_training_samples=5, add_indicator=True,
                       **small).fit(frame), frame)
        models["imputer_draws"] = (
            VAEImputer(max_iter=8, sample_posterior=True, **small).fit(frame), frame)
    holey = gauss.copy()
    holey[::5, 2] = np.nan
    models["imputer_array"] = (VAEImputer(max_iter=8, **small).fit(holey), holey)
    return models


def outputs(name, model, X):
    """Every output of one model, as digests."""
    from skvae import VAEImputer, VAEOutlierDetector

    record = {}
    rows = X.iloc[:50] if hasattr(X, "iloc") else X[:50]
    Z = model.encode(rows)
    record["encode"] = digest(Z)
    record["decode"] = digest(model.decode(Z))
    record["sample"] = digest(model.sample(7, random_state=3))
    record["sample_mean"] = digest(model.sample(7, random_state=3, return_mean=True))
    record["score_samples"] = digest(model.score_samples(rows))
    record["score_samples_seeded"] = digest(model.score_samples(rows, random_state=5))
    if hasattr(model, "transform"):
        if isinstance(model, VAEImputer):
            record["transform_0"] = digest(model.transform(rows))
            record["transform_1"] = digest(model.transform(rows))
        else:
            record["transform"] = digest(model.transform(rows))
    if isinstance(model, VAEOutlierDetector):
        record["decision_function"] = digest(model.decision_function(rows))
        record["predict"] = digest(model.predict(rows))
        record["offset_"] = digest(float(model.offset_))
    record["loss_curve_"] = digest(list(model.loss_curve_))
    record["validation_scores_"] = digest(
        None if model.validation_scores_ is None else list(model.validation_scores_))
    return record


def file_digest(model, path):
    """SHA-256 of the file ``skvae.save`` writes, with its header in a canonical order.

    safetensors writes its metadata map in an order that changes from process to
    process (a Rust ``HashMap``), so the raw bytes of two saves of one model differ
    between runs; the header's content, its JSON parsed and dumped with sorted
    keys, and the tensor bytes after it do not.
    """
    import skvae

    skvae.save(model, path)
    with open(path, "rb") as file:
        data = file.read()
    header_size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_size])
    canonical = json.dumps(header, sort_keys=True).encode() + data[8 + header_size :]
    return hashlib.sha256(canonical).hexdigest()


def run(args):
    import skvae

    report = {}
    with tempfile.TemporaryDirectory() as workdir, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if args.load:
            _, gauss, frame = data()
            digits = data()[0]
            inputs = {"digits": digits, "gauss": gauss, "frame": frame}
            for entry in sorted(os.listdir(args.load)):
                if not entry.endswith(".skvae"):
                    continue
                name = entry[: -len(".skvae")]
                with open(os.path.join(args.load, name + ".input")) as file:
                    X = inputs[file.read().strip()]
                if name == "imputer_array":
                    X = X.copy()
                    X[::5, 2] = np.nan
                if name == "conv":
                    X = X[:200]
                model = skvae.load(os.path.join(args.load, entry))
                report[name] = outputs(name, model, X)
        else:
            for name, (model, X) in fitted_models(workdir).items():
                record = outputs(name, model, X)
                record["file_sha256"] = file_digest(model, os.path.join(workdir, "m.skvae"))
                report[name] = record
                if args.files:
                    os.makedirs(args.files, exist_ok=True)
                    skvae.save(model, os.path.join(args.files, name + ".skvae"))
                    kind = ("frame" if hasattr(X, "iloc") else
                            "digits" if X.shape[1] == 64 else "gauss")
                    with open(os.path.join(args.files, name + ".input"), "w") as file:
                        file.write(kind)
    return report


def compare(first, second):
    """Print every output that differs between two reports; return their number."""
    with open(first) as a, open(second) as b:
        left, right = json.load(a), json.load(b)
    differences = 0
    for name in sorted(set(left) | set(right)):
        for key in sorted(set(left.get(name, {})) | set(right.get(name, {}))):
            if key == "file_sha256" and (key not in left.get(name, {})
                                         or key not in right.get(name, {})):
                continue  # a report of loaded files has no file hashes
            if left.get(name, {}).get(key) != right.get(name, {}).get(key):
                print(f"DIFFERENT {name}.{key}")
                differences += 1
    total = sum(len(v) for v in left.values())
    print(f"{differences} of {total} outputs differ")
    return differences


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output")
    parser.add_argument("--files", help="also write the model files to this folder")
    parser.add_argument("--load", help="load the files of this folder instead of fitting")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        sys.exit(1 if compare(*args.compare) else 0)
    report = run(args)
    text = json.dumps(report, indent=1, sort_keys=True)
    if args.output:
        with open(args.output, "w") as file:
            file.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
