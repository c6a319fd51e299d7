"""The deferred writes' statements: one per shape, reused, each value its own parameter;
anything that cannot be a parameter keeps a statement built for it."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, update

from services.common.deferred import MAX_PARAMETERS, Row, groups, statement

_META = MetaData()
_T = Table("t", _META, Column("a", Integer), Column("b", String))
_U = Table("u", _META, Column("a", Integer))


def test_one_shape_is_one_statement_with_a_parameter_per_value() -> None:
    first, params = statement([Row(_T, {"a": 1, "b": "x"}), Row(_T, {"a": 2, "b": "y"})])
    again, other = statement([Row(_T, {"a": 3, "b": "z"}), Row(_T, {"a": 4, "b": "w"})])

    assert again is first
    assert params == {"p0_0": 1, "p0_1": "x", "p1_0": 2, "p1_1": "y"}
    assert other == {"p0_0": 3, "p0_1": "z", "p1_0": 4, "p1_1": "w"}
    compiled = str(first.compile())
    assert all(f":{name}" in compiled for name in params)


def test_another_table_or_column_set_or_order_is_another_shape() -> None:
    base, _ = statement([Row(_T, {"a": 1, "b": "x"})])
    assert statement([Row(_T, {"a": 1})])[0] is not base
    assert statement([Row(_T, {"b": "x", "a": 1})])[0] is not base
    assert statement([Row(_U, {"a": 1})])[0] is not base
    assert statement([Row(_T, {"a": 1, "b": "x"}), Row(_U, {"a": 1})])[0] is not base


def test_expressions_and_built_statements_keep_a_statement_of_their_own() -> None:
    expression, params = statement([Row(_T, {"a": func.length("abc"), "b": "x"})])
    assert params is None
    assert "length" in str(expression.compile())

    built = update(_T).values(b="y")
    mixed, params = statement([Row(_T, {"a": 1}), built, Row(_U, {"a": func.abs(-2)})])
    # The plain row keeps its cached part and its own parameter beside the others.
    assert params == {"p0_0": 1}
    compiled = str(mixed.compile())
    assert "UPDATE t SET b=" in compiled
    assert ":p0_0" in compiled
    assert "abs" in compiled


def test_grouping_under_the_parameter_limit_counts_rows_as_statements() -> None:
    rows = [Row(_T, {"a": i, "b": str(i)}) for i in range(2000)]
    runs = groups(rows)
    # 2 values + the margin of 32 a row, as a statement of two values counted.
    assert [len(run) for run in runs] == [941, 941, 118]
    assert all(len(run) * 34 <= MAX_PARAMETERS for run in runs)
    built = insert(_T).values(a=1)
    assert groups([built, *rows[:2]]) == [[built, *rows[:2]]]
