"""Tests of the lme4 formula parser (mixedmodels.formula)."""

from __future__ import annotations

import dataclasses

import pytest

from mixedmodels.errors import FormulaError, MixedModelError
from mixedmodels.formula import ParsedFormula, RandomTerm, parse_formula


def caret_position(error: FormulaError, formula: str) -> int:
    """The column the error's caret points at, after checking the formula is quoted above it."""
    *_, shown, caret = str(error).splitlines()
    assert shown == "  " + "".join(" " if char.isspace() else char for char in formula)
    assert caret.strip() == "^"
    return len(caret) - len("  ^")


def parse_error(formula: str) -> FormulaError:
    with pytest.raises(FormulaError) as info:
        parse_formula(formula)
    return info.value


# Formulas of lme4's reference fits, with every field spelled out.
REFERENCE_FITS = [
    (
        "Reaction ~ Days + (Days | Subject)",
        ParsedFormula(
            formula="Reaction ~ Days + (Days | Subject)",
            response="Reaction",
            cbind=None,
            fixed="Days",
            offsets=(),
            random=(RandomTerm("Days", ("Subject",)),),
        ),
    ),
    (
        "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
        ParsedFormula(
            formula="Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
            response="Reaction",
            cbind=None,
            fixed="Days",
            offsets=(),
            random=(RandomTerm("1", ("Subject",)), RandomTerm("0 + Days", ("Subject",))),
        ),
    ),
    (
        "Reaction ~ Days + (Days || Subject)",
        ParsedFormula(
            formula="Reaction ~ Days + (Days || Subject)",
            response="Reaction",
            cbind=None,
            fixed="Days",
            offsets=(),
            random=(RandomTerm("1", ("Subject",)), RandomTerm("0 + Days", ("Subject",))),
        ),
    ),
    (
        "Yield ~ 1 + (1 | Batch)",
        ParsedFormula(
            formula="Yield ~ 1 + (1 | Batch)",
            response="Yield",
            cbind=None,
            fixed="1",
            offsets=(),
            random=(RandomTerm("1", ("Batch",)),),
        ),
    ),
    (
        "diameter ~ 1 + (1 | plate) + (1 | sample)",
        ParsedFormula(
            formula="diameter ~ 1 + (1 | plate) + (1 | sample)",
            response="diameter",
            cbind=None,
            fixed="1",
            offsets=(),
            random=(RandomTerm("1", ("plate",)), RandomTerm("1", ("sample",))),
        ),
    ),
    (
        "strength ~ 1 + (1 | batch/cask)",
        ParsedFormula(
            formula="strength ~ 1 + (1 | batch/cask)",
            response="strength",
            cbind=None,
            fixed="1",
            offsets=(),
            random=(RandomTerm("1", ("cask", "batch")), RandomTerm("1", ("batch",))),
        ),
    ),
    (
        "angle ~ recipe * temperature + (1 | recipe:replicate)",
        ParsedFormula(
            formula="angle ~ recipe * temperature + (1 | recipe:replicate)",
            response="angle",
            cbind=None,
            fixed="recipe * temperature",
            offsets=(),
            random=(RandomTerm("1", ("recipe", "replicate")),),
        ),
    ),
    (
        "y ~ service + (1 | s) + (1 | d) + (1 | dept)",
        ParsedFormula(
            formula="y ~ service + (1 | s) + (1 | d) + (1 | dept)",
            response="y",
            cbind=None,
            fixed="service",
            offsets=(),
            random=(
                RandomTerm("1", ("s",)),
                RandomTerm("1", ("d",)),
                RandomTerm("1", ("dept",)),
            ),
        ),
    ),
    (
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ParsedFormula(
            formula="cbind(incidence, size - incidence) ~ period + (1 | herd)",
            response="cbind(incidence, size - incidence)",
            cbind=("incidence", "size - incidence"),
            fixed="period",
            offsets=(),
            random=(RandomTerm("1", ("herd",)),),
        ),
    ),
    (
        "count ~ x1 + x2 + offset(log(exposure)) + (1 | site)",
        ParsedFormula(
            formula="count ~ x1 + x2 + offset(log(exposure)) + (1 | site)",
            response="count",
            cbind=None,
            fixed="x1 + x2",
            offsets=("log(exposure)",),
            random=(RandomTerm("1", ("site",)),),
        ),
    ),
    (
        "y ~ x + (1 + x | subj) + (1 | item)",
        ParsedFormula(
            formula="y ~ x + (1 + x | subj) + (1 | item)",
            response="y",
            cbind=None,
            fixed="x",
            offsets=(),
            random=(RandomTerm("1 + x", ("subj",)), RandomTerm("1", ("item",))),
        ),
    ),
    (
        "TICKS ~ YEAR + cHEIGHT + (1|BROOD) + (1|INDEX) + (1|LOCATION)",
        ParsedFormula(
            formula="TICKS ~ YEAR + cHEIGHT + (1|BROOD) + (1|INDEX) + (1|LOCATION)",
            response="TICKS",
            cbind=None,
            fixed="YEAR + cHEIGHT",
            offsets=(),
            random=(
                RandomTerm("1", ("BROOD",)),
                RandomTerm("1", ("INDEX",)),
                RandomTerm("1", ("LOCATION",)),
            ),
        ),
    ),
    (
        "incidence / size ~ period + (1 | herd)",
        ParsedFormula(
            formula="incidence / size ~ period + (1 | herd)",
            response="incidence / size",
            cbind=None,
            fixed="period",
            offsets=(),
            random=(RandomTerm("1", ("herd",)),),
        ),
    ),
]


@pytest.mark.parametrize(
    ("formula", "expected"), REFERENCE_FITS, ids=[formula for formula, _ in REFERENCE_FITS]
)
def test_reference_fit_formulas(formula: str, expected: ParsedFormula) -> None:
    assert parse_formula(formula) == expected


# --- public types --------------------------------------------------------------------


def test_group_name_joins_interaction_columns() -> None:
    assert RandomTerm("1", ("cask", "batch")).group_name == "cask:batch"
    assert RandomTerm("1", ("Subject",)).group_name == "Subject"


def test_results_are_immutable_and_hashable() -> None:
    parsed = parse_formula("y ~ x + (1 | g)")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.fixed = "0"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.random[0].expr = "0"  # type: ignore[misc]
    assert hash(parsed) == hash(parse_formula("y ~ x + (1 | g)"))


def test_formula_error_is_a_value_error() -> None:
    error = parse_error("y ~ x + 1 | g")
    assert isinstance(error, MixedModelError)
    assert isinstance(error, ValueError)


def test_non_string_formula_is_rejected() -> None:
    with pytest.raises(FormulaError, match="must be a string, got int"):
        parse_formula(3)  # type: ignore[arg-type]


# --- rule 1: the tilde ---------------------------------------------------------------


def test_missing_tilde() -> None:
    error = parse_error("y + x")
    assert "needs a '~'" in str(error)
    assert str(error).endswith("\n  y + x")


def test_two_top_level_tildes_point_at_the_second() -> None:
    formula = "y ~ x ~ z"
    error = parse_error(formula)
    assert "exactly one '~'" in str(error)
    assert caret_position(error, formula) == 6


def test_tilde_inside_parentheses_is_not_a_separator() -> None:
    parsed = parse_formula("y ~ f(a ~ b) + (1 | g)")
    assert parsed.response == "y"
    assert parsed.fixed == "f(a ~ b)"


@pytest.mark.parametrize(
    ("formula", "message", "position"),
    [
        ("~ x + (1 | g)", "no response before '~'", 0),
        ("  ~ x", "no response before '~'", 2),
        ("y ~", "no predictors after '~'", 2),
        ("y ~   ", "no predictors after '~'", 2),
    ],
)
def test_empty_side(formula: str, message: str, position: int) -> None:
    error = parse_error(formula)
    assert message in str(error)
    assert caret_position(error, formula) == position


def test_empty_formula() -> None:
    assert "needs a '~'" in str(parse_error(""))


# --- rule 2: splitting the right-hand side -------------------------------------------


def test_removal_of_intercept_stays_in_fixed_part() -> None:
    parsed = parse_formula("y ~ x - 1 + (1 | g)")
    assert parsed.fixed == "x - 1"
    assert parsed.random == (RandomTerm("1", ("g",)),)


def test_parenthesised_pieces_without_bar_are_fixed() -> None:
    parsed = parse_formula("y ~ (x + z) + I((x+1)^2) + (1 | g)")
    assert parsed.fixed == "(x + z) + I((x+1)**2)"
    assert parsed.random == (RandomTerm("1", ("g",)),)


@pytest.mark.parametrize(
    ("formula", "fixed", "expr"),
    [
        ("y ~ x + I(x^2) + (x + I(x^2) | g)", "x + I(x**2)", "x + I(x**2)"),
        ("y ~ (a + b)^2 + (1 | g)", "(a + b)**2", "1"),
        ("y ~ C(f, Treatment('^')) + (1 | g)", "C(f, Treatment('^'))", "1"),
    ],
)
def test_r_power_becomes_python_power_outside_quotes(formula: str, fixed: str, expr: str) -> None:
    parsed = parse_formula(formula)
    assert parsed.fixed == fixed and parsed.random[0].expr == expr


def test_redundant_parentheses_around_a_random_term_are_looked_through() -> None:
    assert parse_formula("y ~ x + ((1 | g))").random == (RandomTerm("1", ("g",)),)


def test_terms_are_split_only_at_top_level() -> None:
    parsed = parse_formula("y ~ log(x + 1) + d[a - b] + (I(x - 1) + z | g)")
    assert parsed.fixed == "log(x + 1) + d[a - b]"
    assert parsed.random == (RandomTerm("I(x - 1) + z", ("g",)),)


def test_random_term_between_fixed_terms_keeps_the_signs_right() -> None:
    assert parse_formula("y ~ a + (1 | g) - b").fixed == "a - b"
    assert parse_formula("y ~ (1 | g) - b + c").fixed == "-b + c"


def test_run_of_signs_applies_to_the_next_term() -> None:
    assert parse_formula("y ~ x + -1").fixed == "x - 1"
    assert parse_formula("y ~ x - -z").fixed == "x + z"
    assert parse_formula("y ~ +x").fixed == "x"


def test_dangling_operator() -> None:
    formula = "y ~ x + (1 | g) -"
    error = parse_error(formula)
    assert "'-' is not followed by a term" in str(error)
    assert caret_position(error, formula) == 16


def test_removing_a_random_term_is_an_error() -> None:
    formula = "y ~ x - (1 | g)"
    error = parse_error(formula)
    assert "cannot be removed with '-': '(1 | g)'" in str(error)
    assert caret_position(error, formula) == 8


# --- rule 3: bars outside parentheses ------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "position"),
    [("y ~ x + 1 | g", 10), ("y ~ 1|g", 5), ("y ~ x + (1 | g) | h", 16)],
)
def test_unparenthesised_bar(formula: str, position: int) -> None:
    error = parse_error(formula)
    assert "must be written in parentheses, e.g. (1 | g)" in str(error)
    assert caret_position(error, formula) == position


@pytest.mark.parametrize(
    ("formula", "found", "position"),
    [
        ("y ~ x:(1 | g)", "x:(1 | g)", 9),
        ("y ~ (x + (1 | g))", "(x + (1 | g))", 12),
        ("y ~ log(a | b)", "log(a | b)", 10),
        ("y ~ ((1 | h) | g)", "(1 | h)", 8),
    ],
)
def test_bar_nested_inside_another_expression(formula: str, found: str, position: int) -> None:
    error = parse_error(formula)
    assert "must be a separate term" in str(error)
    assert f"found '{found}'" in str(error)
    assert caret_position(error, formula) == position


def test_more_than_one_bar_in_a_term() -> None:
    formula = "y ~ (a | b | c)"
    error = parse_error(formula)
    assert "more than one bar: '(a | b | c)'" in str(error)
    assert caret_position(error, formula) == 11
    assert "more than one bar" in str(parse_error("y ~ (a ||| b)"))
    assert "more than one bar" in str(parse_error("y ~ (a || b | c)"))


# --- rule 4: the left-hand side of the bar -------------------------------------------


@pytest.mark.parametrize(
    ("term", "expr"),
    [
        ("(0 + cond | g)", "0 + cond"),
        ("(x - 1 | g)", "x - 1"),
        ("(1 + x + z | g)", "1 + x + z"),
        ("(I(x^2) + log(z) | g)", "I(x**2) + log(z)"),
        ("(Days | g)", "Days"),
        ("(1 | g)", "1"),
        ("(-1 + x | g)", "-1 + x"),
        ("(x*z | g)", "x*z"),
        ("(  1+Days  -  z   | g )", "1 + Days - z"),
        ("(\n  1 +\tx | g)", "1 + x"),
        ("(log( z ) | g)", "log( z )"),
    ],
)
def test_single_bar_expr_keeps_the_users_text(term: str, expr: str) -> None:
    assert parse_formula(f"y ~ 1 + {term}").random == (RandomTerm(expr, ("g",)),)


def test_uncorrelated_condition_slopes() -> None:
    assert parse_formula("rt ~ cond + (0 + cond | subj)") == ParsedFormula(
        formula="rt ~ cond + (0 + cond | subj)",
        response="rt",
        cbind=None,
        fixed="cond",
        offsets=(),
        random=(RandomTerm("0 + cond", ("subj",)),),
    )


def test_empty_expr_before_bar() -> None:
    formula = "y ~ x + ( | g)"
    error = parse_error(formula)
    assert "nothing before the bar in random-effects term '( | g)'" in str(error)
    assert caret_position(error, formula) == 10


@pytest.mark.parametrize(("formula", "position"), [("y ~ (1 | )", 7), ("y ~ (x ||)", 8)])
def test_bar_without_grouping_factor(formula: str, position: int) -> None:
    error = parse_error(formula)
    assert "a bar without a grouping factor" in str(error)
    assert caret_position(error, formula) == position


@pytest.mark.parametrize("term", ["(0 | g)", "(-1 | g)", "(1 - 1 | g)", "(0 + 1 - 1 | g)"])
def test_random_term_without_columns(term: str) -> None:
    formula = f"y ~ x + {term}"
    error = parse_error(formula)
    assert f"random-effects term '{term}' has no columns" in str(error)
    assert caret_position(error, formula) == 8


def test_dangling_operator_inside_random_term() -> None:
    formula = "y ~ (x + | g)"
    error = parse_error(formula)
    assert "'+' is not followed by a term" in str(error)
    assert caret_position(error, formula) == 7


# --- rule 5: grouping factors --------------------------------------------------------


@pytest.mark.parametrize(
    ("group_text", "group"),
    [
        ("Subject", ("Subject",)),
        ("a:b", ("a", "b")),
        (" a : b ", ("a", "b")),
        ("my.var_2", ("my.var_2",)),
        (".hidden", (".hidden",)),
        ("`my var`", ("my var",)),
        ("`a:b/c`:d", ("a:b/c", "d")),
        ("`1st`", ("1st",)),
    ],
)
def test_grouping_factor_names(group_text: str, group: tuple[str, ...]) -> None:
    assert parse_formula(f"y ~ (1 | {group_text})").random == (RandomTerm("1", group),)


@pytest.mark.parametrize(
    "group_text", ["a + b", "f(x)", "a/", "a::b", "(a/b)/c", "1st", "a b", "``", "a * b", "'a'"]
)
def test_invalid_grouping_factor(group_text: str) -> None:
    formula = f"y ~ x + (1 | {group_text})"
    error = parse_error(formula)
    message = str(error)
    assert f"invalid grouping factor '{group_text}'" in message
    assert f"in random-effects term '(1 | {group_text})'" in message
    assert caret_position(error, formula) == 13


# --- rule 6: nesting -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("group_text", "groups"),
    [
        ("a/b", [("b", "a"), ("a",)]),
        ("a / b", [("b", "a"), ("a",)]),
        ("a/b/c", [("c", "b", "a"), ("b", "a"), ("a",)]),
        ("a:b/c", [("c", "a", "b"), ("a", "b")]),
        ("a/b:c", [("b", "c", "a"), ("a",)]),
        ("`my a`/b", [("b", "my a"), ("my a",)]),
    ],
)
def test_nesting_expands_inner_factor_first_as_lme4_findbars(group_text: str, groups: list[tuple[str, ...]]) -> None:
    parsed = parse_formula(f"y ~ x + (1 + x | {group_text})")
    assert parsed.random == tuple(RandomTerm("1 + x", group) for group in groups)


def test_nested_group_names() -> None:
    parsed = parse_formula("y ~ (1 | a/b/c)")
    assert [term.group_name for term in parsed.random] == ["c:b:a", "b:a", "a"]


# --- rule 7: double bars -------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "exprs"),
    [
        ("(Days || g)", ["1", "0 + Days"]),
        ("(1 + x || g)", ["1", "0 + x"]),
        ("(1 || g)", ["1"]),
        ("(0 + x + z || g)", ["0 + x", "0 + z"]),
        ("(x + z - 1 || g)", ["0 + x", "0 + z"]),
        ("(-1 + x || g)", ["0 + x"]),
        ("(x + 0 + 1 || g)", ["1", "0 + x"]),
        ("(I(x^2) + log(z) || g)", ["1", "0 + I(x**2)", "0 + log(z)"]),
        ("(x + x || g)", ["1", "0 + x"]),
        ("(x + z - x || g)", ["1", "0 + z"]),
        ("(log( z ) + log(z) || g)", ["1", "0 + log( z )"]),
    ],
)
def test_double_bar_makes_one_term_per_column(term: str, exprs: list[str]) -> None:
    parsed = parse_formula(f"y ~ x + {term}")
    assert parsed.random == tuple(RandomTerm(expr, ("g",)) for expr in exprs)


def test_double_bar_expands_crossings_like_r_terms() -> None:
    # R's terms(~ a*b*c): main effects, then two-way, then three-way interactions.
    parsed = parse_formula("y ~ (a*b*c || g)")
    assert [term.expr for term in parsed.random] == [
        "1",
        "0 + a",
        "0 + b",
        "0 + c",
        "0 + a:b",
        "0 + a:c",
        "0 + b:c",
        "0 + a:b:c",
    ]


def test_double_bar_orders_by_degree_and_labels_by_variable_order() -> None:
    # Interactions come after main effects; their variables are listed in
    # order of first appearance, so "b:a" stays "b:a" but "a + b:a" gives "a:b".
    assert [t.expr for t in parse_formula("y ~ (b:a + a || g)").random] == ["1", "0 + a", "0 + b:a"]
    assert [t.expr for t in parse_formula("y ~ (a + b:a || g)").random] == ["1", "0 + a", "0 + a:b"]


def test_double_bar_removal_of_a_crossing() -> None:
    parsed = parse_formula("y ~ (a*b - a:b || g)")
    assert [term.expr for term in parsed.random] == ["1", "0 + a", "0 + b"]


def test_double_bar_then_nesting() -> None:
    parsed = parse_formula("y ~ (1 + x || g/h)")
    assert parsed.random == (
        RandomTerm("1", ("h", "g")),
        RandomTerm("1", ("g",)),
        RandomTerm("0 + x", ("h", "g")),
        RandomTerm("0 + x", ("g",)),
    )


def test_double_bar_with_interaction_group() -> None:
    parsed = parse_formula("y ~ (x || a:b)")
    assert parsed.random == (RandomTerm("1", ("a", "b")), RandomTerm("0 + x", ("a", "b")))


@pytest.mark.parametrize("term", ["(0 || g)", "(x - x - 1 || g)"])
def test_double_bar_without_columns(term: str) -> None:
    assert f"random-effects term '{term}' has no columns" in str(parse_error(f"y ~ {term}"))


@pytest.mark.parametrize(
    ("term", "operator", "position"),
    [("(x^2 || g)", "^", 6), ("(a/b || g)", "/", 6), ("(a %in% b || g)", "%", 7)],
)
def test_double_bar_rejects_operators_it_cannot_expand(
    term: str, operator: str, position: int
) -> None:
    formula = f"y ~ {term}"
    error = parse_error(formula)
    assert f"'{operator}' is not supported inside a '||' term" in str(error)
    assert caret_position(error, formula) == position


@pytest.mark.parametrize("term", ["((a + b):c || g)", "(x**2 || g)"])
def test_double_bar_rejects_sub_formulas(term: str) -> None:
    assert "is not supported inside a '||' term" in str(parse_error(f"y ~ {term}"))


# --- rule 8: offsets -----------------------------------------------------------------


def test_several_offsets_are_collected_in_order() -> None:
    parsed = parse_formula("y ~ offset(log(t)) + x + offset( a * b ) + (1 | g)")
    assert parsed.offsets == ("log(t)", "a * b")
    assert parsed.fixed == "x"


def test_offset_alone_leaves_the_implicit_intercept() -> None:
    parsed = parse_formula("y ~ offset(o) + (1 | g)")
    assert parsed.fixed == "1"
    assert parsed.offsets == ("o",)


def test_offset_with_space_before_parenthesis() -> None:
    assert parse_formula("y ~ x + offset (o)").offsets == ("o",)


@pytest.mark.parametrize("term", ["offsets(o)", "my_offset(o)", "offset(a) * b", "log(offset(o))"])
def test_things_that_are_not_offset_terms_stay_fixed(term: str) -> None:
    parsed = parse_formula(f"y ~ x + {term}")
    assert parsed.offsets == ()
    assert parsed.fixed == f"x + {term}"


def test_removed_offset_is_an_error() -> None:
    formula = "y ~ x - offset(o)"
    error = parse_error(formula)
    assert "an offset cannot be removed with '-': 'offset(o)'" in str(error)
    assert caret_position(error, formula) == 8


@pytest.mark.parametrize("term", ["offset()", "offset( )", "offset(a, b)"])
def test_offset_needs_exactly_one_expression(term: str) -> None:
    formula = f"y ~ x + {term}"
    error = parse_error(formula)
    assert f"offset() takes exactly one expression: '{term}'" in str(error)
    assert caret_position(error, formula) == 8


def test_offset_argument_may_contain_commas_in_calls() -> None:
    assert parse_formula("y ~ offset(pmax(a, b))").offsets == ("pmax(a, b)",)


# --- rule 9: the fixed part ----------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "fixed"),
    [
        ("y ~ (1 | g)", "1"),
        ("y ~ (1 | g) + (1 | h)", "1"),
        ("y ~ 0 + (1 | g)", "0"),
        ("y ~ -1 + (1 | g)", "-1"),
        ("y ~ (1 | g) - 1", "-1"),
        ("y ~ 1 + (1 | g)", "1"),
        ("y ~ 0 + x + (1 | g)", "0 + x"),
        ("y ~ -1 + x", "-1 + x"),
        ("y ~ x + 0", "x + 0"),
        ("y~a+b:c-1+(1|g)", "a + b:c - 1"),
        ("y ~  a  *  b ", "a * b"),
        ("y ~ 0", "0"),
    ],
)
def test_fixed_part(formula: str, fixed: str) -> None:
    assert parse_formula(formula).fixed == fixed


def test_formula_is_kept_verbatim() -> None:
    formula = "  y~x +(1|g)  "
    assert parse_formula(formula).formula == formula


# --- rule 10: the response -----------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "tidied"),
    [("log(y)", "log(y)"), ("  y  ", "y"), ("a  /  b", "a / b"), ("I(y - 1)", "I(y - 1)")],
)
def test_plain_response(response: str, tidied: str) -> None:
    parsed = parse_formula(f"{response} ~ x")
    assert parsed.response == tidied
    assert parsed.cbind is None


def test_cbind_response_splits_at_the_top_level_comma() -> None:
    parsed = parse_formula("cbind(pmin(a, b), n - pmin(a, b)) ~ x + (1 | g)")
    assert parsed.response == "cbind(pmin(a, b), n - pmin(a, b))"
    assert parsed.cbind == ("pmin(a, b)", "n - pmin(a, b)")


def test_cbind_response_whitespace() -> None:
    parsed = parse_formula("cbind( s ,f )~x")
    assert parsed.response == "cbind( s ,f )"
    assert parsed.cbind == ("s", "f")


def test_call_that_only_starts_with_cbind_is_not_a_cbind_response() -> None:
    parsed = parse_formula("cbind(a, b)[, 1] ~ x")
    assert parsed.cbind is None


@pytest.mark.parametrize("response", ["cbind(a)", "cbind(a, b, c)", "cbind(a, )", "cbind()"])
def test_cbind_needs_two_expressions(response: str) -> None:
    formula = f"{response} ~ x"
    error = parse_error(formula)
    assert f"a cbind() response takes two expressions, successes and failures: '{response}'" in str(
        error
    )
    assert caret_position(error, formula) == 0


# --- rule 11: balanced brackets ------------------------------------------------------


def test_unclosed_parenthesis_message_shows_formula_and_caret() -> None:
    error = parse_error("Reaction ~ Days + (Days | Subject")
    assert str(error) == (
        "unbalanced parentheses in formula:\n"
        "  Reaction ~ Days + (Days | Subject\n"
        "                    ^"
    )


@pytest.mark.parametrize(
    ("formula", "position"),
    [
        ("y ~ x)", 5),
        ("y) ~ x", 1),
        ("y ~ (x]", 6),
        ("y ~ f(a[1)]", 9),
        ("y ~ ((x)", 4),
        ("y ~ log(x", 7),
        ("y ~ x + (1 | g))", 15),
    ],
)
def test_unbalanced_brackets_point_at_the_culprit(formula: str, position: int) -> None:
    error = parse_error(formula)
    assert str(error).startswith("unbalanced parentheses in formula:\n")
    assert caret_position(error, formula) == position


def test_caret_stays_aligned_across_tabs_and_newlines() -> None:
    formula = "y ~\tx +\n  (1 | g"
    error = parse_error(formula)
    assert caret_position(error, formula) == 10


def test_brackets_inside_strings_do_not_count() -> None:
    parsed = parse_formula("y ~ C(f, levels = ')(') + (1 | g)")
    assert parsed.fixed == "C(f, levels = ')(')"


@pytest.mark.parametrize(("formula", "position"), [("y ~ f('abc)", 6), ('y ~ x + "a', 8)])
def test_unterminated_string(formula: str, position: int) -> None:
    error = parse_error(formula)
    assert "unterminated quoted string" in str(error)
    assert caret_position(error, formula) == position


# --- rule 12: quoted strings ---------------------------------------------------------


def test_quotes_do_not_confuse_the_splitter() -> None:
    parsed = parse_formula(
        "y ~ C(x, Treatment('b')) + C(z, Treatment(\"a + b | c ~ d\")) + (1 | g)"
    )
    assert parsed.fixed == "C(x, Treatment('b')) + C(z, Treatment(\"a + b | c ~ d\"))"
    assert parsed.random == (RandomTerm("1", ("g",)),)


def test_escaped_quote_inside_string() -> None:
    assert parse_formula(r"y ~ f('it\'s | (') + x").fixed == r"f('it\'s | (') + x"


def test_whitespace_inside_strings_is_kept() -> None:
    assert parse_formula("y ~ C(f, Treatment('a   b'))").fixed == "C(f, Treatment('a   b'))"


def test_backquoted_names_are_opaque() -> None:
    parsed = parse_formula("y ~ `a + b` + (1 | `g (x)`)")
    assert parsed.fixed == "`a + b`"
    assert parsed.random == (RandomTerm("1", ("g (x)",)),)


# --- rule 13: no random effects ------------------------------------------------------


def test_formula_without_random_terms_is_allowed() -> None:
    assert parse_formula("y ~ x * z + offset(o)") == ParsedFormula(
        formula="y ~ x * z + offset(o)",
        response="y",
        cbind=None,
        fixed="x * z",
        offsets=("o",),
        random=(),
    )
