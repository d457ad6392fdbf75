import pytest
import torch

from orpam_pipeline.models import PCRegNet, PCRegNetConfig, count_parameters, pad_to_multiple


@pytest.fixture(scope="module")
def model() -> PCRegNet:
    torch.manual_seed(0)
    return PCRegNet()


def test_parameter_count_matches_paper(model):
    n = count_parameters(model)
    assert abs(n - 2.56e6) / 2.56e6 < 0.03, n


def test_config_round_trip():
    cfg = PCRegNetConfig(base_channels=8, coarse_sees_fixed=True)
    assert PCRegNetConfig.from_dict(cfg.to_dict()) == cfg
    assert PCRegNetConfig().coarse_sees_fixed is False
    with pytest.raises(ValueError, match="bogus"):
        PCRegNetConfig.from_dict({"bogus": 1})


@pytest.mark.parametrize("shape", [(1, 1, 37, 29), (2, 1, 64, 50)])
def test_forward_backward_any_size(model, shape):
    torch.manual_seed(1)
    model.train()
    model.zero_grad(set_to_none=True)
    moving, fixed = torch.rand(shape), torch.rand(shape)
    final, coarse = model(moving, fixed)
    assert final.shape == coarse.shape == shape
    (final.square().mean() + coarse.square().mean()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


def test_coarse_sees_fixed_variant():
    net = PCRegNet(PCRegNetConfig(base_channels=8, coarse_sees_fixed=True)).eval()
    assert net.reg_encoder.levels[0][0].in_channels == 2
    with torch.no_grad():
        final, coarse = net(torch.rand(1, 1, 20, 13), torch.rand(1, 1, 20, 13))
    assert final.shape == coarse.shape == (1, 1, 20, 13)


def test_mismatched_inputs_rejected(model):
    with pytest.raises(ValueError, match="differ"):
        model(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 24))


def test_pad_reflects_and_crop_restores():
    x = torch.arange(37 * 29, dtype=torch.float32).reshape(1, 1, 37, 29)
    p = pad_to_multiple(x)
    assert p.shape == (1, 1, 40, 32)
    torch.testing.assert_close(p[..., :37, :29], x, rtol=0, atol=0)
    torch.testing.assert_close(p[..., 37:, :29], x[..., [35, 34, 33], :], rtol=0, atol=0)
    torch.testing.assert_close(p[..., :37, 29:], x[..., :, [27, 26, 25]], rtol=0, atol=0)
    assert pad_to_multiple(p) is p


def test_pad_replicates_sides_too_small_to_reflect():
    x = torch.rand(1, 1, 3, 10)
    p = pad_to_multiple(x)
    assert p.shape == (1, 1, 8, 16)
    torch.testing.assert_close(p[..., 3:, :10], x[..., 2:3, :].expand(1, 1, 5, 10), rtol=0, atol=0)
    torch.testing.assert_close(p[..., :3, 10:], x[..., :, [8, 7, 6, 5, 4, 3]], rtol=0, atol=0)
    assert pad_to_multiple(torch.rand(1, 1, 1, 1)).shape == (1, 1, 8, 8)


def test_output_is_exact_crop_of_padded_run(model):
    """Padding then cropping adds nothing: the result is the padded frame's output, cropped."""
    model.eval()
    torch.manual_seed(2)
    moving, fixed = torch.rand(1, 1, 21, 30), torch.rand(1, 1, 21, 30)
    with torch.no_grad():
        final, coarse = model(moving, fixed)
        pf, pc = model(pad_to_multiple(moving), pad_to_multiple(fixed))
    assert pf.shape == (1, 1, 24, 32)
    torch.testing.assert_close(final, pf[..., :21, :30], rtol=0, atol=0)
    torch.testing.assert_close(coarse, pc[..., :21, :30], rtol=0, atol=0)


def test_tiny_frame_in_eval(model):
    model.eval()
    with torch.no_grad():
        final, coarse = model(torch.rand(1, 1, 1, 2), torch.rand(1, 1, 1, 2))
    assert final.shape == coarse.shape == (1, 1, 1, 2)
    assert torch.isfinite(final).all()
