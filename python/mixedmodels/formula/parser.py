"""Parse lme4 mixed-model formulas into a response, a fixed part and random-effects terms.

The language is lme4's: ``response ~ fixed + (expr | group)``.  Random-effects terms
are the parenthesised pieces of the right-hand side that contain a bar; ``||``
(uncorrelated terms) and ``/`` (nested grouping factors) are expanded as lme4's
``expandDoubleVerts`` and ``findbars`` do.  Everything else is left as patsy-compatible
text: the fixed part, each term's left-hand side and the response.

Example
-------
>>> parsed = parse_formula("Reaction ~ Days + (Days || Subject)")
>>> parsed.response, parsed.fixed
('Reaction', 'Days')
>>> for term in parsed.random:
...     print(term.expr, "|", term.group_name)
1 | Subject
0 + Days | Subject
>>> [term.group_name for term in parse_formula("strength ~ 1 + (1 | batch/cask)").random]
['cask:batch', 'batch']
"""

from __future__ import annotations

import ast
import functools
import keyword
import re
import unicodedata
from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace

from ..errors import FormulaError

__all__ = ["ParsedFormula", "RandomTerm", "parse_formula", "quote_names"]


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(expr | group)`` after ``||`` and ``/`` expansion.

    ``expr`` is patsy formula text for the term's model matrix; like R, patsy adds
    the intercept unless ``expr`` removes it (``0 + x`` or ``x - 1``).  ``group``
    names the grouping-factor columns whose interaction defines the levels.

    Example
    -------
    >>> term = RandomTerm(expr="1", group=("cask", "batch"))
    >>> term.group_name
    'cask:batch'
    """

    expr: str
    group: tuple[str, ...]

    @property
    def group_name(self) -> str:
        """The grouping factor as lme4 names it: the columns joined by ``:``."""
        return ":".join(self.group)


@dataclass(frozen=True)
class ParsedFormula:
    """A mixed-model formula taken apart.

    Attributes
    ----------
    formula
        The formula as given.
    response
        The left-hand side, e.g. ``"Reaction"``, ``"log(y)"`` or ``"cbind(a, b)"``.
    cbind
        The two arguments when the response is ``cbind(successes, failures)``, else None.
    fixed
        The fixed part of the right-hand side for patsy, random terms and offsets removed;
        ``"1"`` when nothing is left (R's implicit intercept).
    offsets
        The expression inside each ``offset(...)`` of the right-hand side.
    random
        The random-effects terms in formula order, after expansion.

    Example
    -------
    >>> parse_formula("count ~ x + offset(log(exposure)) + (1 | site)").offsets
    ('log(exposure)',)
    """

    formula: str
    response: str
    cbind: tuple[str, str] | None
    fixed: str
    offsets: tuple[str, ...]
    random: tuple[RandomTerm, ...]

    @functools.cached_property
    def _may_need_quotes(self) -> bool:
        """Whether :func:`quote_names` may change anything, decided once per formula (per fit it
        would cost more than the rest of the formula's handling)."""
        values = (*(self.cbind or (self.response,)), *self.offsets)
        terms = (self.fixed, *(term.expr for term in self.random))
        return any(map(_unreadable_names, (*values, *terms))) or not all(map(_is_python, values))


@functools.lru_cache(maxsize=256)  # parsed once per formula: pipelines refit the same one
def parse_formula(formula: str) -> ParsedFormula:
    """Parse an lme4 formula such as ``"Reaction ~ Days + (Days | Subject)"``.

    Raises :class:`~mixedmodels.errors.FormulaError`, with a caret under the offending
    position where there is one, when the formula is malformed.

    Example
    -------
    >>> parsed = parse_formula("y ~ x + (1 + x | subj) + (1 | item)")
    >>> parsed.fixed
    'x'
    >>> parsed.random
    (RandomTerm(expr='1 + x', group=('subj',)), RandomTerm(expr='1', group=('item',)))
    """
    if not isinstance(formula, str):
        raise FormulaError(f"a formula must be a string, got {type(formula).__name__}")
    source = _Source(formula)
    _check_brackets(source)
    left, right = _split_sides(source)

    fixed: list[_Signed] = []
    offsets: list[str] = []
    random: list[RandomTerm] = []
    for piece in _split_terms(source, right):
        body = _bar_body(piece.span)
        if body is not None:
            if piece.sign == "-":
                raise source.error(
                    f"a random-effects term cannot be removed with '-': '{piece.span.text}'",
                    piece.span.start,
                )
            random.extend(_random_terms(source, body, piece.span))
            continue
        _reject_bars(source, piece.span)
        _reject_r_only_syntax(source, piece.span)
        offset = _offset_argument(source, piece)
        if offset is None:
            fixed.append(piece)
        else:
            offsets.append(offset)

    cbind = _cbind_arguments(source, left)
    return ParsedFormula(
        formula=formula,
        response=_python_power(_tidy(left.text)),
        cbind=None if cbind is None else (_python_power(cbind[0]), _python_power(cbind[1])),
        fixed=_python_power(_join(fixed)) if fixed else "1",
        offsets=tuple(_python_power(offset) for offset in offsets),
        random=tuple(RandomTerm(_python_power(term.expr), term.group) for term in random),
    )


def _python_power(text: str) -> str:
    """R's power operator ``^`` as Python's ``**`` (outside quotes): inside ``I(x^2)`` R means a
    power where Python would compute XOR, and at formula level patsy spells R's ``(a + b)^2``
    as ``(a + b)**2``."""
    in_string, _ = _string_mask(text)
    return "".join("**" if char == "^" and not in_string[index] else char for index, char in enumerate(text))


# Backquotes delimit R names that are not syntactic (`my var`); like strings, their
# contents are opaque to every splitter below.
_QUOTES = "'\"`"
_OPENERS = "([{"
_CLOSERS = ")]}"
_OPENER_OF = dict(zip(_CLOSERS, _OPENERS))
# A name as R writes it: letters (any alphabet), digits, '_' and '.', not starting with a digit.
_NAME = re.compile(r"(?!\d)[\w.]+|`[^`]+`")
_OFFSET_CALL = re.compile(r"offset\s*\(")
_CBIND_CALL = re.compile(r"cbind\s*\(")


@dataclass(frozen=True)
class _Source:
    """The formula being parsed, which every error message quotes."""

    text: str

    def error(self, message: str, position: int | None = None) -> FormulaError:
        # Tabs and newlines would shift the caret, so show every whitespace as a space.
        shown = "".join(" " if char.isspace() else char for char in self.text)
        caret = "" if position is None else f"\n  {' ' * position}^"
        return FormulaError(f"{message}:\n  {shown}{caret}")


@dataclass(frozen=True)
class _Span:
    """A stripped stretch of the formula and where it starts, so errors can point at it."""

    text: str
    start: int

    def slice(self, begin: int, end: int | None = None) -> _Span:
        sliced = self.text[begin:end]
        leading = len(sliced) - len(sliced.lstrip())
        return _Span(sliced.strip(), self.start + begin + leading)


@dataclass(frozen=True)
class _Signed:
    """A term of a sum with the sign in front of it: ``+`` adds it, ``-`` removes it."""

    sign: str
    span: _Span


def _string_mask(text: str) -> tuple[list[bool], int | None]:
    """Mark the characters inside quotes (quotes included).

    Also returns where an unterminated string starts, or None.
    """
    mask = [False] * len(text)
    quote_start: int | None = None
    escaped = False
    for index, char in enumerate(text):
        if quote_start is not None:
            mask[index] = True
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == text[quote_start]:
                quote_start = None
        elif char in _QUOTES:
            mask[index] = True
            quote_start = index
    return mask, quote_start


def _scan(text: str) -> Iterator[tuple[int, str, int]]:
    """Yield ``(index, char, depth)`` for each character outside quotes.

    ``depth`` is the number of enclosing bracket pairs; both brackets of a pair
    report the depth around them, so depth 0 is the top level of ``text``.
    """
    in_string, _ = _string_mask(text)
    depth = 0
    for index, char in enumerate(text):
        if in_string[index]:
            continue
        if char in _CLOSERS:
            depth -= 1
        yield index, char, depth
        if char in _OPENERS:
            depth += 1


def _top_level(text: str, chars: str) -> list[int]:
    """Positions of the characters in ``chars`` that sit outside brackets and quotes."""
    return [index for index, char, depth in _scan(text) if depth == 0 and char in chars]


def _split_top_level(span: _Span, separators: str) -> list[_Span]:
    """Split at top-level separator characters; the parts are stripped."""
    bounds = [-1, *_top_level(span.text, separators), len(span.text)]
    return [span.slice(begin + 1, end) for begin, end in zip(bounds, bounds[1:])]


def _closes_at_end(text: str, open_index: int) -> bool:
    """Whether the top-level bracket opened at ``open_index`` is closed by the last character."""
    closers = (index for index in _top_level(text, _CLOSERS) if index > open_index)
    return next(closers) == len(text) - 1


def _tidy(text: str) -> str:
    """Strip and collapse each run of whitespace outside quotes to one space."""
    in_string, _ = _string_mask(text)
    tidied: list[str] = []
    pending_space = False
    for index, char in enumerate(text):
        if char.isspace() and not in_string[index]:
            pending_space = True
            continue
        if pending_space and tidied:
            tidied.append(" ")
        pending_space = False
        tidied.append(char)
    return "".join(tidied)


def _squeezed(text: str) -> str:
    """``text`` without whitespace outside quotes: R's identity of a variable ignores spacing."""
    in_string, _ = _string_mask(text)
    return "".join(
        char for index, char in enumerate(text) if in_string[index] or not char.isspace()
    )


def _check_brackets(source: _Source) -> None:
    """Reject unterminated strings and unbalanced brackets before any splitting relies on them."""
    _, unterminated = _string_mask(source.text)
    if unterminated is not None:
        raise source.error("unterminated quoted string in formula", unterminated)
    open_positions: list[int] = []
    for index, char, _ in _scan(source.text):
        if char in _OPENERS:
            open_positions.append(index)
        elif char in _CLOSERS:
            if not open_positions or source.text[open_positions[-1]] != _OPENER_OF[char]:
                raise source.error("unbalanced parentheses in formula", index)
            open_positions.pop()
    if open_positions:
        raise source.error("unbalanced parentheses in formula", open_positions[-1])


def _split_sides(source: _Source) -> tuple[_Span, _Span]:
    """Split at the single top-level ``~`` into the response and the right-hand side."""
    whole = _Span(source.text, 0)
    tildes = _top_level(source.text, "~")
    if not tildes:
        raise source.error("a formula needs a '~' between the response and the predictors")
    if len(tildes) > 1:
        raise source.error("a formula must have exactly one '~'", tildes[1])
    left, right = whole.slice(0, tildes[0]), whole.slice(tildes[0] + 1)
    if not left.text:
        raise source.error("the formula has no response before '~'", tildes[0])
    if not right.text:
        raise source.error("the formula has no predictors after '~'", tildes[0])
    return left, right


def _split_terms(source: _Source, span: _Span) -> list[_Signed]:
    """Split a sum at its top-level ``+`` and ``-``, keeping the sign of each term.

    A leading sign or a run of signs (``x + -1``) applies to the following term.
    """
    terms: list[_Signed] = []
    sign = "+"
    term_start = 0
    last_operator: int | None = None
    for index in _top_level(span.text, "+-"):
        operator = span.text[index]
        term = span.slice(term_start, index)
        if term.text:
            terms.append(_Signed(sign, term))
            sign = operator
        else:
            sign = "+" if (sign == "-") == (operator == "-") else "-"
        term_start = index + 1
        last_operator = index
    tail = span.slice(term_start)
    if tail.text:
        terms.append(_Signed(sign, tail))
    elif last_operator is not None:
        raise source.error(
            f"'{span.text[last_operator]}' is not followed by a term", span.start + last_operator
        )
    return terms


def _join(terms: list[_Signed]) -> str:
    """Write terms back as a sum: ``x - 1``, ``0 + x``, ``-1 + x``."""
    first, *rest = terms
    text = ("-" if first.sign == "-" else "") + _tidy(first.span.text)
    return text + "".join(f" {term.sign} {_tidy(term.span.text)}" for term in rest)


def _bar_body(span: _Span) -> _Span | None:
    """The inside of a parenthesised ``(expr | group)`` term, or None for any other term.

    Redundant parentheses are looked through, as in R: ``((1 | g))`` is ``(1 | g)``.
    """
    while span.text.startswith("(") and _closes_at_end(span.text, 0):
        span = span.slice(1, -1)
        if _top_level(span.text, "|"):
            return span
    return None


def _reject_bars(source: _Source, span: _Span) -> None:
    """A bar anywhere in a term that is not itself ``(expr | group)`` is a mistake."""
    top_level_bars = _top_level(span.text, "|")
    if top_level_bars:
        raise source.error(
            f"random-effects terms must be written in parentheses, e.g. (1 | g); "
            f"found '{span.text}'",
            span.start + top_level_bars[0],
        )
    nested_bars = [index for index, char, _ in _scan(span.text) if char == "|"]
    if nested_bars:
        raise source.error(
            f"a random-effects term must be a separate term of the sum, "
            f"e.g. 'x + (1 | g)'; found '{span.text}'",
            span.start + nested_bars[0],
        )


_R_IN_OPERATOR = re.compile(r"%\s*in\s*%")


def _reject_r_only_syntax(source: _Source, span: _Span) -> None:
    """R formula syntax patsy has no counterpart for: ``.`` (all other columns) and ``%in%``."""
    if span.text == ".":
        raise source.error("'.' (all other columns) is not supported; name the columns", span.start)
    in_string, _ = _string_mask(span.text)
    for match in _R_IN_OPERATOR.finditer(span.text):
        if not in_string[match.start()]:
            raise source.error(
                "'%in%' is not supported; write the nesting with '/' (a/b) or the interaction a:b",
                span.start + match.start(),
            )


def _random_terms(source: _Source, body: _Span, term: _Span) -> list[RandomTerm]:
    """Expand one ``(expr | group)`` or ``(expr || group)`` term, lme4 style.

    ``||`` is expanded first (one term per column), then each of those by the
    nesting in the grouping factor, as lme4 applies expandDoubleVerts before findbars.
    """
    bars = _top_level(body.text, "|")
    double = len(bars) == 2 and bars[1] == bars[0] + 1
    if len(bars) > 1 and not double:
        raise source.error(
            f"a random-effects term has more than one bar: '{term.text}'", body.start + bars[1]
        )
    expr = body.slice(0, bars[0])
    group = body.slice(bars[-1] + 1)
    if not expr.text:
        raise source.error(
            f"nothing before the bar in random-effects term '{term.text}'", body.start + bars[0]
        )
    if not group.text:
        raise source.error(
            f"a bar without a grouping factor in random-effects term '{term.text}'",
            body.start + bars[-1],
        )
    _reject_bars(source, expr)
    groups = _nested_groups(source, group, term)
    if double:
        exprs = _double_bar_exprs(source, expr, term)
    else:
        exprs = [_single_bar_expr(source, expr, term)]
    return [RandomTerm(expr=text, group=factors) for text in exprs for factors in groups]


def _nested_groups(source: _Source, group: _Span, term: _Span) -> list[tuple[str, ...]]:
    """Expand ``a/b/c`` into the groups ``c:b:a``, ``b:a`` and ``a``, in that order.

    Both the order of the groups and the inner-factor-first naming (``cask:batch``) are
    lme4's findbars; the order matters only between terms with equal numbers of levels,
    which keep it after the model orders terms by decreasing number of levels.
    """
    levels: list[tuple[str, ...]] = []
    for level in _split_top_level(group, "/"):
        names = _split_top_level(level, ":")
        if not all(_NAME.fullmatch(name.text) for name in names):
            raise source.error(
                f"invalid grouping factor '{group.text}' in random-effects term '{term.text}' "
                f"(use a column name, in backquotes if it is not a plain name (`my group`), "
                f"an interaction a:b or a nesting a/b)",
                group.start,
            )
        levels.append(tuple(name.text.strip("`") for name in names))
    return [
        tuple(name for level in reversed(levels[: depth + 1]) for name in level)
        for depth in reversed(range(len(levels)))
    ]


def _keeps_intercept(terms: list[_Signed]) -> bool:
    """R's intercept rule for a sum: on by default, ``0``/``-1`` removes it, ``1`` restores it."""
    keeps = True
    for term in terms:
        if term.span.text in ("0", "1"):
            keeps = (term.span.text == "1") == (term.sign == "+")
    return keeps


def _single_bar_expr(source: _Source, expr: _Span, term: _Span) -> str:
    """The user's ``expr``, tidied; patsy then treats it exactly as R's model.matrix would."""
    terms = _split_terms(source, expr)
    for item in terms:
        _reject_r_only_syntax(source, item.span)
    if all(item.span.text in ("0", "1") for item in terms) and not _keeps_intercept(terms):
        raise source.error(f"random-effects term '{term.text}' has no columns", term.start)
    return _join(terms)


def _double_bar_exprs(source: _Source, expr: _Span, term: _Span) -> list[str]:
    """lme4's expandDoubleVerts: ``1`` if the intercept is kept, then ``0 + t`` per term t.

    The terms are those of R's ``terms(~ expr)``: ``*`` crossed out, duplicates and
    ``-`` removals applied, interactions labelled in order of first appearance of
    their variables, and sorted by degree (main effects first).
    """
    terms = _split_terms(source, expr)
    variables: dict[str, str] = {}  # identity -> text as first written; order = R's variable order
    kept: list[frozenset[str]] = []
    for item in terms:
        if item.span.text in ("0", "1"):
            continue
        crossed = _crossed_terms(source, item.span, variables)
        if item.sign == "-":
            kept = [interaction for interaction in kept if interaction not in crossed]
            continue
        for interaction in crossed:
            if interaction not in kept:
                kept.append(interaction)
    kept.sort(key=len)

    order = {key: position for position, key in enumerate(variables)}
    labels = [
        ":".join(variables[key] for key in sorted(interaction, key=order.__getitem__))
        for interaction in kept
    ]
    exprs = (["1"] if _keeps_intercept(terms) else []) + [f"0 + {label}" for label in labels]
    if not exprs:
        raise source.error(f"random-effects term '{term.text}' has no columns", term.start)
    return exprs


def _crossed_terms(source: _Source, span: _Span, variables: dict[str, str]) -> list[frozenset[str]]:
    """The interactions one ``a*b:c`` term stands for, in R's order: ``a``, ``b:c``, ``a:b:c``.

    Registers each variable in ``variables``; only ``*`` and ``:`` are understood here,
    since the expansion must match R's term labels.
    """
    unsupported = _top_level(span.text, "^/%")
    if unsupported:
        raise source.error(
            f"'{span.text[unsupported[0]]}' is not supported inside a '||' term; "
            f"write its terms out with '+'",
            span.start + unsupported[0],
        )
    crossed: list[frozenset[str]] = []
    for factor in _split_top_level(span, "*"):
        interaction: set[str] = set()
        for variable in _split_top_level(factor, ":"):
            if not variable.text or variable.text.startswith("("):
                raise source.error(
                    f"'{span.text}' is not supported inside a '||' term; "
                    f"write its terms out with '+'",
                    span.start,
                )
            key = _squeezed(variable.text)
            variables.setdefault(key, _tidy(variable.text))
            interaction.add(key)
        new = frozenset(interaction)
        products = [new, *(previous | new for previous in crossed)]
        crossed.extend(product for product in products if product not in crossed)
    return crossed


def _offset_argument(source: _Source, term: _Signed) -> str | None:
    """The expression inside an ``offset(...)`` term, or None for any other term."""
    call = _OFFSET_CALL.match(term.span.text)
    if call is None or not _closes_at_end(term.span.text, call.end() - 1):
        return None
    argument = term.span.slice(call.end(), -1)
    if term.sign == "-":
        raise source.error(
            f"an offset cannot be removed with '-': '{term.span.text}'", term.span.start
        )
    if not argument.text or _top_level(argument.text, ","):
        raise source.error(
            f"offset() takes exactly one expression: '{term.span.text}'", term.span.start
        )
    return _tidy(argument.text)


def _cbind_arguments(source: _Source, response: _Span) -> tuple[str, str] | None:
    """The two columns of a binomial ``cbind(successes, failures)`` response, else None."""
    call = _CBIND_CALL.match(response.text)
    if call is None or not _closes_at_end(response.text, call.end() - 1):
        return None
    arguments = _split_top_level(response.slice(call.end(), -1), ",")
    if len(arguments) != 2 or not all(argument.text for argument in arguments):
        raise source.error(
            f"a cbind() response takes two expressions, successes and failures: '{response.text}'",
            response.start,
        )
    return _tidy(arguments[0].text), _tidy(arguments[1].text)


def quote_names(parsed: ParsedFormula, columns: Collection[str]) -> tuple[ParsedFormula, dict[str, str]]:
    """``parsed`` with the names Python cannot read as written turned into ``Q("name")``.

    Those are backquoted names (```my var```) and the data columns whose names R reads but
    Python does not: ``n.days``, a keyword such as ``class``, a name Python would normalise
    (``ﬁt`` is ``fit`` to Python). A response, ``cbind`` argument or offset that is not Python
    but is exactly a column's name is that column. A dotted name that is not a column, nor
    attribute access on one or on ``np``, is reported as an unknown column (what R would say).
    Also returns how each ``Q(...)`` is shown in the names of model-matrix columns: as the
    formula wrote it.

    >>> quoted, labels = quote_names(parse_formula("y ~ n.days + `my var` + (n.days | g)"), ["y", "n.days", "g"])
    >>> quoted.fixed, quoted.random[0].expr
    ("Q('n.days') + Q('my var')", "Q('n.days')")
    >>> labels
    {"Q('n.days')": 'n.days', "Q('my var')": '`my var`'}
    """
    labels: dict[str, str] = {}
    if not parsed._may_need_quotes:
        return parsed, labels

    def terms(text: str) -> str:
        return _quoted_names(text, columns, labels)

    def value(text: str) -> str:
        return f"Q({text!r})" if not _is_python(text) and text in columns else terms(text)

    quoted = replace(
        parsed,
        response=value(parsed.response),
        cbind=None if parsed.cbind is None else (value(parsed.cbind[0]), value(parsed.cbind[1])),
        fixed=terms(parsed.fixed),
        offsets=tuple(value(offset) for offset in parsed.offsets),
        random=tuple(replace(term, expr=terms(term.expr)) for term in parsed.random),
    )
    return quoted, labels


# Strings (left alone), backquoted names, and names as R writes them, with the '(' of a call.
_NAME_OR_STRING = re.compile(
    r"""(?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
    r"|`(?P<backquoted>[^`]*)`"
    r"|(?<![\w.])(?P<name>(?!\.?\d)[\w.]+)(?P<call>\s*\()?"
)
_PYTHON_CONSTANTS = frozenset({"True", "False", "None"})


def _quoted_names(text: str, columns: Collection[str], labels: dict[str, str]) -> str:
    """``text`` with its backquoted names, and its columns Python cannot read, as ``Q(...)``."""
    spans = _unreadable_names(text)
    if not spans:
        return text
    pieces: list[str] = []
    written_up_to = 0
    for start, end, name, backquoted in spans:
        if backquoted or name in columns:
            quoted = f"Q({name!r})"
            labels[quoted] = text[start:end]
            pieces += [text[written_up_to:start], quoted]
            written_up_to = end
        elif "." in name and name.split(".")[0] not in ("np", "numpy") and name.split(".")[0] not in columns:
            # Not attribute access on numpy or on a column: R's user meant a column the data lack.
            raise FormulaError(f"unknown column {name!r} in {text!r}; the data have columns {list(map(str, columns))}")
    return "".join(pieces) + text[written_up_to:]


@functools.lru_cache(maxsize=1024)
def _unreadable_names(text: str) -> tuple[tuple[int, int, str, bool], ...]:
    """``(start, end, name, backquoted)`` of each backquoted name of ``text`` and of each name
    Python cannot read as written; names of called functions are not among them."""
    spans = []
    for match in _NAME_OR_STRING.finditer(text):
        if match.group("backquoted") is not None:
            spans.append((match.start(), match.end(), match.group("backquoted"), True))
        elif match.group("name") is not None and not match.group("call") and not _python_reads(match.group("name")):
            spans.append((match.start("name"), match.end("name"), match.group("name"), False))
    return tuple(spans)


@functools.lru_cache(maxsize=1024)
def _is_python(text: str) -> bool:
    """Whether ``text`` is a Python expression."""
    try:
        ast.parse(text, mode="eval")
    except (SyntaxError, RecursionError, MemoryError):
        return False
    return True


def _python_reads(name: str) -> bool:
    """Whether Python reads ``name`` as that very name (it normalises identifiers to NFKC)."""
    if name in _PYTHON_CONSTANTS:
        return True
    return name.isidentifier() and not keyword.iskeyword(name) and unicodedata.normalize("NFKC", name) == name
