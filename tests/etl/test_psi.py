"""PSI against values computed by hand: deciles, right-closed bins, open outer edges, epsilon."""

from __future__ import annotations

import math

import pytest

from modelstats.etl import psi

# Reference 1..10: type-7 deciles sit at h = 9p, e.g. p = 0.1 -> 1 + 0.9 * (2 - 1) = 1.9.
REFERENCE = [float(v) for v in range(1, 11)]
EDGES = [1.9, 2.8, 3.7, 4.6, 5.5, 6.4, 7.3, 8.2, 9.1]


def test_decile_edges_interpolate_between_order_statistics():
    assert psi.decile_edges(REFERENCE) == pytest.approx(EDGES)
    # Unsorted input gives the same edges.
    assert psi.decile_edges(list(reversed(REFERENCE))) == pytest.approx(EDGES)


def test_quantile_rejects_an_empty_sample():
    with pytest.raises(ValueError):
        psi.quantile([], 0.5)


def test_bins_are_right_closed_with_open_outer_edges():
    counts = psi.bin_counts(EDGES, [-100.0, 1.9, 1.91, 9.1, 9.11, 1e9])
    # -100 and 1.9 (on the edge) in the first bin; 1.91 in the second; 9.1 in the ninth;
    # 9.11 and 1e9 in the last, open bin.
    assert counts == [2, 1, 0, 0, 0, 0, 0, 0, 1, 2]


def test_reference_shares_are_one_tenth_per_bin():
    reference = psi.ReferenceBins.of(REFERENCE)
    assert reference.shares == pytest.approx([0.1] * 10)
    assert reference.size == 10


def test_psi_of_a_concentrated_distribution_by_hand():
    # Actual: five 1s and five 2s -> shares 0.5, 0.5 and eight empty bins (epsilon 1e-4).
    # PSI = 2 * (0.5 - 0.1) * ln(0.5 / 0.1) + 8 * (1e-4 - 0.1) * ln(1e-4 / 0.1)
    #     = 0.8 * 1.6094379124341003 + 0.7992 * 6.907755278982137
    #     = 1.2875503299472803 + 5.520678018962524 = 6.808228348909804
    value = psi.psi(psi.ReferenceBins.of(REFERENCE), [1.0] * 5 + [2.0] * 5)
    assert value == pytest.approx(6.808228348909804, rel=1e-12)


def test_psi_of_a_shifted_distribution_by_hand():
    # Actual 2..11: the first bin is empty (epsilon), 2..9 one per bin, 10 and 11 share the
    # open last bin (0.2). PSI = (1e-4 - 0.1) * ln(1e-4 / 0.1) + (0.2 - 0.1) * ln(2)
    #                           = 0.6900847523703155 + 0.06931471805599453 = 0.75939947042631
    value = psi.psi(psi.ReferenceBins.of(REFERENCE), [float(v) for v in range(2, 12)])
    assert value == pytest.approx(0.75939947042631, rel=1e-12)


def test_psi_of_the_reference_itself_is_zero():
    assert psi.psi(psi.ReferenceBins.of(REFERENCE), REFERENCE) == 0.0


def test_tied_reference_gives_empty_bins_on_both_sides():
    # All edges equal 0.5: everything at 0.5 falls in the first bin, on both sides.
    reference = psi.ReferenceBins.of([0.5] * 20)
    assert psi.psi(reference, [0.5] * 7) == 0.0
    # Everything in the last bin instead: 2 * (1 - 1e-4) * ln(1 / 1e-4).
    expected = 2 * (1 - 1e-4) * math.log(1e4)
    assert psi.psi(reference, [0.9] * 7) == pytest.approx(expected, rel=1e-12)
    assert psi.EPSILON == 1e-4
