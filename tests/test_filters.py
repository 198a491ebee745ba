import pytest

from lambdasette.errors import ApiError
from lambdasette.query.filters import human_description, parse_filters, split_in, where_clauses


def test_operators_build_bound_sql() -> None:
    filters = parse_filters([("age__gt", "3"), ("name__contains", "o"), ("breed", "Mutt")],
                            {"age", "name", "breed"})
    params: dict = {}
    clauses = where_clauses(filters, "dogs", params)
    assert clauses == ['"age" > :p0', '"breed" = :p1', '"name" like :p2']
    assert params == {"p0": 3, "p1": "Mutt", "p2": "%o%"}


def test_in_keeps_json_types_and_splits_commas() -> None:
    assert split_in("[1, \"a\"]") == [1, "a"]
    assert split_in("Bella, the dog,Rex") == ["Bella", "the dog", "Rex"]
    with pytest.raises(ApiError) as info:
        split_in("[1,")
    assert info.value.status == 400


def test_unknown_columns_and_unknown_operators_are_400s() -> None:
    with pytest.raises(ApiError):
        parse_filters([("nope", "1")], {"a"})
    with pytest.raises(ApiError) as info:
        parse_filters([("a__gtt", "1")], {"a"})
    assert info.value.status == 400 and "gtt" in str(info.value)
    # A column whose own name has a "__" in it is an exact filter on that column.
    assert parse_filters([("a__bogus", "1")], {"a__bogus"})[0].column == "a__bogus"


def test_special_arguments_are_not_filters() -> None:
    assert parse_filters([("_size", "1"), ("_col__exact", "x")], {"_col"})[0].column == "_col"


def test_human_description() -> None:
    assert human_description([]) == ""
    assert human_description(["a", "b", "c"]) == "where a, b and c"
