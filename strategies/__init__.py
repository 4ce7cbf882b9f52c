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

Every public strategy function checks its arguments when it is called, like
Hypothesis's own strategies: a wrong type (a bool where an int is expected
included), a value out of range, an inverted minimum and maximum, an unknown
name, or a size above a cap of :mod:`strategies._budget` raises
:class:`hypothesis.errors.InvalidArgument` naming the argument, the value
given and what is accepted (``grid_lists: rope_type='rope3d' is not one of
'rope_2d', 'rope_3d'``); nothing is clamped silently. Each docstring says
what its arguments accept. tests/unit/test_strategy_arguments.py holds one
row per argument; tests/meta/test_strategy_reach.py checks the caps on drawn
examples and that every documented boundary class is reachable.
"""
