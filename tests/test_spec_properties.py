"""Property tests: any valid block list survives a JSON round trip and builds the network whose
parameter count the layer formulas predict."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from archsmith.build import build
from archsmith.spec import Spec

widths = st.lists(st.integers(min_value=1, max_value=24), min_size=0, max_size=4)
acts = st.sampled_from(["relu", "gelu", "tanh", "selu", "none"])
norms = st.sampled_from(["none", "layernorm", "rmsnorm", "batchnorm"])


@settings(max_examples=30, deadline=None)
@given(hidden=widths, act=acts, norm=norms, bias=st.booleans())
def test_mlp_block_spec_roundtrip_and_param_count(
    hidden: list[int], act: str, norm: str, bias: bool
) -> None:
    blocks: list[dict] = [{"type": "flatten"}]
    expected, width = 0, 64
    for h in hidden:
        blocks += [
            {"type": "linear", "out_features": h, "bias": bias},
            {"type": "norm", "layer": norm},
            {"type": "act", "layer": act},
        ]
        expected += width * h + (h if bias else 0)
        # layernorm and batchnorm carry a scale and a shift, rmsnorm only a scale
        expected += {"none": 0, "layernorm": 2 * h, "batchnorm": 2 * h, "rmsnorm": h}[norm]
        width = h
    expected += width * 10 + 10  # the head appended for digits' 10 classes
    spec = Spec.from_dict(json.loads(json.dumps({"task": "digits-flat", "blocks": blocks})))
    assert Spec.from_dict(spec.to_dict()).to_dict() == spec.to_dict()
    model = build(spec)
    assert sum(p.numel() for p in model.parameters()) == expected
