"""ledger.matching: reading HLA/HPA types and judging a donor's compatibility with a patient."""

from __future__ import annotations

import pytest

from ledger.events import WorkflowError
from ledger.matching import compatibility, parse_hla, parse_hpa


@pytest.mark.parametrize("text", ["A*02:01 B*46:01", "a*02, B*46", "A2;B46", "A*02:01:01 B*046"])
def test_hla_is_read_at_antigen_level_whatever_the_notation(text: str) -> None:
    assert parse_hla(text) == ("A*02", "B*46")


@pytest.mark.parametrize("text", ["C*07", "A*", "DRB1*04", "A*02 A*11 A*24"])
def test_hla_other_than_two_a_and_two_b_antigens_is_refused(text: str) -> None:
    with pytest.raises(WorkflowError, match="HLA"):
        parse_hla(text)


@pytest.mark.parametrize("text", ["1a1b 15bb", "HPA-1a1b HPA-15:bb", "hpa-1:ba, HPA15b15b"])
def test_hpa_genotypes_are_read_alike(text: str) -> None:
    assert parse_hpa(text) == {"HPA-1": "ab", "HPA-15": "bb"}


@pytest.mark.parametrize("text", ["1c1a", "1a2b", "HPA-1", "1a1a 1a1b", "11a"])
def test_an_hpa_genotype_that_is_not_one_or_a_system_given_twice_is_refused(text: str) -> None:
    with pytest.raises(WorkflowError, match="HPA"):
        parse_hpa(text)


def test_a_donor_carrying_an_hpa_allele_the_patient_lacks_is_incompatible() -> None:
    found = compatibility((), {"HPA-1": "aa"}, (), {"HPA-1": "ab"})
    assert (found.hpa, found.hpa_conflicts) == ("incompatible", ("HPA-1",))


def test_a_donor_whose_alleles_the_patient_has_is_compatible() -> None:
    assert compatibility((), {"HPA-1": "ab"}, (), {"HPA-1": "aa"}).hpa == "compatible"


def test_a_system_typed_for_the_patient_only_leaves_the_donor_partly_typed() -> None:
    found = compatibility((), {"HPA-1": "aa", "HPA-2": "aa"}, (), {"HPA-1": "aa"})
    assert found.hpa == "partly typed"


def test_hla_mismatches_count_the_donor_antigens_the_patient_lacks() -> None:
    patient = parse_hla("A*02 A*11 B*46 B*58")
    assert compatibility(patient, {}, parse_hla("A*02 A*11 B*46 B*58"), {}).hla_mismatches == 0
    assert compatibility(patient, {}, parse_hla("A*02 B*46"), {}).hla_mismatches == 0
    assert compatibility(patient, {}, parse_hla("A*24 A*02 B*13 B*46"), {}).hla_mismatches == 2
    assert compatibility((), {}, parse_hla("A*24"), {}).hla_mismatches is None
