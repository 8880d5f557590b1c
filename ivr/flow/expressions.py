"""A small, safe expression language for ``branch`` conditions and ``set`` values.

Operators write things like ``lookup.outage != none and lower(intent) in ['outage', 'tv']``.
The text is tokenized and parsed by recursive descent into a tree of frozen dataclasses and
evaluated by walking that tree: no ``eval``, no attribute access, no calls except the few
functions in ``FUNCTIONS``. Dotted names only index mappings (``lookup.outage.eta``), and are
null-safe: a missing key is ``none``, so a condition on a lookup that found nothing is false
instead of an error in the middle of a call.

Every error is an ``ExprError`` carrying the 1-based column where it happened, so the validator
can print ``file:line:column``; evaluation never raises anything else.

Grammar (lowest precedence first)::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := sum (("=="|"!="|"<"|"<="|">"|">="|"in"|"not" "in") sum)?
    sum     := unary (("+"|"-") unary)*
    unary   := "-" unary | atom
    atom    := NUMBER | STRING | "true" | "false" | "none" | name ("." name)* | call
             | "(" expr ")" | "[" (expr ("," expr)*)? "]"
    call    := name "(" (expr ("," expr)*)? ")"
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

Value = str | int | float | bool | None | list["Value"] | dict[str, "Value"]

MAX_LENGTH = 2000  # characters in one expression
MAX_DEPTH = 40  # nesting of parentheses/operators: keeps recursion far from Python's limit
MAX_NUMBER_DIGITS = 30
MAX_TEXT = 10_000  # characters a value may grow to by concatenation


class ExprError(Exception):
    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"{message} (column {column})")
        self.message = message
        self.column = column


# -- tokens ---------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|[<>+\-().,\[\]])
    """,
    re.VERBOSE,
)
KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "none"})


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, name, op, keyword, end
    text: str
    column: int  # 1-based


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters", 1)
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            if text[pos] in "'\"":
                raise ExprError("unterminated string", pos + 1)
            raise ExprError(f"unexpected character {text[pos]!r}", pos + 1)
        kind = match.lastgroup or ""
        if kind != "space":
            value = match.group()
            if kind == "name" and value in KEYWORDS:
                kind = "keyword"
            tokens.append(Token(kind, value, pos + 1))
        pos = match.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


# -- tree -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: Value
    column: int


@dataclass(frozen=True)
class Name:
    path: tuple[str, ...]  # ("lookup", "outage", "eta")
    column: int


@dataclass(frozen=True)
class ListExpr:
    items: tuple[Node, ...]
    column: int


@dataclass(frozen=True)
class Unary:
    op: str  # "not" or "-"
    operand: Node
    column: int


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node
    column: int


@dataclass(frozen=True)
class FunctionCall:
    function: str
    args: tuple[Node, ...]
    column: int


Node = Literal | Name | ListExpr | Unary | Binary | FunctionCall


@dataclass(frozen=True)
class Expr:
    """A parsed expression with its source text, ready to evaluate many times."""

    source: str
    tree: Node

    def names(self) -> list[Name]:
        return list(_names(self.tree))

    def evaluate(self, variables: Mapping[str, Value]) -> Value:
        return _evaluate(self.tree, variables)

    def truth(self, variables: Mapping[str, Value]) -> bool:
        return truthy(self.evaluate(variables))


def _names(node: Node) -> Iterator[Name]:
    if isinstance(node, Name):
        yield node
    elif isinstance(node, ListExpr):
        for item in node.items:
            yield from _names(item)
    elif isinstance(node, Unary):
        yield from _names(node.operand)
    elif isinstance(node, Binary):
        yield from _names(node.left)
        yield from _names(node.right)
    elif isinstance(node, FunctionCall):
        for arg in node.args:
            yield from _names(arg)


# -- parser ---------------------------------------------------------------------------------------

_COMPARE = frozenset({"==", "!=", "<", "<=", ">", ">="})


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.pos]

    def accept(self, text: str) -> Token | None:
        token = self.token
        if token.kind in ("op", "keyword") and token.text == text:
            self.pos += 1
            return token
        return None

    def expect(self, text: str) -> Token:
        token = self.accept(text)
        if token is None:
            raise ExprError(f"expected {text!r}, found {_describe(self.token)}", self.token.column)
        return token

    def parse(self) -> Node:
        node = self.expr()
        if self.token.kind != "end":
            raise ExprError(f"unexpected {_describe(self.token)}", self.token.column)
        return node

    def expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError("expression nested too deeply", self.token.column)
        try:
            return self.or_()
        finally:
            self.depth -= 1

    def or_(self) -> Node:
        node = self.and_()
        while token := self.accept("or"):
            node = Binary("or", node, self.and_(), token.column)
        return node

    def and_(self) -> Node:
        node = self.not_()
        while token := self.accept("and"):
            node = Binary("and", node, self.not_(), token.column)
        return node

    def not_(self) -> Node:
        if token := self.accept("not"):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ExprError("expression nested too deeply", token.column)
            try:
                return Unary("not", self.not_(), token.column)
            finally:
                self.depth -= 1
        return self.compare()

    def compare(self) -> Node:
        node = self.sum()
        token = self.token
        if token.kind == "op" and token.text in _COMPARE:
            self.pos += 1
            return Binary(token.text, node, self.sum(), token.column)
        if self.accept("in"):
            return Binary("in", node, self.sum(), token.column)
        if token.kind == "keyword" and token.text == "not" and self.tokens[self.pos + 1].text == "in":
            self.pos += 2
            return Binary("not in", node, self.sum(), token.column)
        return node

    def sum(self) -> Node:
        node = self.unary()
        while self.token.kind == "op" and self.token.text in "+-":
            token = self.token
            self.pos += 1
            node = Binary(token.text, node, self.unary(), token.column)
        return node

    def unary(self) -> Node:
        if token := self.accept("-"):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ExprError("expression nested too deeply", token.column)
            try:
                return Unary("-", self.unary(), token.column)
            finally:
                self.depth -= 1
        return self.atom()

    def atom(self) -> Node:
        token = self.token
        if token.kind == "number":
            self.pos += 1
            if len(token.text) > MAX_NUMBER_DIGITS:
                raise ExprError("number too long", token.column)
            return Literal(float(token.text) if "." in token.text else int(token.text), token.column)
        if token.kind == "string":
            self.pos += 1
            return Literal(_unquote(token.text), token.column)
        if token.kind == "keyword" and token.text in ("true", "false", "none"):
            self.pos += 1
            return Literal({"true": True, "false": False, "none": None}[token.text], token.column)
        if self.accept("("):
            node = self.expr()
            self.expect(")")
            return node
        if self.accept("["):
            items = self.arguments("]")
            return ListExpr(items, token.column)
        if token.kind == "name":
            self.pos += 1
            if self.accept("("):
                if token.text not in FUNCTIONS:
                    raise ExprError(f"unknown function {token.text!r}", token.column)
                return FunctionCall(token.text, self.arguments(")"), token.column)
            path = [token.text]
            while self.accept("."):
                part = self.token
                if part.kind not in ("name", "keyword", "number"):
                    raise ExprError(f"expected a name after '.', found {_describe(part)}", part.column)
                self.pos += 1
                path.append(part.text)
            return Name(tuple(path), token.column)
        raise ExprError(f"unexpected {_describe(token)}", token.column)

    def arguments(self, closing: str) -> tuple[Node, ...]:
        items: list[Node] = []
        if self.accept(closing):
            return ()
        while True:
            items.append(self.expr())
            if self.accept(closing):
                return tuple(items)
            self.expect(",")


def _describe(token: Token) -> str:
    return "end of expression" if token.kind == "end" else repr(token.text)


def _unquote(text: str) -> str:
    # Only quotes, backslash, \n and \t are escapes; anything else keeps its backslash, so regexes
    # such as '^\+49' mean what they say.
    table = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}
    return re.sub(r"\\(.)", lambda m: table.get(m.group(1), "\\" + m.group(1)), text[1:-1])


def parse(text: str) -> Expr:
    """Parse ``text``; raises ``ExprError`` (with a column) when it is not an expression."""
    if not isinstance(text, str):
        raise ExprError("expression must be text", 1)
    return Expr(text, _Parser(tokenize(text)).parse())


def literal(value: Value) -> Expr:
    """An expression that always yields ``value`` (for YAML numbers and booleans in ``set``)."""
    return Expr(repr(value), Literal(value, 1))


# -- evaluation -----------------------------------------------------------------------------------


def truthy(value: Value) -> bool:
    return bool(value)


def _type_name(value: Value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "list"
    return "table"


def _is_number(value: Value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Value, column: int) -> int | float:
    if _is_number(value):
        assert isinstance(value, int | float)
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text) <= MAX_NUMBER_DIGITS and re.fullmatch(r"-?\d+", text):
            return int(text)
        if len(text) <= MAX_NUMBER_DIGITS and re.fullmatch(r"-?\d+\.\d+", text):
            return float(text)
    raise ExprError(f"{_type_name(value)} {_short(value)} is not a number", column)


def _text(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if _is_number(value):
        return str(value)
    raise TypeError  # lists and tables have no text form; callers turn this into ExprError


def _short(value: Value) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


def _matches(column: int, text: Value, pattern: Value) -> Value:
    if not isinstance(pattern, str):
        raise ExprError("matches() needs a pattern text", column)
    try:
        return re.search(pattern, _as_text(text, column)) is not None
    except re.error as exc:
        raise ExprError(f"bad pattern: {exc}", column) from None


def _as_text(value: Value, column: int) -> str:
    try:
        return _text(value)
    except TypeError:
        raise ExprError(f"{_type_name(value)} has no text form", column) from None


def _length(column: int, value: Value) -> Value:
    if isinstance(value, str | list | dict):
        return len(value)
    if value is None:
        return 0
    raise ExprError(f"len() of a {_type_name(value)}", column)


def _digits_only(column: int, value: Value) -> Value:
    return re.sub(r"\D", "", _as_text(value, column))


Function = Callable[..., Value]
# name -> (number of arguments, implementation taking the column first)
FUNCTIONS: dict[str, tuple[int, Function]] = {
    "len": (1, _length),
    "lower": (1, lambda c, v: _as_text(v, c).lower()),
    "upper": (1, lambda c, v: _as_text(v, c).upper()),
    "text": (1, lambda c, v: _as_text(v, c)),
    "number": (1, lambda c, v: _number(v, c)),
    "digits": (1, _digits_only),
    "matches": (2, _matches),
}


def _evaluate(node: Node, variables: Mapping[str, Value]) -> Value:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Name):
        return lookup_path(variables, node.path)
    if isinstance(node, ListExpr):
        return [_evaluate(item, variables) for item in node.items]
    if isinstance(node, Unary):
        operand = _evaluate(node.operand, variables)
        if node.op == "not":
            return not truthy(operand)
        return -_number(operand, node.column)
    if isinstance(node, FunctionCall):
        arity, function = FUNCTIONS[node.function]
        if len(node.args) != arity:
            raise ExprError(f"{node.function}() takes {arity} argument(s), got {len(node.args)}", node.column)
        return function(node.column, *(_evaluate(arg, variables) for arg in node.args))
    return _binary(node, variables)


def _binary(node: Binary, variables: Mapping[str, Value]) -> Value:
    op = node.op
    left = _evaluate(node.left, variables)
    # Short-circuit like Python, but always yield a boolean: conditions read as yes/no.
    if op == "and":
        return truthy(left) and truthy(_evaluate(node.right, variables))
    if op == "or":
        return truthy(left) or truthy(_evaluate(node.right, variables))
    right = _evaluate(node.right, variables)
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    if op in ("in", "not in"):
        found = _contains(right, left, node.column)
        return found if op == "in" else not found
    if op == "+":
        if isinstance(left, str) and isinstance(right, str):
            if len(left) + len(right) > MAX_TEXT:
                raise ExprError("text too long", node.column)
            return left + right
        if _is_number(left) and _is_number(right):
            return _number(left, node.column) + _number(right, node.column)
        raise ExprError(
            f"cannot add {_type_name(left)} and {_type_name(right)} (use text() or number())", node.column
        )
    if op == "-":
        return _number(left, node.column) - _number(right, node.column)
    return _order(op, left, right, node.column)


def _equal(left: Value, right: Value) -> bool:
    # 5 == '5' is false, as it should be: numbers and text are different things to a caller too.
    if _is_number(left) and _is_number(right):
        return left == right
    return type(left) is type(right) and left == right


def _contains(container: Value, item: Value, column: int) -> bool:
    if isinstance(container, str):
        if not isinstance(item, str):
            raise ExprError(f"'in' text needs text on the left, got {_type_name(item)}", column)
        return item in container
    if isinstance(container, list):
        return any(_equal(item, element) for element in container)
    if isinstance(container, dict):
        return isinstance(item, str) and item in container
    if container is None:
        return False
    raise ExprError(f"'in' needs text, a list or a table on the right, got {_type_name(container)}", column)


def _order(op: str, left: Value, right: Value, column: int) -> bool:
    if _is_number(left) and _is_number(right):
        a: int | float | str = _number(left, column)
        b: int | float | str = _number(right, column)
    elif isinstance(left, str) and isinstance(right, str):
        a, b = left, right
    else:
        raise ExprError(f"cannot compare {_type_name(left)} with {_type_name(right)}", column)
    if op == "<":
        return a < b  # type: ignore[operator]
    if op == "<=":
        return a <= b  # type: ignore[operator]
    if op == ">":
        return a > b  # type: ignore[operator]
    return a >= b  # type: ignore[operator]


def lookup_path(variables: Mapping[str, Value], path: Sequence[str]) -> Value:
    """``a.b.c`` through nested tables; anything missing on the way is ``none``."""
    value: Value = variables.get(path[0])
    for part in path[1:]:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value
