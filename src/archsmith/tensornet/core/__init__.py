"""Tensor-network core: TT-SVD, the TT-matrix (MPO) format, Tucker (HOSVD), CP (ALS), mode
factorization, cached opt_einsum contractions and rank selection under a parameter budget."""

from archsmith.tensornet.core.budget import (
    greedy_ranks,
    largest_uniform_rank,
    tt_bond_spectra,
    tt_ranks_for_budget,
    tucker_core_shape,
)
from archsmith.tensornet.core.contract import contract, expression
from archsmith.tensornet.core.cp import cp_als, cp_params, cp_to_full
from archsmith.tensornet.core.modes import choose_modes, factorize
from archsmith.tensornet.core.tt import (
    max_tt_ranks,
    truncation_rank,
    tt_params,
    tt_ranks,
    tt_svd,
    tt_to_full,
)
from archsmith.tensornet.core.tt_matrix import (
    interleave_modes,
    tt_matrix_from_dense,
    tt_matrix_to_dense,
)
from archsmith.tensornet.core.tucker import (
    mode_dot,
    mode_singular_values,
    tucker_hosvd,
    tucker_params,
    tucker_to_full,
    unfold,
)

__all__ = [
    "choose_modes",
    "contract",
    "cp_als",
    "cp_params",
    "cp_to_full",
    "expression",
    "factorize",
    "greedy_ranks",
    "interleave_modes",
    "largest_uniform_rank",
    "max_tt_ranks",
    "mode_dot",
    "mode_singular_values",
    "truncation_rank",
    "tt_bond_spectra",
    "tt_matrix_from_dense",
    "tt_matrix_to_dense",
    "tt_params",
    "tt_ranks",
    "tt_ranks_for_budget",
    "tt_svd",
    "tt_to_full",
    "tucker_core_shape",
    "tucker_hosvd",
    "tucker_params",
    "tucker_to_full",
    "unfold",
]
