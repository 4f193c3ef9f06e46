import pytest
import torch

from engine.nn.nucleus import top_p_filter


def test_top_p_keeps_the_smallest_nucleus() -> None:
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = top_p_filter(probs, 0.7)
    assert kept[0, :2].tolist() == pytest.approx([0.5, 0.3]) and kept[0, 2:].sum() == 0
    assert torch.equal(top_p_filter(probs, 1.0), probs)


def test_the_token_that_crosses_top_p_is_kept_so_no_row_is_emptied() -> None:
    probs = torch.tensor([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25]])
    kept = top_p_filter(probs, 0.01)
    assert kept[0].tolist() == pytest.approx([0.9, 0.0, 0.0]) and kept[1].tolist() == pytest.approx([0.4, 0.0, 0.0])


def test_each_row_of_a_batch_of_streams_takes_its_own_top_p() -> None:
    row = torch.tensor([0.5, 0.3, 0.15, 0.05])
    probs = row.expand(2, 3, 4).clone()  # [rows, streams, vocab], as the audio sampler has it
    kept = top_p_filter(probs, torch.tensor([0.7, 1.0]))
    assert torch.equal(kept[0], top_p_filter(row.expand(3, 4), 0.7))
    assert torch.equal(kept[1], probs[1])
