"""Formulas are data, not code: every expression is checked before anything evaluates it, and
evaluation has no Python built-ins in reach. Also what the checks must not break: every
whitelisted function fits, R's names for columns work, and columns of awkward types end in a
MixedModelError naming them (or work)."""

from __future__ import annotations

import builtins
import warnings

import numpy as np
import pandas as pd
import patsy
import pytest

import mixedmodels as mm
import mixedmodels.formula.design as design_module
import mixedmodels.formula.model_matrix as model_matrix_module
from mixedmodels.formula.design import evaluate_expression
from mixedmodels.formula.expressions import NUMPY_FUNCTIONS
from mixedmodels.formula.model_matrix import model_matrix


@pytest.fixture
def sleep() -> pd.DataFrame:
    return mm.datasets.load("sleepstudy")


@pytest.fixture
def cbpp() -> pd.DataFrame:
    return mm.datasets.load("cbpp")


class Recorder:
    """Stands in for ``open`` and ``__import__``: records every call, then does the real thing."""

    def __init__(self, real):
        self.real = real
        self.calls: list[tuple] = []

    def __call__(self, *args, **kwargs):
        self.calls.append(args)
        return self.real(*args, **kwargs)


@pytest.fixture
def secret(tmp_path) -> str:
    path = tmp_path / "secret.txt"
    path.write_text("formula injection")
    return str(path)


@pytest.fixture
def recorders(monkeypatch: pytest.MonkeyPatch) -> dict[str, Recorder]:
    """builtins.open, builtins.__import__ and numpy.fromfile (which opens files in C) replaced by
    recorders for the duration of a test."""
    found = {"open": Recorder(builtins.open), "__import__": Recorder(builtins.__import__), "fromfile": Recorder(np.fromfile)}
    for name, recorder in found.items():
        monkeypatch.setattr(np if name == "fromfile" else builtins, name, recorder)
    return found


def opened(recorders: dict[str, Recorder], path: str) -> bool:
    return any(call and call[0] == path for name in ("open", "fromfile") for call in recorders[name].calls)


def imported(recorder: Recorder, module: str) -> bool:
    return any(call and call[0] == module for call in recorder.calls)


def test_the_recorders_see_what_a_formula_would_do(recorders: dict[str, Recorder], secret: str) -> None:
    # The tests below assert that nothing was recorded; this one shows the recorders work.
    eval(f"open({secret!r}).close()")
    eval("__import__('shlex')")
    np.fromfile(secret, dtype=np.uint8)
    assert all(recorder.calls for recorder in recorders.values())
    assert opened(recorders, secret)
    assert imported(recorders["__import__"], "shlex")


# Each formula reads the secret file (or imports a module) through a different door.
INJECTIONS = {
    "fixed part": "Reaction ~ Days + I(open({path!r}).read().__len__()*0) + (1 | Subject)",
    "fixed part, import": "Reaction ~ Days + I(__import__('shlex').__name__.__len__()*0) + (1 | Subject)",
    "random-term lhs": "Reaction ~ Days + (I(open({path!r}).read().__len__()*0) | Subject)",
    "response": "I(open({path!r}).read().__len__()*0 + Reaction) ~ Days + (1 | Subject)",
    "response, numpy": "np.fromfile({path!r}).sum()*0 + Reaction ~ Days + (1 | Subject)",
    "response, import": "Reaction + __import__('shlex').__name__.__len__()*0 ~ Days + (1 | Subject)",
    "offset": "Reaction ~ Days + offset(open({path!r}).read().__len__()*0) + (1 | Subject)",
    "numpy": "Reaction ~ Days + I(np.fromfile({path!r}).sum()*0) + (1 | Subject)",
}


@pytest.mark.parametrize("door", INJECTIONS)
def test_code_in_a_formula_is_refused_before_anything_runs(
    door: str, sleep: pd.DataFrame, recorders: dict[str, Recorder], secret: str
) -> None:
    formula = INJECTIONS[door].format(path=secret)
    with pytest.raises(mm.FormulaError, match="is not allowed in"):
        mm.lmer(formula, sleep)
    assert not opened(recorders, secret)
    assert not imported(recorders["__import__"], "shlex")


@pytest.mark.parametrize("which", [0, 1])
def test_code_in_cbind_is_refused_before_anything_runs(
    which: int, cbpp: pd.DataFrame, recorders: dict[str, Recorder], secret: str
) -> None:
    arguments = ["incidence", "size - incidence"]
    arguments[which] += f" + open({secret!r}).read().__len__()*0"
    with pytest.raises(mm.FormulaError, match="'open\\(...\\)' is not allowed"):
        mm.glmer(f"cbind({arguments[0]}, {arguments[1]}) ~ period + (1 | herd)", cbpp, family="binomial")
    assert not opened(recorders, secret)


@pytest.mark.parametrize("argument", ["weights", "offset"])
def test_weights_and_offset_arguments_are_column_names_never_code(
    argument: str, sleep: pd.DataFrame, recorders: dict[str, Recorder], secret: str
) -> None:
    code = f"open({secret!r}).read().__len__()"
    with pytest.raises(mm.FormulaError, match="unknown column"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleep, **{argument: code})
    assert not opened(recorders, secret)


def test_a_column_named_like_code_is_read_not_run_when_predicting(
    sleep: pd.DataFrame, recorders: dict[str, Recorder], secret: str
) -> None:
    # offset= names a column; new data without that column must not have its name evaluated.
    code = f"open({secret!r}).read().__len__()*0"
    fit = mm.lmer("Reaction ~ Days + (1 | Subject)", sleep.assign(**{code: 0.0}), offset=code)
    with pytest.raises(mm.FormulaError):
        fit.predict(sleep)
    assert not opened(recorders, secret)


@pytest.mark.parametrize(
    ("formula", "piece"),
    [
        ("Reaction ~ Days + I(open('/etc/hostname').read().__len__()*0) + (1 | Subject)", "'open(...)'"),
        ("Reaction ~ Days + I(__import__('os').getcwd()) + (1 | Subject)", "'__import__(...)'"),
        ("Reaction ~ Days + I((lambda: 1)()) + (1 | Subject)", "'lambda: 1'"),
        ("Reaction ~ Days + I([d for d in Days]) + (1 | Subject)", "'[d for d in Days]'"),
        ("Reaction ~ Days + I(Days[0]) + (1 | Subject)", "'Days[0]'"),
        ("Reaction ~ Days + I((d := Days)) + (1 | Subject)", "(':=')"),
        ("Reaction ~ Days + I(f'{Days}') + (1 | Subject)", "f'{Days}'"),
        ("Reaction ~ Days + I(Days.__class__) + (1 | Subject)", "'Days.__class__'"),
        ("Reaction ~ Days + I(Days.values) + (1 | Subject)", "'Days.values'"),
        ("Reaction ~ Days + np.save('x', Days) + (1 | Subject)", "'np.save(...)'"),
        ("Reaction ~ Days + np.log(Days, out=Days) + (1 | Subject)", "'out'"),
        ("Reaction ~ Days + I(np.maximum(*Days)) + (1 | Subject)", "'*Days'"),
        ("Reaction ~ Days + Days(1) + (1 | Subject)", "'Days(...)'"),
        ("Reaction ~ Days + exec('1') + (1 | Subject)", "'exec(...)'"),
        ("Reaction ~ Days + log(Days + 1) + (1 | Subject)", "np.log"),
        ("getattr(Reaction, 'x') ~ Days + (1 | Subject)", "'getattr(...)'"),
        ("Reaction ~ Days + offset(Days.sum()) + (1 | Subject)", "'Days.sum'"),
        ("Reaction ~ Days + bs(Days, Reaction) + (1 | Subject)", "'Reaction' is not allowed in the model term 'bs(Days, Reaction)' as a setting"),
        ("Reaction ~ Days + C(Subject, Reaction) + (1 | Subject)", "as the contrast of C()"),
    ],
)
def test_the_refusal_names_the_offending_piece(formula: str, piece: str, sleep: pd.DataFrame) -> None:
    with pytest.raises(mm.FormulaError) as info:
        mm.lmer(formula, sleep)
    message = str(info.value)
    assert piece in message
    assert "may contain only column names, numbers, strings, arithmetic" in message


def test_evaluation_has_no_builtins_even_if_the_checks_were_bypassed(
    monkeypatch: pytest.MonkeyPatch, sleep: pd.DataFrame, recorders: dict[str, Recorder], secret: str
) -> None:
    # The second line of defence on its own: with the whitelist switched off, patsy and the
    # response's evaluation still find neither open nor numpy's file functions.
    monkeypatch.setattr(model_matrix_module, "check_term", lambda code: None)
    monkeypatch.setattr(design_module, "check_value", lambda code: None)
    for formula in (
        f"Reaction ~ Days + I(open({secret!r}).read().__len__()*0) + (1 | Subject)",
        f"Reaction ~ Days + I(np.fromfile({secret!r}).sum()*0) + (1 | Subject)",
        f"I(open({secret!r}).read().__len__()*0 + Reaction) ~ Days + (1 | Subject)",
    ):
        with pytest.raises(mm.FormulaError):
            mm.lmer(formula, sleep)
    assert not opened(recorders, secret)


def test_the_patsy_environment_of_an_unpickled_model_has_no_builtins(sleep: pd.DataFrame) -> None:
    import pickle

    fit = mm.lmer("Reaction ~ I(Days**2) + (1 | Subject)", sleep)
    restored = pickle.loads(pickle.dumps(fit))
    (factor,) = [f for f in restored.design.fixed_builder._design_info.factor_infos if f.name() != "Intercept"]
    environment = restored.design.fixed_builder._design_info.factor_infos[factor].state["eval_env"]
    with pytest.raises(NameError):
        environment.eval("open")
    assert np.allclose(restored.predict(sleep), fit.predict(sleep))


# --- the whitelist still fits -----------------------------------------------------------


def fit_pair(formula: str, data: pd.DataFrame, by_hand: str, columns: dict[str, np.ndarray], family: str | None = None):
    """The fit of ``formula`` and of ``by_hand``, a formula reading the hand-made ``columns``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if family is None:
            return mm.lmer(formula, data), mm.lmer(by_hand, data.assign(**columns))
        return mm.glmer(formula, data, family=family), mm.glmer(by_hand, data.assign(**columns), family=family)


def assert_same_fit(first, second) -> None:
    assert first.llf == pytest.approx(second.llf, rel=1e-10)
    assert np.allclose(first.params.to_numpy(), second.params.to_numpy(), rtol=1e-8, atol=1e-10)


def hand_made(sleep: pd.DataFrame) -> dict[str, tuple[str, str, dict[str, np.ndarray]]]:
    days = sleep["Days"].to_numpy()
    reaction = sleep["Reaction"].to_numpy()
    week = sleep["week"].to_numpy()
    levels = np.unique(week)
    sum_coded = {f"sum{j}": (week == level) * 1.0 - (week == levels[-1]) for j, level in enumerate(levels[:-1])}
    helmert = {f"helmert{j}": np.select([week == levels[j + 1], np.isin(week, levels[: j + 1])], [j + 1.0, -1.0], 0.0) for j in range(len(levels) - 1)}
    treatment_b = {f"t{level}": (week == level) * 1.0 for level in levels if level != "w1"}
    wave = np.sin(days)

    def coded(contrast) -> dict[str, np.ndarray]:
        """The columns of a patsy contrast class, by hand: its matrix's row for each level."""
        matrix = contrast.code_without_intercept(list(levels)).matrix
        rows = np.searchsorted(levels, week)
        return {f"k{j}": matrix[rows, j] for j in range(matrix.shape[1])}

    custom = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    return {
        "np.log": ("np.log(Days + 1)", "log_days", {"log_days": np.log(days + 1)}),
        "np.sqrt": ("np.sqrt(Days)", "root", {"root": np.sqrt(days)}),
        "np.power": ("np.power(Days, 3)", "cube", {"cube": days**3}),
        "np.clip": ("np.clip(Days, 2, 7)", "clipped", {"clipped": np.clip(days, 2, 7)}),
        "np.maximum": ("np.maximum(Days, 4)", "top", {"top": np.maximum(days, 4)}),
        "np.pi": ("I(np.pi * Days)", "scaled", {"scaled": np.pi * days}),
        "I": ("I(Days**2)", "square", {"square": days**2}),
        "R power": ("I(Days^2)", "square", {"square": days**2}),
        "Q": ("Q('Days')", "Days", {}),
        "center": ("center(Days)", "centred", {"centred": days - days.mean()}),
        "standardize": ("standardize(Days)", "z", {"z": (days - days.mean()) / days.std()}),
        "scale": ("scale(Days, ddof=1)", "z", {"z": (days - days.mean()) / days.std(ddof=1)}),
        "bs": ("bs(Days, df=3)", "b0 + b1 + b2", {f"b{j}": column for j, column in enumerate(np.asarray(patsy.bs(days, df=3)).T)}),
        "cr": (
            "cr(Days, df=4, constraints='center')",
            "c0 + c1 + c2 + c3",
            {f"c{j}": column for j, column in enumerate(np.asarray(patsy.cr(days, df=4, constraints="center")).T)},
        ),
        "cc": ("cc(Days, df=4)", "c0 + c1 + c2 + c3", {f"c{j}": column for j, column in enumerate(np.asarray(patsy.cc(days, df=4)).T)}),
        "te": (
            "te(cr(Days, df=3), cc(wave, df=3))", " + ".join(f"t{j}" for j in range(9)),
            {f"t{j}": column for j, column in enumerate(np.asarray(patsy.te(patsy.cr(days, df=3), patsy.cc(wave, df=3))).T)},
        ),
        "C Sum": ("C(week, Sum)", " + ".join(sum_coded), sum_coded),
        "C Poly": ("C(week, Poly)", "k0 + k1", coded(patsy.Poly())),
        "C Diff": ("C(week, Diff)", "k0 + k1", coded(patsy.Diff())),
        "C ContrastMatrix": (
            "C(week, ContrastMatrix([[1, 0], [0, 1], [-1, -1]], ['a', 'b']))", "k0 + k1",
            {f"k{j}": custom[np.searchsorted(levels, week), j] for j in range(2)},
        ),
        "C matrix": ("C(week, [[1, 0], [0, 1], [-1, -1]])", "k0 + k1", {f"k{j}": custom[np.searchsorted(levels, week), j] for j in range(2)}),
        "random-term lhs": ("1 + (np.log(Days + 1) | Subject)", "1 + (log_days | Subject)", {"log_days": np.log(days + 1)}),
        "C Helmert": ("C(week, Helmert)", " + ".join(helmert), helmert),
        "C Treatment": ("C(week, Treatment(reference='w1'))", " + ".join(treatment_b), treatment_b),
        "C levels": ("C(week, levels=['w1', 'w0', 'w2'])", " + ".join(treatment_b), treatment_b),
        "comparison": ("I(Days > 4)", "late", {"late": (days > 4) * 1.0}),
        "log response": ("log(Reaction) ~ Days", "log_reaction ~ Days", {"log_reaction": np.log(reaction)}),
        "np response": ("np.sqrt(Reaction) ~ Days", "root_reaction ~ Days", {"root_reaction": np.sqrt(reaction)}),
        "I response": ("I(Reaction / 100) ~ Days", "scaled ~ Days", {"scaled": reaction / 100}),
        "offset": ("Reaction ~ Days + offset(log(Days + 1))", "Reaction_less ~ Days", {"Reaction_less": reaction - np.log(days + 1)}),
    }


@pytest.mark.parametrize(
    "case",
    ["np.log", "np.sqrt", "np.power", "np.clip", "np.maximum", "np.pi", "I", "R power", "Q", "center", "standardize",
     "scale", "bs", "cr", "cc", "te", "C Sum", "C Helmert", "C Poly", "C Diff", "C ContrastMatrix", "C matrix", "C Treatment",
     "C levels", "comparison", "random-term lhs", "log response", "np response", "I response", "offset"],
)
def test_whitelisted_functions_fit_as_the_columns_they_make(case: str, sleep: pd.DataFrame) -> None:
    data = sleep.assign(
        week=np.array(["w0", "w1", "w2"])[np.minimum(sleep["Days"].to_numpy() // 4, 2).astype(int)],
        wave=np.sin(sleep["Days"].to_numpy()),
    )
    term, by_hand, columns = hand_made(data)[case]
    if "~" in term:
        formula, reference = f"{term} + (1 | Subject)", f"{by_hand} + (1 | Subject)"
    else:
        formula, reference = f"Reaction ~ {term} + (1 | Subject)", f"Reaction ~ {by_hand} + (1 | Subject)"
    assert_same_fit(*fit_pair(formula, data, reference, columns))


def test_glmer_offsets_and_cbind_take_whitelisted_functions(cbpp: pd.DataFrame) -> None:
    size = cbpp["size"].to_numpy()
    incidence = cbpp["incidence"].to_numpy()
    assert_same_fit(
        *fit_pair(
            "incidence ~ period + offset(np.log(size)) + (1 | herd)", cbpp,
            "incidence ~ period + offset(log_size) + (1 | herd)", {"log_size": np.log(size)}, family="poisson",
        )
    )
    assert_same_fit(
        *fit_pair(
            "cbind(incidence, np.maximum(size - incidence, 0)) ~ period + (1 | herd)", cbpp,
            "cbind(incidence, failures) ~ period + (1 | herd)", {"failures": np.maximum(size - incidence, 0)}, family="binomial",
        )
    )


@pytest.mark.parametrize("name", sorted(NUMPY_FUNCTIONS))
def test_every_numpy_function_works_in_model_terms_and_responses(name: str) -> None:
    u = np.linspace(0.05, 0.95, 7)
    data = pd.DataFrame({"u": u, "v": u[::-1]})
    function = getattr(np, name)
    arguments = {"where": "u > 0.5, u, v", "clip": "u, 0.2, 0.8", "arccosh": "u + 1"}.get(name)
    if arguments is None:
        try:
            expected, arguments = function(u), "u"
        except TypeError:  # a function of two arrays
            expected, arguments = function(u, data["v"].to_numpy()), "u, v"
    else:
        expected = eval(f"np.{name}({arguments})", {"np": np, "u": u, "v": data["v"].to_numpy()})
    matrix, _ = model_matrix(f"0 + I(np.{name}({arguments}) * 1.0)", data)
    assert np.array_equal(matrix[:, 0], np.asarray(expected, dtype=float))
    for expression in (f"{name}({arguments})", f"np.{name}({arguments})"):
        assert np.array_equal(evaluate_expression(expression, data), np.asarray(expected, dtype=float))


# --- R's names for columns ---------------------------------------------------------------


def renamed_pair(formula: str, plain: str, data: pd.DataFrame, renames: dict[str, str], family: str | None = None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if family is None:
            return mm.lmer(formula, data.rename(columns=renames)), mm.lmer(plain, data)
        return mm.glmer(formula, data.rename(columns=renames), family=family), mm.glmer(plain, data, family=family)


@pytest.mark.parametrize(
    ("formula", "plain", "renames", "names"),
    [
        ("Reaction ~ n.days + (n.days | Subject)", "Reaction ~ Days + (Days | Subject)", {"Days": "n.days"}, ["Intercept", "n.days"]),
        ("Reaction ~ Days + (1 | Sujet_é)", "Reaction ~ Days + (1 | Subject)", {"Subject": "Sujet_é"}, ["Intercept", "Days"]),
        ("Reaction ~ durée + (1 | Subject)", "Reaction ~ Days + (1 | Subject)", {"Days": "durée"}, ["Intercept", "durée"]),
        (
            "`my var` ~ `n days` + (1 | `the subject`)", "Reaction ~ Days + (1 | Subject)",
            {"Reaction": "my var", "Days": "n days", "Subject": "the subject"}, ["Intercept", "`n days`"],
        ),
        (
            "Q('my var') ~ Q('n days') + (1 | Subject)", "Reaction ~ Days + (1 | Subject)",
            {"Reaction": "my var", "Days": "n days"}, ["Intercept", "Q('n days')"],
        ),
        (
            "log(n.reaction) ~ I(n.days**2) + C(Sujet_é, Sum) + (1 | Sujet_é)",
            "log(Reaction) ~ I(Days**2) + C(Subject, Sum) + (1 | Subject)",
            {"Reaction": "n.reaction", "Days": "n.days", "Subject": "Sujet_é"}, None,
        ),
        (
            "Reaction ~ n.days + offset(n.days) + (n.days || Subject)", "Reaction ~ Days + offset(Days) + (Days || Subject)",
            {"Days": "n.days"}, ["Intercept", "n.days"],
        ),
        (
            "Reaction ~ Days + offset(Q('n.days')) + (1 | Subject)", "Reaction ~ Days + offset(Days2) + (1 | Subject)",
            {"Days2": "n.days"}, ["Intercept", "Days"],
        ),
        ("n.reaction ~ class + (1 | Subject)", "Reaction ~ Days + (1 | Subject)", {"Reaction": "n.reaction", "Days": "class"}, ["Intercept", "class"]),
    ],
)
def test_r_style_names_fit_as_the_renamed_columns(
    formula: str, plain: str, renames: dict[str, str], names: list[str] | None, sleep: pd.DataFrame
) -> None:
    data = sleep.assign(Days2=sleep["Days"])
    first, second = renamed_pair(formula, plain, data, renames)
    assert first.llf == second.llf
    assert np.array_equal(first.params.to_numpy(), second.params.to_numpy())
    if names is not None:
        assert list(first.params.index) == names


def test_r_style_names_in_cbind_and_glmer_offsets(cbpp: pd.DataFrame) -> None:
    renames = {"incidence": "n.cases", "size": "herd size"}
    first, second = renamed_pair(
        "cbind(n.cases, `herd size` - n.cases) ~ period + (1 | herd)", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        cbpp, renames, family="binomial",
    )
    assert first.llf == second.llf
    first, second = renamed_pair(
        "cbind(Q('n.cases'), Q('herd size') - Q('n.cases')) ~ period + (1 | herd)", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        cbpp, renames, family="binomial",
    )
    assert first.llf == second.llf
    first, second = renamed_pair(
        "n.cases ~ period + offset(log(`herd size`)) + (1 | herd)", "incidence ~ period + offset(log(size)) + (1 | herd)",
        cbpp, renames, family="poisson",
    )
    assert first.llf == second.llf
    renamed = cbpp.rename(columns=renames)
    assert np.array_equal(first.predict(renamed), second.predict(cbpp))


def test_a_name_python_would_normalise_is_the_column_written(sleep: pd.DataFrame) -> None:
    # Python reads the identifier "ﬁt" (with the ligature) as "fit"; the formula means the column.
    data = sleep.assign(**{"ﬁt": sleep["Days"], "fit": 0.0})
    first = mm.lmer("Reaction ~ ﬁt + (1 | Subject)", data)
    second = mm.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    assert first.llf == second.llf and list(first.params.index) == ["Intercept", "ﬁt"]


def test_a_dotted_name_that_is_not_a_column_is_an_unknown_column(sleep: pd.DataFrame) -> None:
    with pytest.raises(mm.FormulaError, match="unknown column 'n.days'"):
        mm.lmer("Reaction ~ n.days + (1 | Subject)", sleep)


@pytest.mark.parametrize(
    ("formula", "told"),
    [
        ("Reaction ~ n days + (1 | Subject)", "cannot parse 'n days'.*written in backquotes, `my var`"),
        ("log(my-var) ~ 1 + (1 | Subject)", "column 'my-var' is written in backquotes, `my-var`, or as Q\\('my-var'\\)"),
        ("Reaction ~ 1 + (1 | the subject)", "in backquotes if it is not a plain name"),
    ],
)
def test_a_name_python_cannot_read_gets_told_how_to_quote_it(formula: str, told: str, sleep: pd.DataFrame) -> None:
    data = sleep.rename(columns={"Days": "n days", "Reaction": "my-var", "Subject": "the subject"}).assign(Reaction=sleep["Reaction"], Subject=sleep["Subject"])
    with pytest.raises(mm.FormulaError, match=told):
        mm.lmer(formula, data)
    fit = mm.lmer("log(`my-var`) ~ `n days` + (1 | `the subject`)", data)
    assert list(fit.params.index) == ["Intercept", "`n days`"]


# --- columns of awkward types ------------------------------------------------------------


def with_column(sleep: pd.DataFrame, name: str, values) -> pd.DataFrame:
    return sleep.assign(**{name: values})


def arrow_dtype(kind: str):
    pyarrow = pytest.importorskip("pyarrow")
    return pd.ArrowDtype({"bool": pyarrow.bool_(), "timestamp": pyarrow.timestamp("ns")}[kind])


BOOLEAN_DTYPES = ["boolean", "arrow"]


def boolean_values(dtype: str, values) -> pd.api.extensions.ExtensionArray:
    return pd.array(values, dtype="boolean" if dtype == "boolean" else arrow_dtype("bool"))


@pytest.mark.parametrize("dtype", BOOLEAN_DTYPES)
def test_nullable_booleans_are_predictors_like_numpy_booleans(dtype: str, sleep: pd.DataFrame) -> None:
    late = sleep["Days"].to_numpy() > 4
    missing = np.arange(len(sleep)) % 7 == 0
    values = boolean_values(dtype, [None if gone else bool(flag) for flag, gone in zip(late, missing)])
    data = with_column(sleep, "late", values)
    for term in ("late", "C(late)", "late:Days"):
        fit = mm.lmer(f"Reaction ~ {term} + (1 | Subject)", data)
        reference = mm.lmer(f"Reaction ~ {term} + (1 | Subject)", with_column(sleep, "late", late)[~missing])
        assert fit.n_dropped == int(missing.sum())
        assert fit.llf == pytest.approx(reference.llf, rel=1e-12)
        assert list(fit.params.index) == list(reference.params.index)
    fit = mm.lmer("Reaction ~ Days + (late | Subject)", data)
    assert fit.n_dropped == int(missing.sum())


@pytest.mark.filterwarnings("ignore::mixedmodels.SingularFitWarning")
@pytest.mark.parametrize("dtype", BOOLEAN_DTYPES)
def test_nullable_booleans_are_grouping_factors(dtype: str, sleep: pd.DataFrame) -> None:
    data = with_column(sleep, "late", boolean_values(dtype, (sleep["Days"].to_numpy() > 4).tolist()))
    assert mm.lmer("Reaction ~ Days + (1 | late)", data).design.terms[0].n_levels == 2


@pytest.mark.filterwarnings("ignore::mixedmodels.SingularFitWarning")
@pytest.mark.parametrize("dtype", BOOLEAN_DTYPES)
def test_a_nullable_boolean_response_is_as_a_numpy_boolean_one(dtype: str, sleep: pd.DataFrame) -> None:
    # A boolean column is not a numeric response; a boolean expression is 0/1, as I(Days > 4) is.
    data = with_column(sleep, "late", boolean_values(dtype, (sleep["Days"].to_numpy() > 4).tolist()))
    with pytest.raises(mm.DataError, match="'late' must be numeric"):
        mm.lmer("late ~ Days + (1 | Subject)", data)
    fit = mm.glmer("I(late) ~ 1 + (1 | Subject)", data, family="binomial")
    assert fit.llf == mm.glmer("I(Days > 4) ~ 1 + (1 | Subject)", sleep, family="binomial").llf


def temporal_values(sleep: pd.DataFrame, kind: str):
    """A date (or duration) per row, from the row's Days."""
    durations = sleep["Days"].to_numpy().astype(int).astype("timedelta64[D]")
    dates = np.datetime64("2024-01-01") + durations
    if kind == "timedelta64":
        return durations
    if kind == "tz-aware":
        return pd.DatetimeIndex(dates).tz_localize("UTC")
    if kind == "arrow timestamp":
        # In nanoseconds first: pandas 2.3 with pyarrow 26 misreads day-resolution values here.
        return pd.array(dates.astype("datetime64[ns]"), dtype=arrow_dtype("timestamp"))
    return dates


TEMPORAL = ["datetime64", "timedelta64", "tz-aware", "arrow timestamp"]


@pytest.mark.parametrize("kind", TEMPORAL)
@pytest.mark.parametrize("term", ["when", "when + Days", "Days:when", "I(when)"])
def test_a_date_or_duration_predictor_is_a_data_error_naming_it(kind: str, term: str, sleep: pd.DataFrame) -> None:
    data = with_column(sleep, "when", temporal_values(sleep, kind))
    with pytest.raises(mm.DataError, match="column 'when' has dtype"):
        mm.lmer(f"Reaction ~ {term} + (1 | Subject)", data)
    with pytest.raises(mm.DataError, match="column 'when' has dtype"):
        mm.lmer(f"Reaction ~ Days + ({term} | Subject)", data)


@pytest.mark.parametrize("kind", TEMPORAL)
def test_a_date_or_duration_response_is_a_data_error_naming_it(kind: str, sleep: pd.DataFrame) -> None:
    data = with_column(sleep, "when", temporal_values(sleep, kind))
    for response in ("when", "I(when)"):
        with pytest.raises(mm.DataError, match="when"):
            mm.lmer(f"{response} ~ Days + (1 | Subject)", data)


@pytest.mark.parametrize("kind", TEMPORAL)
def test_dates_and_durations_are_levels_as_grouping_factors_and_in_c(kind: str, sleep: pd.DataFrame) -> None:
    # One date per subject: grouping by it is grouping by subject.
    codes = sleep["Subject"].cat.codes.to_numpy()
    by_subject = sleep.assign(Days=codes)
    when = temporal_values(by_subject, kind)
    data = with_column(sleep, "when", when)
    reference = mm.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    fit = mm.lmer("Reaction ~ Days + (1 | when)", data)
    assert fit.llf == pytest.approx(reference.llf, rel=1e-12)
    assert np.allclose(fit.predict(data), reference.predict(sleep))
    in_c = mm.lmer("Reaction ~ C(when) + (1 | Subject)", data)
    as_factor = mm.lmer("Reaction ~ C(Subject) + (1 | Subject)", sleep)
    assert in_c.llf == pytest.approx(as_factor.llf, rel=1e-10)


def test_complex_numbers_are_a_data_error_naming_the_column(sleep: pd.DataFrame) -> None:
    data = with_column(sleep, "z", sleep["Days"].to_numpy() + 1j)
    with pytest.raises(mm.DataError, match="'z'"):
        mm.lmer("Reaction ~ z + (1 | Subject)", data)
    with pytest.raises(mm.DataError, match="'z'"):
        mm.lmer("z ~ Days + (1 | Subject)", data)


def test_extension_columns_in_patsy_terms_work_as_their_numpy_counterparts(sleep: pd.DataFrame) -> None:
    days = sleep["Days"].to_numpy().astype(int)
    labels = np.where(days > 4, "late", "early")
    data = sleep.assign(n=pd.array(days, dtype="Int64"), s=pd.array(labels, dtype="string"))
    reference_data = sleep.assign(n=days, s=labels.astype(object))
    for formula in ("Reaction ~ C(n) + (1 | Subject)", "Reaction ~ I(n**2) + C(s, Sum) + (1 | Subject)"):
        fit, reference = mm.lmer(formula, data), mm.lmer(formula, reference_data)
        assert fit.llf == reference.llf
        assert list(fit.params.index) == list(reference.params.index)


def test_fits_and_predictions_leave_awkward_columns_as_they_were(sleep: pd.DataFrame) -> None:
    days = sleep["Days"].to_numpy().astype(int)
    data = sleep.assign(
        late=pd.array((days > 4).tolist(), dtype="boolean"),
        n=pd.array(days, dtype="Int64"),
        s=pd.array(np.where(days > 4, "late", "early"), dtype="string"),
        **{"n.days": sleep["Days"]},
    )
    before = data.copy(deep=True)
    fit = mm.lmer("Reaction ~ late + I(n**2) + C(s, Sum):np.log(n.days + 1) + (late | Subject)", data)
    fit.predict(data)
    pd.testing.assert_frame_equal(data, before)
