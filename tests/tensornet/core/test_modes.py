import math
from itertools import product

import pytest

from archsmith.errors import ArchsmithError
from archsmith.tensornet.core import choose_modes, factorize


def _brute_min_max_factor(n: int, k: int) -> int:
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    best = n
    for combo in product(divisors, repeat=k):
        if math.prod(combo) == n:
            best = min(best, max(combo))
    return best


@pytest.mark.parametrize("n", [1, 2, 12, 60, 64, 96, 97, 100, 210, 384])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_factorize_is_balanced(n: int, k: int) -> None:
    modes = factorize(n, k)
    assert len(modes) == k and math.prod(modes) == n
    assert list(modes) == sorted(modes, reverse=True)
    assert max(modes) == _brute_min_max_factor(n, k)


def test_factorize_examples() -> None:
    assert factorize(96, 2) == (12, 8)
    assert factorize(1024, 2) == (32, 32)
    assert factorize(97, 2) == (97, 1)


def test_choose_modes_pads_primes_only() -> None:
    assert choose_modes(96, 2) == (12, 8)  # factors well: no padding
    modes = choose_modes(97, 2)
    assert math.prod(modes) >= 97 and max(modes) <= 20  # 97 is padded to a size that factors
    assert math.prod(choose_modes(1021, 3)) >= 1021 and max(choose_modes(1021, 3)) <= 20


def test_factorize_rejects_bad_input() -> None:
    with pytest.raises(ArchsmithError):
        factorize(0, 2)
