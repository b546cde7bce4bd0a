import pytest

from ingestion.fusion import weighted_rrf


def test_weights_shift_the_ranking_towards_the_heavier_list() -> None:
    dense, lexical = ["a", "b", "c"], ["c", "b", "a"]
    assert weighted_rrf([dense, lexical], [1.0, 1.0], k=10)[0][1] == pytest.approx(1 / 11 + 1 / 13)
    assert [x for x, _ in weighted_rrf([dense, lexical], [3.0, 1.0], k=10)] == ["a", "b", "c"]
    assert [x for x, _ in weighted_rrf([dense, lexical], [1.0, 3.0], k=10)] == ["c", "b", "a"]


def test_items_in_one_list_only_still_count() -> None:
    fused = dict(weighted_rrf([["a"], ["b", "a"]], [1.0, 1.0], k=1))
    assert fused["a"] == pytest.approx(1 / 2 + 1 / 3) and fused["b"] == pytest.approx(1 / 2)


def test_one_weight_per_list() -> None:
    with pytest.raises(ValueError):
        weighted_rrf([["a"]], [1.0, 2.0], k=1)
