"""TDEM (reference_models.core.tdem): the formula, shapes, beta = 1 = the plain T2V layer,
padding invariance, and its place in the core's text-to-video layer."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from reference_models.core.layers import T2VEncoderLayer  # noqa: E402
from reference_models.core.tdem import TDEM  # noqa: E402

pytestmark = pytest.mark.torch

D, HEADS = 16, 4


def inputs(seed: int = 0, batch: int = 3, length: int = 7, tokens: int = 5) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    video = torch.randn(batch, length, D, generator=gen)
    text = torch.randn(batch, tokens, D, generator=gen)
    video_mask = torch.ones(batch, length, dtype=torch.bool)
    video_mask[batch - 1, length - 2:] = False
    text_mask = torch.ones(batch, tokens, dtype=torch.bool)
    text_mask[0, 3:] = False
    pos = torch.randn(batch, length, D, generator=gen)
    return video, video_mask, text, text_mask, pos


def test_output_shape_and_formula() -> None:
    torch.manual_seed(0)
    tdem = TDEM(D, HEADS, dropout=0.0, beta=0.7).eval()
    video, video_mask, text, text_mask, _ = inputs()
    out = tdem(video, video_mask, text, text_mask)
    assert out.shape == video.shape
    # the formula written out by hand
    prev = torch.cat([tdem.start_token.expand(3, 1, D), video[:, :-1]], dim=1)
    dyn = tdem.flow_mlp(video - prev)
    a_dyn = tdem.attn(dyn, text, text, key_padding_mask=~text_mask)[0]
    expect = 0.7 * video + 0.3 * a_dyn
    valid = video_mask[..., None]
    assert torch.allclose(torch.where(valid, out, 0), torch.where(valid, expect, 0), atol=1e-6)
    assert torch.equal(out[~video_mask], video[~video_mask])  # padding passes through
    assert not torch.allclose(out, video)


def test_differences_against_start_token_and_neighbours() -> None:
    tdem = TDEM(D, HEADS, beta=0.7)
    video = torch.arange(2 * 4 * D, dtype=torch.float32).view(2, 4, D)
    dyn = tdem.dynamics(video)
    assert torch.equal(dyn[:, 0], video[:, 0] - tdem.start_token.detach())
    assert torch.equal(dyn[:, 1:], video[:, 1:] - video[:, :-1])


def test_pos_convention() -> None:
    torch.manual_seed(0)
    tdem = TDEM(D, HEADS, dropout=0.0).eval()
    video, video_mask, text, text_mask, pos = inputs()
    with_pos = tdem(video, video_mask, text, text_mask, pos=pos)
    without = tdem(video, video_mask, text, text_mask)
    assert not torch.allclose(with_pos, without)
    # with pos: the dynamics of x + pos, but the residual still mixes x itself
    shifted = tdem(video + pos, video_mask, text, text_mask)
    valid = video_mask[..., None]
    assert torch.allclose(torch.where(valid, with_pos + 0.7 * pos, 0), torch.where(valid, shifted, 0), atol=1e-5)


def test_padding_does_not_change_valid_outputs() -> None:
    torch.manual_seed(1)
    tdem = TDEM(D, HEADS, dropout=0.0).eval()
    video, video_mask, text, text_mask, _ = inputs(batch=1, length=6)
    video_mask[:] = True
    longer = torch.cat([video, torch.randn(1, 4, D)], dim=1)
    longer_mask = torch.cat([video_mask, torch.zeros(1, 4, dtype=torch.bool)], dim=1)
    short = tdem(video, video_mask, text, text_mask)
    padded = tdem(longer, longer_mask, text, text_mask)
    assert torch.allclose(short, padded[:, :6], atol=1e-6)


@pytest.mark.parametrize("train", [False, True])
def test_beta_one_reduces_the_layer_to_the_plain_layer(train: bool) -> None:
    torch.manual_seed(2)
    plain = T2VEncoderLayer(D, HEADS, 32, dropout=0.0)
    with_tdem = T2VEncoderLayer(D, HEADS, 32, dropout=0.0, temporal=TDEM(D, HEADS, dropout=0.0, beta=1.0))
    missing, unexpected = with_tdem.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("temporal.") for k in missing)
    plain.train(train)
    with_tdem.train(train)
    video, video_mask, text, text_mask, pos = inputs()
    assert torch.equal(plain(video, video_mask, text, text_mask, pos),
                       with_tdem(video, video_mask, text, text_mask, pos))
    # and beta < 1 really changes the layer
    with_tdem.temporal.beta = 0.7
    assert not torch.allclose(plain(video, video_mask, text, text_mask, pos),
                              with_tdem(video, video_mask, text, text_mask, pos))


def test_gradients_reach_every_tdem_parameter() -> None:
    torch.manual_seed(3)
    layer = T2VEncoderLayer(D, HEADS, 32, dropout=0.1, temporal=TDEM(D, HEADS, beta=0.7))
    video, video_mask, text, text_mask, pos = inputs()
    layer(video, video_mask, text, text_mask, pos).sum().backward()
    for name, p in layer.temporal.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_beta_is_rejected() -> None:
    with pytest.raises(ValueError, match="beta"):
        TDEM(D, HEADS, beta=1.5)
