"""MRDA's stored-argument translation (blindsr.archs.mrda): a release file's flat ``arch_kwargs`` → ``RDANOptions``."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any

import pytest
import torch

from blindsr.archs import ARCHITECTURES, ARCHS, constructor_kwargs
from blindsr.nets.mrda import MRDAStudent, MRDATeacher, RDANOptions
from blindsr.zoo import load_model, read_release_metadata, resolve_weights
from blindsr.zoo.cards import get_card

# what every MRDA student release written so far stores (the shipped lite models' arch_kwargs)
FLAT_STUDENT: dict[str, Any] = {
    "scale": 4,
    "n_feats": 32,
    "n_blocks": 6,
    "idr_dim": 128,
    "den_channels": 16,
    "kernel_size": 3,
    "modulation": "rdam",
    "kernel": "dynamic",
    "rdam_channels": 1,
    "rdam_input": "F",
    "rdam_kernel_size": 1,
    "da_reduction": 8,
}


def test_flat_rdan_fields_become_one_rdan_options() -> None:
    kwargs = constructor_kwargs("mrda_s", FLAT_STUDENT)
    assert kwargs == {
        "scale": 4,
        "den_channels": 16,
        "rdan_options": RDANOptions(n_feats=32, n_blocks=6, idr_dim=128),
    }
    assert FLAT_STUDENT["n_feats"] == 32  # the input is not changed
    # the stored keys are exactly RDANOptions' fields beside the DEN's: the map inverts with asdict
    assert {"scale": 4, **asdict(kwargs["rdan_options"]), "den_channels": 16} == FLAT_STUDENT


def test_teacher_keys_pass_through_and_omitted_fields_keep_their_defaults() -> None:
    t3 = {"scale": 2, "n_feats": 8, "idr_source": "kernel", "blur_kernel_size": 15, "mln_channels": 128}
    kwargs = constructor_kwargs("mrda_t", t3)
    assert kwargs == {
        "scale": 2,
        "idr_source": "kernel",
        "blur_kernel_size": 15,
        "mln_channels": 128,
        "rdan_options": RDANOptions(n_feats=8),
    }
    with torch.device("meta"):
        assert isinstance(ARCHS["mrda_t"](**kwargs), MRDATeacher)
        assert isinstance(ARCHS["mrda_s"](**constructor_kwargs("mrda_s", {"scale": 3})), MRDAStudent)


def test_other_architectures_and_unknown_keys_are_left_alone() -> None:
    assert constructor_kwargs("mrda_mln", {"scale": 2, "n_feats": 8}) == {"scale": 2, "n_feats": 8}
    assert constructor_kwargs("dmsr", {"scale": 4, "kernel_size": 15}) == {"scale": 4, "kernel_size": 15}
    assert {arch for arch in ARCHITECTURES if "rdan_options" in constructor_kwargs(arch, {})} == {"mrda_s", "mrda_t"}
    kwargs = constructor_kwargs("mrda_s", {"scale": 2, "n_resblocks": 2})  # a typo still fails in the constructor
    assert kwargs["n_resblocks"] == 2
    with pytest.raises(TypeError):
        ARCHS["mrda_s"](**kwargs)
    already = {"scale": 2, "rdan_options": RDANOptions(n_feats=8)}
    assert constructor_kwargs("mrda_s", already) == already
    with pytest.raises(TypeError, match="not both"):
        constructor_kwargs("mrda_s", {**already, "n_blocks": 2})
    assert {f.name for f in fields(RDANOptions)} <= set(FLAT_STUDENT)


@pytest.mark.parametrize("name", ["mrda-x2", "mrda-x4", "mrda-x4-aniso"])
def test_shipped_mrda_files_keep_their_flat_arch_kwargs_and_load(name: str) -> None:
    card = get_card(name)
    metadata = read_release_metadata(resolve_weights(card))
    stored = json.loads(metadata["arch_kwargs"])
    assert stored == {**FLAT_STUDENT, "scale": card.scale} == dict(card.arch_kwargs)
    model = load_model(name).model
    assert isinstance(model, MRDAStudent) and model.rdan.options == constructor_kwargs("mrda_s", stored)["rdan_options"]
