"""One template syntax and one safe expression language for every node. Never Python `eval`.

Templates: text with `{{ expression }}` parts. A template that is exactly one `{{ ... }}` keeps the
value's type (a list stays a list, so a loop can iterate it); otherwise values are written into the
text (objects and lists as JSON, nothing as "").

Expressions read the run's scope:

- `input`: the run input (`input.text`, `input.email`, ...)
- `vars`: variables set by set-variable nodes
- `nodes.<id>.output` (and `nodes.<id>.port`): what an earlier node produced
- `last`: the output of the step that led here
- `item`, `index`: the current item of the enclosing for-each loop (`loop.<id>` has its state)
- `run.id`, `run.source`

They support literals, `and`/`or`/`not`, comparisons (`==`, `!=`, `<`, `in`, `not in`, ...), `+ - * / %`,
`a if cond else b`, indexing (`x[0]`, `x["key"]`), and the functions `len lower upper strip contains
startswith endswith int float str bool json default join split round min max abs keys values`.

The expression is parsed with `ast` and walked over a whitelist of node types; anything else (calls
to other names, attributes of non-objects, dunders, lambdas, comprehensions) is an error.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MAX_EXPRESSION = 1000
MAX_RESULT = 200_000  # characters/items an expression may produce
# `{{ secret:NAME }}` is not an expression: HTTP headers resolve it from the org's vault at call time.
TEMPLATE_PART = re.compile(r"\{\{(?!\s*secret:)(.*?)\}\}", re.S)
WHOLE = re.compile(r"^\s*\{\{(?!\s*secret:)(.*?)\}\}\s*$", re.S)
ROOTS = frozenset({"input", "vars", "nodes", "last", "item", "index", "loop", "run"})


class ExpressionError(ValueError):
    pass


def _to_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _contains(haystack: Any, needle: Any) -> bool:
    if haystack is None:
        return False
    if isinstance(haystack, str):
        return _to_str(needle).lower() in haystack.lower()
    try:
        return needle in haystack
    except TypeError:
        return False


def _default(value: Any, fallback: Any = "") -> Any:
    return fallback if value in (None, "", [], {}) else value


def _join(values: Any, sep: str = ", ") -> str:
    if not isinstance(values, list):
        return _to_str(values)
    return str(sep).join(_to_str(v) for v in values)


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return json.dumps(value, ensure_ascii=False, default=str)


FUNCTIONS: dict[str, Any] = {
    "len": lambda x: len(x) if isinstance(x, str | list | dict) else 0,
    "lower": lambda x: _to_str(x).lower(),
    "upper": lambda x: _to_str(x).upper(),
    "strip": lambda x: _to_str(x).strip(),
    "contains": _contains,
    "startswith": lambda x, p: _to_str(x).startswith(_to_str(p)),
    "endswith": lambda x, p: _to_str(x).endswith(_to_str(p)),
    "int": lambda x: int(float(x)) if x not in (None, "") else 0,
    "float": lambda x: float(x) if x not in (None, "") else 0.0,
    "str": _to_str,
    "bool": bool,
    "json": _json,
    "default": _default,
    "join": _join,
    "split": lambda x, sep=",": [p.strip() for p in _to_str(x).split(str(sep))] if x else [],
    "round": lambda x, n=0: round(float(x), int(n)),
    "min": lambda *xs: min(xs[0] if len(xs) == 1 else xs),
    "max": lambda *xs: max(xs[0] if len(xs) == 1 else xs),
    "abs": abs,
    "keys": lambda x: list(x.keys()) if isinstance(x, dict) else [],
    "values": lambda x: list(x.values()) if isinstance(x, dict) else [],
}

_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: _contains(b, a),
    ast.NotIn: lambda a, b: not _contains(b, a),
    ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
}
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
    ast.FloorDiv: operator.floordiv,
}


@dataclass(frozen=True)
class Expression:
    source: str
    tree: ast.Expression
    node_refs: frozenset[str]

    def evaluate(self, scope: dict[str, Any]) -> Any:
        return _eval(self.tree.body, scope)


def _check(tree: ast.AST) -> set[str]:
    """Whitelist the syntax; return the node ids it refers to (`nodes.<id>` / `nodes["id"]`)."""
    refs: set[str] = set()
    allowed = (
        ast.Expression,
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.UnaryOp,
        ast.Not,
        ast.USub,
        ast.UAdd,
        ast.BinOp,
        ast.Compare,
        ast.Constant,
        ast.Name,
        ast.Load,
        ast.Attribute,
        ast.Subscript,
        ast.List,
        ast.Tuple,
        ast.Dict,
        ast.Call,
        ast.IfExp,
        *_COMPARE.keys(),
        *_BINARY.keys(),
    )
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise ExpressionError(f"'{type(node).__name__}' is not allowed in an expression.")
        if (
            isinstance(node, ast.Name)
            and node.id not in ROOTS
            and node.id not in FUNCTIONS | {"true": 1, "false": 1, "null": 1, "none": 1}
        ):
            raise ExpressionError(
                f"Unknown name '{node.id}'. Use input, vars, nodes, last, item, index, loop or run."
            )
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExpressionError("Names starting with '_' are not allowed.")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                raise ExpressionError(f"Only these functions can be called: {', '.join(sorted(FUNCTIONS))}.")
            if node.keywords:
                raise ExpressionError("Functions take positional arguments only.")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "nodes":
            refs.add(node.attr)
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id == "nodes"
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            refs.add(node.slice.value)
    return refs


@lru_cache(maxsize=4096)
def parse_expression(source: str) -> Expression:
    text = source.strip()
    if not text:
        raise ExpressionError("The expression is empty.")
    if len(text) > MAX_EXPRESSION:
        raise ExpressionError(f"An expression is at most {MAX_EXPRESSION} characters.")
    # Friendly spellings people type: true/false/null, &&, ||, !.
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"Cannot read the expression ({exc.msg}).") from None
    refs = _check(tree)
    return Expression(source=text, tree=tree, node_refs=frozenset(refs))


def _get(value: Any, key: Any) -> Any:
    if isinstance(value, dict):
        return value.get(key if isinstance(key, str) else str(key))
    if isinstance(value, list | str) and isinstance(key, int) and not isinstance(key, bool):
        try:
            return value[key]
        except IndexError:
            return None
    return None


def _limit(value: Any) -> Any:
    if isinstance(value, str | list | dict) and len(value) > MAX_RESULT:
        raise ExpressionError("The expression produced a value that is too large.")
    return value


def _eval(node: ast.AST, scope: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        lowered = {"true": True, "false": False, "null": None, "none": None}
        if node.id in lowered and node.id not in scope:
            return lowered[node.id]
        return scope.get(node.id)
    if isinstance(node, ast.Attribute):
        return _get(_eval(node.value, scope), node.attr)
    if isinstance(node, ast.Subscript):
        return _get(_eval(node.value, scope), _eval(node.slice, scope))
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            result: Any = True
            for value in node.values:
                result = _eval(value, scope)
                if not result:
                    return result
            return result
        result = False
        for value in node.values:
            result = _eval(value, scope)
            if result:
                return result
        return result
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, scope)
        if isinstance(node.op, ast.Not):
            return not operand
        try:
            return -operand if isinstance(node.op, ast.USub) else +operand
        except TypeError:
            raise ExpressionError("'-' needs a number.") from None
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, scope), _eval(node.right, scope)
        if isinstance(node.op, ast.Mult) and (isinstance(left, str | list) or isinstance(right, str | list)):
            count = right if isinstance(left, str | list) else left
            size = len(left if isinstance(left, str | list) else right)
            if not isinstance(count, int) or count * max(size, 1) > MAX_RESULT:
                raise ExpressionError("The expression produced a value that is too large.")
        try:
            return _limit(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise ExpressionError("Division by zero.") from None
        except TypeError:
            if isinstance(node.op, ast.Add) and (isinstance(left, str) or isinstance(right, str)):
                return _limit(_to_str(left) + _to_str(right))
            raise ExpressionError(
                f"Cannot combine {type(left).__name__} and {type(right).__name__}."
            ) from None
    if isinstance(node, ast.Compare):
        left = _eval(node.left, scope)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, scope)
            try:
                ok = _COMPARE[type(op)](left, right)
            except TypeError:
                ok = False
            if not ok:
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body, scope) if _eval(node.test, scope) else _eval(node.orelse, scope)
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, scope) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {
            _to_str(_eval(k, scope)) if k is not None else "": _eval(v, scope)
            for k, v in zip(node.keys, node.values, strict=True)
        }
    if isinstance(node, ast.Call):
        fn = FUNCTIONS[node.func.id]  # type: ignore[attr-defined]
        args = [_eval(a, scope) for a in node.args]
        try:
            return _limit(fn(*args))
        except ExpressionError:
            raise
        except (TypeError, ValueError) as exc:
            raise ExpressionError(f"{node.func.id}(): {exc}") from None  # type: ignore[attr-defined]
    raise ExpressionError(f"'{type(node).__name__}' is not allowed in an expression.")


def evaluate(source: str, scope: dict[str, Any]) -> Any:
    return parse_expression(source).evaluate(scope)


# ----------------------------------------------------------------- templates


def template_references(template: str) -> set[str]:
    """Node ids a template refers to. Raises ExpressionError for a part that does not parse."""
    refs: set[str] = set()
    for match in TEMPLATE_PART.finditer(template):
        refs |= parse_expression(match.group(1)).node_refs
    return refs


def render(template: Any, scope: dict[str, Any]) -> Any:
    """Render one template string; other values pass through (dicts and lists are rendered deeply)."""
    if isinstance(template, dict):
        return {k: render(v, scope) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, scope) for v in template]
    if not isinstance(template, str) or not TEMPLATE_PART.search(template):
        return template
    whole = WHOLE.match(template)
    if whole and "{{" not in whole.group(1):
        return evaluate(whole.group(1), scope)
    return _limit(TEMPLATE_PART.sub(lambda m: _to_str(evaluate(m.group(1), scope)), template))


def render_text(template: Any, scope: dict[str, Any]) -> str:
    return _to_str(render(template, scope))
