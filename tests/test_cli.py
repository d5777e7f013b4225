import csv

import pytest

from slicevid.cli import build_parser, main

SMALL_MODEL = ["--encoder", "timm:test_resnet", "--hidden-size", "8", "--depth", "6", "--size", "32"]
FAST = ["--epochs", "1", "--batch-size", "4", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    assert main(["synth", "--out", str(root), "--phantoms-per-class", "3", "--phantom-shape", "12", "32", "32",
                 "--videos-per-class", "2", "--frames", "8", "--video-size", "32"]) == 0
    return root


@pytest.mark.parametrize("command", [[], *([name] for name in build_parser()[1])])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: slicevid" in capsys.readouterr().out


def test_synth_layout(data):
    assert (data / "phantoms" / "labels.csv").is_file()
    assert len(list((data / "videos").glob("*/*.avi"))) == 20


def test_preprocess_pretrain_finetune_evaluate_predict(data, tmp_path, capsys):
    scans = ["--scans", str(data / "phantoms"), "--labels-csv", str(data / "phantoms" / "labels.csv")]
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main(["preprocess", *scans, *cache, "--depth", "6", "--size", "32", "--workers", "2"]) == 0
    assert "15 scans cached" in capsys.readouterr().out

    pretrain_dir = tmp_path / "pt"
    assert main(["pretrain", "--videos", str(data / "videos"), "--out", str(pretrain_dir), "--feature-cache",
                 "--depth", "6", *SMALL_MODEL, *FAST]) == 0
    assert (pretrain_dir / "best" / "model.safetensors").is_file()

    finetune_dir = tmp_path / "ft"
    assert main(["finetune", *scans, *cache, "--pretrained", str(pretrain_dir / "best"), "--out", str(finetune_dir),
                 "--class-weights", "--augment", "paper", "--val-fraction", "0.4", *SMALL_MODEL, *FAST]) == 0
    out = capsys.readouterr().out
    assert "| fine-tuned |" in out and "F1 Fibro-cavernous" in out

    assert main(["evaluate", "--checkpoint", str(finetune_dir / "best"), *scans, "--split", "all", "--depth", "6",
                 "--size", "32", "--report", str(tmp_path / "report.json"), "--device", "cpu"]) == 0
    assert "15 scans" in capsys.readouterr().out and (tmp_path / "report.json").is_file()

    submission = tmp_path / "submission.csv"
    assert main(["predict", "--checkpoint", str(finetune_dir / "best"), str(data / "phantoms"), "--csv",
                 str(submission), "--depth", "6", "--size", "32", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("file_id,predicted,p_Infiltrative")
    rows = list(csv.reader(submission.open()))
    assert len(rows) == 15 and rows[0][0] == "TRN_0001" and rows[0][1] in {"1", "2", "3", "4", "5"}


def test_config_file_sets_defaults_and_flags_override(data, tmp_path):
    from slicevid.cli import parse_args

    config = tmp_path / "run.yaml"
    config.write_text("epochs: 3\nlr: 0.01\nencoder: timm:test_resnet\n")
    args = parse_args(["finetune", "--config", str(config), "--scans", "s", "--labels-csv", "l", "--out", "o",
                       "--epochs", "5"])
    assert (args.epochs, args.lr, args.encoder) == (5, 0.01, "timm:test_resnet")
    config.write_text("epochz: 3\n")
    with pytest.raises(SystemExit):
        parse_args(["finetune", "--config", str(config), "--scans", "s", "--labels-csv", "l", "--out", "o"])


def test_errors_are_one_line(data, tmp_path, capsys):
    code = main(["predict", "--checkpoint", str(tmp_path / "missing"), str(data / "phantoms" / "TRN_0001.nii.gz")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "slicevid predict: error:" in err and "save_pretrained" in err
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("FileName,TypeOfTB\nTRN_0001.nii.gz,9\n")
    code = main(["finetune", "--scans", str(data / "phantoms"), "--labels-csv", str(bad_csv), "--out",
                 str(tmp_path / "x"), *SMALL_MODEL, *FAST])
    err = capsys.readouterr().err
    assert code == 2 and "unknown label '9'" in err and "Traceback" not in err


def test_demo_quick(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "| PT |" in out and "| No PT |" in out
    report = (tmp_path / "demo" / "report.md").read_text()
    assert "synthetic" in report.lower() and "| PT |" in report
    for name in ("finetune-pt/curves.png", "finetune-nopt/confusion.png", "montage-1-infiltrative.png"):
        assert (tmp_path / "demo" / name).is_file()


def test_expand_inputs_tells_series_from_folders(data, tmp_path):
    from slicevid import DataError
    from slicevid.predict import expand_inputs

    series = tmp_path / "series"
    series.mkdir()
    (series / "IM0001").write_bytes(b"dicom without extension")
    assert expand_inputs([series]) == [series]
    scans = expand_inputs([data / "phantoms"])
    assert len(scans) == 15 and all(p.name.endswith(".nii.gz") for p in scans)
    with pytest.raises(DataError, match="notes.txt"):
        (tmp_path / "notes.txt").write_text("x")
        expand_inputs([tmp_path / "notes.txt"])
