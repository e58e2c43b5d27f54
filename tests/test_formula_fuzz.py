"""Random formulas, valid pieces mixed with junk: each one fits or raises a MixedModelError.

Nothing else may escape: not patsy's AssertionError, not a SyntaxError from Python's parser, not a
TypeError, KeyError or IndexError from a code path that did not expect the input, not a Rust
panic. The generator is seeded, so a failure names a formula that reproduces it.
"""

from __future__ import annotations

import random
import warnings

import pandas as pd
import pytest

import mixedmodels as mm

N_FORMULAS = 5000

# Formulas that fit, which the generator takes apart and mutates.
SLEEP_TEMPLATES = [
    "Reaction ~ Days + (Days | Subject)",
    "Reaction ~ 1 + (1 | Subject)",
    "Reaction ~ Days + (Days || Subject)",
    "log(Reaction) ~ I(Days**2) + (1 | Subject)",
    "Reaction ~ np.log1p(Days) + offset(Days) + (0 + Days | Subject)",
    "Reaction ~ C(Subject, Sum) + (1 | Subject)",
    "Reaction ~ center(Days) + bs(Days, df=3) + (1 | Subject)",
    "Reaction ~ Days * Subject - 1 + (1 | Subject)",
    "Q('Reaction') ~ Q('Days') + (1 | Subject)",
]
CBPP_TEMPLATES = [
    "cbind(incidence, size - incidence) ~ period + (1 | herd)",
    "cbind(incidence, size - incidence) ~ 1 + (1 | herd) + (1 | period)",
    "incidence ~ period + offset(log(size)) + (1 | herd)",
    "cbind(incidence, size - incidence) ~ period + (1 | herd/period)",
]
# Pieces that keep a formula valid, so that mutations also make formulas that fit.
SLEEP_PIECES = [" + Days", " * Days", ":Days", " - 1", " + 0", " + 1", " + (1 | Subject)", " + I(Days**2)", " + np.sqrt(Days)", "Days"]
CBPP_PIECES = [" + size", ":size", " + (1 | period)", " + np.log(size)", " - 1", " + C(period, Sum)", "size"]
JUNK = [
    "~", "|", "||", "/", ":", "*", "^", "**", "%in%", "%%", ".", ",", "(", ")", "[", "]", "{", "}",
    "'", '"', "`", "@", "$", "!", "?", ";", "=", "==", "<", ">=", "&", "#", "\\", "\n", "\t",
    "0", "1", "-1", "+", "-", "+ 0", "2", "1e308", "-0", "0x1", "1j", "None", "True",
    "offset(", "cbind(", "I(", "C(", "Q(", "np.", "np.log(", "log(", "exp(", "bs(", "center(",
    "Treatment(", "Sum", "reference=", "df=", "__", "__import__", "__class__", "open(", "lambda",
    "lambda x:", "for", "in", "if", "not", "and", "x[0]", "'a'", '"b"', "f'{Days}'", "*args", "**kw",
    ":=", "...", "`my var`", "n.days", "durée", "Sujet_é", "", " ", "()", "(1|", "|)", "(0 +",
    "[1, 2]", "[[1], [2]]", "levels=[]", "Poly", "ContrastMatrix(", "te(", "cr(",
]


def _sleepstudy() -> pd.DataFrame:
    data = mm.datasets.load("sleepstudy")
    return data[data["Subject"].isin(data["Subject"].cat.categories[:6])].reset_index(drop=True)


def _tokens(formula: str) -> list[str]:
    """A formula cut at spaces and brackets, so that mutations move whole pieces."""
    pieces: list[str] = []
    current = ""
    for char in formula:
        if char in " ()|,":
            if current:
                pieces.append(current)
            pieces.append(char)
            current = ""
        else:
            current += char
    if current:
        pieces.append(current)
    return pieces


def random_formula(rng: random.Random, templates: list[str], valid_pieces: list[str], columns: list[str]) -> str:
    """A template with a few random insertions (valid pieces or junk), deletions, swaps and
    duplications, or (one time in eight) a string of random pieces."""
    junk = JUNK + columns + [" + ", " ~ ", " | "]
    if rng.random() < 0.125:
        return "".join(rng.choice(junk + valid_pieces) for _ in range(rng.randint(1, 12)))
    pieces = _tokens(rng.choice(templates))
    vocabulary = valid_pieces if rng.random() < 0.4 else junk
    for _ in range(rng.randint(0, 3)):
        where = rng.randrange(len(pieces) + 1)
        action = rng.random()
        if action < 0.45:
            pieces.insert(where, rng.choice(vocabulary))
        elif action < 0.65 and pieces:
            del pieces[min(where, len(pieces) - 1)]
        elif action < 0.8 and pieces:
            pieces[min(where, len(pieces) - 1)] = rng.choice(vocabulary)
        elif action < 0.9 and len(pieces) > 1:
            first, second = rng.sample(range(len(pieces)), 2)
            pieces[first], pieces[second] = pieces[second], pieces[first]
        else:
            start = rng.randrange(len(pieces))
            pieces[start:start] = pieces[start : start + rng.randint(1, 5)]
    return "".join(pieces)


def outcome(fit, formula: str) -> str:
    """"fit", or the name of the MixedModelError raised; anything else fails the test."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit(formula)
    except mm.MixedModelError as err:
        return type(err).__name__
    except BaseException as err:  # a Rust panic is a BaseException
        if isinstance(err, KeyboardInterrupt):
            raise
        pytest.fail(f"{formula!r} raised {type(err).__name__}: {err}")
    return "fit"


def test_random_formulas_fit_or_raise_a_mixed_model_error() -> None:
    rng = random.Random(20240611)
    sleep = _sleepstudy()
    cbpp = mm.datasets.load("cbpp")
    outcomes: dict[str, int] = {}
    for index in range(N_FORMULAS):
        if index % 3 == 2:
            formula = random_formula(rng, CBPP_TEMPLATES, CBPP_PIECES, list(cbpp.columns))
            result = outcome(lambda f: mm.glmer(f, cbpp, family="binomial" if "cbind" in f else "poisson"), formula)
        else:
            formula = random_formula(rng, SLEEP_TEMPLATES, SLEEP_PIECES, list(sleep.columns))
            result = outcome(lambda f: mm.lmer(f, sleep), formula)
        outcomes[result] = outcomes.get(result, 0) + 1
    # The generator must keep producing both kinds, or the test proves little.
    assert outcomes.get("fit", 0) > N_FORMULAS // 10
    assert outcomes.get("FormulaError", 0) > N_FORMULAS // 3


# One formula for each way a bad formula used to escape (found by the generator above, and a
# long formula), with what each now raises.
ESCAPES = [
    # SyntaxError from parsing a factor's code for its names: now the check's parse error.
    ("Reaction ~ Days + I(Days Days) + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ center(Days) + bs(Days df=3) + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ center(Days) + bs(Days, -df=3) + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ C(df=Subject, Sum) + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ Days if Subject - 1 + (Days | Subject)", mm.FormulaError),
    # AssertionError from patsy's tokenizer (an expression beginning with an operator).
    ("Reaction ~ 1 + (== | Subject)", mm.FormulaError),
    ("Reaction ~& Days + (Days | Subject)", mm.FormulaError),
    ("log(Reaction) ~ I(Days**2) + (%%1%% | Subject)", mm.FormulaError),
    # R syntax patsy does not have.
    ("Reaction ~ . + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ Days %in% Subject + (1 | Subject)", mm.FormulaError),
    # ValueError, IndexError, TypeError, AttributeError from patsy's functions on bad arguments.
    ("Reaction ~ center(Days) + bs(Days, ) + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ bs(Days, df=1) + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ bs(Days, df=3 + Days) + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ bs(Subject, df=3) + (1 | Days)", mm.FormulaError),
    ("Reaction ~ C(Subject, - 1) + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ C(Subject, Subject, Sum) + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ C(Subject, not Sum) + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ C(Subject, [1, 2]) + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ C(Subject, [['a'], [2]]) + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ C(Subject, [[1], [2]]) + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ C(Subject, levels=[]) + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ C(bs(Subject, Sum) + Sum) + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ Days(Days) + bs(center, df=3) + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ center(Days) >= bs(Days, ...) + (1 | Subject)", mm.FormulaError),
    # ValueError from a tuple or None as a factor.
    ("Reaction ~ (Subject, Sum) + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ None * Subject - 1 + (1 | Subject)", mm.FormulaError),
    # ValueError/TypeError from float() on a response or offset that is not numbers.
    ("('Reaction') ~ Days + (1 | Subject)", mm.FormulaError),
    ("'a' ~ Days + (1 | Subject)", mm.FormulaError),
    ("... ~ 1 + (1 | Subject)", mm.FormulaError),
    ("lambda x: Reaction ~ Days + (1 | Subject)", mm.FormulaError),
    ("np.log1p ~ Days + (1 | Subject)", mm.FormulaError),
    ("Reaction ~ Days + offset(np.log1p) + (1 | Subject)", mm.FormulaError),
    ("1j ~ Days + (1 | Subject)", mm.FormulaError),
    ("I(Subject) ~ Days + (1 | Subject)", mm.DataError),
    # RecursionError in patsy's parser, one level per term.
    ("Reaction ~ C(Subject) + " + " + ".join(["Days"] * 600) + " + (1 | Subject)", mm.FormulaError),
]


@pytest.mark.parametrize(("formula", "error"), ESCAPES)
def test_formulas_that_once_escaped_raise_a_mixed_model_error(formula: str, error: type[mm.MixedModelError]) -> None:
    with pytest.raises(error):
        mm.lmer(formula, _sleepstudy())


@pytest.mark.parametrize(
    "formula",
    [
        "cbind(lambda x: incidence, size - incidence) ~ period + (1 | herd)",
        "cbind(1j, size - incidence) ~ period + (1 | herd)",
        'cbind(incidence, "size - incidence") ~ period + (1 | herd)',
        "incidence ~ period + offset(log(lambda x: size)) + (1 | herd)",
    ],
)
def test_cbind_and_offsets_that_once_escaped_raise_a_formula_error(formula: str) -> None:
    with pytest.raises(mm.FormulaError):
        mm.glmer(formula, mm.datasets.load("cbpp"), family="binomial" if "cbind" in formula else "poisson")
