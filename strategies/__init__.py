"""Public Hypothesis strategies for the inputs of vLLM's vision helpers.

One module per documented function (or family), each valid by construction
and sized by the single cap in :mod:`strategies._budget`:

* :mod:`strategies.feature_select` - named and callable strategies, features
* :mod:`strategies.encoder_outputs` - hidden states, layer selections, norms
* :mod:`strategies.pos_ids` - ``t_index`` lists and grid tensors
* :mod:`strategies.load_balance` - image size lists, rank counts
* :mod:`strategies.dp` - model descriptions, grid lists, world sizes
* :mod:`strategies.encoder_info` - CLIP / SigLIP / Pixtral configs, image sizes
* :mod:`strategies.backend` - head sizes, dtypes, backend names
"""
