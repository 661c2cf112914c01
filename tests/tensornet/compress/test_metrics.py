"""Agreement metrics against naive loops."""

import math

import pytest
import torch

from archsmith.tensornet.compress.metrics import mean_cosine, neighbour_recall


def _naive_recall(ref, cand, k):
    def knn(x, i):
        sims = []
        for j in range(len(x)):
            if j != i:
                a, b = x[i].tolist(), x[j].tolist()
                dot = sum(p * q for p, q in zip(a, b, strict=True))
                sims.append((dot / math.sqrt(sum(p * p for p in a) * sum(q * q for q in b)), j))
        return {j for _, j in sorted(sims, reverse=True)[:k]}

    return sum(len(knn(ref, i) & knn(cand, i)) / k for i in range(len(ref))) / len(ref)


def test_mean_cosine_matches_a_loop():
    a, b = torch.randn(7, 5), torch.randn(7, 5)
    expected = sum(float(a[i] @ b[i] / (a[i].norm() * b[i].norm())) for i in range(7)) / 7
    assert mean_cosine(a, b) == pytest.approx(expected, abs=1e-6)
    assert mean_cosine(a, 3 * a) == pytest.approx(1.0)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_neighbour_recall_matches_a_loop(k):
    ref = torch.randn(20, 6, dtype=torch.float64)
    cand = ref + 0.8 * torch.randn(20, 6, dtype=torch.float64)
    assert neighbour_recall(ref, cand, k) == pytest.approx(_naive_recall(ref, cand, k))


def test_neighbour_recall_extremes():
    x = torch.randn(30, 4)
    assert neighbour_recall(x, 2 * x, 10) == 1.0
    # a hand-made case: 1-D embeddings on a circle, candidate reverses the neighbour order
    ref = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    cand = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]])
    # ref: 0<->1 nearest, 2's nearest is 1; cand: 0's nearest is 2, 1's is 2, 2's is 0
    assert neighbour_recall(ref, cand, 1) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="more than 10"):
        neighbour_recall(x[:10], x[:10], 10)
