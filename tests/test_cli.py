"""The command line: `python -m layerlens train ...` for real in a subprocess when it trains; its refusals through
main(argv), the function that command runs, in this process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from layerlens.__main__ import main
from layerlens.checkpoints import load_checkpoint
from layerlens.data import shown_name

ROOT = Path(__file__).resolve().parents[1]


def layerlens(*args: str) -> subprocess.CompletedProcess:
    # the autouse writable_dirs fixture already points LAYERLENS_DATA/CACHE at tmp_path in os.environ
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "layerlens", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_train_on_a_folder_prints_json_and_saves_a_checkpoint(make_image_folder, tmp_path, writable_dirs):
    folder = make_image_folder(per_class=(12, 6))
    out = tmp_path / "out" / "m.pt"
    run = layerlens("train", "--dataset", f"folder:{folder}", "--preset", "tiny", "--epochs", "1", "--json",
                    "--out", str(out))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert {"dataset", "preset", "params", "epochs", "train_images", "seconds", "test_accuracy",
            "images_per_second"} <= report.keys()
    assert shown_name(report["dataset"]) == f"folder:{folder}" and report["preset"] == "tiny"
    assert report["epochs"] == 1 and report["train_images"] == 24
    assert 0 <= report["test_accuracy"] <= 1 and report["images_per_second"] > 0
    assert report["diverged"] is None and report["backend"] == "local"

    loaded = load_checkpoint(out)
    assert loaded.config.epochs == 1 and loaded.config.net.channels == (8, 16, 32)
    assert (loaded.config.net.in_channels, loaded.config.net.image_size, loaded.config.net.num_classes) == (1, 12, 2)
    assert report["params"] == sum(p.numel() for p in loaded.model.parameters())
    assert loaded.metrics["test_accuracy"] == report["test_accuracy"]
    assert loaded.model(torch.rand(2, 1, 12, 12)).shape == (2, 2)
    assert (writable_dirs.cache / "folders").is_dir()  # the decoded folder went to $LAYERLENS_CACHE


def refused(capsys, *args: str) -> str:
    """What `python -m layerlens ARGS` writes to stderr when it refuses: run in this process through main(argv), the
    function `python -m` calls (a fresh interpreter would add 3-4 s of imports and test nothing more). The exit code
    must be 2 and stdout empty; any exception fails the test, as a traceback would."""
    try:
        code = main(list(args))
    except SystemExit as exit:  # argparse's own refusals
        code = exit.code
    out, err = capsys.readouterr()
    assert (code, out) == (2, ""), (code, out, err)
    return err


def test_missing_dataset_is_exit_code_2_with_a_message(tmp_path, capsys):
    err = refused(capsys, "train", "--dataset", f"folder:{tmp_path / 'absent'}", "--json")
    assert err.startswith("error: No image folder at")


def test_unknown_dataset_is_exit_code_2_with_a_message(capsys):
    err = refused(capsys, "train", "--dataset", "imagenet")
    assert "error: Unknown dataset 'imagenet'" in err


def test_corrupt_image_is_exit_code_2_without_a_traceback(make_image_folder, capsys):
    folder = make_image_folder(per_class=(3, 2))
    (folder / "train/bar/broken.png").write_bytes(b"these bytes are not a picture")
    err = refused(capsys, "train", "--dataset", f"folder:{folder}", "--json")
    assert err.startswith("error: ") and "broken.png" in err


def test_zero_epochs_is_refused(make_image_folder, capsys):
    folder = make_image_folder(per_class=(3, 2))
    err = refused(capsys, "train", "--dataset", f"folder:{folder}", "--preset", "tiny", "--epochs", "0", "--json")
    assert "epochs" in err
