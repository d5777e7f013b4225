import os

import numpy as np
import pytest

from slicevid.data import CTPreprocessing, CTVolumeDataset, VolumeCache

from .helpers import write_nifti


@pytest.fixture
def scan(tmp_path):
    volume = np.random.default_rng(0).integers(-1000, 400, size=(8, 12, 12))
    return write_nifti(tmp_path / "scan.nii.gz", volume)


def test_hits_misses_and_values(tmp_path, scan):
    prep = CTPreprocessing(size=(4, 6, 6))
    ds = CTVolumeDataset([scan], preprocessing=prep, cache_dir=tmp_path / "cache")
    first = ds[0][0]
    assert (ds.cache.hits, ds.cache.misses) == (0, 1)
    second = ds[0][0]
    assert (ds.cache.hits, ds.cache.misses) == (1, 1)
    assert np.allclose(first, second) and np.allclose(first[0], prep(scan), atol=1e-3)  # float16 storage
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1


def test_parameters_and_source_changes_invalidate(tmp_path, scan):
    cache = VolumeCache(tmp_path / "cache")
    params = CTPreprocessing(size=(4, 6, 6)).params()
    key = cache.key(scan, params)
    assert cache.key(scan, params) == key
    assert cache.key(scan, CTPreprocessing(size=(4, 6, 7)).params()) != key
    assert cache.key(scan, CTPreprocessing(size=(4, 6, 6), window=(-900, 400)).params()) != key
    stat = scan.stat()
    os.utime(scan, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert cache.key(scan, params) != key
    assert VolumeCache(tmp_path / "other", dtype="uint8").key(scan, params) != cache.key(scan, params)


def test_uint8_storage(tmp_path, scan):
    ds = CTVolumeDataset([scan], preprocessing=CTPreprocessing(size=(4, 6, 6)), cache_dir=tmp_path, cache_dtype="uint8")
    cached = ds[0][0]
    stored = np.load(next(tmp_path.glob("*.npz")))["values"]
    assert stored.dtype == np.uint8 and np.allclose(cached, ds.preprocessing(scan), atol=1 / 255)


def test_failed_write_leaves_no_entry(tmp_path, scan):
    cache = VolumeCache(tmp_path / "cache")

    def boom():
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cache.get(scan, {}, boom)
    assert list((tmp_path / "cache").iterdir()) == []


def test_fill_cache_then_reads_hit(tmp_path, scan):
    ds = CTVolumeDataset([scan] * 3, preprocessing=CTPreprocessing(size=(4, 6, 6)), cache_dir=tmp_path / "c")
    ds.fill_cache(workers=2, progress=False)
    misses = ds.cache.misses
    for i in range(3):
        ds[i]
    assert ds.cache.misses == misses and ds.cache.hits >= 3
