"""Formulas are data, not code: what an expression in a formula may contain, checked before
anything evaluates it, and the columns it reads.

Every expression of a formula is Python code that patsy (model terms) or
:func:`~mixedmodels.formula.design.evaluate_expression` (responses and offsets) evaluates.
Formulas come from configuration files and web forms, so each expression is first checked on
Python's syntax tree, without evaluating anything, against a whitelist:

- column names, numbers and strings;
- arithmetic (``+ - * / // % **``, unary ``+`` and ``-``) and comparisons (``== != < <= > >=``);
- calls of whitelisted functions, keyword arguments included: in model terms patsy's functions
  (``C``, ``I``, ``Q``, the contrasts ``Treatment``, ``Sum``, ``Helmert``, ``Poly``, ``Diff`` and
  ``ContrastMatrix``, the stateful transforms ``center``, ``standardize``, ``scale``, the splines
  ``bs``, ``cr``, ``cc``, ``te``); in responses and offsets ``I``, ``Q`` and numpy's elementwise
  math by its bare name (``log(y)``); everywhere numpy's elementwise math as ``np.log(x)``.

Anything else (attribute access other than ``np.<function>``, indexing, lambdas, comprehensions,
``:=``, f-strings, names beginning with ``__``, calls of anything else) raises
:class:`~mixedmodels.errors.FormulaError` naming the offending piece. As a second line of
defence, evaluation sees no Python built-ins and a numpy reduced to the whitelisted names
(:data:`SAFE_NUMPY`).

Example
-------
>>> check_term("np.log(Days) + I(Days**2)")
>>> check_term("I(open('/etc/hostname').read())")
Traceback (most recent call last):
...
mixedmodels.errors.FormulaError: 'open(...)' is not allowed in the model term ...
>>> columns_read("C(g, Treatment('b')) + np.log(x) + Q('my var')")
('g', 'x', 'my var')
"""

from __future__ import annotations

import ast
import functools
import types
from collections.abc import Iterator

import numpy as np
import patsy.builtins

from ..errors import FormulaError

__all__ = [
    "MODEL_TERM_FUNCTIONS",
    "NUMPY_FUNCTIONS",
    "SAFE_NUMPY",
    "VALUE_FUNCTIONS",
    "check_term",
    "check_value",
    "columns_read",
    "parse_expression",
    "quoted_column",
]

# numpy's elementwise, side-effect-free math: np.<name> anywhere, <name> alone in responses and offsets.
NUMPY_FUNCTIONS = frozenset(
    """abs absolute fabs sign sqrt cbrt square reciprocal exp exp2 expm1 log log1p log2 log10
    power float_power sin cos tan arcsin arccos arctan arctan2 hypot sinh cosh tanh arcsinh
    arccosh arctanh deg2rad rad2deg floor ceil trunc rint round minimum maximum fmin fmax clip
    mod fmod where isnan isfinite logical_and logical_or logical_not""".split()
)
NUMPY_CONSTANTS = frozenset({"pi", "e"})
NUMPY_NAMES = ("np", "numpy")

# The numpy that formulas see: code that got past the checks still could not reach np.load or np.save.
SAFE_NUMPY = types.SimpleNamespace(**{name: getattr(np, name) for name in sorted(NUMPY_FUNCTIONS | NUMPY_CONSTANTS)})

# What model terms may call by bare name: everything patsy provides to formulas.
MODEL_TERM_FUNCTIONS = frozenset(patsy.builtins.__all__)
# What responses and offsets may call by bare name.
VALUE_FUNCTIONS = NUMPY_FUNCTIONS | {"I", "Q"}

_CONTRASTS = frozenset({"Treatment", "Sum", "Helmert", "Poly", "Diff"})
# Functions whose arguments are all settings (constants), and those whose arguments after the first
# (the data) are: patsy would misread a column there, or fail outside its own error type.
_ALL_SETTINGS = _CONTRASTS | {"ContrastMatrix"}
_SETTINGS_AFTER_DATA = frozenset({"center", "standardize", "scale", "bs", "cr", "cc"})

_REFUSED_OPERATORS = {ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>"}
_UNARY_OPERATORS = (ast.UAdd, ast.USub)
_COMPARISONS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_CONSTANT_TYPES = (bool, int, float, str, type(None))

# How the constructs a formula may not contain are called in messages.
_CONSTRUCT_NAMES = {
    ast.Subscript: "indexing",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.NamedExpr: "':='",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.Slice: "indexing",
    ast.Starred: "unpacking with '*'",
    ast.BoolOp: "'and'/'or'",
    ast.IfExp: "'... if ... else ...'",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.Await: "'await'",
    ast.Yield: "'yield'",
    ast.YieldFrom: "'yield'",
}

# The role of a node, which decides what it may be: an ordinary value, the whole expression, the
# setting of a function (a constant), C's contrast, C's levels.
_VALUE, _WHOLE, _SETTING, _CONTRAST, _LEVELS = "value", "whole", "setting", "contrast", "levels"


def check_term(code: str) -> None:
    """Check the Python code of one factor of a model term (``np.log(x)``, ``C(g, Sum)``) against
    the whitelist; :class:`~mixedmodels.errors.FormulaError` names the offending piece (the
    innermost, when there are several).

    >>> check_term("bs(x, df=3)")
    >>> check_term("x.values")
    Traceback (most recent call last):
    ...
    mixedmodels.errors.FormulaError: 'x.values' is not allowed in the model term 'x.values'; a column
    named 'x.values' is written Q('x.values'); a formula may contain only column names, ...
    """
    _check(code, True)


def check_value(code: str) -> None:
    """Check a response, a ``cbind`` argument or an offset (``log(y)``, ``size - incidence``)
    against the whitelist; :class:`~mixedmodels.errors.FormulaError` names the offending piece
    (the innermost, when there are several).

    >>> check_value("log(size - incidence)")
    >>> check_value("__import__('os')")
    Traceback (most recent call last):
    ...
    mixedmodels.errors.FormulaError: '__import__(...)' is not allowed in the response or offset ...
    """
    _check(code, False)


@functools.lru_cache(maxsize=1024)  # a pipeline checks the same expressions on every fit
def _check(code: str, model_term: bool) -> None:
    tree = parse_expression(code)
    place = "the model term" if model_term else "the response or offset"
    problems = list(_problems(code, tree, model_term))
    if problems:
        # The innermost problem is the one to fix first: open(...) in open(...).read().
        _, _, piece, hint = max(problems, key=lambda problem: (problem[0], -problem[1]))
        raise FormulaError(f"{piece} is not allowed in {place} {code!r}{hint}; {_allowed(model_term)}")


@functools.lru_cache(maxsize=2)
def _allowed(model_term: bool) -> str:
    if model_term:
        functions = f"{', '.join(sorted(MODEL_TERM_FUNCTIONS, key=str.lower))} and numpy's elementwise functions as np.<name>"
    else:
        functions = "I, Q and numpy's elementwise functions, by name (log) or as np.<name>"
    return (
        "a formula may contain only column names, numbers, strings, arithmetic and comparison operators "
        f"and calls of {functions} ({', '.join(sorted(NUMPY_FUNCTIONS))})"
    )


@functools.lru_cache(maxsize=1024)
def parse_expression(code: str) -> ast.Expression:
    """The syntax tree of one Python expression; :class:`~mixedmodels.errors.FormulaError` if it
    is not one.

    >>> type(parse_expression("log(y)").body).__name__
    'Call'
    """
    try:
        return ast.parse(code, mode="eval")
    except SyntaxError as err:
        raise FormulaError(
            f"cannot parse {code!r}: {err.msg} (a column whose name is not a plain name is written in "
            f"backquotes, `my var`, or as Q('my var'))"
        ) from None
    except (RecursionError, MemoryError):  # Python's parser on thousands of nested operators
        raise FormulaError(f"{code!r} is nested too deeply to parse") from None


def _problems(code: str, tree: ast.Expression, model_term: bool) -> Iterator[tuple[int, int, str, str]]:
    """Every construct of ``tree`` the whitelist refuses: ``(depth, column, piece, hint)``.

    Walks with an explicit stack: a formula of a thousand terms would exhaust Python's recursion."""
    functions = MODEL_TERM_FUNCTIONS if model_term else VALUE_FUNCTIONS
    stack: list[tuple[ast.AST, str, str, int]] = [(tree.body, _WHOLE, "", 0)]
    while stack:
        node, role, owner, depth = stack.pop()
        problem = _problem(code, node, role, owner, functions)
        if problem is not None:
            piece, hint = problem
            shown = repr(ast.get_source_segment(code, node) or ast.unparse(node)) if piece is None else piece
            yield depth, getattr(node, "col_offset", 0), shown, hint
        stack.extend((child, child_role, child_owner, depth + 1) for child, child_role, child_owner in _children(node, role, owner))


def _problem(code: str, node: ast.AST, role: str, owner: str, functions: frozenset[str]) -> tuple[str | None, str] | None:
    """Why ``node`` may not stand where it does, as ``(piece, hint)`` (piece None: the node's
    text); None if it may."""
    if isinstance(node, ast.Constant):
        value = node.value
        if not isinstance(value, _CONSTANT_TYPES):
            return None, f" ({type(value).__name__} constants are not allowed)"
        if role == _WHOLE and (isinstance(value, (bool, str)) or value is None):
            return None, " (a constant on its own is not a variable)"
        if role in (_CONTRAST, _LEVELS) and value is not None:
            return None, f" as the {role} of C()"
        return None
    if role == _SETTING and not isinstance(node, (ast.List, ast.Tuple, ast.UnaryOp, ast.BinOp, ast.Attribute)):
        return None, f" as a setting of {owner}(): settings after the data must be constants (numbers, strings, lists)"
    if role == _CONTRAST and not _is_contrast(node):
        return None, f" as the contrast of C(): use one of {', '.join(sorted(_ALL_SETTINGS))} or a matrix [[...], ...]"
    if role == _LEVELS and not isinstance(node, (ast.List, ast.Tuple)):
        return None, " as the levels of C(): list them, as in C(g, levels=['b', 'a'])"
    if isinstance(node, ast.Name):
        return (None, " (names beginning with '__' are not allowed)") if node.id.startswith("__") else None
    if isinstance(node, ast.Attribute):
        return _attribute_problem(node)
    if isinstance(node, ast.Call):
        return _call_problem(code, node, functions)
    if isinstance(node, (ast.List, ast.Tuple)):
        return None if role in (_SETTING, _LEVELS, _CONTRAST) else (None, " (lists are only settings of functions)")
    if isinstance(node, ast.BinOp):
        refused = _REFUSED_OPERATORS.get(type(node.op))
        return None if refused is None else (None, f" (operator {refused!r})")
    if isinstance(node, ast.UnaryOp):
        return None if isinstance(node.op, _UNARY_OPERATORS) else (None, " (only unary + and - are allowed)")
    if isinstance(node, ast.Compare):
        if all(isinstance(op, _COMPARISONS) for op in node.ops):
            return None
        return None, " (only the comparisons == != < <= > >= are allowed)"
    return None, f" ({_CONSTRUCT_NAMES.get(type(node), type(node).__name__)})"


def _attribute_problem(node: ast.Attribute) -> tuple[None, str] | None:
    """Attribute access is numpy's constants (np.pi) or, called, its whitelisted functions."""
    if _is_numpy(node.value):
        return None if node.attr in NUMPY_CONSTANTS else (None, f" (numpy's {node.attr!r} is not whitelisted)")
    if node.attr.startswith("__"):
        return None, " (names beginning with '__' are not allowed)"
    dotted = _dotted_name(node)
    return None, f"; a column named {dotted!r} is written Q({dotted!r})" if dotted else " (attribute access)"


def _is_contrast(node: ast.AST) -> bool:
    """A contrast for C(): a contrast class, a call of one (Treatment('b')) or a matrix, a list of
    rows of numbers (patsy fails outside its own error type on anything else in a list)."""
    if isinstance(node, ast.Name):
        return node.id in _CONTRASTS
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Name) and node.func.id in _ALL_SETTINGS
    rows = node.elts if isinstance(node, ast.List) else []
    return bool(rows) and all(isinstance(row, ast.List) and row.elts and all(map(_is_number, row.elts)) for row in rows)


def _is_number(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, _UNARY_OPERATORS):
        node = node.operand
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool)


def _call_problem(code: str, node: ast.Call, functions: frozenset[str]) -> tuple[str, str] | None:
    """Why a call is refused: its callee, its keywords, or Q's and C's arguments."""
    callee = node.func
    shown = f"{ast.get_source_segment(code, callee) or ast.unparse(callee)}(...)"
    name = callee.id if isinstance(callee, ast.Name) else None
    if isinstance(callee, ast.Attribute) and _is_numpy(callee.value):
        if callee.attr not in NUMPY_FUNCTIONS:
            return repr(shown), f" (np.{callee.attr} is not among numpy's whitelisted elementwise functions)"
    elif name is None or name not in functions:
        return repr(shown), _misplaced_call_hint(name, functions)
    for keyword in node.keywords:
        if keyword.arg is None:
            return repr(shown), " (unpacking keyword arguments with '**')"
        if keyword.arg.startswith("__") or keyword.arg == "out":
            return repr(shown), f" (the keyword {keyword.arg!r})"
    if name == "Q" and (quoted_column(node) is None or len(node.args) != 1 or node.keywords):
        return repr(shown), ' (Q takes one quoted column name, as in Q("my var"))'
    if name == "C" and len(node.args) > 3:
        return repr(shown), " (C takes the data, a contrast and the levels)"
    return None


def _misplaced_call_hint(name: str | None, functions: frozenset[str]) -> str:
    if name == "cbind":
        return "; cbind(successes, failures) must be the whole response"
    if name == "offset":
        return "; offset(...) must be a term of its own on the right-hand side, as in 'y ~ x + offset(z) + (1 | g)'"
    if name in NUMPY_FUNCTIONS and name not in functions:
        return f"; numpy's {name!r} is written np.{name}(...) in model terms"
    if name is not None and name.startswith("__"):
        return " (names beginning with '__' are not allowed)"
    return ""


def _children(node: ast.AST, role: str, owner: str) -> Iterator[tuple[ast.AST, str, str]]:
    """The nodes under ``node`` with their roles and, for settings, the function they configure."""
    if isinstance(node, ast.Call):
        yield from _call_children(node)
    elif isinstance(node, ast.Attribute):
        if not _is_numpy(node.value):
            yield node.value, _VALUE, ""
    elif isinstance(node, (ast.List, ast.Tuple)):
        yield from ((element, _SETTING, owner) for element in node.elts)
    elif isinstance(node, (ast.UnaryOp, ast.BinOp)) and role == _SETTING:
        # Arithmetic on constants is a constant: bs(x, df=2 * 3).
        yield from ((child, _SETTING, owner) for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr))
    else:
        yield from ((child, _VALUE, "") for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr))


def _call_children(node: ast.Call) -> Iterator[tuple[ast.AST, str, str]]:
    name = node.func.id if isinstance(node.func, ast.Name) else ""
    if not isinstance(node.func, ast.Name) and not (isinstance(node.func, ast.Attribute) and _is_numpy(node.func.value)):
        yield node.func, _VALUE, ""
    for position, argument in enumerate(node.args):
        yield argument, _argument_role(name, position, None), name
    for keyword in node.keywords:
        yield keyword.value, _argument_role(name, None, keyword.arg), name


def _argument_role(function: str, position: int | None, keyword: str | None) -> str:
    """The role of a call's argument, by its position or keyword."""
    if function == "C":
        if position == 1 or keyword == "contrast":
            return _CONTRAST
        if position == 2 or keyword == "levels":
            return _LEVELS
        return _VALUE
    if function in _ALL_SETTINGS or (function in _SETTINGS_AFTER_DATA and position != 0):
        return _SETTING
    return _VALUE


def _is_numpy(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id in NUMPY_NAMES


def _dotted_name(node: ast.Attribute) -> str | None:
    """``a.b.c`` for a chain of attributes on a name (an R-style column name), else None."""
    parts = [node.attr]
    value = node.value
    while isinstance(value, ast.Attribute):
        parts.append(value.attr)
        value = value.value
    if not isinstance(value, ast.Name):
        return None
    return ".".join([value.id, *reversed(parts)])


@functools.lru_cache(maxsize=1024)
def columns_read(code: str) -> tuple[str, ...]:
    """The columns an expression reads, in order of appearance: the names it does not call (the
    contrast of ``C`` and ``np`` aside) and the column named by each ``Q("...")``. Does not check
    the expression (see :func:`check_term`), only parses it.

    >>> columns_read("I(x**2) + np.log(z) - x")
    ('x', 'z')
    """
    tree = parse_expression(code)
    not_columns: set[int] = set()
    found: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):  # parents before children: calls mark their callees first
        if isinstance(node, ast.Call):
            not_columns.add(id(node.func))
            quoted = quoted_column(node)
            if quoted is not None:
                found.append((node.lineno, node.col_offset, quoted))
            if isinstance(node.func, ast.Name) and node.func.id == "C":
                not_columns.update(id(argument) for argument in node.args[1:2])
                not_columns.update(id(keyword.value) for keyword in node.keywords if keyword.arg == "contrast")
        elif isinstance(node, ast.Attribute) and _is_numpy(node.value):
            not_columns.add(id(node.value))
        elif isinstance(node, ast.Name) and id(node) not in not_columns:
            found.append((node.lineno, node.col_offset, node.id))
    return tuple(dict.fromkeys(name for _, _, name in sorted(found, key=lambda item: item[:2])))


def quoted_column(node: ast.AST) -> str | None:
    """The column ``Q("name")`` names, or None if ``node`` is not such a call.

    >>> quoted_column(parse_expression("Q('n.days')").body)
    'n.days'
    """
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Q" and node.args):
        return None
    argument = node.args[0]
    return argument.value if isinstance(argument, ast.Constant) and isinstance(argument.value, str) else None
