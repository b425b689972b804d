"""The demo that the README's first command runs."""

import pytest

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
    assert "cannot write" in capsys.readouterr().err
