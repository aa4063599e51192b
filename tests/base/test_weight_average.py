"""WeightAverage: the moving average of a module's trained weights, swapped in and out, saved and restored."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.base.weight_average import WeightAverage


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model[0].requires_grad_(False)  # a frozen part: never averaged
    return model


def test_average_follows_the_updates_of_trained_parameters_only():
    model = _model()
    average = WeightAverage(model, decay=0.75)
    start = model[1].weight.detach().clone()
    average.update()  # starts at the current weights
    with torch.no_grad():
        model[1].weight.add_(1.0)
    average.update()
    assert set(average.average) == {"1.weight", "1.bias"}
    torch.testing.assert_close(average.average["1.weight"], 0.75 * start + 0.25 * (start + 1.0))


def test_swapped_in_runs_the_average_and_puts_the_trained_weights_back():
    model = _model()
    average = WeightAverage(model, decay=0.5)
    average.update()
    x = torch.randn(5, 3)
    averaged_out = model(x).detach()
    with torch.no_grad():
        model[1].weight.mul_(3.0)
    trained_out = model(x).detach()
    with average.swapped_in():
        torch.testing.assert_close(model(x), averaged_out)
    torch.testing.assert_close(model(x), trained_out)
    average.copy_to_module()
    torch.testing.assert_close(model(x), averaged_out)


def test_state_round_trip_and_a_mismatched_state_is_refused():
    model = _model()
    average = WeightAverage(model, decay=0.9)
    average.update()
    restored = WeightAverage(_model(), decay=0.9)
    restored.load_state_dict(average.state_dict())
    for name, value in average.average.items():
        torch.testing.assert_close(restored.average[name], value)
    with pytest.raises(ValueError, match="1.weight"):
        restored.load_state_dict({"1.weight": torch.zeros(7, 7)})
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(model, decay=1.0)
