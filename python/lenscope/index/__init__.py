"""The neuron index: Neuroscope over your own corpus. ``build`` streams a corpus through a model,
``store`` writes and opens the on-disk format, ``card`` answers neuron lookups."""
