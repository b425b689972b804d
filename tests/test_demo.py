"""The demo that the README's first command runs."""

import errno
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytest
import torch

import skvae
from skvae.__main__ import main
from skvae._demo import run_demo


@pytest.mark.slow
def test_demo_reports_figures_and_writes_pngs(tmp_path):
    lines = []
    results = run_demo(tmp_path / "out", max_iter=3, out=lines.append)
    for name in ("latent_space.png", "generated_digits.png"):
        path = tmp_path / "out" / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = "\n".join(lines)
    assert "held-out log-likelihood" in report and "accuracy" in report
    for figures in results.values():
        assert figures["log_likelihood"] < 0
        assert 0.1 < figures["accuracy"] <= 1.0


def test_command_line_runs_the_demo(tmp_path, capsys):
    assert main(["demo", "--output-dir", str(tmp_path), "--max-iter", "1"]) == 0
    assert "latent-space classifier" in capsys.readouterr().out
    assert (tmp_path / "latent_space.png").exists()


def test_command_line_help_version_and_errors(capsys):
    import skvae

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"skvae {skvae.__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    assert "demo" in help_text and "``" not in help_text
    # No command: say which commands exist, and fail.
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out
    for bad in ("0", "-3", "many"):
        with pytest.raises(SystemExit) as exit_info:
            main(["demo", "--max-iter", bad])
        assert exit_info.value.code == 2
        error = capsys.readouterr().err
        assert "--max-iter" in error and "Traceback" not in error


def test_command_line_reports_an_unwritable_output_folder(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--output-dir", "/dev/null/out", "--max-iter", "1"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "cannot create or write to the folder '/dev/null/out'" in error
    assert "'/dev/null' is something else (a device?), not a folder" in error


# ------------------------------------------------------------------ Ctrl-C


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def _main_catching_interrupts(argv):
    """``main(argv)``, failing the test (not ending the session) on a KeyboardInterrupt."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # as outside pytest
            return main(argv)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped main()")


@pytest.mark.parametrize(
    "target, first_model_done",
    [("torch.optim.Adam.step", False), ("sklearn.decomposition.PCA.fit", False),
     ("skvae.plotting.LatentSpaceDisplay.from_estimator", True)],
    ids=["training", "pca", "plotting"],
)
def test_ctrl_c_stops_the_demo_with_status_130(tmp_path, capsys, monkeypatch, target,
                                               first_model_done):
    # In training, the estimator turns Ctrl-C into a warning and keeps the weights
    # so far: the demo used to go on to report that model and fit the next one.
    module_name, _, attribute = target.rpartition(".")
    module_name, _, class_name = module_name.rpartition(".")
    owner = getattr(__import__(module_name, fromlist=[class_name]), class_name)
    monkeypatch.setattr(owner, attribute, _interrupt)
    status = _main_catching_interrupts(
        ["demo", "--output-dir", str(tmp_path), "--max-iter", "2"])
    captured = capsys.readouterr()
    assert status == 130
    assert "interrupted" in captured.err
    # The model being fitted is not reported, and the next one is not fitted.
    assert ("held-out log-likelihood" in captured.out) == first_model_done
    assert "8-D latent space" not in captured.out
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no PNG, half or whole


_INTERRUPTED_RUN = """
import sys

import torch

import skvae.__main__


def step(*args, **kwargs):
    # Raised from string-evaluated code, as from some libraries' generated code:
    # CPython then kills a `python -m` process with SIGINT at exit, whatever
    # status it returns, unless told otherwise.
    exec("raise KeyboardInterrupt")


torch.optim.Adam.step = step
sys.exit(skvae.__main__.main(sys.argv[1:]))
"""


def _demo_process(tmp_path, module, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path), str(Path(skvae.__file__).parents[1])])}
    return subprocess.Popen(
        [sys.executable, "-u", "-m", module, "demo", "--output-dir", str(tmp_path / "out"),
         *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        # A shell's background jobs ignore SIGINT, and children inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.mark.slow
def test_ctrl_c_in_training_exits_130_from_python_dash_m(tmp_path):
    (tmp_path / "interrupted_demo.py").write_text(_INTERRUPTED_RUN)
    process = _demo_process(tmp_path, "interrupted_demo", "--max-iter", "2")
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, (out, err)
    assert "interrupted" in err and "Traceback" not in err
    assert "held-out" not in out


@pytest.mark.slow
def test_a_sigint_during_the_demo_exits_130(tmp_path):
    process = _demo_process(tmp_path, "skvae")
    assert process.stdout.readline().startswith("digits:")  # training starts now
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, (out, err)
    assert "interrupted" in err and "Traceback" not in err
    assert "held-out" not in out


# --------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--threads", "3000000000"], "--threads: must be from 1 to"),
        (["--threads", "0"], "--threads: must be from 1 to"),
        (["--threads", "-1"], "--threads: must be from 1 to"),
        (["--threads", "two"], "--threads: 'two' is not an integer"),
        (["--threads", "1.5"], "--threads: '1.5' is not an integer"),
        (["--max-iter", "3000000000"], "--max-iter: must be from 1 to 100,000"),
        (["--max-iter", "1e3"], "--max-iter: '1e3' is not an integer"),
        (["--max-iter"], "--max-iter: expected one argument"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["extra"], "unrecognized arguments: extra"),
        (["--output-dir", ""], "--output-dir: '' cannot name a folder"),
    ],
)
def test_every_bad_demo_argument_gets_the_demo_usage_and_status_2(
    capsys, arguments, message
):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", *arguments])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("usage: skvae demo")  # the subcommand's usage
    assert message in error and "Traceback" not in error


def test_an_output_folder_that_is_a_file_is_named_as_such_before_training(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(torch.optim.Adam, "step", _interrupt)  # no training may start
    (tmp_path / "taken").write_text("a file")
    cases = {
        str(tmp_path / "taken"): "is a file, not a folder",
        str(tmp_path / "taken" / "below"): f"{str(tmp_path / 'taken')!r} is a file",
    }
    for output_dir, message in cases.items():
        with pytest.raises(SystemExit) as exit_info:
            main(["demo", "--output-dir", output_dir, "--max-iter", "1"])
        assert exit_info.value.code == 2
        error = capsys.readouterr().err
        assert error.startswith("usage: skvae demo") and message in error
        assert "File exists" not in error


def test_an_unwritable_output_folder_is_reported_before_training(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(torch.optim.Adam, "step", _interrupt)  # no training may start

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--output-dir", str(tmp_path), "--max-iter", "1"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "cannot create or write to the folder" in error and "Permission denied" in error


def test_an_interrupted_figure_write_keeps_the_earlier_file(tmp_path, monkeypatch):
    import matplotlib.figure

    earlier = b"\x89PNG\r\n\x1a\n an earlier run's figure"
    (tmp_path / "latent_space.png").write_bytes(earlier)

    def half_a_png(self, file, **kwargs):
        file.write(b"\x89PNG\r\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", half_a_png)
    status = _main_catching_interrupts(
        ["demo", "--output-dir", str(tmp_path), "--max-iter", "1"])
    assert status == 130
    assert [p.name for p in tmp_path.iterdir()] == ["latent_space.png"]
    assert (tmp_path / "latent_space.png").read_bytes() == earlier


@pytest.mark.parametrize("arguments, expected", [([], None), (["--threads", "1"], "1"),
                                                 (["--threads", "auto"], None)])
def test_demo_threads_are_chosen_by_timing_unless_pinned(tmp_path, monkeypatch, arguments,
                                                        expected):
    import skvae._demo

    seen = []
    monkeypatch.delenv("SKVAE_THREADS", raising=False)
    monkeypatch.setattr(skvae._demo, "run_demo", lambda output_dir, max_iter: seen.append(
        (os.environ.get("SKVAE_THREADS"), max_iter)))
    assert main(["demo", "--output-dir", str(tmp_path), *arguments]) == 0
    assert seen == [(expected, "auto")]
    assert "SKVAE_THREADS" not in os.environ
