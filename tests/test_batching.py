import torch

from slicevid.data.batching import LengthBucketSampler, pad_collate


def test_pad_collate_pads_and_reports_lengths():
    samples = [(torch.ones(1, depth, 4, 4), label) for depth, label in ((3, 0), (5, 1), (2, 2))]
    volumes, labels, lengths = pad_collate(samples)
    assert volumes.shape == (3, 1, 5, 4, 4) and labels.tolist() == [0, 1, 2] and lengths.tolist() == [3, 5, 2]
    assert volumes[0, :, 3:].abs().sum() == 0 and volumes[2, :, :2].min() == 1
    same = pad_collate([(torch.ones(1, 3, 4, 4), 0), (torch.ones(1, 3, 4, 4), 1)])
    assert same[2] is None  # equal depths: the plain path


def test_buckets_hold_similar_depths_and_every_sample_once():
    depths = [10, 50, 11, 71, 49, 30, 70, 31]  # four pairs of neighbours
    sampler = LengthBucketSampler(depths, batch_size=2, seed=0)
    batches = list(sampler)
    assert sorted(i for batch in batches for i in batch) == list(range(8)) and len(batches) == len(sampler)
    assert max(max(depths[i] for i in b) - min(depths[i] for i in b) for b in batches) <= 1
    sampler.set_epoch(1)
    assert list(sampler) != batches  # reshuffled per epoch


def test_buckets_shard_across_processes():
    depths = list(range(20, 40))
    shards = [list(LengthBucketSampler(depths, batch_size=3, seed=0, rank=r, world_size=2)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 4
    seen = {i for shard in shards for batch in shard for i in batch}
    assert seen == set(range(20))
