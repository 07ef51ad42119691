import json

from click.testing import CliRunner

from intercept.cli import cli


def test_help_reads_like_documentation():
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    for command in ("run", "review", "match", "models"):
        assert command in top.output
    run = runner.invoke(cli, ["run", "--help"])
    assert "Exit status" in run.output and "--model" in run.output and "--translator" in run.output
    for command in (["review"], ["match"], ["models", "path"], ["models", "verify"]):
        result = runner.invoke(cli, [*command, "--help"])
        assert result.exit_code == 0 and len(result.output.splitlines()) > 4, command


def test_match_prints_json_flags():
    result = CliRunner().invoke(cli, ["match", "امشب برویم ببینیم پرنده است یا روباه"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"bird", "fox"} <= {f["concept"] for f in data["flags"]}
    for flag in data["flags"]:
        if flag["kind"] != "english":
            assert data["text_fa"][flag["span_start"]:flag["span_end"]] == flag["matched"]


def test_match_reads_stdin_one_text_per_line():
    result = CliRunner().invoke(cli, ["match"], input="هوا آفتابی است\nروباه\n")
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert len(rows) == 2 and rows[0]["flags"] == [] and rows[1]["flags"]


def test_run_with_bad_model_stops_before_work(tmp_path):
    result = CliRunner().invoke(cli, ["run", str(tmp_path), "--db", str(tmp_path / "x.db"), "--model", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a CTranslate2 Whisper model" in result.output


def test_run_with_bad_config_names_the_option(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('modle = "base"\n')
    result = CliRunner().invoke(cli, ["run", str(tmp_path), "--db", str(tmp_path / "x.db"), "--config", str(config)])
    assert result.exit_code == 2 and "modle" in result.output


def test_models_path_prints_embedded_dir():
    result = CliRunner().invoke(cli, ["models", "path"])
    assert result.exit_code == 0 and result.output.strip().endswith("whisper-base-ct2")
