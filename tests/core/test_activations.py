"""``neuron_activations`` against a direct ``run_with_cache``, and its bad input."""

from __future__ import annotations

import numpy as np
import pytest

from lenscope.analysis import analyze, neuron_activations
from lenscope.errors import InvalidInput
from tests.core.reference import reference

TEXT = "class Stack:\n    def push(self, item):\n        self._items.append(item)\n"


def test_matches_run_with_cache_and_analyze_tokens(gelu) -> None:
    neurons = [(0, 5), (0, 1023), (0, 0)]
    got = neuron_activations(gelu, TEXT, neurons, context="import os\n")
    ref = reference(gelu, TEXT, "import os\n")
    assert got.tokens.ids.tolist() == ref.ids
    expected = ref.neurons[:, [index for _, index in neurons]].numpy()
    np.testing.assert_allclose(got.activations, expected, atol=1e-5)
    assert got.neurons == neurons and got.activations.shape == (len(ref.ids), 3)
    # the top neuron analyze reports at a token has exactly that activation here
    top = analyze(gelu, TEXT, context="import os\n", top_neurons=1)
    i = 3
    layer, index = int(top.predictions.neuron_layer[i, 0]), int(top.predictions.neuron_index[i, 0])
    one = neuron_activations(gelu, TEXT, [(layer, index)], context="import os\n")
    assert one.activations[i, 0] == pytest.approx(float(top.predictions.neuron_activation[i, 0]), abs=1e-5)


def test_windowed_text_covers_every_token_once(gelu) -> None:
    text = TEXT * 30
    got = neuron_activations(gelu, text, [(0, 7)])
    full = analyze(gelu, text, top_neurons=1)
    assert full.windowed and got.activations.shape == (len(full.tokens.ids), 1)
    assert "".join(got.token_texts) == text


@pytest.mark.parametrize(
    "neurons,message",
    [
        ([], "1 to 100"),
        ([(1, 0)], "layer must be between 0 and 0"),
        ([(0, 1024)], "neuron index must be between 0 and 1023"),
        ([(0,)], "pair"),
    ],
)
def test_bad_neurons(gelu, neurons, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        neuron_activations(gelu, TEXT, neurons)


def test_attention_only_model_has_no_neurons(attn_only) -> None:
    with pytest.raises(InvalidInput, match="attention-only"):
        neuron_activations(attn_only, TEXT, [(0, 0)])
