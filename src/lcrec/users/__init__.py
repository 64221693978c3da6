"""User codes: each user's text and behaviour quantized into a token namespace of its own (``<ua_12><ub_3>``)."""
