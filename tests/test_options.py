from typing import Annotated, Literal

import pytest

from archsmith.errors import ArchsmithError
from archsmith.options import LayerName, Range, bind_options


def factory(
    in_shape: tuple[int, ...],
    width: Annotated[int, Range(min=1)] = 8,
    hidden: tuple[Annotated[int, Range(min=1)], ...] = (4,),
    rate: Annotated[float, Range(min=0.0, max=1.0, max_inclusive=False)] = 0.0,
    mode: Literal["a", "b"] = "a",
    flag: bool = False,
    norm_layer: Annotated[str | None, LayerName("norm")] = "layernorm",
    maybe: int | None = None,
) -> tuple:
    return (in_shape, width, hidden, rate, mode, flag, norm_layer, maybe)


def registered_norms(kind: str) -> list[str]:
    """A stand-in for the registry's ``list_layers``: options sit below the registry."""
    assert kind == "norm"
    return ["batchnorm", "layernorm", "rmsnorm"]


def test_binds_values_and_context() -> None:
    kw = bind_options(
        factory,
        {"width": 3, "hidden": [2, 5], "rate": 0},
        path="options",
        context={"in_shape": (4,), "num_outputs": 3},
    )
    assert kw == {"width": 3, "hidden": (2, 5), "rate": 0.0, "in_shape": (4,)}
    assert isinstance(kw["rate"], float)  # an integer JSON number is accepted for a float


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"width": 0}, "blocks[3].width: must be >= 1, got 0"),
        ({"width": "wide"}, "blocks[3].width: expected an integer, got 'wide'"),
        ({"width": True}, "blocks[3].width: expected an integer"),
        ({"hidden": [2, 0]}, "blocks[3].hidden[1]: must be >= 1"),
        ({"hidden": 5}, "blocks[3].hidden: expected a list"),
        ({"rate": 1.0}, "blocks[3].rate: must be < 1.0"),
        ({"mode": "c"}, "blocks[3].mode: must be one of 'a', 'b'"),
        ({"flag": 1}, "blocks[3].flag: expected true or false"),
        ({"norm_layer": "layrnorm"}, "did you mean 'layernorm'"),
        ({"widht": 3}, "blocks[3].widht: unknown option (did you mean 'width'?)"),
        ({"in_shape": [3]}, "blocks[3].in_shape: unknown option"),  # context is not user-settable
        ({"maybe": "x"}, "blocks[3].maybe: expected an integer"),
    ],
)
def test_errors_name_the_field(options: dict, message: str) -> None:
    with pytest.raises(ArchsmithError) as info:
        bind_options(
            factory,
            options,
            path="blocks[3]",
            context={"in_shape": (4,)},
            layer_names=registered_norms,
        )
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_optional_accepts_null_and_layer_accepts_class() -> None:
    import torch.nn as nn

    kw = bind_options(
        factory, {"maybe": None, "norm_layer": nn.LayerNorm}, path="o", context={"in_shape": ()}
    )
    assert kw["maybe"] is None and kw["norm_layer"] is nn.LayerNorm


def test_layer_names_are_checked_only_against_the_given_lookup() -> None:
    # without a lookup any string passes here (the registry resolves it when the block is built)
    kw = bind_options(factory, {"norm_layer": "mynorm"}, path="o", context={"in_shape": ()})
    assert kw["norm_layer"] == "mynorm"
    kw = bind_options(
        factory,
        {"norm_layer": "rmsnorm"},
        path="o",
        context={"in_shape": ()},
        layer_names=registered_norms,
    )
    assert kw["norm_layer"] == "rmsnorm"
    with pytest.raises(ArchsmithError, match=r"o\.norm_layer: expected the name of a norm layer"):
        bind_options(factory, {"norm_layer": 3}, path="o", context={"in_shape": ()})
