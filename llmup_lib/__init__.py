"""llmup: helpers for a Jupyter suite on upgrading language models.

One module per concept: ``profiles``, ``world``/``corpora``, ``tokenizer``, ``models``,
``train``, ``evaluate``, ``base``, ``plots``, ``widgets``, ``exercises``, ``env``.
"""

__version__ = "0.1.0"
