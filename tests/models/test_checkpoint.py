from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.models import (
    PCRegNet,
    PCRegNetConfig,
    load_checkpoint,
    load_model,
    save_checkpoint,
    sha256_file,
)


class Payload:
    """Any user class: the checkpoint loader must not import or build it."""

    def __init__(self) -> None:
        self.value = 1


class MarkerOnLoad:
    """Unpickling this would create ``path`` (stands in for arbitrary code execution)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


class SneakyDict(OrderedDict):
    def __init__(self, path: Path) -> None:
        super().__init__(weight=torch.zeros(2))
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@pytest.fixture(scope="module")
def small() -> PCRegNet:
    torch.manual_seed(0)
    return PCRegNet(PCRegNetConfig(base_channels=8)).eval()


def _save(path: Path, model: PCRegNet, **extra) -> None:
    save_checkpoint(
        path, model_config=model.config.to_dict(), model_state=model.state_dict(), extra=extra
    )


def test_round_trip(tmp_path, small):
    path = tmp_path / "ck" / "model.pt"
    _save(
        path, small, epoch=3, lr=1e-3, name="x", flags=[True, None], pair=(1, 2.5), curve=torch.ones(3)
    )
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]
    assert len(sha256_file(path)) == 64

    data = load_checkpoint(path)
    assert data["model_config"] == small.config.to_dict()
    assert data["extra"]["epoch"] == 3 and data["extra"]["pair"] == (1, 2.5)
    state = small.state_dict()
    assert data["model_state"].keys() == state.keys()
    for key, value in state.items():
        torch.testing.assert_close(data["model_state"][key], value, rtol=0, atol=0)

    model, loaded = load_model(path)
    assert model.config == small.config and not model.training
    assert loaded["extra"]["name"] == "x"
    x = torch.rand(1, 1, 19, 23)
    with torch.no_grad():
        for a, b in zip(model(x, x), small(x, x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("bad", [Payload(), Path("p"), {1.5: 1}, {"a": {"b": [object()]}}])
def test_save_refuses_non_plain_values(tmp_path, small, bad):
    path = tmp_path / "model.pt"
    with pytest.raises(ValueError):
        _save(path, small, bad=bad)
    assert not any(tmp_path.iterdir())


def _assert_refused_unsafe(path: Path) -> None:
    with pytest.raises(OrpamError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(path) in msg
    assert "not plain tensors/containers" in msg and "will not be loaded" in msg


def test_refuses_pickled_custom_instance(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "orpam-pcregnet", "model_state": {"w": Payload()}}, path)
    _assert_refused_unsafe(path)
    with pytest.raises(OrpamError, match="not plain"):
        load_model(path)


@pytest.mark.parametrize("cls", [MarkerOnLoad, SneakyDict])
def test_refuses_reduce_payload_without_running_it(tmp_path, cls):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    torch.save({"model_state": cls(marker)}, path)
    assert not marker.exists()
    _assert_refused_unsafe(path)
    assert not marker.exists()


def test_refuses_corrupt_and_foreign_files(tmp_path, small):
    good = tmp_path / "good.pt"
    _save(good, small)
    blob = good.read_bytes()
    cases = {
        "truncated.pt": blob[: len(blob) // 2],
        "junk.pt": b"not a checkpoint at all" * 4,
        "empty.pt": b"",
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(OrpamError) as info:
            load_checkpoint(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
        assert "corrupt" in str(info.value)

    foreign = tmp_path / "foreign.pt"
    torch.save({"weight": torch.zeros(2)}, foreign)
    with pytest.raises(OrpamError, match="not an orpam"):
        load_checkpoint(foreign)
    with pytest.raises(OrpamError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_load_model_refuses_mismatched_state(tmp_path, small):
    path = tmp_path / "model.pt"
    cfg = PCRegNetConfig(base_channels=16).to_dict()
    save_checkpoint(path, model_config=cfg, model_state=small.state_dict())
    with pytest.raises(OrpamError, match="does not match"):
        load_model(path)
