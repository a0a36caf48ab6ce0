"""The model zoo: release files round-trip, strict loading, cards (aliases, suggestions, sha256), LoadedModel."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from blindsr import archs
from blindsr.engine.checkpoint import save_weights
from blindsr.nets.toy import ToySR
from blindsr.zoo import (
    LoadedModel,
    ModelCard,
    WeightsError,
    cards,
    get_card,
    list_models,
    load_model,
    parse_model_name,
    read_release_metadata,
    save_release,
    sha256_file,
)

KWARGS = {"scale": 2, "n_feats": 4, "n_blocks": 1}


def _toy() -> ToySR:
    net = ToySR(**KWARGS)
    with torch.no_grad():
        for p in net.parameters():  # the tail starts at zero (pure bicubic); make every weight matter
            p.normal_(0, 0.2)
    return net.eval()


def _release(tmp_path: Path, name: str = "toy.safetensors", **kwargs: object) -> tuple[ToySR, Path, str]:
    net = _toy()
    path = tmp_path / name
    sha = save_release(net, path, arch="toy_sr", arch_kwargs=KWARGS, scale=2, **kwargs)  # type: ignore[arg-type]
    return net, path, sha


def _card(sha: str, name: str = "toy-x2.bicubic", weights: str = "toy.safetensors") -> ModelCard:
    return ModelCard(
        name=name,
        arch="toy_sr",
        arch_kwargs=KWARGS,
        scale=2,
        weights=weights,
        sha256=sha,
        description="a test card",
        trained="2 CPU steps",
        license="MIT",
    )


# --------------------------------------------------------------------------------------------------------------
# release files


def test_save_release_then_load_model_round_trips_in_fp16(tmp_path: Path) -> None:
    net, path, sha = _release(tmp_path, card="toy-x2.bicubic", extra_metadata={"step": 7})
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest() == sha256_file(path)
    assert {t.dtype for t in load_file(str(path)).values()} == {torch.float16}
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "blindsr-model" and meta["arch"] == "toy_sr" and meta["scale"] == "2"
    assert json.loads(meta["arch_kwargs"]) == KWARGS and meta["card"] == "toy-x2.bicubic" and meta["step"] == "7"
    assert "blindsr_version" in meta and read_release_metadata(path) == meta
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file is gone
    again = save_release(
        net,
        tmp_path / "again.safetensors",
        arch="toy_sr",
        arch_kwargs=KWARGS,
        scale=2,
        card="toy-x2.bicubic",
        extra_metadata={"step": 7},
    )
    assert again == sha  # canonical bytes: the same weights and metadata give the same sha256

    loaded = load_model(path)
    assert isinstance(loaded, LoadedModel) and loaded.card is None and loaded.path == path
    assert loaded.arch == "toy_sr" and dict(loaded.arch_kwargs) == KWARGS and loaded.scale == 2
    assert not loaded.model.training
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}
    lr = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        expected = net(lr)
    sr = loaded.upscale(lr, 2)
    assert sr.shape == (1, 3, 16, 16)
    torch.testing.assert_close(sr, expected, atol=1e-2, rtol=0)
    assert loaded.parameter_counts() == {"total": sum(p.numel() for p in net.parameters())}
    assert load_model(str(path)).scale == 2  # a str path works too


def test_fp32_release_is_exact_and_dtype_is_honoured(tmp_path: Path) -> None:
    net, path, _ = _release(tmp_path, half=False)
    loaded = load_model(path, dtype=torch.float64)
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float64}
    for key, value in net.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[key], value.double(), atol=0, rtol=0)


def test_load_model_leaves_the_global_rng_alone(tmp_path: Path) -> None:
    _, path, _ = _release(tmp_path)
    before = torch.get_rng_state()
    load_model(path)
    assert torch.equal(before, torch.get_rng_state())


def test_save_release_rejects_what_would_not_load(tmp_path: Path) -> None:
    net = _toy()
    with pytest.raises(ValueError, match="does not match"):
        save_release(net, tmp_path / "a.safetensors", arch="toy_sr", arch_kwargs={**KWARGS, "n_feats": 8}, scale=2)
    with pytest.raises(ValueError, match="n_feet"):
        save_release(net, tmp_path / "b.safetensors", arch="toy_sr", arch_kwargs={"scale": 2, "n_feet": 4}, scale=2)
    with pytest.raises(ValueError, match="unknown architecture"):
        save_release(net, tmp_path / "c.safetensors", arch="toy", arch_kwargs=KWARGS, scale=2)
    with pytest.raises(ValueError, match="scale"):
        save_release(net, tmp_path / "d.safetensors", arch="toy_sr", arch_kwargs=KWARGS, scale=4)
    with pytest.raises(ValueError, match="x4"):
        save_release(net, tmp_path / "e.safetensors", arch="toy_sr", arch_kwargs=KWARGS, scale=2, card="toy-x4")
    with pytest.raises(ValueError, match="reserved"):
        save_release(
            net, tmp_path / "f.safetensors", arch="toy_sr", arch_kwargs=KWARGS, scale=2, extra_metadata={"arch": "x"}
        )
    assert not list(tmp_path.iterdir())


def test_strict_load_rejects_a_missing_key(tmp_path: Path) -> None:
    _, path, _ = _release(tmp_path)
    state = load_file(str(path))
    meta = read_release_metadata(path)
    del state["tail.bias"]
    broken = tmp_path / "broken.safetensors"
    save_file(state, str(broken), metadata=meta)
    with pytest.raises(WeightsError, match=r"strict load.*tail\.bias"):
        load_model(broken)


def test_files_without_blindsr_metadata_are_rejected(tmp_path: Path) -> None:
    plain = tmp_path / "plain.safetensors"
    save_file(_toy().state_dict(), str(plain))
    with pytest.raises(WeightsError, match="not a blindsr model file.*blindsr export"):
        load_model(plain)
    checkpoint = tmp_path / "networks.safetensors"  # a training checkpoint: blindsr metadata, but not a release
    save_weights(nn.ModuleDict({"sr": _toy()}), checkpoint, metadata={"step": "2"})
    with pytest.raises(WeightsError, match="not a blindsr model file"):
        load_model(checkpoint)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not safetensors at all")
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        load_model(garbage)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        load_model(tmp_path / "missing.safetensors")


# --------------------------------------------------------------------------------------------------------------
# names and cards


def test_name_grammar() -> None:
    assert parse_model_name("dmsr-x4") == ("dmsr", "", 4, "")
    assert parse_model_name("dmsr-x4.iso-noise").tag == "iso-noise"
    assert parse_model_name("mrda-teacher-x4.iso").base == "mrda-teacher-x4"
    for bad in ("dmsr", "dmsr-4", "DMSR-x4", "dmsr-x4.", "dmsr-x4.nf.x", "dmsr_x4"):
        with pytest.raises(ValueError, match="does not follow"):
            parse_model_name(bad)


def test_card_checks_itself() -> None:
    sha = "0" * 64
    card = _card(sha)
    assert card.base_name == "toy-x2" and card.tag == "bicubic"
    with pytest.raises(TypeError):
        card.arch_kwargs["scale"] = 3  # type: ignore[index]
    assert hash(card) == hash(_card(sha))
    with pytest.raises(ValueError, match="x2"):
        ModelCard(
            name="toy-x2",
            arch="toy_sr",
            arch_kwargs={**KWARGS, "scale": 4},
            scale=4,
            weights="a.safetensors",
            sha256=sha,
        )
    with pytest.raises(ValueError, match="sha256"):
        _card("abc")
    with pytest.raises(ValueError, match="file name"):
        _card(sha, weights="sub/toy.safetensors")


def test_lookup_aliases_and_suggestions(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = _card("1" * 64), _card("2" * 64, name="toy-x2.nf", weights="nf.safetensors")
    monkeypatch.setattr(cards, "MODEL_CARDS", (first, second))
    assert get_card("toy-x2") is first  # a name without a tag: the first card listed for it
    assert get_card("toy-x2.bicubic") is first and get_card("toy-x2.nf") is second
    with pytest.raises(KeyError) as err:
        get_card("toy-x3")
    msg = err.value.args[0]
    assert "'toy-x2'" in msg and "did you mean" in msg and "blindsr models" in msg
    with pytest.raises(KeyError, match="blindsr models"):
        load_model("dmsr-x4")


def test_spelling_aliases_resolve_and_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = _card("1" * 64), _card("2" * 64, name="toy-x2.nf", weights="nf.safetensors")
    monkeypatch.setattr(cards, "MODEL_CARDS", (first, second))
    monkeypatch.setattr(cards, "MODEL_ALIASES", {"toy-x2-nf": "toy-x2.nf"})
    assert get_card("toy-x2-nf") is second
    assert "toy-x2-nf" in cards.card_names(aliases=True)
    listed = {m["name"]: m["aliases"] for m in list_models()}
    assert listed["toy-x2.nf"] == ["toy-x2-nf"] and listed["toy-x2.bicubic"] == ["toy-x2"]


def test_shipped_aliases_point_at_shipped_cards() -> None:
    names = {c.name for c in cards.MODEL_CARDS}
    for alias, target in cards.MODEL_ALIASES.items():
        assert target in names, alias
        with pytest.raises(ValueError):
            parse_model_name(alias)  # an alias is only for spellings the grammar cannot express


def test_empty_zoo_says_so_and_points_at_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cards, "MODEL_CARDS", ())
    with pytest.raises(KeyError) as err:
        load_model("dmsr-x4")
    msg = err.value.args[0]
    assert "no trained models ship" in msg and "-m path/to/weights.safetensors" in msg
    assert list_models() == []


def test_shipped_cards_are_valid() -> None:
    names = [c.name for c in cards.MODEL_CARDS]
    assert len(names) == len(set(names))
    for card in cards.MODEL_CARDS:
        assert card.arch in archs.ARCHITECTURES and card.trained and card.license
        assert not card.noise_free_variant or card.noise_free_variant in names


def test_load_by_name_checks_the_sha256(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLINDSR_HOME", str(tmp_path))
    (tmp_path / "weights").mkdir()
    net, path, sha = _release(tmp_path / "weights", card="toy-x2.bicubic")
    monkeypatch.setattr(cards, "MODEL_CARDS", (_card(sha),))
    loaded = load_model("toy-x2", device="cpu")
    assert loaded.card is not None and loaded.card.name == "toy-x2.bicubic" and loaded.path == path
    assert loaded.metadata["card"] == "toy-x2.bicubic"

    monkeypatch.setattr(cards, "MODEL_CARDS", (_card("f" * 64),))
    with pytest.raises(WeightsError, match=r"sha256 .* does not match model card 'toy-x2.bicubic'"):
        load_model("toy-x2")

    monkeypatch.setattr(cards, "MODEL_CARDS", (_card(sha, weights="absent.safetensors"),))
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_model("toy-x2.bicubic")
    assert list_models()[0]["available"] is False


def test_card_and_file_must_describe_the_same_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLINDSR_HOME", str(tmp_path))
    (tmp_path / "weights").mkdir()
    _, _, sha = _release(tmp_path / "weights")
    card = ModelCard(
        name="toy-x2",
        arch="toy_sr",
        arch_kwargs={**KWARGS, "n_blocks": 2},
        scale=2,
        weights="toy.safetensors",
        sha256=sha,
    )
    monkeypatch.setattr(cards, "MODEL_CARDS", (card,))
    with pytest.raises(WeightsError, match="but card 'toy-x2' says"):
        load_model("toy-x2")


# --------------------------------------------------------------------------------------------------------------
# LoadedModel and networks with structured outputs


@dataclass
class _Out:
    sr: torch.Tensor
    kernel: torch.Tensor
    noise: torch.Tensor


class _Structured(nn.Module):
    """A stand-in for DMSRNet: an extractor and an SR body, output with ``.sr``, and ``parameter_counts()``."""

    def __init__(self, *, scale: int, n_feats: int = 4) -> None:
        super().__init__()
        self.extractor = nn.Conv2d(3, 2, 3, padding=1)
        self.sr = ToySR(scale=scale, n_feats=n_feats, n_blocks=1)

    def forward(self, lr: torch.Tensor) -> _Out:
        est = self.extractor(lr)
        return _Out(sr=self.sr(lr), kernel=est[:, :1], noise=est[:, 1:])

    def parameter_counts(self) -> dict[str, int]:
        ext = sum(p.numel() for p in self.extractor.parameters())
        sr = sum(p.numel() for p in self.sr.parameters())
        return {"extractor": ext, "sr": sr, "total": ext + sr}


def test_upscale_returns_sr_and_checks_the_scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    structured = archs.Architecture(id="structured", constructor=_Structured, summary="test", tiny_kwargs={"scale": 3})
    monkeypatch.setitem(archs.ARCHITECTURES, "structured", structured)  # type: ignore[index]
    net = _Structured(scale=3).eval()
    path = tmp_path / "s.safetensors"
    save_release(net, path, arch="structured", arch_kwargs={"scale": 3, "n_feats": 4}, scale=3)
    loaded = load_model(path)
    sr = loaded.upscale(torch.rand(2, 3, 5, 6), 3)
    assert isinstance(sr, torch.Tensor) and sr.shape == (2, 3, 15, 18) and not sr.requires_grad
    counts = loaded.parameter_counts()
    assert set(counts) == {"extractor", "sr", "total"} and counts["total"] == counts["extractor"] + counts["sr"]
    with pytest.raises(ValueError, match="upscales x3, asked for x2"):
        loaded.upscale(torch.rand(1, 3, 8, 8), 2)
    with pytest.raises(ValueError, match="3 channels"):
        loaded.upscale(torch.rand(1, 1, 8, 8), 3)

    card = ModelCard(
        name="toy-x3",
        arch="structured",
        arch_kwargs={"scale": 3, "n_feats": 4},
        scale=3,
        weights="s.safetensors",
        sha256=sha256_file(path),
        trained="none",
        license="MIT",
    )
    monkeypatch.setattr(cards, "MODEL_CARDS", (card,))
    [entry] = list_models()
    assert entry["name"] == "toy-x3" and entry["params"] == counts and entry["scale"] == 3


def test_noise_free_variant_must_be_a_sibling_card() -> None:
    kwargs = dict(name="toy-x2.bicubic", arch="toy_sr", arch_kwargs=KWARGS, scale=2, weights="t.safetensors")
    card = ModelCard(**kwargs, sha256="1" * 64, noise_free_variant="toy-x2.nf")
    assert card.noise_free_variant == "toy-x2.nf"
    for bad in ("toy-x3.nf", "other-x2.nf"):
        with pytest.raises(ValueError, match="noise_free_variant"):
            ModelCard(**kwargs, sha256="1" * 64, noise_free_variant=bad)
