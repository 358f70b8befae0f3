"""The engine: the one home of running a model over a text.

Every feature (analyze, activations, attention, attribution, the logit lens, patching,
explanations, corpus scans, the index build) runs the model through these modules and never
through another feature's internals:

- :mod:`.protocol`: :class:`HookedModel`, what the engine needs of a model (a TransformerLens
  ``TransformerBridge`` or ``HookedTransformer``);
- :mod:`lenscope.models.shape`: the model's named shape (``d_mlp`` None: attention-only);
- :mod:`lenscope.models.hooks`: every hook point's name, built in one place;
- :mod:`.layernorm`: a LayerNorm's weight and bias, read one way;
- :mod:`.plan`: tokenize context + text, keep what fits, cut windows (:func:`plan_text`);
- :mod:`.run`: the hooked forward over batches of windows, on the model's device
  (:func:`forward_windows`, :func:`forward_batches`);
- :mod:`.intervene`: interventions turned into forward hooks (:func:`prepare`).

This package's ``__init__`` imports nothing, so importing one of its modules costs only that
module. Hook names and the shape live in :mod:`lenscope.models` (no torch): the intervention
specs and the model registry use them without the engine.
"""
