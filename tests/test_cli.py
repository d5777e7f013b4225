import csv
from dataclasses import fields

import pytest

from slicevid.cli import build_parser, main, parse_args

INPUT_SIZE = ["--depth", "6", "--size", "32"]
SMALL_MODEL = ["--encoder", "timm:test_resnet", "--hidden-size", "8", "--head-hidden", "16", *INPUT_SIZE]
FAST = ["--epochs", "1", "--batch-size", "4", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    assert (
        main(
            [
                "synth",
                "--out",
                str(root),
                "--phantoms-per-class",
                "3",
                "--phantom-shape",
                "12",
                "32",
                "32",
                "--videos-per-class",
                "2",
                "--frames",
                "8",
                "--video-size",
                "32",
            ]
        )
        == 0
    )
    return root


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A fine-tuned model (at 6 x 32 x 32) and its run folder."""
    out = tmp_path_factory.mktemp("trained") / "ft"
    assert main(["finetune", *scans_of(data), "--out", str(out), "--val-fraction", "0.4", *SMALL_MODEL, *FAST]) == 0
    return out


def scans_of(data):
    return ["--scans", str(data / "phantoms"), "--labels-csv", str(data / "phantoms" / "labels.csv")]


def one_line_error(capsys, code, *fragments):
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.mark.parametrize("command", [[], *([name] for name in build_parser()[1])])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: slicevid" in capsys.readouterr().out


def test_every_train_config_field_is_an_option():
    from slicevid.train import TrainConfig

    for command in ("pretrain", "finetune"):
        parser = build_parser()[1][command]
        destinations = {action.dest for action in parser._actions}
        missing = [f.name for f in fields(TrainConfig) if f.name not in destinations]
        assert not missing, f"{command} cannot set {missing}"
        for item in fields(TrainConfig):
            assert parser.get_default(item.name) == item.default, item.name


def test_synth_layout(data):
    assert (data / "phantoms" / "labels.csv").is_file()
    assert len(list((data / "videos").glob("*/*.avi"))) == 20


def test_preprocess_pretrain_finetune_evaluate_predict(data, tmp_path, capsys):
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main(["preprocess", *scans_of(data), *cache, "--depth", "6", "--size", "32", "--workers", "2"]) == 0
    assert "15 scans cached" in capsys.readouterr().out

    pretrain_dir = tmp_path / "pt"
    assert (
        main(
            [
                "pretrain",
                "--videos",
                str(data / "videos"),
                "--out",
                str(pretrain_dir),
                "--feature-cache",
                *SMALL_MODEL,
                *FAST,
            ]
        )
        == 0
    )
    assert (pretrain_dir / "best" / "model.safetensors").is_file()

    finetune_dir = tmp_path / "ft"
    assert (
        main(
            [
                "finetune",
                *scans_of(data),
                *cache,
                "--pretrained",
                str(pretrain_dir / "best"),
                "--out",
                str(finetune_dir),
                "--class-weights",
                "--augment",
                "paper",
                "--val-fraction",
                "0.4",
                *INPUT_SIZE,  # the architecture comes from the checkpoint
                *FAST,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| fine-tuned |" in out and "F1 Fibro-cavernous" in out

    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(finetune_dir / "best"),
                *scans_of(data),
                "--split",
                "all",
                "--report",
                str(tmp_path / "report.json"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert "15 scans" in capsys.readouterr().out and (tmp_path / "report.json").is_file()


def test_predict_needs_only_the_checkpoint(data, trained, tmp_path, capsys):
    submission, pictures = tmp_path / "submission.csv", tmp_path / "explain"
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(trained / "best"),
                str(data / "phantoms"),
                "--csv",
                str(submission),
                "--explain",
                str(pictures),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "file_id,file,predicted,p_Infiltrative,p_Focal,p_Tuberculoma,p_Miliary,p_Fibro-cavernous"
    assert printed[1].split(",")[2] in {"Infiltrative", "Focal", "Tuberculoma", "Miliary", "Fibro-cavernous"}
    rows = list(csv.reader(submission.open()))
    assert len(rows) == 15 and rows[0][0] == "TRN_0001" and rows[0][1] in {"1", "2", "3", "4", "5"}
    assert len(list(pictures.glob("TRN_*.png"))) == 15
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(trained / "best"),
                str(data / "phantoms" / "TRN_0001.nii.gz"),
                "--csv",
                str(submission),
                "--ids",
                "filename",
            ]
        )
        == 0
    )
    assert submission.read_text().startswith("TRN_0001.nii.gz,")


def test_flags_that_contradict_the_checkpoint(data, trained, capsys):
    code = main(
        [
            "predict",
            "--checkpoint",
            str(trained / "best"),
            str(data / "phantoms" / "TRN_0001.nii.gz"),
            "--depth",
            "70",
            "--size",
            "224",
        ]
    )
    one_line_error(capsys, code, "--depth 70 (the model expects 6)", "--size 224 (the model expects 32)")
    code = main(["predict", "--checkpoint", str(trained / "best"), str(data / "phantoms"), "--depth", "6"])
    assert code == 0


def test_every_training_option_is_reachable(data, tmp_path):
    out = tmp_path / "ft"
    args = [
        "finetune",
        *scans_of(data),
        "--out",
        str(out),
        "--aggregator",
        "mean",
        "--weight-decay",
        "0.01",
        "--plateau-factor",
        "0.5",
        "--optimizer",
        "adamw",
        "--precise-bn",
        "2",
        "--val-fraction",
        "0.4",
        *[a for a in SMALL_MODEL if a not in ("--hidden-size", "8")],
        *FAST,
    ]
    assert main(args) == 0
    import yaml

    saved = yaml.safe_load((out / "config.yaml").read_text())  # every option of the run, as --config reads them
    assert (saved["weight_decay"], saved["plateau_factor"], saved["optimizer"], saved["precise_bn"]) == (
        0.01,
        0.5,
        "adamw",
        2,
    )
    assert (saved["aggregator"], saved["val_fraction"], saved["scans"]) == ("mean", 0.4, scans_of(data)[1])


def test_same_seed_same_weights_from_the_cli(data, tmp_path):
    from safetensors.torch import load_file

    for name in ("a", "b"):
        assert (
            main(
                [
                    "finetune",
                    *scans_of(data),
                    "--out",
                    str(tmp_path / name),
                    "--seed",
                    "3",
                    "--val-fraction",
                    "0.4",
                    *SMALL_MODEL,
                    *FAST,
                ]
            )
            == 0
        )
    a, b = (load_file(str(tmp_path / n / "best" / "model.safetensors")) for n in ("a", "b"))
    assert all((a[k] == b[k]).all() for k in a)


def test_config_file_sets_defaults_and_flags_override(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        "epochs: 3\nlr: 0.01\nencoder: timm:test_resnet\nclass_weights: true\nencoder_kwargs: {drop_rate: 0.1}\n"
    )
    args = parse_args(
        ["finetune", "--config", str(config), "--scans", "s", "--labels-csv", "l", "--out", "o", "--epochs", "5"]
    )
    assert (args.epochs, args.lr, args.encoder, args.class_weights) == (5, 0.01, "timm:test_resnet", True)
    assert args.encoder_kwargs == {"drop_rate": 0.1}


@pytest.mark.parametrize(
    ("content", "suffix", "fragment"),
    [
        (None, ".yaml", "Config file not found"),
        ("{broken", ".json", "not valid JSON"),
        ("a: [1, 2\n", ".yaml", "not valid YAML"),
        ("- 1\n- 2\n", ".yaml", "expected a mapping"),
        ("epochs: [1, 2]\n", ".yaml", "takes one value"),
        ("epochz: 3\n", ".yaml", "unknown setting(s) ['epochz']"),
        ("epochs: many\n", ".yaml", "invalid int value"),
    ],
)
def test_bad_config_files_are_one_line(tmp_path, capsys, content, suffix, fragment):
    config = tmp_path / f"run{suffix}"
    if content is not None:
        config.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["finetune", "--config", str(config), "--scans", "s", "--labels-csv", "l", "--out", "o"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_required_options(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_args(["finetune", "--scans", "s"])
    assert "required: --out" in capsys.readouterr().err
    code = main(["finetune", "--scans", "s", "--out", str(tmp_path / "r")])  # or --medmnist: checked, in one line
    one_line_error(capsys, code, "--labels-csv are needed (or --medmnist FLAG_OR_NPZ")


@pytest.mark.parametrize("device", ["cuda", "tpu9"])
def test_bad_devices(data, tmp_path, capsys, device):
    code = main(
        ["finetune", *scans_of(data), "--out", str(tmp_path / "x"), *SMALL_MODEL, *FAST[:-2], "--device", device]
    )
    one_line_error(capsys, code, "--device")


def test_out_is_a_file_fails_before_training(data, tmp_path, capsys):
    (tmp_path / "x").write_text("a file")
    code = main(["finetune", *scans_of(data), "--out", str(tmp_path / "x"), *SMALL_MODEL, *FAST])
    one_line_error(capsys, code, "is an existing file")


def test_csv_is_a_folder_and_cache_dir_is_a_file(data, trained, tmp_path, capsys):
    code = main(["predict", "--checkpoint", str(trained / "best"), str(data / "phantoms"), "--csv", str(tmp_path)])
    one_line_error(capsys, code, "is a folder")
    (tmp_path / "cache").write_text("x")
    code = main(
        [
            "finetune",
            *scans_of(data),
            "--out",
            str(tmp_path / "y"),
            "--cache-dir",
            str(tmp_path / "cache"),
            *SMALL_MODEL,
            *FAST,
        ]
    )
    one_line_error(capsys, code, "--cache-dir", "is an existing file")


@pytest.mark.parametrize(
    ("content", "encoding", "fragment"),
    [
        ("FileName,TypeOfTB\n", "utf-8", "lists no scans"),
        ("FileName,TypeOfTB\nTRN_0001.nii.gz,1\nTRN_0002,2\nTRN_0001,3\n", "utf-8", "TRN_0001 has label 1 on line 2"),
        ("FileName,TypeOfTB\n../TRN_0001.nii.gz,1\n", "utf-8", "points outside the scan folder"),
        ("FileName,TypeOfTB\nTRN_0001.nii.gz,1\nRésumé.nii.gz,2\n", "latin-1", "not UTF-8"),
    ],
)
def test_bad_label_csvs(data, tmp_path, capsys, content, encoding, fragment):
    labels = tmp_path / "labels.csv"
    labels.write_bytes(content.encode(encoding))
    code = main(
        [
            "preprocess",
            "--scans",
            str(data / "phantoms"),
            "--labels-csv",
            str(labels),
            "--cache-dir",
            str(tmp_path / "c"),
            "--depth",
            "6",
            "--size",
            "32",
        ]
    )
    one_line_error(capsys, code, fragment)


def test_unknown_label_and_missing_checkpoint(data, tmp_path, capsys):
    code = main(["predict", "--checkpoint", str(tmp_path / "missing"), str(data / "phantoms" / "TRN_0001.nii.gz")])
    one_line_error(capsys, code, "slicevid predict: error:", "save_pretrained")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("FileName,TypeOfTB\nTRN_0001.nii.gz,9\n")
    code = main(
        [
            "finetune",
            "--scans",
            str(data / "phantoms"),
            "--labels-csv",
            str(bad_csv),
            "--out",
            str(tmp_path / "x"),
            *SMALL_MODEL,
            *FAST,
        ]
    )
    one_line_error(capsys, code, "unknown label '9'")


def test_truncated_checkpoint_is_one_line(trained, data, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(trained / "best", broken)
    (broken / "model.safetensors").write_bytes(b"")
    code = main(["predict", "--checkpoint", str(broken), str(data / "phantoms" / "TRN_0001.nii.gz")])
    one_line_error(capsys, code, "model.safetensors: not a readable safetensors file")


def test_full_disk_is_one_line(data, trained, tmp_path, capsys, monkeypatch):
    import errno

    from slicevid import _io

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_io.os, "fsync", no_space)
    code = main(
        [
            "predict",
            "--checkpoint",
            str(trained / "best"),
            str(data / "phantoms" / "TRN_0001.nii.gz"),
            "--csv",
            str(tmp_path / "s.csv"),
        ]
    )
    one_line_error(capsys, code, "No space left on device")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_encoder_kwargs_reach_timm(data, tmp_path):
    assert (
        main(
            [
                "finetune",
                *scans_of(data),
                "--out",
                str(tmp_path / "vit"),
                "--encoder",
                "timm:vit_tiny_patch16_224",
                "--encoder-kwargs",
                '{"img_size": 32, "patch_size": 8}',
                "--aggregator",
                "mean",
                "--head-hidden",
                "8",
                "--depth",
                "4",
                "--size",
                "32",
                "--val-fraction",
                "0.4",
                *FAST,
            ]
        )
        == 0
    )


@pytest.mark.slow
def test_demo_quick(tmp_path, capsys):
    import json

    assert main(["demo", "--quick", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "| PT |" in out and "| No PT |" in out and "results.json" in out.splitlines()[-2]
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert {"PT", "No PT", "pretrain_val_accuracy", "seconds", "seed"} <= set(results)
    assert {"kappa", "accuracy", "val_kappa"} <= set(results["PT"]) and results["seed"] == 0
    report = (tmp_path / "demo" / "report.md").read_text()
    assert "synthetic" in report.lower() and "| PT |" in report
    for name in ("PT/curves.png", "No_PT/test-confusion.png", "montage-1-infiltrative.png", "recipe.yaml"):
        assert (tmp_path / "demo" / name).is_file()
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo"), "--seed", "1"]) == 0  # replaces the first


def test_expand_inputs_tells_series_from_folders(data, tmp_path):
    from slicevid import DataError
    from slicevid.predict import expand_inputs

    series = tmp_path / "series"
    series.mkdir()
    (series / "IM0001").write_bytes(b"dicom without extension")
    assert expand_inputs([series]) == ([series], ["series"])
    scans, ids = expand_inputs([data / "phantoms"])
    assert len(scans) == 15 and all(p.name.endswith(".nii.gz") for p in scans) and ids[0] == "TRN_0001"
    with pytest.raises(DataError, match="notes.txt"):
        (tmp_path / "notes.txt").write_text("x")
        expand_inputs([tmp_path / "notes.txt"])


def small_reproduction_recipe(capsys) -> dict:
    """The shown reproduction recipe, made small: a compact CNN at 6 x 32 x 32, one epoch, two configurations."""
    import yaml

    assert main(["recipe", "show", "viptt-reproduction"]) == 0
    recipe = yaml.safe_load(capsys.readouterr().out)
    recipe["model"].update(
        encoder="compact_cnn", encoder_kwargs={"widths": [4, 8]}, aggregator_kwargs={"hidden_size": 8}, head_hidden=16
    )
    recipe.update(encoder_weights=None, video={**recipe["video"], "num_frames": 6, "size": 32})
    recipe["preprocessing"]["size"] = [6, 32, 32]
    recipe["val_fraction"] = 0.4
    recipe["configurations"] = {name: recipe["configurations"][name] for name in ("No PT (scratch)", "PT+CW")}
    for stage in ("pretrain", "finetune"):
        recipe[stage].update(epochs=1, device="cpu", progress=False)
    return recipe


def test_a_recipes_slice_execution_reaches_every_stage_pretrained_ones_and_test_scoring_included(
    data, tmp_path, capsys, monkeypatch
):
    from slicevid.model_config import SliceExecution
    from slicevid.recipes import Recipe, run_recipe, runner, stage

    seen = []

    def recording(where, function):
        def wrapper(model, *args, **kwargs):
            seen.append((where, model.execution))
            return function(model, *args, **kwargs)

        return wrapper

    for module, name in ((stage, "pretrain"), (stage, "finetune"), (runner, "evaluate")):
        monkeypatch.setattr(module, name, recording(name, getattr(module, name)))
    recipe = Recipe.from_dict({**small_reproduction_recipe(capsys), "execution": {"slice_chunk": 2}})
    phantoms = data / "phantoms"
    run_recipe(
        recipe,
        scans=phantoms,
        labels_csv=phantoms / "labels.csv",
        videos=data / "videos",
        test_scans=phantoms,
        test_labels_csv=phantoms / "labels.csv",
        out=tmp_path / "run",
        progress=False,
    )
    assert [where for where, _ in seen] == ["pretrain", "finetune", "evaluate", "finetune", "evaluate"]
    assert all(execution == SliceExecution(slice_chunk=2) for _, execution in seen)  # PT+CW starts from a folder


def test_a_shown_recipe_edited_runs_with_the_edited_settings(data, tmp_path, capsys):
    import yaml

    recipe = small_reproduction_recipe(capsys)
    recipe["finetune"]["lr"] = 0.0042  # the edit to find again
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "run"
    assert main(["run", str(path), "--videos", str(data / "videos"), *scans_of(data), "--out", str(out)]) == 0
    for stage in ("No_PT_scratch", "PT_CW"):
        assert yaml.safe_load((out / stage / "config.yaml").read_text())["lr"] == 0.0042
    assert yaml.safe_load((out / "recipe.yaml").read_text())["finetune"]["lr"] == 0.0042
    saved = yaml.safe_load((out / "pretrain" / "config.yaml").read_text())
    assert saved["lr"] == 0.001 and (out / "PT_CW" / "best" / "model.safetensors").is_file()
